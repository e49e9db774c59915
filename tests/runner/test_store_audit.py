"""The store audit end to end: listings recorded at session ends, scored, re-scored, resumed."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

import memeval
from memeval.cli import app
from memeval.records import (
    SCORES,
    AuditFact,
    ProbeRecord,
    RecordWriter,
    StoreAudit,
    read_records,
    rewrite_records,
)
from memeval.texts import TEXTS

from ..conftest import SCENARIOS
from ..helpers import FirstSessionMemory

UPDATE = SCENARIOS / "update-new-job.yaml"


def run(out: Path, **options: object) -> memeval.RunResult:
    return memeval.run(UPDATE, backends=[FirstSessionMemory, "full_context"], reader="extractive",
                       control=False, cache=False, report=False, out=out, **options)


def audit_block(run_dir: Path) -> dict:
    cells = json.loads((run_dir / SCORES).read_text())["cells"]
    return {c["backend"]: c["store_audit"] for c in cells}


def test_a_listing_backend_is_audited_and_memeval_score_agrees(tmp_path: Path) -> None:
    result = run(tmp_path / "run")
    blocks = audit_block(result.run_dir)
    assert blocks["full_context"] is None  # it does not list its memories
    audit = blocks["FirstSessionMemory"]
    # s1, two filler sessions, s2, s3: 5 + 5 + 5 + 7 + 10 checks
    assert (audit["audits"], audit["checks"]) == (5, 32)
    # it keeps s1 only: the 5 old facts stay stored (then stale), the 5 new ones are missed
    assert (audit["stored"], audit["missing"], audit["stale"]) == (18, 7, 7)
    assert audit["extraction_recall"]["value"] == 0.72 and audit["stale_rate"]["value"] == 1.0
    assert audit["final"]["extraction_recall"]["value"] == 0.0
    assert audit["final"]["stale_rate"]["value"] == 1.0
    # every session end audited before the first probe rides on that probe's record
    records = [r for r in read_records(result.run_dir) if r.backend == "FirstSessionMemory"]
    assert [len(r.audits) for r in records] == [5, 0, 0, 0, 0]

    (result.run_dir / SCORES).unlink()
    outcome = CliRunner().invoke(app, ["score", str(result.run_dir)])
    assert outcome.exit_code == 0, outcome.output
    assert audit_block(result.run_dir) == blocks
    assert "store audit of FirstSessionMemory" in outcome.output


def test_resume_audits_again_what_a_lost_record_held(tmp_path: Path) -> None:
    first = run(tmp_path / "run")
    before = audit_block(first.run_dir)
    # the record that carried the audits is lost, as if the run had been killed before it
    kept = [r for r in read_records(first.run_dir)
            if not (r.backend == "FirstSessionMemory" and r.audits)]
    rewrite_records(first.run_dir, kept)
    again = run(tmp_path / "run", resume=True)
    assert audit_block(again.run_dir) == before


def test_a_long_listing_is_stored_once_as_text_blocks(tmp_path: Path) -> None:
    memories = [f"memory {i}: the user mentioned item number {i} at length" for i in range(60)]
    audits = [StoreAudit(session=f"s{k}", session_index=k, user="u", memories=memories[: 40 + k],
                         facts=[AuditFact(id="f", answers=["item number 7"])]) for k in range(3)]
    record = ProbeRecord(scenario="sc", scenario_sha256="x", backend="b", reader="r", probe="p",
                         kind="recall", user="u", question="?", accepted=[], audits=audits)
    writer = RecordWriter(tmp_path)
    writer.write(record)
    writer.close()
    assert read_records(tmp_path) == [record]
    line = (tmp_path / "records.jsonl").read_text()
    assert "memory 1:" not in line and '"blocks"' in line
    # the listings share most of their memories, so the blocks hold little more than one
    assert len((tmp_path / TEXTS).read_text()) < 2 * len("".join(memories)) + 2000
