"""Judge prompt sets: the built-in ones, YAML files, their verdict parsers and their identity."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from memeval.errors import MemevalError
from memeval.scenario.schema import ProbeKind
from memeval.scoring.prompts import (
    BUILT_IN,
    LONGMEMEVAL,
    MEM0_LENIENT,
    MEMEVAL,
    VerdictParser,
    judge_identity,
    load_prompt_set,
)

GOOD = """\
name: strict-yes-no
question: "Is the answer right? Say yes or no."
prompts:
  default: |
    Question: {question}
    Right answer: {accepted}
    Outdated: {rejected}
    Given: {answer}
  abstention:
    context: "Nobody ever said. Given: {answer}"
    question: Does it say it does not know? Say yes or no.
verdict:
  regex: 'verdict: *(?P<verdict>\\w+)'
  accept: ['yes']
  reject: ['no']
  pick: last
"""


def write(tmp_path: Path, text: str, name: str = "set.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_each_built_in_set_has_a_prompt_for_every_kind() -> None:
    assert set(BUILT_IN) == {"memeval", "longmemeval", "mem0-lenient"}
    for prompts in BUILT_IN.values():
        for kind in ProbeKind:
            question, context = prompts.request(kind.value, "Where now?", "Lisbon", ["Porto"],
                                                ["Lisbon"], ["X4417-22"])
            assert question and "{" not in question + context and "Lisbon" in context
        assert len(prompts.sha256) == 64 and prompts.source is None


def test_longmemeval_set_follows_its_rubric_and_reads_yes_anywhere() -> None:
    _, temporal = LONGMEMEVAL.request("temporal", "How many days?", "19 days", ["18 days"])
    assert "off-by-one" in temporal and "Correct answer: 18 days" in temporal
    _, update = LONGMEMEVAL.request("update", "Where now?", "Porto, before Lisbon", ["Porto"],
                                    ["Lisbon"])
    assert "also mentions earlier information is still correct" in update
    assert "Earlier value: Lisbon" in update
    _, preference = LONGMEMEVAL.request("preference", "A drink?", "Green tea", ["likes tea"])
    assert "Rubric: likes tea" in preference and "need not reflect every point" in preference
    question, abstention = LONGMEMEVAL.request("abstention", "My cat?", "I don't know", [])
    assert "unanswerable" in question and "Correct answer" not in abstention
    # as LongMemEval's evaluate_qa.py: `'yes' in response.lower()`, anything else is no
    assert [LONGMEMEVAL.verdict.read(r) for r in ("Yes.", "eyes", "No", "hmm")] == [
        True, True, False, False]


def test_mem0_lenient_set_is_generous_and_the_last_label_decides() -> None:
    _, context = MEM0_LENIENT.request("recall", "Which bakery?", "a bakery in town", ["Vantor"])
    assert "touches on the same topic" in context and "Gold answer: Vantor" in context
    _, temporal = MEM0_LENIENT.request("temporal", "When?", "last Tuesday", ["7 May 2025"])
    assert "same date or period" in temporal
    assert MEM0_LENIENT.verdict.read("It is not WRONG to say so: CORRECT") is True
    assert MEM0_LENIENT.verdict.read("INCORRECT") is False


def test_a_line_whose_values_are_all_empty_is_left_out() -> None:
    _, with_old = MEMEVAL.request("update", "Where now?", "Porto", ["Porto"], ["Lisbon"])
    _, without = MEMEVAL.request("update", "Where now?", "Porto", ["Porto"])
    assert "Outdated or wrong values: Lisbon" in with_old and "Outdated" not in without
    # the answer's line stays even when the answer is empty
    assert MEMEVAL.request("recall", "q?", "", ["a"])[1].endswith("Answer given: ")


def test_a_prompt_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    prompts = load_prompt_set(path)
    assert prompts.name == "strict-yes-no" and prompts.source == str(path)
    assert prompts.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    question, context = prompts.request("recall", "Dog?", "Rex", ["Zorblat"])
    assert question == "Is the answer right? Say yes or no."
    assert context == "Question: Dog?\nRight answer: Zorblat\nGiven: Rex"  # no Outdated line
    question, context = prompts.request("abstention", "Cat?", "I don't know", [])
    assert question.startswith("Does it say") and context == "Nobody ever said. Given: I don't know"
    # its parser: the group `verdict` of the last match decides
    assert prompts.verdict.read("verdict: no ... verdict: yes") is True
    assert prompts.verdict.read("yes, verdict: no") is False
    assert prompts.verdict.read("no verdict") is None
    # a file without a name is named after itself; a set is also found by name
    assert load_prompt_set(write(tmp_path, "prompts: {default: 'A: {answer}'}", "mine.yaml")
                           ).name == "mine"
    assert load_prompt_set("longmemeval") is LONGMEMEVAL


def test_identity_changes_with_the_set_and_the_file(tmp_path: Path) -> None:
    reader = {"reader": "embedded", "model": "m"}
    names = {str(judge_identity(reader, s)) for s in BUILT_IN.values()}
    assert len(names) == 3
    path = write(tmp_path, GOOD)
    first = load_prompt_set(path)
    path.write_text(GOOD.replace("pick: last", "pick: first"), encoding="utf-8")
    second = load_prompt_set(path)
    assert judge_identity(reader, first) != judge_identity(reader, second)
    assert judge_identity(reader, first)["judge_prompts"] == {"name": "strict-yes-no",
                                                              "sha256": first.sha256}
    # only the parser changed: the prompts asked are the same
    assert first.prompts_sha256() == second.prompts_sha256()
    assert first.prompts_sha256() != MEMEVAL.prompts_sha256()


@pytest.mark.parametrize(("text", "line", "says"), [
    ("prompts:\n  default: 'A: {answer}'\nprompt_set: x\n", 3, "unknown key 'prompt_set' "
     "(keys: name, question, prompts, verdict)"),
    ("name: x\n", 1, "no prompts (add prompts: with at least a `default` one"),
    ("prompts:\n  recall: 'A: {answer}'\n", 1, "prompts has no `default`"),
    ("prompts:\n  default: 'A: {answer}'\n  recal: 'B: {answer}'\n", 3,
     "unknown probe kind 'recal' (kinds: default, recall,"),
    ("prompts:\n  default: |\n    Q: {question}\n    A: {reply}\n", 2,
     "unknown placeholder {reply} (placeholders: {question}, {answer}"),
    ("prompts:\n  default: 'A: {answer'\n", 2, "the template is not valid"),
    ("prompts:\n  default: 'A: {answer!r}'\n", 2, "placeholder {answer} has a format"),
    ("prompts:\n  default: {question: 'Q?'}\n", 2, "the prompt has no context"),
    ("prompts:\n  default: 'A: {answer}'\nverdict:\n  regex: '(yes|no)'\n", 4,
     "verdict.regex has no group named verdict (name the group that holds the verdict word"),
    ("prompts:\n  default: 'A: {answer}'\nverdict:\n  regex: '(?P<verdict>yes'\n", 4,
     "verdict.regex does not compile"),
    ("prompts:\n  default: 'A: {answer}'\nverdict:\n  accept: [yes]\n", 4,
     "verdict.accept holds true or false, not a word (YAML reads a bare yes"),
    ("prompts:\n  default: 'A: {answer}'\nverdict:\n  accept: [ok]\n  reject: [OK]\n", 5,
     "'ok' is both an accept and a reject word"),
    ("prompts:\n  default: 'A: {answer}'\nverdict:\n  pick: middle\n", 4,
     "verdict.pick is 'middle' (write first or last)"),
    ("prompts:\n  default: 'A: {answer}'\nverdict:\n  accep: [ok]\n", 4,
     "unknown key 'accep' in verdict"),
    ("prompts: [\n", 2, "invalid YAML"),
    ("", 1, "the file is empty (start with `prompts: {default:"),
])
def test_a_bad_prompt_file_is_one_line_naming_file_line_and_fix(
        tmp_path: Path, text: str, line: int, says: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(MemevalError) as caught:
        load_prompt_set(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}:{line}:"), message
    assert says in message and message.endswith(")"), message


def test_an_unknown_set_names_the_built_in_ones() -> None:
    with pytest.raises(MemevalError, match="no built-in set of that name and no such file "
                       r"\(built in: memeval, longmemeval, mem0-lenient"):
        load_prompt_set("mem0")


def test_the_default_parser_reads_as_memeval_always_did() -> None:
    parser = VerdictParser()
    assert [parser.read(r) for r in ("CORRECT", "Wrong.", "incorrect", "no, correct", "maybe")
            ] == [True, False, False, False, None]
    assert VerdictParser(otherwise="reject").read("maybe") is False
