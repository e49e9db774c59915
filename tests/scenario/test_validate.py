"""Every authoring mistake the scenario format names is reported at its line with a fix."""

from __future__ import annotations

import textwrap

import pytest

from memeval.errors import Problem, ScenarioError
from memeval.scenario import parse_scenario

from ..conftest import SCENARIOS

BASE = textwrap.dedent("""\
    memeval: 1
    id: base
    title: Base scenario
    users: [alice, bob]
    facts:
      - id: dog_name
        text: The user's dog is named Zorblat.
        answers: [Zorblat]
      - id: city
        text: The user lives in Lisbon.
        answers: [Lisbon]
      - id: city_new
        text: The user moved to Porto.
        answers: [Porto]
        supersedes: city
    sessions:
      - id: s1
        user: alice
        time: 2025-03-01T09:00:00
        turns:
          - user: I named my beagle Zorblat!
            plants: [dog_name]
          - user: Loving life in Lisbon.
            plants: [city]
      - id: s2
        user: alice
        time: 2025-04-02T18:30:00
        turns:
          - id: move
            user: We moved to Porto.
            plants: [city_new]
    probes:
      - id: dog
        after: s1
        question: What is my dog's name?
        expects: [dog_name]
      - id: where
        question: Where do I live now?
        kind: update
        expects: [city_new]
        rejects: [city]
      - id: bob_dog
        user: bob
        question: What is the dog's name?
        kind: isolation
        forbids: [dog_name]
    """)


def problems(text: str) -> list[Problem]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "x.yaml")
    return info.value.problems


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """Line of the nth line that is `needle` (stripped), else that contains it."""
    rows = list(enumerate(text.splitlines(), start=1))
    exact = [i for i, line in rows if line.strip() == needle.strip()]
    return (exact or [i for i, line in rows if needle in line])[nth - 1]


def only(text: str) -> Problem:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def test_base_is_valid() -> None:
    scenario = parse_scenario(BASE)
    assert [p.id for p in scenario.probes] == ["dog", "where", "bob_dog"]


def test_duplicate_fact_id() -> None:
    text = BASE.replace("  - id: city\n", "  - id: dog_name\n")
    found = problems(text)
    dup = next(p for p in found if "duplicate fact id" in p.message)
    assert dup.line == line_of(text, "- id: dog_name", 2)
    assert "unique" in dup.fix


def test_duplicate_probe_session_and_turn_ids() -> None:
    text = BASE.replace("  - id: where\n", "  - id: dog\n").replace("  - id: s2\n", "  - id: s1\n")
    text = text.replace("user: Loving life in Lisbon.", "id: move\n        user: Loving life in Lisbon.")
    found = {p.message.split(" '")[0]: p for p in problems(text)}
    assert found["duplicate probe id"].line == line_of(text, "- id: dog", 2)
    assert found["duplicate session id"].line == line_of(text, "- id: s1", 2)
    assert found["duplicate turn id"].line == line_of(text, "id: move", 2)


@pytest.mark.parametrize("field", ["expects", "rejects", "forbids"])
def test_probe_names_unknown_fact(field: str) -> None:
    text = BASE.replace("    question: What is the dog's name?\n",
                        f"    question: What is the dog's name?\n    {field}: [dog_nme]\n")
    if field == "forbids":  # bob_dog's own forbids would be a duplicate key
        text = text.replace("    forbids: [dog_name]\n", "")
    problem = next(p for p in problems(text) if "unknown fact 'dog_nme'" in p.message)
    assert problem.line == line_of(text, f"{field}: [dog_nme]")
    assert problem.fix == "did you mean 'dog_name'?"


def test_probe_before_planting_session() -> None:
    text = BASE.replace("    after: s1\n    question: What is my dog's name?\n    expects: [dog_name]",
                        "    after: s1\n    question: Where do I live now?\n    expects: [city_new]")
    problem = only(text)
    assert "asked before fact 'city_new' is planted" in problem.message
    assert problem.line == line_of(text, "expects: [city_new]")
    assert "after" in problem.fix


