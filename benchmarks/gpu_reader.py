"""The transformers reader on the GPU: `generate` against memeval's own decode loop (slot cache,
CUDA graphs), prefill and decode apart, against the HBM-bandwidth bound; a prefix-sharing case;
KV-cache bytes against the formula, peak GPU memory. Random weights: speed and memory only.

    python benchmarks/gpu_reader.py [--probes 32] [--context-words 300] [--new-tokens 32]
                                    [--compiled] [--one-at-a-time] [--bandwidth 4.8e12]

Builds a Llama-architecture model of about 1B parameters from a config (nothing is
downloaded), saves it with a small tokenizer trained on the spot, and answers the same
probes through `TransformersReader` at batch size N, each path warmed up at the timed shape
first. The bound of one decode step is (weight bytes + KV bytes the step reads) / bandwidth
(4.8e12 B/s: the H200's HBM3e). Prefix sharing: 8 probes after each of 4 sessions of one
conversation, the whole history recalled (as full_context does), prefilled with shared
prefixes computed once, against each probe prefilling its whole prompt, and against one
probe per session.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memeval.adapters.readers.transformers import TransformersReader  # noqa: E402
from tests.adapters.tiny_model import build_tiny_model  # noqa: E402

DEVICE = "cuda"


def sync() -> None:
    import torch

    if DEVICE == "cuda":
        torch.cuda.synchronize()


def weight_bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def kv_per_token(reader: TransformersReader) -> int:
    return reader.kv_bytes_formula(1)


def generate_prefill_s(reader: TransformersReader, prompts: list[list[int]]) -> float:
    """The prefill inside `generate`: one forward of the padded batch, timed alone."""
    import torch

    tok, model = reader.tokenizer, reader._model
    batch = tok.pad({"input_ids": prompts}, return_tensors="pt").to(model.device)
    best = float("inf")
    for _ in range(3):
        sync()
        start = time.perf_counter()
        with torch.inference_mode():
            model(**batch, use_cache=True, logits_to_keep=1)
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def timed(reader: TransformersReader, requests: list[tuple[str, str]], repeats: int = 2
          ) -> tuple[float, list[Any]]:
    """Best wall time of answering `requests`, after a warm-up at the same shape."""

    reader.answer_many(requests)  # load, capture graphs, warm caches: outside the clock
    best, answers = float("inf"), []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        answers = reader.answer_many(requests)
        sync()
        best = min(best, time.perf_counter() - start)
    return best, answers


def report_path(name: str, reader: TransformersReader, requests: list[tuple[str, str]],
                seconds: float, answers: list[Any], prefill_s: float | None, bandwidth: float
                ) -> float:
    """Print one path's figures; return its decode tokens/s."""
    prompts = [reader._prompt(q, c) for q, c in requests]
    batch, width = len(prompts), max(map(len, prompts))
    s = answers[-1].stats
    steps = max(a.usage.output_tokens for a in answers)  # the batch runs until its longest
    new = sum(a.usage.output_tokens for a in answers)
    if prefill_s is None:
        prefill_s = s["prefill_s"]
        decode_s = s["decode_s"]
    else:
        decode_s = seconds - prefill_s
    weights, per_token = weight_bytes(reader._model), kv_per_token(reader)
    # each decode step reads the weights and the cache of every row up to its position
    bound = sum(weights + batch * (width + k) * per_token for k in range(1, steps)) / bandwidth
    decode_tps = batch * (steps - 1) / decode_s if decode_s > 0 else 0.0
    diff = abs(s["kv_cache_bytes"] - s["kv_cache_bytes_formula"]) / s["kv_cache_bytes_formula"]
    print(f"{name:9s} batch {batch}: {seconds:6.3f} s, reader {s['tokens_per_s']:9.1f} tok/s "
          f"({new} new tokens), prefill {prefill_s * 1e3:7.1f} ms, decode {decode_s * 1e3:7.1f} ms "
          f"= {decode_s / max(1, steps - 1) * 1e3:6.2f} ms/step, {decode_tps:9.1f} decode tok/s, "
          f"{bound / decode_s:6.1%} of the HBM bound ({bound / max(1, steps - 1) * 1e3:.2f} ms/step)")
    print(f"{'':9s} KV measured {s['kv_cache_bytes'] / 2**20:8.1f} MiB vs formula "
          f"{s['kv_cache_bytes_formula'] / 2**20:8.1f} MiB ({diff:.2%}), peak allocated "
          f"{s.get('gpu_peak_allocated_bytes', 0) / 2**30:.2f} GiB, reserved "
          f"{s.get('gpu_peak_reserved_bytes', 0) / 2**30:.2f} GiB")
    return decode_tps


