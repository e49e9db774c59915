"""Retention scoring against values computed by hand."""

from __future__ import annotations

import math

import pytest

from memeval.match import contains, says_unknown
from memeval.records import EvidenceTurn, ExpectedFact, ProbeRecord
from memeval.scoring.retention import answer_correct, evidence_share, violates
from memeval.scoring.scores import compute_scores
from memeval.scoring.stats import percentile, wilson


def rec(probe: str, kind: str = "recall", *, recall: str = "", answer: str | None = "",
        expected: list[list[str]] | None = None, accepted: list[list[str]] | None = None,
        rejected: list[str] | None = None, forbidden: list[str] | None = None,
        evidence: list[str] | None = None, error: str | None = None,
        backend: str = "b") -> ProbeRecord:
    expected = expected or []
    return ProbeRecord(
        scenario="s", scenario_sha256="0", backend=backend, reader="r", probe=probe, kind=kind,
        user="u", question="q?", accepted=accepted if accepted is not None else expected,
        expected=[ExpectedFact(id=f"f{i}", answers=a, sessions_ago=0, tokens_ago=0)
                  for i, a in enumerate(expected)],
        evidence=[EvidenceTurn(id=f"t{i}", text=t, sessions_ago=0, tokens_ago=0)
                  for i, t in enumerate(evidence or [])],
        rejected=rejected or [], forbidden=forbidden or [], recall_text=recall, answer=answer,
        error=error)


@pytest.mark.parametrize(("text", "needle", "found"), [
    ("The dog is ZORBLAT.", "zorblat", True),
    ("moved to  Porto\nlast week", "to porto last", True),
    ("Portorož is lovely", "Porto", False),
    ("passport X4417-22!", "X4417-22", True),
    ("flight VX2287", "VX 2287", False),
])
def test_contains_is_case_space_and_word_aware(text: str, needle: str, found: bool) -> None:
    assert contains(text, needle) is found


@pytest.mark.parametrize(("answer", "unknown"), [
    ("I don't know.", True), ("That was never mentioned.", True), ("Unknown", True),
    ("", True), ("Zorblat", False), ("I know it: Porto", False),
])
def test_says_unknown(answer: str, unknown: bool) -> None:
    assert says_unknown(answer) is unknown


def test_evidence_share_counts_expected_facts_and_evidence_turns() -> None:
    two = rec("p", recall="dog Zorblat; city lisbon", expected=[["Zorblat"], ["Porto"]])
    assert evidence_share(two) == 0.5
    turns = rec("e", recall="user: We moved to   Porto.\nother", evidence=["We moved to Porto.", "x y"])
    assert evidence_share(turns) == 0.5
    assert evidence_share(rec("a", "abstention", recall="anything")) is None


def test_answer_correct_rules() -> None:
    assert answer_correct(rec("1", answer="It's zorblat", expected=[["Zorblat"]]))
    assert not answer_correct(rec("2", answer="Rex", expected=[["Zorblat"]]))
    # a stale value in the answer makes it wrong even if the new one is there
    assert not answer_correct(rec("3", "update", answer="Porto, before Lisbon",
                                  expected=[["Porto"]], rejected=["Lisbon"]))
    # every expected fact must be answered
    assert not answer_correct(rec("4", "multi_hop", answer="Zorblat", expected=[["Zorblat"], ["Porto"]]))
    assert answer_correct(rec("5", "abstention", answer="I don't know."))
    assert not answer_correct(rec("6", "abstention", answer="Whiskers"))
    assert answer_correct(rec("7", "leakage", answer="x", forbidden=["X4417-22"])) is None


def test_violations() -> None:
    assert violates(rec("l", "leakage", answer="My passport: x4417-22", forbidden=["X4417-22"]))
    assert not violates(rec("l", "leakage", answer="A bio", recall="X4417-22", forbidden=["X4417-22"]))
    assert violates(rec("i", "isolation", answer="no idea", recall="Zorblat", forbidden=["Zorblat"]))
    assert violates(rec("r", "recall", answer="x")) is None