def test_planted_answer_missing_from_turn() -> None:
    text = BASE.replace("I named my beagle Zorblat!", "I named my beagle after a comet!")
    problem = only(text)
    assert "contains none of its answers" in problem.message
    assert problem.line == line_of(text, "plants: [dog_name]")
    assert "paraphrased: true" in problem.fix
    paraphrased = text.replace("answers: [Zorblat]", "answers: [Zorblat]\n    paraphrased: true")
    parse_scenario(paraphrased)


def test_supersedes_cycle() -> None:
    text = BASE.replace("    answers: [Lisbon]\n", "    answers: [Lisbon]\n    supersedes: city_new\n")
    found = problems(text)
    assert all("supersedes cycle" in p.message for p in found) and found
    assert {p.line for p in found} == {line_of(text, "supersedes: city_new"),
                                       line_of(text, "supersedes: city")}


def test_turn_by_user_not_in_users() -> None:
    text = BASE.replace("  - id: s2\n    user: alice", "  - id: s2\n    user: carol")
    problem = only(text)
    assert "user 'carol' is not in `users`" in problem.message
    assert problem.line == line_of(text, "user: carol")
    assert "add 'carol' to `users:`" in problem.fix


@pytest.mark.parametrize(("old", "new", "suggestion"), [
    ("title: Base scenario", "titel: Base scenario", "did you mean 'title'?"),
    ("    answers: [Lisbon]", "    answer: [Lisbon]", "did you mean 'answers'?"),
    ("        plants: [dog_name]", "        plant: [dog_name]", "did you mean 'plants'?"),
    ("    kind: update", "    knd: update", "did you mean 'kind'?"),
    ("    time: 2025-04-02T18:30:00", "    when: 2025-04-02T18:30:00", "allowed keys:"),
])
def test_unknown_key_anywhere(old: str, new: str, suggestion: str) -> None:
    text = BASE.replace(old, new)
    found = [p for p in problems(text) if p.message.startswith("unknown key")]
    assert len(found) == 1, problems(text)
    assert found[0].line == line_of(text, new.strip())
    assert found[0].column == new.index(new.strip()[0]) + 1
    assert found[0].fix.startswith(suggestion)


def test_unknown_key_in_filler() -> None:
    text = BASE.replace("  - id: s2\n", "  - filler: {sessions: 2, tokens: 200, sead: 3}\n  - id: s2\n")
    problem = only(text)
    assert problem.message == "unknown key 'sead'" and problem.fix == "did you mean 'seed'?"
    assert problem.line == line_of(text, "sead")


def test_times_go_backwards() -> None:
    text = BASE.replace("time: 2025-04-02T18:30:00", "time: 2025-02-02T18:30:00")
    problem = only(text)
    assert "time goes backwards" in problem.message
    assert problem.line == line_of(text, "2025-02-02")


def test_yaml_syntax_error_has_line() -> None:
    text = BASE.replace("    question: What is my dog's name?", "    question: [What is my dog's name?")
    problem = only(text)
    assert problem.message.startswith("invalid YAML")
    assert problem.line >= line_of(text, "[What is")


def test_duplicate_yaml_key_is_caught() -> None:
    text = BASE.replace("title: Base scenario", "title: Base scenario\ntitle: Again")
    problem = only(text)
    assert problem.message == "duplicate key 'title'" and problem.line == line_of(text, "title: Again")


def test_object_construction_tags_are_refused() -> None:
    text = BASE.replace("title: Base scenario", "title: !!python/object/apply:os.system [echo hi]")
    problem = only(text)
    assert "unsupported YAML tag" in problem.message


def test_missing_key_and_bad_turn() -> None:
    text = BASE.replace("    question: What is my dog's name?\n", "")
    text = text.replace("      - user: Loving life in Lisbon.",
                        "      - user: Loving life in Lisbon.\n        assistant: Nice.")
    found = problems(text)
    messages = {p.message for p in found}
    assert "missing required key 'question'" in messages
    bad_turn = next(p for p in found if "exactly one of" in p.message)
    assert bad_turn.line == line_of(text, "- user: Loving life in Lisbon.")