def session_text(k: int, words: int) -> str:
    lines = [f"[2025-0{k + 1}-01 09:00]"]
    lines += [f"user: In session {k} I noted item {j} is number {k * 100 + j}." for j in
              range(words // 8)]
    return "\n".join(lines) + "\n"


def prefix_case(folder: Path, new_tokens: int, session_words: int) -> None:
    """8 probes after each of 4 sessions, whole history recalled: prefill with and without reuse."""

    history, requests, firsts = "", [], []
    for k in range(4):
        history += session_text(k, session_words)
        block = [(f"Which number has item {j} of session {k}?", history) for j in range(8)]
        requests += block
        firsts.append(block[0])
    reader = TransformersReader(model=str(folder), device=DEVICE, max_new_tokens=new_tokens,
                                batch_size=len(requests), context_tokens=32768)

    def prefill(reqs: list[tuple[str, str]], share: bool) -> tuple[float, float]:
        reader.answer_many(reqs)  # warm-up at the same shape
        reader._decoder.share = share
        best, tokens = float("inf"), 0.0
        for _ in range(3):
            sync()
            stats = reader.answer_many(reqs)[0].stats
            best, tokens = min(best, stats["prefill_s"]), stats["prefill_tokens"]
        reader._decoder.share = True
        return best, tokens

    reader.answer_many(requests[:1])
    shared_s, shared_t = prefill(requests, True)
    full_s, full_t = prefill(requests, False)
    reader.batch_size = 1  # one probe per session, each alone: no padding computed
    one_s, one_t = 0.0, 0.0
    for request in firsts:
        s, t = prefill([request], False)
        one_s, one_t = one_s + s, one_t + t
    reader.batch_size = len(requests)
    lengths = [len(reader._prompt(q, c)) for q, c in firsts]
    print(f"prefix sharing: 4 sessions, 8 probes each, prompts of {lengths} tokens")
    print(f"  32 probes, shared prefixes once: {shared_s * 1e3:7.1f} ms, {shared_t:6.0f} tokens "
          f"computed = {shared_s / one_s:.2f}x one probe per session (target <= 1.5x)")
    print(f"  32 probes, each prefilled whole:  {full_s * 1e3:7.1f} ms, {full_t:6.0f} tokens "
          f"= {full_s / one_s:.2f}x")
    print(f"  1 probe per session, each alone: {one_s * 1e3:7.1f} ms, {one_t:6.0f} tokens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=32)
    parser.add_argument("--context-words", type=int, default=300)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--bandwidth", type=float, default=4.8e12, help="HBM bytes/s (H200)")
    parser.add_argument("--compiled", action="store_true",
                        help="also decode=compiled (torch.compile before graph capture)")
    parser.add_argument("--one-at-a-time", action="store_true",
                        help="also generate with batch size 1 (the batching speed-up)")
    parser.add_argument("--skip-prefix", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="a tiny model on the CPU: a dry run")
    args = parser.parse_args()
    import torch

    global DEVICE
    DEVICE = "cpu" if args.smoke else "cuda"
    assert args.smoke or torch.cuda.is_available(), "this benchmark needs a CUDA GPU"
    size = ({"layers": 2, "hidden": 64, "heads": 4, "kv_heads": 2} if args.smoke else
            {"layers": 16, "hidden": 2048, "heads": 32, "kv_heads": 8, "intermediate": 8192})
    with tempfile.TemporaryDirectory() as tmp:
        folder = build_tiny_model(Path(tmp) / "llama", **size)
        requests = [(f"What is note {i}?", " ".join(f"note {i} word {j}." for j in
                                                   range(args.context_words // 4 + i)))
                    for i in range(args.probes)]
        name = torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu"
        print(f"device: {name}; torch {torch.__version__}")
        modes = ["generate", "auto"] + (["compiled"] if args.compiled else [])
        figures: dict[str, float] = {}
        for mode in modes:
            reader = TransformersReader(model=str(folder), device=DEVICE, decode=mode,
                                        max_new_tokens=args.new_tokens, batch_size=args.probes,
                                        context_tokens=32768)
            start = time.perf_counter()
            seconds, answers = timed(reader, requests)
            warm = time.perf_counter() - start
            if mode == "generate":
                params = sum(p.numel() for p in reader._model.parameters())
                prompts = [reader._prompt(q, c) for q, c in requests]
                print(f"model: Llama, {params / 1e9:.2f}B parameters, bf16, random weights; "
                      f"{args.probes} probes of {min(map(len, prompts))}-{max(map(len, prompts))} "
                      f"tokens, {args.new_tokens} new tokens")
                prefill = generate_prefill_s(reader, prompts)
            else:
                prefill = None
            figures[mode] = report_path(mode, reader, requests, seconds, answers, prefill,
                                        args.bandwidth)
            figures[mode + ":reader"] = answers[-1].stats["tokens_per_s"]
            print(f"{'':9s} (warm-up and timed runs took {warm:.1f} s)")
            if args.one_at_a_time and mode == "generate":
                reader.batch_size = 1
                one, _ = timed(reader, requests, repeats=1)
                print(f"{'':9s} batch 1: {one:.2f} s; batched speed-up {one / seconds:.1f}x")
            del reader
            if DEVICE == "cuda":
                torch.cuda.empty_cache()
        for mode in modes[1:]:
            print(f"{mode} over generate: decode {figures[mode] / figures['generate']:.1f}x, "
                  f"reader tokens/s {figures[mode + ':reader'] / figures['generate:reader']:.1f}x "
                  f"({figures[mode + ':reader'] / 242:.1f}x the 242 tok/s of the cold benchmark)")
        if not args.skip_prefix:
            prefix_case(folder, args.new_tokens, args.context_words // 4 * 8 // 4)


if __name__ == "__main__":
    main()
