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
    judged = [r for r in records if r.judge is not None]
    assert len(records) == len(raw) and [r.judge.reply for r in judged if r.judge] == ["CORRECT"]
    manifest = read_manifest(run)
    assert manifest.config.seed == 0 and manifest.config.backends == ["oracle", "no_memory"]
    scores = compute_scores(records, manifest.backends)
    # the verdicts 0.1 wrote are the verdicts scoring decides now
    decided = {(v.backend, v.probe): v.memorized for v in scores.verdicts}
    assert all(decided[(r["backend"], r["probe"])] == r["memorized"] for r in raw)
    assert scores.cell("oracle").judge is not None
