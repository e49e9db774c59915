"""The bm25 backend: lexical recall from a per-user bm25s index, rebuilt lazily, no model."""

from __future__ import annotations

from pathlib import Path

import pytest

import memeval
from memeval.adapters.backends.bm25 import Bm25, tokenize
from memeval.protocols import CellContext, Query, SessionInfo, Turn
from memeval.registry import build_backend
from memeval.testing import assert_conforms
from memeval.tokens import count_tokens

from ..conftest import SCENARIOS

CORPUS = [
    "I walked the dog in the park this morning.",
    "My sister Odalys moved to Reykjavik last spring.",
    "The park was busy, lots of people walking their dogs.",
    "I had coffee with my sister yesterday.",
]


def _bm25(tmp_path: Path, **options: object) -> Bm25:
    backend = Bm25(**options)  # type: ignore[arg-type]
    backend.bind(CellContext(count_tokens=count_tokens, context_tokens=4000, workdir=tmp_path))
    return backend


def _feed(backend: Bm25, texts: list[str], user: str = "ann", session: str = "s1",
          start: int = 0) -> None:
    for n, text in enumerate(texts, start=start):
        backend.observe(Turn(id=f"{user}.t{n}", session_id=session, user=user, role="user", text=text))
    backend.end_session(SessionInfo(id=session, user=user, turn_count=len(texts)))


def _ids(backend: Bm25, text: str, user: str = "ann") -> list[str | None]:
    return [item.turn_id for item in backend.recall(Query(text=text, user=user)).items]


@pytest.mark.parametrize("spec", ["bm25", "bm25:top_k=1", "bm25:budget=40"])
def test_conforms(spec: str) -> None:
    assert_conforms(lambda: build_backend(spec)[1])


def test_tokenizer_stems_and_drops_stopwords_without_a_download() -> None:
    assert tokenize(["What is my parrot called?", "Vellamorn-58 moved"]) == [
        ["parrot", "call"], ["vellamorn", "58", "move"]]


def test_a_query_sharing_rare_words_with_one_turn_ranks_it_first(tmp_path: Path) -> None:
    bm25 = _bm25(tmp_path)
    _feed(bm25, CORPUS)
    # query words: "sister", "reykjavik". t1 holds both (and the rare "reykjavik"), t3 only
    # "sister"; t0 and t2 share no word, so they are never recalled.
    ranked = bm25.ranked(Query(text="Is my sister still in Reykjavik?", user="ann"))
    assert [turn.id for _, turn, _ in ranked] == ["ann.t1", "ann.t3"]
    assert ranked[0][2] > ranked[1][2] > 0
    recall = bm25.recall(Query(text="Is my sister still in Reykjavik?", user="ann"))
    assert [i.turn_id for i in recall.items] == ["ann.t1", "ann.t3"]  # conversation order
    assert recall.items[0].score == pytest.approx(ranked[0][2], abs=1e-6)
    assert "Odalys moved to Reykjavik" in recall.text and "park" not in recall.text
    assert _ids(bm25, "Where did Odalys go?") == ["ann.t1"]
    assert bm25.recall(Query(text="quantum chromodynamics", user="ann")).text == ""


def test_top_k_keeps_the_best(tmp_path: Path) -> None:
    bm25 = _bm25(tmp_path, top_k=1)
    _feed(bm25, CORPUS)
    assert _ids(bm25, "my sister in Reykjavik") == ["ann.t1"]


def test_users_are_kept_apart_and_reset_forgets_one_user(tmp_path: Path) -> None:
    bm25 = _bm25(tmp_path)
    _feed(bm25, CORPUS, user="ann")
    _feed(bm25, ["My locker code is Vellamorn-58."], user="bob", session="s2")
    assert _ids(bm25, "Reykjavik", user="bob") == []
    assert _ids(bm25, "Vellamorn locker", user="ann") == []
    assert _ids(bm25, "Vellamorn locker", user="bob") == ["bob.t0"]
    assert _ids(bm25, "anything", user="nobody") == []
    before = bm25.footprint()
    assert before.items == 5
    assert before.bytes == sum(len(t.encode()) for t in [*CORPUS, "My locker code is Vellamorn-58."])
    bm25.reset("ann")
    assert _ids(bm25, "Reykjavik", user="ann") == []
    assert _ids(bm25, "Vellamorn locker", user="bob") == ["bob.t0"]
    after = bm25.footprint()
    assert after.items == 1 and after.bytes == len(b"My locker code is Vellamorn-58.")


def test_ties_go_to_the_earlier_turn(tmp_path: Path) -> None:
    bm25 = _bm25(tmp_path, top_k=2)
    same = "We took the Zanzibar ferry."
    _feed(bm25, ["Breakfast was late.", same, "Lunch was early.", same, same])
    recall = bm25.recall(Query(text="Zanzibar ferry", user="ann"))
    assert [i.turn_id for i in recall.items] == ["ann.t1", "ann.t3"]
    assert recall.items[0].score == recall.items[1].score


def test_the_index_is_rebuilt_lazily_once_after_new_turns(tmp_path: Path) -> None:
    bm25 = _bm25(tmp_path)
    _feed(bm25, CORPUS)
    assert bm25.rebuilds == 0  # observe only appends
    assert _ids(bm25, "Reykjavik") == ["ann.t1"]
    assert _ids(bm25, "Odalys") == ["ann.t1"]
    assert bm25.rebuilds == 1  # the second recall reuses the index
    _feed(bm25, ["Odalys now lives in Tromso, not Reykjavik."], session="s2", start=4)
    _feed(bm25, ["Tromso is cold."], user="bob", session="s3")
    assert _ids(bm25, "Tromso") == ["ann.t4"]  # the new turn is searchable
    assert bm25.rebuilds == 2  # one rebuild, of ann's index only
    assert _ids(bm25, "Reykjavik") == ["ann.t1", "ann.t4"]
    assert bm25.rebuilds == 2


def test_budget_is_in_reader_tokens(tmp_path: Path) -> None:
    texts = [f"Trip {n}: the lighthouse at Kallur was foggy, we waited {n} hours." for n in range(12)]
    roomy = _bm25(tmp_path)
    _feed(roomy, texts)
    assert len(roomy.recall(Query(text="Kallur lighthouse", user="ann")).items) == 5  # top_k
    tight = _bm25(tmp_path, budget=60)
    _feed(tight, texts)
    recall = tight.recall(Query(text="Kallur lighthouse", user="ann"))
    assert 0 < len(recall.items) < 12 and count_tokens(recall.text) <= 60


def test_rebind_starts_afresh(tmp_path: Path) -> None:
    bm25 = _bm25(tmp_path)
    _feed(bm25, CORPUS)
    bm25.bind(CellContext(count_tokens=count_tokens, context_tokens=4000, workdir=tmp_path))
    assert bm25.footprint().items == 0 and _ids(bm25, "Reykjavik") == []


def test_a_scenario_run_retains_evidence_above_the_control(tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS / "quick" / "pets-and-moves.yaml", backends=["bm25"], reader="extractive",
                         out=tmp_path / "r", report=False)
    bm25 = result.cell("bm25")
    assert bm25.errors == 0
    assert bm25.evidence_retention.value > result.cell("no_memory").evidence_retention.value == 0
