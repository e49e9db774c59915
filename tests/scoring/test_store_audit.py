"""The store audit's checks by hand: stored, missing and stale, and the cell's figures."""

from __future__ import annotations

from memeval.records import AuditFact, ProbeRecord, StoreAudit
from memeval.scoring.audit import FactCheck, audit_checks, store_audit_scores, trim_audit
from memeval.scoring.model import StoreAuditScores

FACTS = [
    AuditFact(id="pet", answers=["Zorblat"]),
    AuditFact(id="job_old", answers=["Tellwick Insurance", "Tellwick"]),
    AuditFact(id="job_new", answers=["Orrin Maps"], supersedes="job_old"),
    AuditFact(id="desk_old", answers=["14"]),
    AuditFact(id="desk_new", answers=["52"], supersedes="desk_old"),
    # a chain of two updates: only its latest value decides whether the first is stale
    AuditFact(id="city", answers=["Lisbon"]),
    AuditFact(id="city2", answers=["Porto"], supersedes="city"),
    AuditFact(id="city3", answers=["Faro"], supersedes="city2"),
]

MEMORIES = [
    "The user's dog is called  ZORBLAT.",  # case and spacing do not matter
    "Works at tellwick.",  # the old job: no Orrin Maps anywhere
    "Desk number 52 now.",
    "Lived in Lisbon, now lives in Faro.",
    "Room 140 is booked.",  # "14" only on a word boundary: not the old desk
]


def audit(session: str, index: int, memories: list[str], facts: list[AuditFact] = FACTS,
          user: str = "alice") -> StoreAudit:
    return StoreAudit(session=session, session_index=index, user=user, memories=memories,
                      facts=facts)


def test_each_fact_is_stored_missing_or_stale() -> None:
    checks = {c.fact: c for c in audit_checks(audit("s3", 3, MEMORIES))}
    assert checks == {
        "pet": FactCheck("pet", "stored", current=True),
        "job_old": FactCheck("job_old", "stale", current=False),  # new value missing, old held
        "job_new": FactCheck("job_new", "missing", current=True),
        "desk_old": FactCheck("desk_old", "missing", current=False),  # rightly dropped
        "desk_new": FactCheck("desk_new", "stored", current=True),
        "city": FactCheck("city", "stored", current=False),  # old value held, latest too
        "city2": FactCheck("city2", "missing", current=False),
        "city3": FactCheck("city3", "stored", current=True),
    }


def test_an_update_not_yet_planted_leaves_the_old_value_current() -> None:
    checks = audit_checks(audit("s1", 0, MEMORIES, facts=FACTS[:2]))
    assert checks == [FactCheck("pet", "stored", True), FactCheck("job_old", "stored", True)]


def record(probe: str, audits: list[StoreAudit], epoch: int = 0) -> ProbeRecord:
    return ProbeRecord(scenario="sc", scenario_sha256="x", backend="b", reader="r", probe=probe,
                       kind="update", user="alice", question="?", accepted=[], epoch=epoch,
                       audits=audits)


def test_the_cell_figures_and_the_final_audit() -> None:
    first = audit("s1", 0, ["Works at Tellwick."], facts=FACTS[1:2])  # job_old stored
    later = audit("s3", 3, MEMORIES)
    # the later session end comes first in the records: the final audit goes by the timeline
    scores = StoreAuditScores.model_validate(store_audit_scores(
        [record("p2", [later]), record("p1", [first]), record("p3", [])]))
    assert (scores.audits, scores.checks) == (2, 9)
    assert (scores.stored, scores.missing, scores.stale) == (5, 3, 1)
    # current facts: job_old at s1; pet, job_new, desk_new, city3 at s3 -> 4 of 5 stored
    assert scores.extraction_recall is not None and scores.extraction_recall.value == 0.8
    assert scores.extraction_recall.n == 5
    # superseded facts at s3: job_old (stale), desk_old, city, city2 -> 1 of 4
    assert scores.stale_rate is not None and scores.stale_rate.value == 0.25
    assert scores.final.checks == 8 and scores.final.extraction_recall is not None
    assert scores.final.extraction_recall.value == 0.75


def test_epochs_share_a_check_and_no_audit_gives_none() -> None:
    held, lost = audit("s1", 0, ["Zorblat"], FACTS[:1]), audit("s1", 0, [], FACTS[:1])
    scores = store_audit_scores([record("p", [held]), record("p", [lost], epoch=1)])
    assert scores is not None and scores["checks"] == 2
    assert scores["extraction_recall"]["n"] == 1 and scores["extraction_recall"]["value"] == 0.5
    assert scores["stale_rate"] is None
    assert store_audit_scores([record("p", [])]) is None


def test_trimming_a_listing_keeps_its_checks() -> None:
    full = audit("s3", 3, [*MEMORIES, *(f"filler line {i}" for i in range(100, 150))])
    trimmed = trim_audit(full)
    assert len(trimmed.memories) == 4  # "Room 140" holds no answer
    assert audit_checks(trimmed) == audit_checks(full)
