from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import memeval
from memeval.errors import MemevalError
from memeval.protocols import Answer, Usage
from memeval.records import RECORDS, read_records
from memeval.scenario import load_scenario

from ..conftest import ROOT, SCENARIOS
from ..helpers import MEASURED, EchoReader, FlakyBackend


def stable(run_dir: Path) -> list[dict]:
    """Records without the fields that vary from run to run (timings, cache hits)."""
    rows = [r.model_dump(exclude=MEASURED) for r in read_records(run_dir)]
    return sorted(rows, key=lambda r: (r["scenario"], r["backend"], r["probe"]))


def test_bundled_scenarios_reference_backends(tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS, reader="extractive", out=tmp_path / "run")
    cells = {c["backend"]: c for c in result.scores_json["cells"]}
    assert cells["no_memory"]["evidence_retention"]["value"] == 0.0
    assert cells["oracle"]["evidence_retention"]["value"] == 1.0
    assert 0.0 < cells["full_context"]["evidence_retention"]["value"] <= 1.0
    records = result.records()
    probes = sum(len(load_scenario(p).probes) for p in SCENARIOS.rglob("*.yaml"))
    assert len(records) == 3 * probes
    assert set(records["backend"]) == {"full_context", "no_memory", "oracle"}
    # isolation: bob never sees alice's dog through the user-scoped reference backends
    bob = records[records["probe"] == "bob_dog"]
    assert not bob["recall_text"].str.contains("Zorblat").any()
    scores = result.scores()
    assert {"backend", "kind", "evidence_retention", "answer_retention"} <= set(scores.columns)


class KnowsTheDog(EchoReader):
    """Answers every question with the dog's name, memory or not: a model that memorized it."""

    def answer(self, question: str, context: str) -> Answer:
        return Answer(text="Zorblat", usage=Usage(input_tokens=len(context.split()), output_tokens=1))

    def identity(self) -> dict[str, object]:
        return {"reader": "knows-the-dog"}


def test_the_control_flags_probes_the_reader_answers_without_memory(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "quick" / "pets-and-moves.yaml")
    result = memeval.run(scenario, backends=["oracle"], reader=KnowsTheDog(), out=tmp_path / "r")
    records = read_records(result.run_dir)
    assert {r.backend for r in records if r.control} == {"no_memory"}
    oracle = {v.probe: v for v in result.verdicts if v.backend == "oracle"}
    assert oracle["dog"].memorized is True
    assert oracle["where_now"].memorized is False and oracle["cat"].memorized is None
    recall_probes = sum(v.kind in {"recall", "update", "preference"} for v in oracle.values())
    memo = result.cell("oracle").leakage.memorization
    assert memo is not None and memo.n == recall_probes and memo.value == round(1 / recall_probes, 6)
    assert memo.probes == ["pets-and-moves/dog"]
    assert result.cell("oracle").memorized_probes == 1
    assert result.manifest.control == "no_memory"
    # the user's own no_memory backend is the control; it is not run twice
    again = memeval.run(scenario, backends=["no_memory", "oracle"], reader=KnowsTheDog(),
                        out=tmp_path / "r2")
    assert [c.backend for c in again.cells] == ["no_memory", "oracle"]
    off = memeval.run(scenario, backends=["oracle"], reader=KnowsTheDog(), out=tmp_path / "r3",
                      control=False)
    assert not any(r.control for r in read_records(off.run_dir))
    assert all(v.memorized is None for v in off.verdicts)


def test_memorized_is_decided_at_score_time_whatever_order_the_cells_ran(tmp_path: Path) -> None:
    """Records hold no verdict: the control's records are joined to the others when scoring."""
    scenario = load_scenario(SCENARIOS / "quick" / "pets-and-moves.yaml")
    result = memeval.run(scenario, backends=["oracle"], reader=KnowsTheDog(), out=tmp_path / "r",
                         report=False)
    lines = (result.run_dir / RECORDS).read_text().splitlines()
    assert all('"memorized"' not in line for line in lines)
    control = [line for line in lines if '"control":true' in line]
    # the control's records last instead of first: the same verdicts
    (result.run_dir / RECORDS).write_text("\n".join(
        [line for line in lines if line not in control] + control) + "\n")
    from memeval.scoring.scores import compute_scores

    rescored = compute_scores(read_records(result.run_dir), result.manifest.backends)
    assert rescored.verdicts == result.verdicts


def test_full_context_lies_between_when_the_budget_is_tight(tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS, backends=["full_context:max_tokens=150", "oracle", "no_memory"],
                         reader="extractive", out=tmp_path / "run")
    cells = {c.backend: c.evidence_retention.value for c in result.cells if c.evidence_retention}
    assert cells["no_memory"] == 0.0 < cells["full_context:max_tokens=150"] < cells["oracle"] == 1.0


def test_records_measure_each_probe(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "quick" / "pets-and-moves.yaml")
    result = memeval.run(scenario, backends=["full_context"], reader=EchoReader(),
                         out=tmp_path / "run")
    records = {r.probe: r for r in read_records(result.run_dir) if r.backend == "full_context"}
    vet = records["vet_name"]
    # asked right after the session that planted it, one short assistant turn later
    assert vet.expected[0].id == "vet" and vet.expected[0].sessions_ago == 0
    assert 0 < vet.expected[0].tokens_ago < 20
    assert vet.recall_tokens == len(vet.recall_text.split()) and vet.recall_s is not None
    assert vet.footprint and vet.footprint.items > 0 and len(vet.observe_s) > 0
    dog = records["dog"]
    # planted in s1; then 2 filler, s2, 2 filler, s3 and bob's b1 went by
    assert dog.expected[0].sessions_ago == 7 and dog.expected[0].tokens_ago > 1000
    assert records["where_now"].rejected == ["Lisbon"]
    assert records["blog_bio"].forbidden == ["X4417-22"]


