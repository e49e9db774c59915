"""Many mutated scenarios through the loader: prints how each ended, and the slowest.

    python benchmarks/fuzz_scenarios.py [--inputs 10000] [--seed 0]

Targets: 0 tracebacks, 0 hangs (over 5 s), 0 errors without a line. The mutations are the
fuzz test's (tests/scenario/mutations.py), applied to every bundled scenario in turn.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memeval.errors import ScenarioError  # noqa: E402
from memeval.scenario import parse_scenario  # noqa: E402
from tests.scenario.mutations import mutate  # noqa: E402


class Hang(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise Hang


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "scenarios").glob("*.yaml"))]
    rng = random.Random(args.seed)
    outcomes: Counter[str] = Counter()
    slowest = (0.0, "")
    examples: dict[str, str] = {}
    signal.signal(signal.SIGALRM, _alarm)
    for i in range(args.inputs):
        text = mutate(rng, texts[i % len(texts)])
        start = time.perf_counter()
        signal.alarm(5)
        try:
            parse_scenario(text, "mutated.yaml")
            outcome = "loaded"
        except ScenarioError as exc:
            lines = text.count("\n") + 2
            placed = all(1 <= p.line <= lines and p.column >= 1 and "\n" not in p.message
                         for p in exc.problems) and exc.problems
            outcome = "one-line errors" if placed else "errors without a line"
        except Hang:
            outcome = "hangs (over 5 s)"
        except Exception as exc:  # what must never happen
            outcome = "tracebacks"
            examples.setdefault(type(exc).__name__, str(exc)[:120])
        finally:
            signal.alarm(0)
        seconds = time.perf_counter() - start
        slowest = max(slowest, (seconds, outcome))
        outcomes[outcome] += 1
    print(f"{args.inputs:,} mutated scenarios (seed {args.seed}):")
    for name in ("loaded", "one-line errors", "errors without a line", "tracebacks",
                 "hangs (over 5 s)"):
        print(f"  {name:24s} {outcomes[name]:7,}")
    print(f"  slowest input            {slowest[0]:.2f} s ({slowest[1]})")
    for kind, message in examples.items():
        print(f"  traceback {kind}: {message}")


if __name__ == "__main__":
    main()
