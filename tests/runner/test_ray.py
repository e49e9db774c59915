"""The Ray executor on a real cluster of 2–3 nodes started on loopback by the test.

Each test runs `ray_harness.py` inside a network namespace of its own with only loopback
(`unshare -n`): Ray advertises the machine's interface address otherwise, and test traffic
must never leave the machine.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import memeval
from memeval.records import read_records

from ..conftest import ROOT, SCENARIOS
from ..helpers import MEASURED

pytestmark = pytest.mark.ray



def _loopback_namespace() -> str | None:
    """Why a namespace cannot be made here, or None when it can."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs unshare and ip (util-linux, iproute2)"
    done = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    return None if done.returncode == 0 else f"unshare -n is not permitted here: {done.stderr}"


def harness(scenario: str, out: Path, timeout: int = 300) -> None:
    why = _loopback_namespace()
    if why:
        pytest.skip(f"Ray tests keep every packet on loopback in a network namespace; {why}")
    pytest.importorskip("ray")
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
         sys.executable, "-m", "tests.runner.ray_harness", scenario, str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def comparable(run_dir: Path) -> list[dict]:
    rows = [r.model_dump(exclude=MEASURED) for r in read_records(run_dir)]
    return sorted(rows, key=lambda r: (r["scenario"], r["backend"], r["probe"]))


def scores_apart_from_measurements(run_dir: Path) -> dict:
    scores = json.loads((run_dir / "scores.json").read_text())
    for cell in scores["cells"]:
        del cell["latency_s"], cell["peak_rss_bytes"]
        for block in (cell["memory"]["usage_bytes"], cell["memory"]["efficiency_tokens_per_byte"]):
            del block["peak_rss"]
    return scores


def test_the_bundled_library_on_ray_equals_a_local_run(tmp_path: Path) -> None:
    harness("same_as_local", tmp_path)
    local, ray = comparable(tmp_path / "local"), comparable(tmp_path / "ray")
    assert len(ray) == len(local) == len(read_records(tmp_path / "local"))
    assert ray == local
    assert scores_apart_from_measurements(tmp_path / "ray") == \
        scores_apart_from_measurements(tmp_path / "local")
    manifest = memeval.RunResult(tmp_path / "ray").manifest
    assert manifest.config.executor.startswith("ray:address=")


def test_a_worker_node_that_dies_mid_sweep_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    harness("node_dies", tmp_path)
    lines = (tmp_path / "ray" / "records.jsonl").read_text().splitlines()
    keys = [tuple(json.loads(line)[k] for k in ("scenario", "backend", "probe")) for line in lines]
    assert len(keys) == len(set(keys))  # nothing written twice
    assert comparable(tmp_path / "ray") == comparable(tmp_path / "local")  # nothing lost


def test_resume_after_the_driver_is_killed_completes_the_rest(tmp_path: Path) -> None:
    harness("driver_dies", tmp_path)
    partial = json.loads((tmp_path / "partial.json").read_text())["partial"]
    total = len(read_records(tmp_path / "local"))
    assert 0 < partial < total, "the kill should land part-way through the sweep"
    assert comparable(tmp_path / "ray") == comparable(tmp_path / "local")
    lines = (tmp_path / "ray" / "records.jsonl").read_text().splitlines()
    assert len(lines) == total


def test_without_ray_the_executor_says_how_to_install_it(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(memeval.MemevalError, match=r"pip install 'memeval\[ray\]'"):
        memeval.run(SCENARIOS / "quick" / "garden-club.yaml", reader="extractive", out=tmp_path,
                    executor="ray")
    with pytest.raises(memeval.MemevalError, match="unknown executor 'dask'"):
        memeval.run(SCENARIOS / "quick" / "garden-club.yaml", reader="extractive", out=tmp_path,
                    executor="dask")
    with pytest.raises(memeval.MemevalError, match="has no option 'cpus'"):
        memeval.run(SCENARIOS / "quick" / "garden-club.yaml", reader="extractive", out=tmp_path,
                    executor="ray:cpus=2")