def test_backend_errors_are_recorded_and_the_run_goes_on(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "quick" / "pets-and-moves.yaml")
    result = memeval.run(scenario, backends=[FlakyBackend()], reader=EchoReader(),
                         out=tmp_path / "run")
    records = {r.probe: r for r in read_records(result.run_dir) if r.backend == "FlakyBackend"}
    assert records["cat"].error == "RuntimeError: index corrupted"
    assert records["cat"].error_stage == "recall"
    assert records["dog"].error is None and records["dog"].answer
    cell = result.cells[0]
    assert cell.errors == 1 and cell.probes == 6
    # the shared store leaks alice's dog into bob's recall: an isolation violation
    assert cell.leakage.violation_rate and cell.leakage.violation_rate.value > 0


def test_reader_errors_are_not_cached_and_resume_retries_them(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "quick" / "pets-and-moves.yaml")
    out = tmp_path / "run"
    memeval.run(scenario, backends=["oracle"], reader=EchoReader(fail_on="vet"), out=out,
                control=False)
    first = {r.probe: r for r in read_records(out)}
    assert first["vet_name"].error == "ConnectionError: server went away"
    assert first["vet_name"].error_stage == "answer"
    reader = EchoReader()
    memeval.run(scenario, backends=["oracle"], reader=reader, out=out, resume=True, control=False)
    after = {r.probe: r for r in read_records(out)}
    assert len(read_records(out)) == len(after) == 6
    assert after["vet_name"].error is None and after["vet_name"].answer
    assert reader.calls == 0 or after["vet_name"].cached is False


def test_call_cache_makes_a_repeat_free(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "quick" / "garden-club.yaml")
    reader = EchoReader()
    memeval.run(scenario, backends=["oracle"], reader=reader, out=tmp_path / "a")
    calls = reader.calls
    assert calls > 0
    memeval.run(scenario, backends=["oracle"], reader=reader, out=tmp_path / "b")
    assert reader.calls == calls
    assert all(r.cached for r in read_records(tmp_path / "b"))
    assert stable(tmp_path / "a") == stable(tmp_path / "b")


def test_limit_and_seed_in_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-do-not-leak-123")
    result = memeval.run(SCENARIOS, backends=["no_memory"], reader="extractive",
                         out=tmp_path / "run", limit=2, seed=5)
    bundled = sorted(SCENARIOS.rglob("*.yaml"))
    assert len(result.records()) == 2 * len(bundled)
    text = (result.run_dir / "manifest.json").read_text()
    assert "sk-do-not-leak-123" not in text
    manifest = json.loads(text)
    assert manifest["config"]["seed"] == 5 and manifest["config"]["limit"] == 2
    assert {s["id"] for s in manifest["scenarios"]} == {p.stem for p in bundled}
    assert all(len(s["sha256"]) == 64 for s in manifest["scenarios"])
    assert manifest["versions"]["pydantic"]


def test_resume_refuses_another_configuration(tmp_path: Path) -> None:
    out = tmp_path / "run"
    memeval.run(SCENARIOS, backends=["no_memory"], reader="extractive", out=out, limit=1)
    with pytest.raises(MemevalError, match="already holds a run"):
        memeval.run(SCENARIOS, backends=["no_memory"], reader="extractive", out=out, limit=1)
    with pytest.raises(MemevalError, match="different configuration"):
        memeval.run(SCENARIOS, backends=["oracle"], reader="extractive", out=out, resume=True, limit=1)


def test_torn_last_line_is_repaired_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    memeval.run(SCENARIOS, backends=["oracle"], reader="extractive", out=out)
    full = stable(out)
    lines = (out / RECORDS).read_bytes().splitlines(keepends=True)
    (out / RECORDS).write_bytes(b"".join(lines[:5]) + lines[5][:40])  # killed mid-write
    assert len(read_records(out)) == 5
    memeval.run(SCENARIOS, backends=["oracle"], reader="extractive", out=out, resume=True)
    assert stable(out) == full


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "memeval.cli", *args]


def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    args = [str(SCENARIOS), "-b", "full_context", "-b", "oracle", "-b", "no_memory",
            "--reader", "tests.helpers:EchoReader:delay=0.02", "--no-cache"]
    reference = tmp_path / "reference"
    subprocess.run(_cli("run", *args, "--out", str(reference)), env=env, check=True,
                   capture_output=True)
    total = len(read_records(reference))

    out = tmp_path / "killed"
    proc = subprocess.Popen(_cli("run", *args, "--out", str(out)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        path = out / RECORDS
        if path.exists() and path.read_bytes().count(b"\n") >= total // 3:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(read_records(out))
    assert 0 < partial < total, "the kill should land part-way through the run"

    subprocess.run(_cli("run", *args, "--out", str(out), "--resume"), env=env, check=True,
                   capture_output=True)
    assert stable(out) == stable(reference)
    lines = (out / RECORDS).read_bytes().splitlines()
    assert len(lines) == total and all(json.loads(line) for line in lines)
