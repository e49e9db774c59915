"""Concurrency 8 against concurrency 1 on a local OpenAI-compatible server, same probes.

    python benchmarks/reader_concurrency.py [--probes 16] [--continuous-batching]

Starts `transformers serve` on loopback with the packaged Gemma (as the tests
do), answers the same probes through the `openai` reader at concurrency 1 and
8 with the call cache off, and prints both wall times and their ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memeval.adapters.readers.openai import OpenAIReader  # noqa: E402
from memeval.runner import CallPolicy, ReaderService  # noqa: E402
from tests.servers import servable_gemma, transformers_serve  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=16)
    parser.add_argument("--continuous-batching", action="store_true")
    args = parser.parse_args()
    requests = [(f"What is fact number {i}?", f"user: Fact number {i} is that the key is K{i * 7}.")
                for i in range(args.probes)]
    with tempfile.TemporaryDirectory() as tmp:
        model = servable_gemma(Path(tmp) / "gemma")
        extra = ["--continuous-batching"] if args.continuous_batching else []
        with transformers_serve(model, extra_args=extra) as server:
            reader = OpenAIReader(model=str(model), base_url=server.url, mode="completions",
                                  max_tokens=12)
            reader.answer(*requests[0])  # load the model on the server outside the clock
            timings = {}
            for concurrency in (1, 8):
                service = ReaderService(reader, None, CallPolicy(max_concurrency=concurrency))
                start = time.perf_counter()
                outcomes = service.answer_many(requests)
                timings[concurrency] = time.perf_counter() - start
                errors = sum(1 for o in outcomes if o[3])
                print(f"concurrency {concurrency}: {timings[concurrency]:6.2f} s for "
                      f"{len(requests)} probes ({errors} errors)")
    print(f"speed-up of 8 over 1: {timings[1] / timings[8]:.2f}x "
          f"({'continuous batching' if args.continuous_batching else 'default server'})")


if __name__ == "__main__":
    main()
