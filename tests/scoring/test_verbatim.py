"""The indexed verbatim search gives what a brute-force scan of every turn gives."""

from __future__ import annotations

import pytest

pytest.importorskip("hypothesis", reason="a dev dependency: pip install -e '.[dev]'")

from hypothesis import given, settings
from hypothesis import strategies as st

from memeval.scoring.verbatim import Conversation, words

_TEXT = st.lists(st.sampled_from(["a", "b", "c", "d", "the", "of"]), max_size=8).map(" ".join)


def _brute_force(turns: list[str], answer: str) -> int:
    ans, best = words(answer), 0
    for turn in turns:
        said = words(turn)
        for i in range(len(ans)):
            for j in range(len(said)):
                k = 0
                while i + k < len(ans) and j + k < len(said) and ans[i + k] == said[j + k]:
                    k += 1
                best = max(best, k)
    return best


@settings(max_examples=300, deadline=None)
@given(turns=st.lists(_TEXT, max_size=12), answers=st.lists(_TEXT, min_size=1, max_size=4),
       data=st.data())
def test_longest_copied_span_matches_a_scan_of_every_turn(
        turns: list[str], answers: list[str], data: st.DataObject) -> None:
    said = Conversation()
    marks = [0]
    for turn in turns:  # repeated turns included: the small vocabulary repeats them often
        said.add(turn)
        marks.append(len(said.words))
    at = data.draw(st.integers(0, len(turns)))
    for answer in answers:
        assert said.longest_copied_span(answer, marks[at]) == _brute_force(turns[:at], answer)
        assert said.longest_copied_span(answer) == _brute_force(turns, answer)


def test_a_repeated_turn_is_kept_once() -> None:
    said = Conversation()
    for _ in range(1000):
        said.add("The weather has been rainy all week.")
    assert len(said.words) == 8  # seven words and one turn boundary
    assert said.longest_copied_span("it has been rainy all week") == 5