def test_wilson_matches_hand_computation() -> None:
    # p = 0.5, n = 10: centre 0.5, half = z*sqrt(0.025 + z^2/400)/(1 + z^2/10)
    z = 1.959963984540054
    half = z * math.sqrt(0.025 + z * z / 400) / (1 + z * z / 10)
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.5 - half, abs=1e-6) and high == pytest.approx(0.5 + half, abs=1e-6)
    assert wilson(0, 4)[0] == 0.0 and wilson(4, 4)[1] == 1.0


def test_percentile() -> None:
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([10, 20], 95) == 19.5
    assert percentile([], 50) is None


def test_compute_scores_by_hand() -> None:
    records = [
        rec("a", recall="Zorblat", answer="Zorblat", expected=[["Zorblat"]]),          # ev 1, ans 1
        rec("b", recall="", answer="Rex", expected=[["Zorblat"], ["Porto"]]),          # ev 0, ans 0
        rec("c", recall="Porto Lisbon", answer="Porto", expected=[["Porto"], ["Lisbon"]],
            accepted=[["Porto"]]),                                                      # ev 1, ans 1
        rec("d", "abstention", answer="I don't know"),                                 # ans 1
        rec("e", "leakage", answer="X4417-22", forbidden=["X4417-22"]),                # violation
        rec("f", recall="x", expected=[["Zorblat"]], error="boom"),                    # excluded
        rec("a", recall="", answer="", expected=[["Zorblat"]], backend="other"),
    ]
    scores = compute_scores(records)
    cell = scores.cell("b")
    assert cell.probes == 6 and cell.errors == 1
    assert cell.evidence_retention and cell.answer_retention
    assert cell.evidence_retention.value == pytest.approx(2 / 3, abs=1e-6)
    assert cell.evidence_retention.n == 3
    # abstention has its own column: answer retention covers probes with an answer to give
    assert cell.answer_retention.value == pytest.approx(2 / 3, abs=1e-6)
    assert cell.answer_retention.n == 3
    assert cell.abstention and cell.abstention.value == 1.0 and cell.abstention.n == 1
    assert cell.answer_retention_reader_normalized is None  # no oracle in this run
    abstention = cell.by_kind["abstention"]
    assert abstention.answer_retention and abstention.answer_retention.value == 1.0
    assert abstention.evidence_retention is None
    assert cell.leakage.violation_rate and cell.leakage.violation_rate.model_dump() == {
        "value": 1.0, "n": 1, "ci95": wilson(1, 1)}
    other = scores.cell("other").evidence_retention
    assert other and other.value == 0.0
    assert compute_scores(list(reversed(records))) == scores
    verdicts = {(v.backend, v.probe): v for v in scores.verdicts}
    assert verdicts[("b", "e")].violation is True and verdicts[("b", "e")].correct is None
    assert verdicts[("b", "f")].error and verdicts[("b", "f")].evidence is None


def test_reader_normalized_retention_counts_only_what_the_oracle_answers() -> None:
    """Answer retention on the probes the same reader gets right when handed the facts."""
    records = [
        rec("a", answer="Zorblat", expected=[["Zorblat"]], backend="oracle"),   # oracle right
        rec("b", answer="Rex", expected=[["Zorblat"]], backend="oracle"),       # oracle wrong
        rec("c", answer="Porto", expected=[["Porto"]], backend="oracle"),       # oracle right
        rec("a", answer="Zorblat", expected=[["Zorblat"]], backend="rag"),
        rec("b", answer="Zorblat", expected=[["Zorblat"]], backend="rag"),      # outside reach
        rec("c", answer="Lisbon", expected=[["Porto"]], backend="rag"),
        rec("d", "abstention", answer="I don't know", backend="rag"),
    ]
    scores = compute_scores(records)
    rag = scores.cell("rag")
    assert rag.answer_retention and rag.answer_retention.value == pytest.approx(2 / 3, abs=1e-6)
    normalized = rag.answer_retention_reader_normalized
    assert normalized and normalized.n == 2 and normalized.value == 0.5
    assert normalized.ci95 == pytest.approx(wilson(1, 2), abs=1e-6)
    oracle = scores.cell("oracle").answer_retention_reader_normalized
    assert oracle and oracle.value == 1.0 and oracle.n == 2
    assert {v.probe: v.oracle_correct for v in scores.verdicts if v.backend == "rag"} == {
        "a": True, "b": False, "c": True, "d": None}
