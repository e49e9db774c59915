"""N CPU-bound cells on a local Ray cluster against the local executor, on the same machine.

Prints the speedup (target ≥ 1.7× on 2 cores) and the per-cell scheduling overhead (target
< 50 ms per cell). Ray runs in a network namespace with only loopback, so nothing leaves
the machine: the script re-runs itself under `unshare -n` (root needed).

    python benchmarks/ray_sweep.py [--cells 8] [--tokens 40000] [--cpus 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from memeval import Footprint, MemoryBackend, Query, Recall, RecallItem, Turn  # noqa: E402


class BagOfWords(MemoryBackend):
    """A CPU-bound memory in pure Python: word-count vectors, cosine against every stored turn
    at each recall (the records it makes stay small)."""

    def __init__(self, top_k: int = 5):
        self.top_k = top_k
        self.turns: dict[str, list[tuple[Turn, dict[str, int], float]]] = {}

    @staticmethod
    def vector(text: str) -> tuple[dict[str, int], float]:
        counts: dict[str, int] = {}
        for word in text.lower().split():
            counts[word] = counts.get(word, 0) + 1
        return counts, sum(v * v for v in counts.values()) ** 0.5 or 1.0

    def reset(self, scope: str) -> None:
        self.turns[scope] = []

    def observe(self, turn: Turn) -> None:
        self.turns.setdefault(turn.user, []).append((turn, *self.vector(turn.text)))

    def recall(self, query: Query) -> Recall:
        q, qn = self.vector(query.text)
        scored = sorted(((sum(c * v.get(w, 0) for w, c in q.items()) / (qn * n), i)
                         for i, (_, v, n) in enumerate(self.turns.get(query.user, []))),
                        reverse=True)[: self.top_k]
        best = [self.turns[query.user][i][0] for _, i in sorted(scored, key=lambda s: s[1])]
        return Recall(text="\n".join(t.text for t in best),
                      items=tuple(RecallItem(text=t.text, turn_id=t.id) for t in best))

    def footprint(self) -> Footprint:
        texts = [t.text for turns in self.turns.values() for t, _, _ in turns]
        return Footprint(items=len(texts), bytes=sum(len(x) for x in texts))


def in_namespace() -> None:
    if os.environ.get("MEMEVAL_NETNS") == "1":
        return
    env = {**os.environ, "MEMEVAL_NETNS": "1"}
    sys.exit(subprocess.call(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                              sys.executable, *sys.argv], env=env))


def timed_run(paths: list[Path], out: Path, executor: str, backends: list[str]
              ) -> tuple[float, float, float]:
    """(wall, cells, driver) seconds: cells is the wall time of running the cells, driver
    the serial work around them (loading and planning, scoring) that no executor spreads."""
    from memeval.records import RunConfig, read_records
    from memeval.runner import execute, plan_run
    from memeval.scoring.scores import compute_scores

    start = time.perf_counter()
    plan = plan_run(paths, RunConfig(backends=backends, reader="extractive", out=out,
                                     control=False, cache=False, report=False, executor=executor))
    planned = time.perf_counter()
    execute(plan, [])
    wall = time.perf_counter() - start
    records = read_records(out)
    scoring = time.perf_counter()
    compute_scores(records, plan.manifest([]).backends)
    scored = time.perf_counter() - scoring
    return wall, wall - (planned - start) - scored, (planned - start) + scored


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--trivial", type=int, default=40, help="cells for the overhead figure")
    args = parser.parse_args()
    in_namespace()

    import ray
    from ray.cluster_utils import Cluster

    from memeval.scenario.generate import write_generated

    work = Path(tempfile.mkdtemp(prefix="memeval-ray-"))
    heavy = []
    for i in range(args.cells):
        path = work / f"heavy-{i}.yaml"
        write_generated(path, facts=args.tokens // 2000, sessions=args.tokens // 500, users=2,
                        tokens=args.tokens, updates=0.2, sensitive=0.1, seed=i)
        heavy.append(path)
    tiny = []
    for i in range(args.trivial):
        path = work / f"tiny-{i}.yaml"
        write_generated(path, facts=2, sessions=2, users=1, tokens=200, updates=0.0,
                        sensitive=0.0, seed=100 + i)
        tiny.append(path)

    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), str(ROOT / "benchmarks"),
                                                             os.environ.get("PYTHONPATH")]))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": args.cpus, "include_dashboard": False})
    try:
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        on_ray = f"ray:address={cluster.address}"
        # warm both: worker processes started, models and imports loaded
        timed_run(tiny[:4], work / "warm-local", "local", ["no_memory"])
        timed_run(tiny[:4], work / "warm-ray", on_ray, ["no_memory"])

        busy = ["ray_sweep:BagOfWords"]  # workers import it from benchmarks/ (on PYTHONPATH)
        local = timed_run(heavy, work / "heavy-local", "local", busy)
        spread = timed_run(heavy, work / "heavy-ray", on_ray, busy)
        print(f"{args.cells} cells of a bag-of-words memory on {args.tokens:,}-token scenarios, "
              "extractive reader (CPU-bound, pure Python):")
        print(f"  local executor  {local[0]:6.2f} s wall: cells {local[1]:.2f} s "
              f"({local[1] / args.cells:.2f} s each), driver {local[2]:.2f} s")
        print(f"  ray, {args.cpus} CPUs     {spread[0]:6.2f} s wall: cells {spread[1]:.2f} s, "
              f"driver {spread[2]:.2f} s")
        print(f"  speedup of the cells  {local[1] / spread[1]:.2f}x  (target >= 1.7x on 2 cores)")
        print(f"  speedup end to end    {local[0] / spread[0]:.2f}x  (the driver's loading, "
              "planning and scoring stay serial)")

        local_tiny = timed_run(tiny, work / "tiny-local", "local", ["no_memory"])[0]
        # one CPU's worth per cell: one cell at a time, so the difference is the overhead
        ray_tiny = timed_run(tiny, work / "tiny-ray", f"{on_ray},num_cpus={args.cpus}",
                             ["no_memory"])[0]
        overhead = (ray_tiny - local_tiny) / args.trivial
        print(f"{args.trivial} trivial cells (no_memory, ~200 tokens), one at a time:")
        print(f"  local {local_tiny:.2f} s, ray {ray_tiny:.2f} s: "
              f"scheduling overhead {overhead * 1000:.1f} ms per cell  (target < 50 ms)")
        ray.shutdown()
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
