"""KV-cache policies of the transformers reader on long prompts: KV bytes held at the answer
(measured and by formula), peak GPU memory and tokens/s of each policy against the full cache.
Random weights: figures of memory and speed only, no retention.

    python benchmarks/kv_policies.py [--lengths 8192,16384,32768] [--new-tokens 32]
                                     [--policies quant] [--tiny]

Builds a Llama-architecture model of about 1B parameters from a config (nothing is
downloaded; `--tiny`: a few hundred thousand, to check the script on a CPU), then answers
one question over notes of each length under every policy (CUDA when present). Each
length is answered once untimed first, so the timed answer is warm at its own shape.
"""

from __future__ import annotations

import argparse
import gc
import json
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memeval.adapters.readers.transformers import TransformersReader  # noqa: E402
from tests.adapters.tiny_model import build_tiny_model  # noqa: E402

POLICIES = ["kv=full", "kv=window,sink=4,window=1024", "kv=snapkv,ratio=0.5", "kv=tova,ratio=0.5",
            "kv=knorm,ratio=0.5", "kv=snapkv,ratio=0.75", "kv=quant,bits=8", "kv=quant,bits=4"]


def options(policy: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for part in policy.split(","):
        key, _, value = part.partition("=")
        out[key] = value if key == "kv" else float(value) if "." in value else int(value)
    return out


def notes(reader: TransformersReader, tokens: int) -> str:
    """Notes of about `tokens` tokens of the reader's tokenizer."""
    line = "user: on day {i} I noted that the locker code is {c} and the cat is called Pim.\n"
    text = "".join(line.format(i=i, c=1000 + i * 7 % 9000) for i in range(tokens // 8 + 8))
    ids = reader.tokenizer(text, add_special_tokens=False)["input_ids"]
    while len(ids) < tokens:
        text += text
        ids = reader.tokenizer(text, add_special_tokens=False)["input_ids"]
    return str(reader.tokenizer.decode(ids[:tokens]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="8192,16384,32768")
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--policies", default="",
                        help="only the policies this regular expression finds (e.g. quant); full always runs")
    parser.add_argument("--tiny", action="store_true", help="a tiny model, to check the script")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    import torch

    cuda = torch.cuda.is_available()
    lengths = [int(n) for n in args.lengths.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        size = {} if args.tiny else dict(layers=16, hidden=2048, heads=32, kv_heads=8, intermediate=8192)
        folder = build_tiny_model(Path(tmp) / "llama", **size)  # type: ignore[arg-type]
        config = json.loads((folder / "config.json").read_text())
        config["max_position_embeddings"] = max(lengths) * 2  # rotary positions past 16k
        (folder / "config.json").write_text(json.dumps(config))
        base = TransformersReader(model=str(folder), max_new_tokens=args.new_tokens,
                                  context_tokens=max(lengths) + 1024)
        base._load()
        weights = torch.cuda.memory_allocated() if cuda else 0
        params = sum(p.numel() for p in base._model.parameters())
        texts = {n: notes(base, n) for n in lengths}
        reader = base
        for policy in [p for p in POLICIES if re.search(args.policies, p) or p == "kv=full"]:
            del reader  # the last policy's buffers (the fast path's slot cache) must not count
            gc.collect()
            reader = TransformersReader(model=str(folder), max_new_tokens=args.new_tokens,
                                        context_tokens=max(lengths) + 1024, **options(policy))  # type: ignore[arg-type]
            reader._model, reader._tokenizer = base._model, base._tokenizer  # one model for all
            for n in lengths:
                reader.answer("What is the locker code?", texts[n])  # warm, at the timed shape
                if cuda:
                    torch.cuda.synchronize()
                    torch.cuda.empty_cache()
                began = time.perf_counter()
                answer = reader.answer("What is the locker code?", texts[n])
                seconds = time.perf_counter() - began
                rows.append({"policy": policy, "tokens": answer.usage.input_tokens,
                             "new": answer.usage.output_tokens, "seconds": seconds, **answer.stats})
                print(json.dumps(rows[-1]), flush=True)
    device = torch.cuda.get_device_name() if cuda else "CPU"
    print(f"\ndevice: {device}; model: Llama, {params / 1e9:.2f}B parameters, "
          f"{'bf16' if cuda else 'fp32'}, random weights ({weights / 2**30:.2f} GiB)")
    full = {r["tokens"]: r for r in rows if r["policy"] == "kv=full"}
    print("| policy | prompt tokens | KV MiB (measured) | KV MiB (formula) | vs full | "
          "peak GPU GiB (allocated) | above weights GiB | s per answer | tokens/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        ref = full.get(r["tokens"], r)
        peak = r.get("gpu_peak_allocated_bytes", 0)
        print(f"| `{r['policy']}` | {r['tokens']} | {r['kv_cache_bytes'] / 2**20:.1f} | "
              f"{r['kv_cache_bytes_formula'] / 2**20:.1f} | "
              f"{r['kv_cache_bytes'] / ref['kv_cache_bytes']:.2f} | {peak / 2**30:.2f} | "
              f"{(peak - weights) / 2**30:.2f} | {r['seconds']:.2f} | {r['tokens_per_s']:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
