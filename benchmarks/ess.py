"""Effective state size at 8k tokens on the GPU: seconds per position and peak memory.
Random weights: figures of speed and memory only.

    python benchmarks/ess.py [--tokens 8192] [--positions 16]

Builds a Llama-architecture model of about 1B parameters from a config (nothing is
downloaded) and measures, for one prompt of --tokens tokens, a plain forward pass
against the same pass with ESS taken at --positions positions in every layer.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memeval.adapters.readers.ess import ROWS, effective_state_size  # noqa: E402
from tests.adapters.tiny_model import build_tiny_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--positions", type=int, default=16)
    args = parser.parse_args()
    import torch
    from transformers import AutoModelForCausalLM

    assert torch.cuda.is_available(), "this benchmark needs a CUDA GPU"
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_model(Path(tmp) / "llama-1b", layers=16, hidden=2048, heads=32,
                                  kv_heads=8, intermediate=8192)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).to("cuda").eval()
    ids = torch.randint(4, 300, (1, args.tokens), device="cuda",
                        generator=torch.Generator("cuda").manual_seed(0))
    step = args.tokens // (args.positions + 1)
    positions = [step * (k + 1) for k in range(args.positions)]

    def timed(fn):  # type: ignore[no-untyped-def]
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        return out, time.perf_counter() - start, torch.cuda.max_memory_allocated()

    with torch.inference_mode():
        model(ids[:, :512])  # warm up outside the clock
        _, plain_s, plain_peak = timed(lambda: model(ids, use_cache=False))
    effective_state_size(model, ids[:, :512], [100])
    found, ess_s, ess_peak = timed(lambda: effective_state_size(model, ids, positions))
    params = sum(p.numel() for p in model.parameters())
    cfg = model.config
    print(f"device: {torch.cuda.get_device_name()}; model: Llama, {params / 1e9:.2f}B parameters, "
          f"{cfg.num_hidden_layers} layers × {cfg.num_attention_heads} heads, bf16, random weights")
    print(f"{args.tokens} tokens; {len(found)} positions; {ROWS} output rows per position")
    print(f"plain forward: {plain_s:.3f} s, peak {plain_peak / 2**30:.2f} GiB")
    print(f"forward with ESS: {ess_s:.3f} s, peak {ess_peak / 2**30:.2f} GiB")
    print(f"seconds per position (all layers and heads): {(ess_s - plain_s) / len(found):.4f} "
          f"(including the pass: {ess_s / len(found):.4f})")
    mid = found[positions[len(positions) // 2]]
    layer_means = [sum(row) / len(row) for row in mid["tol_1e-2"]]
    print(f"tol-ESS(1e-2) at position {positions[len(positions) // 2]}, mean over heads per layer: "
          + " ".join(f"{v:.1f}" for v in layer_means))


if __name__ == "__main__":
    main()
