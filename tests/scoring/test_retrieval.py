"""Retrieval metrics at turn and session level against values computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import memeval
from memeval.protocols import RecallItem
from memeval.records import EvidenceTurn, ProbeRecord, read_records
from memeval.scenario.importers import locomo, write_scenarios
from memeval.scoring.retrieval import (
    dcg,
    mean_interval,
    probe_metrics,
    ranking,
    retrieval_scores,
    scoring_items,
    t975,
)
from memeval.scoring.scores import scoring_view
from memeval.scoring.stats import wilson

from .test_retention import rec

L3 = math.log2(3)
KS = [1, 2, 3, 5, 10]


def record(probe: str, evidence: list[tuple[str, str | None]], items: list[RecallItem],
           kind: str = "recall") -> ProbeRecord:
    r = rec(probe, kind, answer="x")
    r.evidence = [EvidenceTurn(id=t, text=t, sessions_ago=0, tokens_ago=0, session=s)
                  for t, s in evidence]
    r.recall_items = items
    return r


def item(turns: str, sessions: str | None = None, score: float | None = None) -> RecallItem:
    return RecallItem(text=turns, turn_id=turns, session_id=sessions, score=score)


# three evidence turns in two sessions; recall order, no scores; s3.t0 recalled twice
SEVERAL = record("several", [("s1.t0", "s1"), ("s2.t1", "s2"), ("s2.t3", "s2")], [
    item("s3.t0", "s3"), item("s2.t1", "s2"), item("s2.t2", "s2"), item("s1.t0", "s1"),
    item("s3.t0", "s3")])


def at(m: dict, k: int) -> dict:
    return m[f"@{k}"]


def test_dcg_is_longmemevals() -> None:
    # rel_1 + sum_{i>=2} rel_i / log2(i): ranks 1 and 2 both weigh 1
    assert dcg([1, 1, 1], 10) == pytest.approx(2 + 1 / L3)
    assert dcg([0, 1], 10) == 1.0 and dcg([1, 1, 1], 1) == 1.0 and dcg([], 5) == 0.0


def test_rankings_drop_repeats_and_map_turns_to_sessions() -> None:
    assert ranking(SEVERAL.recall_items, "turn") == ["s3.t0", "s2.t1", "s2.t2", "s1.t0"]
    assert ranking(SEVERAL.recall_items, "session") == ["s3", "s2", "s1"]


def test_turn_level_by_hand() -> None:
    m = probe_metrics(SEVERAL, "turn", KS)
    assert m is not None
    assert at(m, 1) == {"recall_any": 0.0, "recall_all": 0.0, "recall": 0.0, "precision": 0.0,
                        "ndcg": 0.0}
    # top 3: s3.t0, s2.t1 (relevant, rank 2: weight 1), s2.t2; ideal: three relevant
    assert at(m, 3) == pytest.approx({"recall_any": 1.0, "recall_all": 0.0, "recall": 1 / 3,
                                      "precision": 1 / 3, "ndcg": 1 / (2 + 1 / L3)})
    # only four distinct turns: k = 5 and 10 see them all; s1.t0 at rank 4 weighs 1/log2(4)
    assert at(m, 5) == pytest.approx({"recall_any": 1.0, "recall_all": 0.0, "recall": 2 / 3,
                                      "precision": 2 / 5, "ndcg": 1.5 / (2 + 1 / L3)})
    assert at(m, 10) == pytest.approx({**at(m, 5), "precision": 2 / 10})
    assert m["mrr"] == 0.5


def test_session_level_by_hand() -> None:
    m = probe_metrics(SEVERAL, "session", KS)
    assert m is not None
    assert at(m, 1)["recall_any"] == 0.0 and at(m, 1)["ndcg"] == 0.0
    # top 2 sessions: s3, s2. LoCoMo's recall counts evidence turns: two of three are in s2
    assert at(m, 2) == pytest.approx({"recall_any": 1.0, "recall_all": 0.0, "recall": 2 / 3,
                                      "precision": 1 / 2, "ndcg": 1 / 2})
    # s2's three items count once: s3, s2, s1 are the top 3; ideal: two relevant sessions
    assert at(m, 3) == pytest.approx({"recall_any": 1.0, "recall_all": 1.0, "recall": 1.0,
                                      "precision": 2 / 3, "ndcg": (1 + 1 / L3) / 2})
    assert at(m, 10) == pytest.approx({**at(m, 3), "precision": 2 / 10})  # k beyond the list
    assert m["mrr"] == 0.5


def test_ties_in_score_keep_recall_order() -> None:
    # shown in conversation order; ranked by score: x.t0 (0.9), then b.t0 and a.t1 tie at 0.5
    r = record("tie", [("a.t1", "a")], [item("b.t0", "b", 0.5), item("a.t1", "a", 0.5),
                                         item("x.t0", "x", 0.9)])
    assert ranking(r.recall_items, "turn") == ["x.t0", "b.t0", "a.t1"]
    for level in ("turn", "session"):
        m = probe_metrics(r, level, [1, 3])
        assert m is not None and m["mrr"] == pytest.approx(1 / 3)
        assert at(m, 1)["recall_any"] == 0.0
        assert at(m, 3) == pytest.approx({"recall_any": 1.0, "recall_all": 1.0, "recall": 1.0,
                                          "precision": 1 / 3, "ndcg": 1 / L3})
    # one item without a score: the whole list ranks in recall order
    r.recall_items = [*r.recall_items, item("y.t0", "y")]
    assert ranking(r.recall_items, "turn") == ["b.t0", "a.t1", "x.t0", "y.t0"]


def test_a_chunk_stands_for_its_turns() -> None:
    # rag's chunk of two turns, "a.t0,a.t1"; evidence a.t1 and c.t5 in two sessions
    r = record("chunk", [("a.t1", "a"), ("c.t5", "c")], [item("z.t0", "z"),
                                                          item("a.t0,a.t1", "a,a")])
    turn = probe_metrics(r, "turn", [1, 3])
    session = probe_metrics(r, "session", [3])
    assert turn is not None and session is not None
    assert at(turn, 3) == pytest.approx({"recall_any": 1.0, "recall_all": 0.0, "recall": 0.5,
                                         "precision": 1 / 3, "ndcg": (1 / L3) / 2})
    assert turn["mrr"] == pytest.approx(1 / 3)
    # two sessions ranked (z, a) for k = 3: precision still divides by k
    assert at(session, 3) == pytest.approx({"recall_any": 1.0, "recall_all": 0.0,
                                            "recall": 0.5, "precision": 1 / 3, "ndcg": 0.5})
    assert session["mrr"] == 0.5


def test_empty_recall_no_evidence_and_unknown_sessions() -> None:
    empty = record("empty", [("q.t0", "q")], [])
    m = probe_metrics(empty, "session", [1, 5])
    assert m is not None and m["mrr"] == 0.0
    assert at(m, 5) == {"recall_any": 0.0, "recall_all": 0.0, "recall": 0.0, "precision": 0.0,
                        "ndcg": 0.0}
    assert probe_metrics(record("none", [], [item("a.t0", "a")]), "turn", [1]) is None
    old = record("old", [("a.t0", None)], [item("a.t0")])  # a record without sessions
    assert probe_metrics(old, "session", [1]) is None
    assert probe_metrics(old, "turn", [1]) is not None


def test_t_quantiles_and_mean_interval() -> None:
    assert t975(1) == 12.706205 and t975(30) == pytest.approx(2.042272, abs=1e-5)
    assert t975(200) == pytest.approx(1.971896, abs=1e-5)
    assert mean_interval([]) is None
    assert mean_interval([0.5]) == {"mean": 0.5, "n": 1, "ci95": [0.0, 1.0]}
    # values 0, 0.5, 1: mean 0.5, sd 0.5, half-width t(2) * 0.5 / √3
    half = 4.302653 * 0.5 / math.sqrt(3)
    assert mean_interval([0.0, 0.5, 1.0]) == {"mean": 0.5, "n": 3,
                                              "ci95": [0.0, round(min(1.0, 0.5 + half), 6)]}
    got = mean_interval([0.2, 0.4])
    half2 = 12.706205 * math.sqrt(0.02) / math.sqrt(2)
    assert got == {"mean": 0.3, "n": 2, "ci95": [0.0, round(min(1.0, 0.3 + half2), 6)]}


def test_cell_scores_overall_and_by_kind() -> None:
    tie = record("tie", [("a.t1", "a")], [item("b.t0", "b", 0.5), item("a.t1", "a", 0.5),
                                          item("x.t0", "x", 0.9)], kind="temporal")
    empty = record("empty", [("q.t0", "q")], [])
    scores = retrieval_scores([SEVERAL, tie, empty, record("none", [], [])], [5, 1])
    assert scores is not None and scores.k == [1, 5]
    turn = scores.turn.overall
    assert turn is not None and turn.n == 3
    # recall_any@5: several 1, tie 1, empty 0 -> 2 of 3, with its Wilson interval
    assert turn.at["@5"].recall_any.value == pytest.approx(2 / 3)
    assert turn.at["@5"].recall_any.ci95 == wilson(2, 3)
    assert turn.mrr.mean == pytest.approx((0.5 + 1 / 3 + 0) / 3, abs=1e-6)
    assert set(scores.turn.by_kind) == {"recall", "temporal"}
    assert scores.turn.by_kind["recall"].n == 2 and scores.turn.by_kind["temporal"].n == 1
    assert scores.session.by_kind["temporal"].at["@1"].recall_any.value == 0.0
    # a backend whose items name no turn (mem0, summary) has no retrieval scores
    assert retrieval_scores([record("m", [("a.t0", "a")], [RecallItem(text="fact")])]) is None


def test_scoring_view_keeps_what_the_metrics_read() -> None:
    long = record("long", [("s40.t0", "s40"), ("s2.t0", "s2")],
                  [item(f"s{i}.t0", f"s{i}") for i in range(200)])
    view = scoring_view(long, retrieval_k=[1, 3])
    assert len(view.recall_items) < 50 and all(i.text == "" for i in view.recall_items)
    for level in ("turn", "session"):
        assert probe_metrics(view, level, [1, 3]) == probe_metrics(long, level, [1, 3])
    scored = record("scored", [("a.t9", "a")], [item(f"a.t{i}", "a", score=i / 10)
                                                for i in range(10)])
    kept = scoring_items(scored, 1)
    assert [i.turn_id for i in kept] == ["a.t9"]  # best score first: relevant at rank 1
    mixed = record("mixed", [("b.t0", "b")], [item("a.t0", "a", 0.9), item("b.t0", "b")])
    assert probe_metrics(scoring_view(mixed, retrieval_k=[1]), "turn", [1]) == \
        probe_metrics(mixed, "turn", [1])


def test_run_records_sessions_and_scores_retrieval(tmp_path: Path) -> None:
    fixture = Path(__file__).parents[1] / "scenario" / "fixtures" / "locomo_sample.json"
    write_scenarios(locomo(fixture), tmp_path / "loc")
    result = memeval.run(tmp_path / "loc", backends=["oracle"], reader="extractive",
                         out=tmp_path / "run", report=False, control=False, retrieval_k=[1, 2])
    records = [r for r in read_records(tmp_path / "run") if r.evidence]
    assert records and all(e.session == "session_" + e.id[1:].split(":")[0]
                           for r in records for e in r.evidence)
    assert all(i.session_id for r in records for i in r.recall_items)
    cell = result.cells[0]
    assert cell.retrieval is not None and cell.retrieval.k == [1, 2]
    session = cell.retrieval.session.overall
    assert session is not None and session.at["@2"].recall_any.value == 1.0
