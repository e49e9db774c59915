"""The bundled long scenarios discriminate: their histories outgrow an 8k reader window."""

from __future__ import annotations

from pathlib import Path

import memeval
from memeval.runner.loading import load_scenarios
from memeval.scenario.timeline import TimelineSession
from memeval.tokens import count_tokens

from ..conftest import SCENARIOS

LONG = sorted((SCENARIOS / "long").glob("*.yaml"))
WINDOW = 8192


def test_long_histories_are_several_reader_windows() -> None:
    assert len(LONG) >= 2
    for path, loaded in zip(LONG, load_scenarios(LONG), strict=True):
        timeline = loaded.timeline
        tokens = sum(count_tokens(t.text) for e in timeline if isinstance(e, TimelineSession)
                     for t in e.turns)
        assert tokens > 3 * WINDOW, (path.name, tokens)


def test_keep_the_newest_loses_what_retrieval_keeps(tmp_path: Path) -> None:
    """Under an 8k budget full_context must cut the oldest facts: its evidence falls with
    distance (a half-life is fitted), while the oracle's, which cannot forget, does not."""
    result = memeval.run(LONG, backends=["full_context:max_tokens=7680", "bm25", "oracle"],
                         reader="extractive", out=tmp_path / "run", cache=False,
                         control=False, report=False)
    full, bm25, oracle = (result.cells[i] for i in range(3))
    assert full.evidence_retention and bm25.evidence_retention and oracle.evidence_retention
    assert full.evidence_retention.value < 0.5 < bm25.evidence_retention.value
    assert oracle.evidence_retention.value == 1.0
    assert full.retention_curve.sessions.evidence.half_life is not None
    assert oracle.retention_curve.sessions.evidence.half_life is None
