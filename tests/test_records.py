"""Run directories: records hold measurements only, and runs of memeval 0.1 still read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from memeval.records import RECORDS, read_manifest, read_records
from memeval.scoring.scores import compute_scores

from .conftest import ROOT

EARLIER = ROOT / "tests" / "records_v01"  # pets-and-moves, oracle and the control, as 0.1 wrote it


def test_a_run_of_memeval_0_1_reads_and_rescores(tmp_path: Path) -> None:
    run = tmp_path / "old"
    shutil.copytree(EARLIER, run)
    raw = [json.loads(line) for line in (run / RECORDS).read_text().splitlines()]
    assert all("memorized" in r for r in raw)  # 0.1 kept a verdict in each record
    records = read_records(run)
    judged = [r for r in records if r.judges]
    assert len(records) == len(raw) and [j.reply for r in judged for j in r.judges] == ["CORRECT"]
    assert judged[0].judges[0].judge == "judge"  # the one judge of a run before several
    manifest = read_manifest(run)
    assert manifest.config.seed == 0 and manifest.config.backends == ["oracle", "no_memory"]
    scores = compute_scores(records, manifest.backends)
    # the verdicts 0.1 wrote are the verdicts scoring decides now
    decided = {(v.backend, v.probe): v.memorized for v in scores.verdicts}
    assert all(decided[(r["backend"], r["probe"])] == r["memorized"] for r in raw)
    assert scores.cell("oracle").judge is not None


def test_one_writer_per_run_directory_and_a_killed_holder_leaves_no_lock(tmp_path: Path) -> None:
    import subprocess
    import sys

    import pytest

    import memeval
    from memeval.errors import MemevalError

    from .conftest import SCENARIOS

    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom memeval.records import RunLock\n"
         "held = RunLock(sys.argv[1])\nheld.__enter__()\n"
         "print('held', flush=True)\ntime.sleep(120)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(MemevalError, match=rf"in use by memeval \(pid {holder.pid}\)"):
            memeval.run(SCENARIOS / "quick" / "garden-club.yaml", reader="extractive", out=out, resume=True)
    finally:
        holder.kill()
        holder.wait()
    # the holder was killed: its lock went with it, and the next run takes the directory
    result = memeval.run(SCENARIOS / "quick" / "garden-club.yaml", backends=["oracle"], reader="extractive",
                         out=out, resume=True, report=False)
    assert result.cells and not (out / ".lock.pid").exists()
    file = tmp_path / "a-file"
    file.write_text("not a folder")
    with pytest.raises(MemevalError, match="is a file, not a run directory"):
        memeval.run(SCENARIOS / "quick" / "garden-club.yaml", reader="extractive", out=file)
