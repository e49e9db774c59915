"""Ray sweeps on a real local cluster, run by tests/runner/test_ray.py inside a network
namespace that has only loopback (`unshare -n`), so no Ray traffic leaves the machine.

    python -m tests.runner.ray_harness SCENARIO OUT_DIR

Each scenario writes run directories under OUT_DIR for the test to compare, and stops every
Ray process it started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..conftest import ROOT, SCENARIOS

SLOW_READER = "tests.helpers:EchoReader:delay=0.05"


def cluster(nodes: int):  # type: ignore[no-untyped-def]
    from ray.cluster_utils import Cluster

    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    made = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(nodes - 1):
        made.add_node(num_cpus=1)
    made.wait_for_nodes()
    return made


def same_as_local(out: Path) -> None:
    """The bundled library, locally and on a 3-node cluster (call cache on, shared)."""
    import memeval

    memeval.run(SCENARIOS, reader="extractive", out=out / "local", report=False)
    made = cluster(3)
    try:
        memeval.run(SCENARIOS, reader="extractive", out=out / "ray", report=False,
                    executor=f"ray:address={made.address}")
    finally:
        made.shutdown()


def node_dies(out: Path) -> None:
    """A worker node is killed while its cells run: they run again elsewhere."""
    import ray

    import memeval

    made = cluster(3)
    try:
        ray.init(address=made.address, include_dashboard=False, log_to_driver=False)
        here = ray.get_runtime_context().get_node_id()
        victim = next(n for n in made.worker_nodes if n.node_id != here)
        killed = threading.Event()

        def kill_when_busy() -> None:
            deadline = time.monotonic() + 60
            records = out / "ray" / "records.jsonl"
            while time.monotonic() < deadline:
                if records.exists() and records.read_bytes().count(b"\n") >= 10:
                    made.remove_node(victim, allow_graceful=False)
                    killed.set()
                    return
                time.sleep(0.02)

        threading.Thread(target=kill_when_busy, daemon=True).start()
        memeval.run(SCENARIOS, backends=["full_context", "oracle"], reader=SLOW_READER,
                    out=out / "ray", report=False, cache=False,
                    executor=f"ray:address={made.address}")
        assert killed.is_set(), "the node should die mid-sweep"
        ray.shutdown()
    finally:
        made.shutdown()
    memeval.run(SCENARIOS, backends=["full_context", "oracle"], reader=SLOW_READER,
                out=out / "local", report=False, cache=False)


def driver_dies(out: Path) -> None:
    """The driver is killed mid-sweep; `--resume` on the same cluster finishes the rest."""
    made = cluster(2)
    env = {**os.environ, "PYTHONPATH": os.environ["PYTHONPATH"]}
    args = [sys.executable, "-m", "memeval.cli", "run", str(SCENARIOS), "-b", "full_context",
            "-b", "oracle", "--reader", SLOW_READER, "--no-cache", "--no-report",
            "--executor", f"ray:address={made.address}", "--out", str(out / "ray")]
    try:
        driver = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        records = out / "ray" / "records.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if records.exists() and records.read_bytes().count(b"\n") >= 20:
                break
            time.sleep(0.02)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        partial = records.read_bytes().count(b"\n")
        subprocess.run([*args, "--resume"], env=env, check=True, capture_output=True)
    finally:
        made.shutdown()
    import memeval

    memeval.run(SCENARIOS, backends=["full_context", "oracle"], reader=SLOW_READER,
                out=out / "local", report=False, cache=False)
    (out / "partial.json").write_text(json.dumps({"partial": partial}))


if __name__ == "__main__":
    scenario, where = sys.argv[1], Path(sys.argv[2])
    {"same_as_local": same_as_local, "node_dies": node_dies, "driver_dies": driver_dies}[scenario](where)
