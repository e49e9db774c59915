"""hybrid: a summary plus retrieved turns; with lexical=bm25, BM25 and vectors fused by RRF."""

from __future__ import annotations

from pathlib import Path

import pytest

from memeval.adapters.backends.hybrid import Hybrid, rrf
from memeval.adapters.readers.extractive import ExtractiveReader
from memeval.errors import MemevalError
from memeval.protocols import CellContext, Query, RecallItem, SessionInfo, Turn
from memeval.registry import build_backend
from memeval.testing import HashEmbedder, assert_conforms
from memeval.tokens import count_tokens


def _hybrid(tmp_path: Path, **options: object) -> Hybrid:
    hybrid = Hybrid(embedder=HashEmbedder(), persist=False, **options)  # type: ignore[arg-type]
    hybrid.bind(CellContext(count_tokens=count_tokens, context_tokens=4000, workdir=tmp_path,
                            reader=ExtractiveReader()))
    return hybrid


def test_rrf_on_a_hand_computed_example() -> None:
    # k = 60, ranks from 1:  a: 1/61 + 1/62 = 0.032522   c: 1/63 + 1/61 = 0.032266
    #                        b: 1/62       = 0.016129   d: 1/63         = 0.015873
    # so a, c, b, d: c, second in one ranking and first in the other, beats b.
    fused = rrf([["a", "b", "c"], ["c", "a", "d"]])
    assert [key for key, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1][1] == pytest.approx(1 / 63 + 1 / 61)
    # k sets how much the top ranks weigh: with a ranked 1st and 4th and b 2nd twice,
    # k = 60: b = 2/62 = 0.032258 > a = 1/61 + 1/64 = 0.032018 (z = 1/61 = 0.016393)
    # k = 1:  a = 1/2 + 1/5 = 0.7 > b = 2/3 = 0.667 > z = 1/2
    rankings = [["a", "b", "x", "y"], ["z", "b", "w", "a"]]
    assert [key for key, _ in rrf(rankings)][:3] == ["b", "a", "z"]
    assert [key for key, _ in rrf(rankings, k=1)][:3] == ["a", "b", "z"]


def test_rrf_ties_go_to_the_earlier_turn() -> None:
    # x and y both score 1/61 + 1/62: the one earlier in the conversation comes first
    assert [k for k, _ in rrf([["x", "y"], ["y", "x"]], order={"y": 0, "x": 1})] == ["y", "x"]
    assert [k for k, _ in rrf([["x", "y"], ["y", "x"]], order={"x": 0, "y": 1})] == ["x", "y"]
    assert [k for k, _ in rrf([["x", "y"], ["y", "x"]])] == ["x", "y"]  # no order: by id


@pytest.mark.parametrize("options", [{}, {"lexical": "bm25"}, {"lexical": "bm25", "top_k": 1}])
def test_conforms(options: dict[str, object]) -> None:
    assert_conforms(lambda: Hybrid(embedder=HashEmbedder(), persist=False, **options))  # type: ignore[arg-type]


def test_vectors_only_stays_the_default() -> None:
    assert Hybrid().bm25 is None and Hybrid().rag.top_k == 5
    fused = build_backend("hybrid:lexical=bm25,top_k=3")[1]
    assert fused.bm25 is not None and fused.rag.top_k == fused.bm25.top_k == 6  # 2 × top_k each
    with pytest.raises(MemevalError, match="needs chunk=turn"):
        build_backend("hybrid:lexical=bm25,chunk=session")
    with pytest.raises(MemevalError, match="lexical must be one of"):
        build_backend("hybrid:lexical=tfidf")


def test_fusion_of_bm25_and_vectors(tmp_path: Path) -> None:
    hybrid = _hybrid(tmp_path, lexical="bm25", top_k=2)
    texts = ["I walked the dog in the park this morning.",
             "My sister Odalys moved to Reykjavik last spring.",
             "The park was busy, lots of people walking their dogs.",
             "I had coffee with my sister yesterday."]
    for n, text in enumerate(texts):
        hybrid.observe(Turn(id=f"t{n}", session_id="s1", user="ann", role="user", text=text))
    hybrid.end_session(SessionInfo(id="s1", user="ann", turn_count=len(texts)))
    hybrid.observe(Turn(id="b0", session_id="s2", user="bob", role="user", text="Reykjavik is cold."))
    query = Query(text="Odalys in Reykjavik", user="ann")
    # the turn with both rare words is first in both rankings: 1/61 + 1/61
    assert hybrid.recall(query).items[1] == RecallItem(
        text="[session]\nuser: My sister Odalys moved to Reykjavik last spring.", turn_id="t1",
        score=round(2 / 61, 8))
    # Each ranker proposes 2 × top_k = 4 turns for "sister dogs park":
    #   vectors (HashEmbedder cosine): t2 .365, t3 .218, t1 .204, t0 .174
    #   BM25:                          t0 .597, t2 .496, t3 .332, t1 .248
    # fused, k = 60: t2 = 1/61 + 1/62 = .032522   t0 = 1/64 + 1/61 = .032018
    #                t3 = 1/62 + 1/63 = .032002   t1 = 1/63 + 1/64 = .031498
    # so top_k = 2 keeps t2 and t0 (last by vectors, first by BM25) over t3, shown in
    # conversation order: t0, t2.
    words = Query(text="sister dogs park", user="ann")
    by_vector = sorted(hybrid.rag.recall(words).items, key=lambda i: -(i.score or 0))
    assert [i.turn_id for i in by_vector] == ["t2", "t3", "t1", "t0"]
    assert hybrid.bm25 is not None
    assert [t.id for _, t, _ in hybrid.bm25.ranked(words)] == ["t0", "t2", "t3", "t1"]
    recall = hybrid.recall(words)
    assert [(i.turn_id, i.score) for i in recall.items] == [
        ("t0", round(1 / 64 + 1 / 61, 8)), ("t2", round(1 / 61 + 1 / 62, 8))]
    assert "Relevant conversation:\n[session]\nuser: I walked the dog" in recall.text
    assert "b0" not in {i.turn_id for i in hybrid.recall(Query(text="Reykjavik cold", user="ann")).items}
    footprint = hybrid.footprint()
    assert footprint.detail["bm25_bytes"] == sum(len(t.encode()) for t in texts) + len(b"Reykjavik is cold.")
    hybrid.reset("ann")
    assert hybrid.recall(query).items == ()
    hybrid.close()
