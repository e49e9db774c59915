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


def in_namespace() -> None:
    if os.environ.get("MEMEVAL_NETNS") == "1":
        return
    env = {**os.environ, "MEMEVAL_NETNS": "1"}
    sys.exit(subprocess.call(["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                              sys.executable, *sys.argv], env=env))


def timed_run(paths: list[Path], out: Path, executor: str, backends: list[str]) -> float:
    import memeval

    start = time.perf_counter()
    memeval.run(paths, backends=backends, reader="extractive", out=out, control=False,
                cache=False, report=False, executor=executor)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=40_000)
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

    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": args.cpus, "include_dashboard": False})
    try:
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        on_ray = f"ray:address={cluster.address}"
        # warm both: worker processes started, models and imports loaded
        timed_run(tiny[:4], work / "warm-local", "local", ["no_memory"])
        timed_run(tiny[:4], work / "warm-ray", on_ray, ["no_memory"])

        local = timed_run(heavy, work / "heavy-local", "local", ["full_context"])
        distributed = timed_run(heavy, work / "heavy-ray", on_ray, ["full_context"])
        print(f"{args.cells} cells of full_context on {args.tokens:,}-token scenarios, "
              f"extractive reader:")
        print(f"  local executor       {local:7.2f} s ({local / args.cells:.2f} s per cell)")
        print(f"  ray, {args.cpus} CPUs           {distributed:7.2f} s")
        print(f"  speedup              {local / distributed:7.2f}x  (target >= 1.7x on 2 cores)")

        local_tiny = timed_run(tiny, work / "tiny-local", "local", ["no_memory"])
        ray_tiny = timed_run(tiny, work / "tiny-ray", f"{on_ray},num_cpus={args.cpus}",
                             ["no_memory"])  # one cell at a time: the overhead, not the speedup
        overhead = (ray_tiny - local_tiny) / args.trivial
        print(f"{args.trivial} trivial cells (no_memory, ~200 tokens), one at a time:")
        print(f"  local {local_tiny:.2f} s, ray {ray_tiny:.2f} s: "
              f"scheduling overhead {overhead * 1000:.1f} ms per cell  (target < 50 ms)")
        ray.shutdown()
    finally:
        cluster.shutdown()


if __name__ == "__main__":
    main()
