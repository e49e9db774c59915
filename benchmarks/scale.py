"""Cost per turn from 100k to 10M conversation tokens: is it flat?

    python benchmarks/scale.py [--sizes 100000,1000000,10000000] [--backends ...]

Generates one scenario per size (`memeval generate --tokens T --facts T/2000 --sessions
T/500 --users U --seed 7`; U = 4, or one user per 150 facts past 1.2M tokens) and runs
each backend on it with the model-free extractive reader (no control, no call cache, no
report), each run in a fresh process after a small warm-up run (a run under 30 s is
timed three times, each in its own process, the fastest kept). Prints per run: ms/turn
(wall and CPU, the whole run: load, replay, answers, scoring), recall p50/p95, peak RSS,
bytes written (records and text blocks); then, per backend, the slope of CPU ms/turn
against size on a log-log fit (0: flat; 1: cost per turn grows with the history).
Also one run of full_context under a 1M-token reader (the extractive reader's window) at
300k tokens, where every probe recalls the whole history: its records must stay small.

Targets (issue "flat cost per turn"): no_memory ≤ 0.05 and full_context (8k budget)
≤ 0.25 ms/turn CPU, flat within 1.3× from 100k to 10M, peak RSS ≤ 1 GB at 10M; rag with a
hash embedder: recall p95 within 2× from 100k to 1M; records of the 300k/1M-reader run
≤ 20 MB; the cheapest 1M-token run ≤ 10 s wall.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BACKENDS = {
    "no_memory": "no_memory",
    "full_context:8k": "full_context:max_tokens=7680",
    "window": "window",
    "rag:hash": None,  # built in the child: Rag(embedder=HashEmbedder())
    "rag:minilm": "rag",
}
#: Above this size a backend is skipped by default (the packaged MiniLM embeds ~400 turns/s
#: on 2 cores: 10M tokens would take hours).
DEFAULT_MAX = {"rag:hash": 1_000_000, "rag:minilm": 100_000}


def generate(tokens: int, folder: Path) -> Path:
    from memeval.scenario.generate import write_generated

    path = folder / f"scale-{tokens}.yaml"
    facts = max(1, tokens // 2000)
    # a user holds ~150 facts: past 1.2M tokens, more users keep the facts per token
    write_generated(path, facts=facts, sessions=max(1, tokens // 500),
                    users=max(4, -(-facts // 150)), tokens=tokens, updates=0.2, sensitive=0.1,
                    seed=7)
    return path


def run_one(scenario: Path, backend: str, out: Path) -> dict[str, float]:
    """One run in this process; its figures as a dict."""
    import memeval
    from memeval.records import RECORDS, read_records
    from memeval.runner.loading import load_scenarios
    from memeval.scenario.timeline import TimelineSession
    from memeval.texts import TEXTS

    spec: object = BACKENDS.get(backend, backend)
    if backend == "rag:hash":
        from memeval.adapters.backends.rag import Rag
        from memeval.testing import HashEmbedder

        spec = Rag(embedder=HashEmbedder())
    options = {"reader": "extractive", "control": False, "cache": False, "report": False}
    # a first small run pays for the imports and the tokenizer: the figures are per turn
    memeval.run(generate(20_000, out.parent), backends=[spec], out=out.with_name(out.name + "-warm"),
                **options)
    wall, cpu = time.perf_counter(), time.process_time()
    memeval.run(scenario, backends=[spec], out=out, **options)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    # VmHWM, not ru_maxrss: a forked child inherits its parent's ru_maxrss
    status = Path("/proc/self/status").read_text()
    peak = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))
    peak *= 1024
    (ls,) = load_scenarios([scenario])
    turns = sum(len(e.turns) for e in ls.timeline if isinstance(e, TimelineSession))
    recall = sorted(r.recall_s for r in read_records(out) if r.recall_s is not None)
    written = sum((out / name).stat().st_size for name in (RECORDS, TEXTS) if (out / name).exists())
    return {"turns": turns, "wall_s": wall, "cpu_s": cpu, "peak_rss": peak, "written": written,
            "recall_p50_ms": 1000 * statistics.median(recall),
            "recall_p95_ms": 1000 * recall[int(0.95 * (len(recall) - 1))]}


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(y) against log(x)."""
    if len(points) < 2:
        return None
    xs, ys = [math.log(x) for x, _ in points], [math.log(y) for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--all-sizes", action="store_true",
                        help="run rag at every size too (hours for MiniLM at 10M)")
    parser.add_argument("--child", nargs=3, metavar=("SCENARIO", "BACKEND", "OUT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        scenario, backend, out = args.child
        print(json.dumps(run_one(Path(scenario), backend, Path(out))))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = args.backends.split(",")
    with tempfile.TemporaryDirectory(prefix="memeval-scale-") as tmp:
        folder = Path(tmp)
        runs = [(size, b) for b in backends for size in sizes
                if args.all_sizes or size <= DEFAULT_MAX.get(b, size)]
        runs.append((300_000, "full_context"))  # no budget: the reader's 1M-token window
        scenarios: dict[int, Path] = {}
        print(f"{'backend':<16}{'tokens':>11}{'turns':>9}{'ms/turn':>9}{'cpu ms/t':>9}"
              f"{'recall p50':>11}{'p95':>9}{'peak RSS':>10}{'written':>10}", flush=True)
        results: dict[str, list[tuple[int, dict[str, float]]]] = {}
        for size, backend in runs:
            if size not in scenarios:
                scenarios[size] = generate(size, folder)
            # a run under 30 s is timed three times, each in a fresh process (a process
            # keeps a short scenario's timeline for its next run), and the fastest kept
            attempts: list[dict[str, float]] = []
            while len(attempts) < 3 and not any(a["wall_s"] >= 30 for a in attempts):
                out = folder / f"run-{backend.replace(':', '_')}-{size}-{len(attempts)}"
                done = subprocess.run([sys.executable, __file__, "--child", str(scenarios[size]),
                                       backend, str(out)], capture_output=True, text=True)
                if done.returncode != 0:
                    print(f"{backend:<16}{size:>11,}  failed: {done.stderr.strip()[-300:]}")
                    break
                attempts.append(json.loads(done.stdout.strip().splitlines()[-1]))
            if not attempts:
                continue
            r = min(attempts, key=lambda a: a["cpu_s"])
            label = "full_context:1M" if backend == "full_context" else backend
            results.setdefault(label, []).append((size, r))
            print(f"{label:<16}{size:>11,}{r['turns']:>9,}{1000 * r['wall_s'] / r['turns']:>9.3f}"
                  f"{1000 * r['cpu_s'] / r['turns']:>9.3f}{r['recall_p50_ms']:>9.2f}ms"
                  f"{r['recall_p95_ms']:>7.2f}ms{r['peak_rss'] / 2**20:>7.0f}MiB"
                  f"{r['written'] / 2**20:>7.1f}MiB", flush=True)
    print("\nslope of CPU ms/turn against tokens (log-log; 0 = flat), and spread across sizes:")
    for label, points in results.items():
        per_turn = [(size, 1000 * r["cpu_s"] / r["turns"]) for size, r in points]
        fit = slope(per_turn)
        if fit is None:
            continue
        values = [v for _, v in per_turn]
        p95 = [r["recall_p95_ms"] for _, r in points]
        print(f"  {label:<16} slope {fit:+.3f}, max/min ms/turn {max(values) / min(values):.2f}x, "
              f"recall p95 max/min {max(p95) / max(min(p95), 1e-6):.2f}x")


if __name__ == "__main__":
    main()
