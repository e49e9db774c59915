"""The LLM judge: its prompts, its verdicts beside the deterministic ones, and its own check."""

from __future__ import annotations

from pathlib import Path

import pytest

import memeval
from memeval.protocols import Answer, Reader
from memeval.records import read_records
from memeval.scoring.judge import KNOWN_WRONG, RULES, judge_request, read_verdict

from ..conftest import SCENARIOS


class Says(Reader):
    """A judge double that always replies the same word."""

    def __init__(self, word: str):
        self.word = word

    def answer(self, question: str, context: str) -> Answer:
        return Answer(text=self.word)

    def identity(self) -> dict[str, object]:
        return {"reader": "says", "word": self.word}


class Strict(Reader):
    """A judge double that accepts an answer only if it quotes the accepted answer."""

    def answer(self, question: str, context: str) -> Answer:
        fields = dict(line.split(": ", 1) for line in context.splitlines())
        accepted = fields.get("Accepted answer", "")
        if "Secret value that must not appear" in fields:
            ok = fields["Secret value that must not appear"] not in fields["Answer given"]
        elif not accepted:
            ok = "know" in fields["Answer given"]
        else:
            ok = any(a in fields["Answer given"] for a in accepted.split(" / "))
        return Answer(text="CORRECT" if ok else "WRONG")

    def identity(self) -> dict[str, object]:
        return {"reader": "strict"}


def test_one_rule_per_kind_and_the_request_shows_what_counts() -> None:
    assert set(RULES) == {"recall", "multi_hop", "update", "temporal", "aggregation",
                          "preference", "abstention", "leakage", "isolation"}
    question, context = judge_request("update", "Where now?", "Lisbon", [["Porto"]], ["Lisbon"])
    assert question.endswith("CORRECT or WRONG.")
    assert "Accepted answer: Porto" in context and "Outdated or wrong values: Lisbon" in context
    assert context.endswith("Answer given: Lisbon") and RULES["update"] in context
    assert {c["kind"] for c in KNOWN_WRONG} == set(RULES)


@pytest.mark.parametrize(("reply", "verdict"), [
    ("CORRECT", True), ("Wrong.", False), ("incorrect", False), ("Yes", True),
    ("The answer is correct", True), ("maybe", None), ("", None)])
def test_read_verdict(reply: str, verdict: bool | None) -> None:
    assert read_verdict(reply) is verdict


def test_a_judge_that_accepts_everything_is_reported_not_trusted(tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS / "pets-and-moves.yaml", backends=["oracle"],
                         reader="extractive", judge=Says("CORRECT"), out=tmp_path / "r")
    judge = result.cell("oracle").judge
    assert judge and judge.false_accept_rate and judge.false_accept_rate.value == 1.0
    assert judge.trusted is False and "not trusted" in judge.note
    records = [r for r in read_records(result.run_dir) if not r.control]
    assert all(r.judge and r.judge.reply == "CORRECT" for r in records)
    # the reply is kept; the verdict is read from it at score time
    assert all(v.judge_correct for v in result.verdicts if v.backend == "oracle")
    assert not any(r.judge for r in read_records(result.run_dir) if r.control)
    assert (result.run_dir / "judge.json").exists()


def test_a_strict_judge_agrees_and_is_trusted(tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS, backends=["oracle", "full_context"], reader="extractive",
                         judge=Strict(), out=tmp_path / "r")
    for cell in result.cells:
        if cell.control:
            assert cell.judge is None
            continue
        judge = cell.judge
        assert judge and judge.false_accept_rate and judge.agreement
        assert judge.false_accept_rate.value == 0.0 and judge.trusted
        assert judge.agreement.value >= 0.8 and judge.agreement.n >= 15
    before = (result.run_dir / "scores.json").read_bytes()
    from typer.testing import CliRunner

    from memeval.cli import app

    assert CliRunner().invoke(app, ["score", str(result.run_dir)]).exit_code == 0
    assert (result.run_dir / "scores.json").read_bytes() == before


@pytest.mark.model
def test_the_packaged_gemma_as_judge(tmp_path: Path) -> None:
    """A real model judging: its verdicts are recorded and its false-accept rate measured."""
    result = memeval.run(SCENARIOS / "work-trip.yaml", backends=["oracle"], reader="extractive",
                         judge="embedded", out=tmp_path / "r", limit=3, control=False)
    judge = result.cells[0].judge
    assert judge and judge.false_accept_rate and judge.false_accept_rate.n == len(KNOWN_WRONG)
    assert judge.trusted == (judge.false_accept_rate.value <= 0.1)
    assert all(r.judge is not None and r.judge.reply for r in read_records(result.run_dir))
    assert result.manifest.judge == "embedded"
