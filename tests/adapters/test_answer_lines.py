"""How a base model's continuation becomes an answer of one line or of several."""

from __future__ import annotations

from memeval.adapters.readers import answer_ended, answer_lines, stop_strings


def test_one_line_answers_end_at_the_first_newline() -> None:
    assert answer_lines(" Zorblat.\nNotes:\n[2024]") == "Zorblat."
    assert not answer_ended(" Zorbl") and answer_ended(" Zorblat.\n")


def test_longer_answers_keep_their_lines_up_to_a_blank_line_or_the_next_block() -> None:
    bio = " Mira bakes bread in Lisbon.\nShe runs the clock club.\n\nNotes:\n(none)"
    assert answer_lines(bio, 4) == "Mira bakes bread in Lisbon.\nShe runs the clock club."
    assert answer_lines("One.\nTwo.\nQuestion: next?", 4) == "One.\nTwo."
    assert answer_lines("1\n2\n3\n4\n5", 4) == "1\n2\n3\n4"
    assert not answer_ended(" One.\nTwo", 4)
    assert answer_ended(" One.\nTwo.\n\n", 4) and answer_ended("One.\nNotes:", 4)
    assert answer_ended("1\n2\n3\n4\n", 4)


def test_a_server_stops_where_an_answer_ends() -> None:
    assert stop_strings(1) == ["\n"]
    assert len(stop_strings(4)) <= 4  # the most stop sequences OpenAI's API takes
    assert all(answer_ended("One.\nTwo." + stop, 4) for stop in stop_strings(4))
