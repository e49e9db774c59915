"""summary and hybrid: a model writes the summary; its tokens are the backend's own cost."""

from __future__ import annotations

from pathlib import Path

import pytest

import memeval
from memeval.records import read_records
from memeval.registry import build_backend
from memeval.testing import assert_conforms

from ..conftest import SCENARIOS


@pytest.mark.parametrize("spec", ["summary", "summary:budget=40", "hybrid", "hybrid:chunk=session"])
def test_conforms(spec: str) -> None:
    assert_conforms(lambda: build_backend(spec)[1])


def test_summary_budget_keeps_the_newest_notes(tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS / "quick" / "garden-club.yaml", backends=["summary:budget=60", "summary"],
                         reader="extractive", out=tmp_path / "run")
    records = read_records(result.run_dir)
    tight = [r for r in records if r.backend == "summary:budget=60"]
    assert all(r.recall_tokens <= 60 for r in tight)
    roomy = [r for r in records if r.backend == "summary"]
    assert max(r.recall_tokens for r in roomy) > max(r.recall_tokens for r in tight)
    # the summarizer's tokens are the backend's own cost, growing with every session
    assert all(r.backend_usage.input_tokens > 0 for r in roomy)
    cells = {c["backend"]: c for c in result.scores_json["cells"]}
    assert cells["summary"]["tokens"]["backend_input"] > 0


@pytest.mark.model
def test_summary_written_by_the_packaged_gemma(tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS / "quick" / "work-trip.yaml", backends=["summary:summarizer=embedded"],
                         reader="extractive", out=tmp_path / "run", limit=2)
    records = [r for r in read_records(result.run_dir) if not r.control]
    assert len(records) == 2 and all(r.error is None for r in records)
    summary = records[-1].recall_text.splitlines()
    assert len(summary) >= 3 and all(line.startswith("[2025-") for line in summary)
    assert records[-1].backend_usage.output_tokens > 0
