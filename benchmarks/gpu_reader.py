"""The transformers reader on the GPU: batched against one-at-a-time answering, KV-cache bytes
against the formula, peak GPU memory. Random weights: figures of speed and memory only.

    python benchmarks/gpu_reader.py [--probes 32] [--context-words 300] [--new-tokens 32]

Builds a Llama-architecture model of about 1B parameters from a config (nothing is
downloaded), saves it with a small tokenizer trained on the spot, and answers the
same probes through `TransformersReader` with batch size N and with batch size 1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memeval.adapters.readers.transformers import TransformersReader  # noqa: E402
from tests.adapters.tiny_model import build_tiny_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=32)
    parser.add_argument("--context-words", type=int, default=300)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()
    import torch

    assert torch.cuda.is_available(), "this benchmark needs a CUDA GPU"
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_model(Path(tmp) / "llama-1b", layers=16, hidden=2048, heads=32,
                                  kv_heads=8, intermediate=8192)
        requests = [(f"What is note {i}?", " ".join(f"note {i} word {j}." for j in
                                                   range(args.context_words // 4 + i)))
                    for i in range(args.probes)]
        timings, stats = {}, {}
        for batch in (args.probes, 1):
            reader = TransformersReader(model=str(folder), device="cuda",
                                        max_new_tokens=args.new_tokens, batch_size=batch,
                                        context_tokens=32768)
            reader.answer_many(requests[:2])  # load and warm up outside the clock
            torch.cuda.synchronize()
            start = time.perf_counter()
            answers = reader.answer_many(requests)
            torch.cuda.synchronize()
            timings[batch] = time.perf_counter() - start
            stats[batch] = answers[-1].stats
            params = sum(p.numel() for p in reader._model.parameters())
            del reader
            torch.cuda.empty_cache()
    print(f"device: {torch.cuda.get_device_name()}; model: Llama, {params / 1e9:.2f}B parameters, "
          f"bf16, random weights")
    print(f"{args.probes} probes, ~{args.context_words} context words, {args.new_tokens} new tokens")
    for batch in (args.probes, 1):
        s = stats[batch]
        diff = abs(s["kv_cache_bytes"] - s["kv_cache_bytes_formula"]) / s["kv_cache_bytes_formula"]
        print(f"batch size {batch:3d}: {timings[batch]:7.2f} s, {s['tokens_per_s']:8.1f} tok/s "
              f"(last batch), KV measured {s['kv_cache_bytes'] / 2**20:8.1f} MiB vs formula "
              f"{s['kv_cache_bytes_formula'] / 2**20:8.1f} MiB ({diff:.2%}), peak allocated "
              f"{s['gpu_peak_allocated_bytes'] / 2**30:.2f} GiB, reserved "
              f"{s['gpu_peak_reserved_bytes'] / 2**30:.2f} GiB")
    print(f"speed-up of batched over one at a time: {timings[1] / timings[args.probes]:.1f}x "
          "(target >= 4x)")


if __name__ == "__main__":
    main()
