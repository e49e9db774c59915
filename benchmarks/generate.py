"""`memeval generate` at scale: a 1,000,000-token scenario, generated and loaded.

    python benchmarks/generate.py [--tokens 1000000] [--facts 500] [--sessions 2000]

Prints the seconds to generate and write the file, the seconds to load, validate and
unroll it into the timeline a run replays (filler materialized), the tokens that
timeline holds, and the peak RSS of the process.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memeval.scenario import load_scenario  # noqa: E402
from memeval.scenario.generate import write_generated  # noqa: E402
from memeval.scenario.timeline import TimelineSession, build_timeline  # noqa: E402
from memeval.tokens import count_tokens  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--facts", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--users", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.yaml"
        start = time.perf_counter()
        made = write_generated(path, facts=args.facts, sessions=args.sessions, users=args.users,
                               tokens=args.tokens, updates=0.2, sensitive=0.1, seed=7)
        generated = time.perf_counter() - start
        size = path.stat().st_size
        start = time.perf_counter()
        timeline = build_timeline(load_scenario(path))
        loaded = time.perf_counter() - start
    sessions = [e for e in timeline if isinstance(e, TimelineSession)]
    tokens = sum(count_tokens(t.text) for s in sessions for t in s.turns)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"target {args.tokens:,} tokens, {args.facts} facts, {args.sessions} sessions, "
          f"{args.users} users; {made['probes']} probes {made['kinds']}")
    print(f"generate and write: {generated:.2f} s ({size / 1e3:.0f} kB of YAML)")
    print(f"load, validate and unroll the timeline: {loaded:.2f} s; {len(sessions):,} sessions, "
          f"{tokens:,} tokens ({tokens / args.tokens - 1:+.1%} from the target)")
    print(f"total: {generated + loaded:.2f} s; peak RSS {rss / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