def test_wrong_version() -> None:
    problem = only(BASE.replace("memeval: 1", "memeval: 2"))
    assert problem.line == 1 and problem.fix == "set `memeval: 1`"


def test_problem_prints_as_one_line() -> None:
    problem = only(BASE.replace("title: Base scenario", "titel: Base scenario"))
    assert str(problem) == "x.yaml:3:1: unknown key 'titel' (did you mean 'title'?)"


def test_canary_answer_must_fit_its_format_and_candidates_its_space() -> None:
    text = BASE.replace("    answers: [Zorblat]\n",
                        "    answers: [Zorblat]\n    canary: {format: \"@@@@\", candidates: 10}\n")
    problem = only(text)
    assert "does not fit its format '@@@@'" in problem.message
    assert problem.line == line_of(text, "answers: [Zorblat]")
    small = BASE.replace("I named my beagle Zorblat!", "My PIN is 42.").replace(
        "answers: [Zorblat]\n", "answers: [\"42\"]\n    canary: {format: \"##\", candidates: 500}\n")
    problem = only(small)
    assert "only 100 strings, fewer than 500 candidates" in problem.message
    assert problem.line == line_of(small, "canary:")


def test_canary_candidates_are_seeded_and_hold_the_secret() -> None:
    from memeval.scenario.schema import Canary

    canary = Canary(format="####-##", candidates=50)
    first = canary.candidates_for("1234-56", "s:pin")
    assert first == canary.candidates_for("1234-56", "s:pin") and first[0] == "1234-56"
    assert len(set(first)) == 50 and all(canary.matches(c) for c in first)
    assert first != canary.candidates_for("1234-56", "s:other")


HOSTILE = {
    "an impossible date": ("2025-03-01T09:00:00", "2025-13-01T09:00:00", "cannot read '2025-13-01"),
    "!!bool maybe": ("title:", "flag: !!bool maybe\ntitle:", "cannot read 'maybe' as bool"),
    "!!int abc": ("title:", "n: !!int abc\ntitle:", "cannot read 'abc' as int"),
    "!!timestamp nope": ("title:", "t: !!timestamp nope\ntitle:", "as timestamp"),
    "a NUL byte": ("title:", "title:\x00", "invalid character '\\x00'"),
    "an escape character": ("title:", "ti\x1btle:", "invalid character '\\x1b'"),
    "an id on a filler entry": ("- filler: {", "- id: x\n    filler: {", "unknown key 'id'"),
    "a filler of 10^11 tokens": ("tokens: 600", "tokens: 100000000000",
                                 "less than or equal to 50000000"),
    "memeval: true": ("memeval: 1", "memeval: true", "the whole number 1"),
    "memeval: 1.0": ("memeval: 1", "memeval: 1.0", "the whole number 1"),
    "a negative number as a time": ("time: 2025-03-01T09:00:00", "time: -5", "write a date and time"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_values_are_one_line_at_their_place(case: str) -> None:
    old, new, says = HOSTILE[case]
    bundled = (SCENARIOS / "quick" / "pets-and-moves.yaml").read_text()
    assert old in bundled
    text = bundled.replace(old, new, 1)
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "f.yaml")
    first = caught.value.problems[0]
    assert says in first.message, str(caught.value)
    start = text[: text.index(new)].count("\n") + 1
    assert start <= first.line <= start + new.count("\n")  # on the line that was changed


@pytest.mark.parametrize(("name", "text", "says"), [
    ("nesting", "memeval: 1\nx: " + "[" * 600 + "]" * 600 + "\n", "nests too deeply"),
    ("an alias of itself", "memeval: 1\na: &a [*a]\n", "nested deeper than 64 levels"),
    ("an alias bomb", "memeval: 1\na: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 10)}]\n" for p, n in zip("abcdefg", "bcdefgh", strict=True)),
     "aliases expand to more than 100,000 values"),
])
def test_files_built_to_exhaust_the_loader_are_one_line(name: str, text: str, says: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "f.yaml")
    assert says in caught.value.problems[0].message
