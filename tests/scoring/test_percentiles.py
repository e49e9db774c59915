"""p50, p95 and p99 of latencies: by hand, end to end, and scores.json written before p99."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import memeval
from memeval.cli import app
from memeval.records import SCORES
from memeval.report.html import _ms
from memeval.scoring.model import Summary, read_scores
from memeval.scoring.stats import percentile, summary

from ..conftest import SCENARIOS


def test_percentiles_of_1_to_100_ms_by_hand() -> None:
    ms = [float(i) for i in range(100, 0, -1)]  # 100 .. 1, unsorted on purpose
    # linear interpolation at rank (n - 1) * q / 100 of the sorted values, from 0:
    # p50: rank 49.5  -> 50 + 0.5  * (51 - 50)   = 50.5
    # p95: rank 94.05 -> 95 + 0.05 * (96 - 95)   = 95.05
    # p99: rank 98.01 -> 99 + 0.01 * (100 - 99)  = 99.01
    assert percentile(ms, 50) == 50.5
    assert percentile(ms, 95) == 95.05
    assert percentile(ms, 99) == 99.01
    assert percentile(ms, 100) == 100.0 and percentile(ms, 0) == 1.0


def test_percentiles_of_three_values_by_hand() -> None:
    ms = [400.0, 10.0, 20.0]  # sorted: 10, 20, 400
    # p50: rank 2 * 0.50 = 1.0  -> 20
    # p95: rank 2 * 0.95 = 1.9  -> 20 + 0.9  * (400 - 20) = 20 + 342   = 362
    # p99: rank 2 * 0.99 = 1.98 -> 20 + 0.98 * (400 - 20) = 20 + 372.4 = 392.4
    assert percentile(ms, 50) == 20.0
    assert percentile(ms, 95) == 362.0
    assert percentile(ms, 99) == 392.4


def test_summary_has_p99_and_none_without_values() -> None:
    s = summary([0.010, 0.020, 0.400])
    assert list(s) == ["n", "mean", "p50", "p95", "p99", "total"]
    assert (s["p50"], s["p95"], s["p99"]) == (0.02, 0.362, 0.3924)
    assert summary([0.5])["p99"] == 0.5
    empty = summary([])
    assert empty["p50"] is None and empty["p95"] is None and empty["p99"] is None
    assert Summary.model_validate(s).p99 == 0.3924


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> memeval.RunResult:
    return memeval.run(SCENARIOS / "quick" / "garden-club.yaml", backends=["no_memory"], reader="extractive",
                       out=tmp_path_factory.mktemp("p99") / "r", report=False)


def test_a_run_scores_p99_of_observe_recall_and_answer(run: memeval.RunResult) -> None:
    latency = run.cell("no_memory").latency_s
    recall = latency.recall
    assert recall.n >= 2
    assert recall.p50 is not None and recall.p95 is not None and recall.p99 is not None
    assert recall.p99 >= recall.p95 >= recall.p50
    for stat in (latency.observe, latency.answer):
        if stat.n:
            assert stat.p99 is not None and stat.p95 is not None and stat.p50 is not None
            assert stat.p99 >= stat.p95 >= stat.p50
    written = run.scores_json["cells"][0]["latency_s"]
    assert set(written) == {"observe", "recall", "answer", "deferred", "observe_per_turn"}
    assert all("p99" in written[k] for k in ("observe", "recall", "answer", "deferred"))


def _without_p99(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_p99(v) for k, v in value.items() if k != "p99"}
    if isinstance(value, list):
        return [_without_p99(v) for v in value]
    return value


def test_scores_written_before_p99_still_read(run: memeval.RunResult, tmp_path: Path) -> None:
    new = run.scores_json
    old = _without_p99(new)
    assert "p99" not in json.dumps(old) and "p95" in json.dumps(old)
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    (old_dir / SCORES).write_text(json.dumps(old), encoding="utf-8")
    scores = read_scores(old_dir)
    assert scores.format == new["format"]
    recall = scores.cells[0].latency_s.recall
    assert recall.p99 is None
    assert (recall.n, recall.p50, recall.p95) == (
        new["cells"][0]["latency_s"]["recall"]["n"], new["cells"][0]["latency_s"]["recall"]["p50"],
        new["cells"][0]["latency_s"]["recall"]["p95"])
    assert scores.cells[0].tokens.recalled.p99 is None
    # the report shows a dash for the p99 such a file lacks
    assert _ms(recall).endswith(" / –") and _ms(recall).count(" / ") == 2


def test_memeval_score_fills_in_p99(run: memeval.RunResult) -> None:
    path = run.run_dir / SCORES
    before = path.read_text(encoding="utf-8")
    path.write_text(json.dumps(_without_p99(json.loads(before))), encoding="utf-8")
    result = CliRunner().invoke(app, ["score", str(run.run_dir)])
    assert result.exit_code == 0, result.output
    assert path.read_text(encoding="utf-8") == before  # byte for byte, p99 back
    assert read_scores(run.run_dir).cells[0].latency_s.recall.p99 is not None


def test_latency_cell_shows_p50_p95_p99_in_ms() -> None:
    stat = Summary(n=3, mean=0.1, p50=0.02, p95=0.362, p99=0.3924, total=0.43)
    assert _ms(stat) == "20.0 / 362.0 / 392.4"
    assert _ms(Summary(n=0, mean=None, p50=None, p95=None, p99=None, total=0.0)) == "–"
