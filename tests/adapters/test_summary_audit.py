"""The summary backend lists its notes for the store audit (a scripted summarizer, no model)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import memeval
from memeval.adapters.backends.summary import Summary
from memeval.protocols import CellContext, SessionInfo, Turn

from ..conftest import SCENARIOS
from ..helpers import SaysSummary


def test_its_memories_are_its_notes_for_that_user(tmp_path: Path) -> None:
    backend = Summary()
    backend.bind(CellContext(count_tokens=lambda t: len(t.split()), context_tokens=4096,
                             workdir=tmp_path, reader=SaysSummary("The user works at Orrin Maps.")))
    for user in ("alice", "bob"):
        backend.reset(user)
    when = datetime(2025, 3, 1, 9)
    backend.observe(Turn(id="s1.t0", session_id="s1", user="alice", role="user", time=when,
                         text="I just joined Orrin Maps."))
    assert backend.memories("alice") == []  # nothing is summarized before the session ends
    backend.end_session(SessionInfo(id="s1", user="alice", time=when, turn_count=1))
    assert backend.memories("alice") == ["[2025-03-01] The user works at Orrin Maps."]
    assert backend.memories("bob") == []


def test_a_run_audits_what_the_summary_kept(tmp_path: Path) -> None:
    # the run's reader writes the summaries: it always says the old job, never the new one
    reader = SaysSummary("The user works at Tellwick Insurance and sits at desk 52.")
    result = memeval.run(SCENARIOS / "update-new-job.yaml", backends=["summary"], reader=reader,
                         control=False, cache=False, report=False, out=tmp_path / "run")
    audit = result.cell("summary").store_audit
    assert audit is not None and audit.audits == 5 and audit.final.checks == 10
    # at the end: desk_new is the one current fact stored; job_old is the one stale fact
    assert audit.final.extraction_recall is not None and audit.final.extraction_recall.value == 0.2
    assert audit.final.stale_rate is not None and audit.final.stale_rate.value == 0.2
