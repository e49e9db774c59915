"""One pass reports every problem of a file: schema errors and cross-reference errors together,
without a cascade, with a hint for a misspelt enum value and for a value YAML did not read as text."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from memeval.scenario import parse_scenario, validate_paths

from .test_validate import BASE, line_of, only, problems

MISTAKES = textwrap.dedent("""\
    memeval: 1
    id: mistakes
    title: Four kinds of mistake
    facts:
      - id: dog
        text: The user's dog is named Zorblat.
        answers: [Zorblat]
      - id: born
        text: The user was born on 2024-05-01.
        answers: [2024-05-01]
    sessions:
      - id: s1
        time: 2025-03-01T09:00:00
        turns:
          - user: My dog Zorblat was born on 2024-05-01.
            plants: [dog, born]
    probes:
      - id: q1
        question: What is my dog's name?
        kind: updte
        expects: [dog]
      - id: q2
        after: s2
        question: When was I born?
        expects: [born]
      - id: q3
        expects: [dgo]
    """)


def test_schema_and_cross_reference_errors_come_in_one_pass_sorted_by_line(tmp_path: Path) -> None:
    file = tmp_path / "mistakes.yaml"
    file.write_text(MISTAKES)
    files, found = validate_paths([file])
    assert files == 1

    def at(needle: str) -> str:
        return f"{file}:{line_of(MISTAKES, needle)}"

    assert [str(p) for p in found] == [
        f"{at('answers: [2024-05-01]')}:15: facts.1.answers.0: YAML reads 2024-05-01 as a date, "
        "not text (quote it: '2024-05-01')",
        f"{at('kind: updte')}:11: probes.0.kind: 'updte' is not one of recall, multi_hop, update, "
        "temporal, aggregation, preference, abstention, leakage, isolation (did you mean 'update'?)",
        f"{at('after: s2')}:12: unknown session 's2' (name a session id)",
        f"{at('- id: q3')}:5: missing required key 'question' (add `question:` here)",
        f"{at('expects: [dgo]')}:15: unknown fact 'dgo' (did you mean 'dog'?)",
    ]


def test_a_fact_with_a_schema_error_is_still_known_by_its_id() -> None:
    text = BASE.replace("answers: [Zorblat]", "answers: [Zorblat, 2024-05-01]")
    problem = only(text)  # not "unknown fact 'dog_name'" where it is planted, expected, forbidden
    assert problem.message.startswith("facts.0.answers.1: YAML reads 2024-05-01 as a date")


def test_a_probe_with_a_schema_error_still_has_its_references_checked() -> None:
    text = BASE.replace("    question: What is my dog's name?\n    expects: [dog_name]",
                        "    expects: [dog_nme]")
    found = problems(text)
    assert [p.message for p in found] == ["missing required key 'question'", "unknown fact 'dog_nme'"]
    assert found[1].line == line_of(text, "expects: [dog_nme]")


def test_a_turn_of_a_session_with_a_schema_error_is_still_checked() -> None:
    text = BASE.replace("time: 2025-03-01T09:00:00", "time: soon").replace(
        "I named my beagle Zorblat!", "I named my beagle after a comet!")
    found = problems(text)
    assert found[0].message.startswith("sessions.0.time:")
    assert "turn plants 'dog_name' but contains none of its answers" in found[1].message
    assert len(found) == 2, found


@pytest.mark.parametrize(("old", "new"), [
    ("plants: [city_new]", "plants: city_new"),  # the plants cannot be read
    ("  - id: s2\n    user: alice\n", "  - id: s2\n    user: [alice]\n"),  # a session that fails
    ("    kind: update\n    expects: [city_new]\n", "    kind: updat\n"),  # what the kind needs
])
def test_what_a_schema_error_hides_is_not_reported_as_missing(old: str, new: str) -> None:
    assert old in BASE
    problem = only(BASE.replace(old, new))
    assert "never planted" not in problem.message and "nothing to check" not in problem.message


def test_names_in_a_list_that_is_missing_are_not_unknown() -> None:
    text = BASE[:BASE.index("sessions:")] + BASE[BASE.index("probes:"):]
    assert only(text).message == "missing required key 'sessions'"  # no "unknown session 's1'"


@pytest.mark.parametrize(("written", "meant"), [
    ("updte", "update"), ("multihop", "multi_hop"), ("Recall", "recall"), ("leak", "leakage"),
])
def test_a_misspelt_kind_gets_a_did_you_mean(written: str, meant: str) -> None:
    text = BASE.replace("kind: update", f"kind: {written}")
    problem = only(text)
    assert problem.message.startswith(f"probes.1.kind: '{written}' is not one of recall, multi_hop,")
    assert problem.fix == f"did you mean '{meant}'?"
    assert (problem.line, problem.column) == (line_of(text, f"kind: {written}"), 11)


def test_a_kind_like_none_lists_the_kinds() -> None:
    problem = only(BASE.replace("kind: update", "kind: xyzzy"))
    assert problem.message.endswith("abstention, leakage, isolation")
    assert problem.fix == "use one of them"


@pytest.mark.parametrize(("value", "read_as"), [
    ("2024-05-01", "a date"),
    ("2024-05-01 10:00:00", "a date and time"),
    ("2024-05-01T10:00:00Z", "a date and time"),
    ("0612", "a number"),  # YAML 1.1 reads it as octal: 394
    ("12:30", "a number"),  # and this as base 60: 750
    ("1.50", "a number"),
    ("42", "a number"),
    ("yes", "a boolean"),
    ("no", "a boolean"),
    ("On", "a boolean"),
    ("off", "a boolean"),
    ("true", "a boolean"),
])
def test_a_value_yaml_does_not_read_as_text_gets_a_quote_it(value: str, read_as: str) -> None:
    text = BASE.replace("answers: [Lisbon]", f"answers: [Lisbon, {value}]")
    problem = only(text)
    assert problem.message == f"facts.1.answers.1: YAML reads {value} as {read_as}, not text"
    assert problem.fix == f"quote it: '{value}'"
    assert (problem.line, problem.column) == (line_of(text, value), len("    answers: [Lisbon, ") + 1)
    parse_scenario(text.replace(f", {value}]", f", '{value}']"))  # and quoted, it is valid


def test_quote_it_anywhere_text_is_expected() -> None:
    text = BASE.replace("    answers: [Lisbon]", "    answers:\n      - 2025-01-01  # a date").replace(
        "title: Base scenario", "title: 2025")
    found = problems(text)
    assert [(p.line, p.message, p.fix) for p in found] == [
        (line_of(text, "title: 2025"), "title: YAML reads 2025 as a number, not text", "quote it: '2025'"),
        (line_of(text, "- 2025-01-01"), "facts.1.answers.0: YAML reads 2025-01-01 as a date, not text",
         "quote it: '2025-01-01'"),
    ]
