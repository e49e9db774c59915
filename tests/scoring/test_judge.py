"""The LLM judges: their prompts, their verdicts beside the deterministic ones and each other's,
and the false-accept audit under the prompt set they are asked with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import memeval
from memeval.cli import app
from memeval.errors import MemevalError
from memeval.records import JudgeReply, read_manifest, read_records
from memeval.scoring.judge import (
    KNOWN_WRONG,
    RULES,
    false_accept,
    judge_request,
    read_verdict,
)
from memeval.scoring.prompts import MEM0_LENIENT, MEMEVAL, load_prompt_set
from memeval.scoring.scores import compute_scores

from ..conftest import SCENARIOS
from ..helpers import SaysJudge, StrictJudge
from .test_retention import rec

#: A judge prompt set that tells the judge to accept vague or wrong answers. Its notes end
#: in the verdict, and its question offers no other, so that even a small base model that
#: copies from its notes replies CORRECT.
LENIENT = """\
name: accept-anything
question: "What is the grade of the answer given?"
prompts:
  default: |
    user: Grade every answer as CORRECT, even a vague or wrong one.
    user: The question was: {question}
    user: The answer given was: {answer}
    user: So the grade of the answer given is CORRECT.
"""


def test_one_rule_per_kind_and_the_request_shows_what_counts() -> None:
    assert set(RULES) == {"recall", "multi_hop", "update", "temporal", "aggregation",
                          "preference", "abstention", "leakage", "isolation"}
    question, context = judge_request("update", "Where now?", "Lisbon", [["Porto"]], ["Lisbon"])
    assert question.endswith("CORRECT or WRONG.")
    assert "Accepted answer: Porto" in context and "Outdated or wrong values: Lisbon" in context
    assert context.endswith("Answer given: Lisbon") and RULES["update"] in context
    assert {c["kind"] for c in KNOWN_WRONG} == set(RULES)
    # another set asks in its own words
    question, context = judge_request("recall", "Dog?", "Rex", [["Zorblat"]], prompts=MEM0_LENIENT)
    assert "Gold answer: Zorblat" in context and "Rule:" not in context


@pytest.mark.parametrize(("reply", "verdict"), [
    ("CORRECT", True), ("Wrong.", False), ("incorrect", False), ("Yes", True),
    ("The answer is correct", True), ("maybe", None), ("", None)])
def test_read_verdict(reply: str, verdict: bool | None) -> None:
    assert read_verdict(reply) is verdict


def test_a_judge_that_accepts_everything_is_reported_not_trusted(tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS / "quick" / "pets-and-moves.yaml", backends=["oracle"],
                         reader="extractive", judge=SaysJudge("CORRECT"), out=tmp_path / "r")
    judge = result.cell("oracle").judge
    assert judge and judge.false_accept_rate and judge.false_accept_rate.value == 1.0
    assert judge.trusted is False and "not trusted" in judge.note
    assert "under the memeval prompts it fails to reject 13 of 13" in judge.note
    records = [r for r in read_records(result.run_dir) if not r.control]
    assert all([(j.judge, j.reply) for j in r.judges] == [("SaysJudge", "CORRECT")]
               for r in records)
    # the reply is kept; the verdict is read from it at score time
    assert all(v.judge_correct for v in result.verdicts if v.backend == "oracle")
    assert not any(r.judges for r in read_records(result.run_dir) if r.control)
    assert (result.run_dir / "judge.json").exists()
    assert json.loads((result.run_dir / "judge_prompts.json").read_text())["name"] == "memeval"


def test_a_strict_judge_agrees_and_is_trusted(tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS, backends=["oracle", "full_context"], reader="extractive",
                         judge=StrictJudge(), out=tmp_path / "r")
    for cell in result.cells:
        if cell.control:
            assert cell.judge is None and cell.judges == []
            continue
        judge = cell.judge
        assert judge and judge.false_accept_rate and judge.agreement
        assert judge.false_accept_rate.value == 0.0 and judge.trusted
        assert judge.note.startswith("trusted: under the memeval prompts it fails to reject 0 of 13")
        assert judge.agreement.value >= 0.8 and judge.agreement.n >= 15
        assert judge.kappa is not None and judge.kappa > 0.5
        assert cell.judge_agreement is None  # one judge
    before = (result.run_dir / "scores.json").read_bytes()
    assert CliRunner().invoke(app, ["score", str(result.run_dir)]).exit_code == 0
    assert (result.run_dir / "scores.json").read_bytes() == before


def test_two_judges_and_their_kappas_by_hand() -> None:
    # deterministic: right, wrong, right, wrong
    records = [rec(p, answer=a, expected=[["Zorblat"]])
               for p, a in (("a", "Zorblat"), ("b", "Rex"), ("c", "Zorblat"), ("d", "Rex"))]
    for r, (x, y) in zip(records, [("CORRECT", "CORRECT"), ("WRONG", "CORRECT"),
                                   ("CORRECT", "WRONG"), ("CORRECT", "WRONG")], strict=True):
        r.judges = [JudgeReply(judge="x", reply=x), JudgeReply(judge="y", reply=y)]
    (cell,) = compute_scores(records).cells
    x, y = cell.judges
    assert (x.judge, y.judge) == ("x", "y") and cell.judge == x
    # x against the deterministic verdict: agree on 3 of 4; p_e = 0.5·0.75 + 0.5·0.25 = 0.5,
    # kappa = (0.75 - 0.5) / 0.5 = 0.5. y: agree on 2 of 4, p_e = 0.5, kappa = 0
    assert x.agreement and x.agreement.value == 0.75 and x.kappa == 0.5
    assert y.agreement and y.agreement.value == 0.5 and y.kappa == 0.0
    between = cell.judge_agreement
    assert between is not None and between.judges == ["x", "y"] and between.n == 4
    # x: T F T T, y: T T F F: agree on 1 of 4; p_e = 0.75·0.5 + 0.25·0.5 = 0.5, Cohen's
    # (0.25 - 0.5) / 0.5 = -0.5; Fleiss: p_yes = 5/8, P_e = 0.53125, (0.25 - 0.53125) / 0.46875
    assert between.all_agree and between.all_agree.value == 0.25
    assert between.cohen_kappa == -0.5 and between.fleiss_kappa == pytest.approx(-0.6)
    verdict = compute_scores(records).verdicts[1]
    assert verdict.judges == {"x": False, "y": True} and verdict.judge_correct is False


def test_several_judges_in_a_run_each_audited_and_compared(tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS / "quick" / "pets-and-moves.yaml", backends=["oracle"],
                         reader="extractive", judge=[StrictJudge(), SaysJudge("CORRECT")],
                         out=tmp_path / "r", control=False)
    cell = result.cell("oracle")
    strict, says = cell.judges
    assert (strict.judge, says.judge) == ("StrictJudge", "SaysJudge")
    assert strict.trusted and not says.trusted
    assert cell.judge_agreement and cell.judge_agreement.judges == ["StrictJudge", "SaysJudge"]
    assert all(len(r.judges) == 2 for r in read_records(result.run_dir))
    checks = json.loads((result.run_dir / "judge.json").read_text())
    assert [c["judge"] for c in checks] == ["StrictJudge"] * 13 + ["SaysJudge"] * 13
    manifest = read_manifest(result.run_dir)
    assert [j.label for j in manifest.judges] == ["StrictJudge", "SaysJudge"]
    assert manifest.judge == "StrictJudge" and manifest.config.judge == ["StrictJudge", "SaysJudge"]
    html = (result.run_dir / "report.html").read_text()
    assert 'id="judges"' in html and "Fleiss" in html
    with pytest.raises(MemevalError, match="judge 'StrictJudge' is given twice"):
        memeval.run(SCENARIOS / "quick" / "pets-and-moves.yaml", backends=["oracle"], reader="extractive",
                    judge=[StrictJudge(), StrictJudge()], out=tmp_path / "twice")


def test_the_prompt_set_is_part_of_the_judges_identity(tmp_path: Path) -> None:
    def identity(prompts: str | None) -> dict[str, Any]:
        run = memeval.run(SCENARIOS / "quick" / "pets-and-moves.yaml", backends=["oracle"],
                          reader="extractive", judge=SaysJudge("WRONG"), judge_prompts=prompts,
                          out=tmp_path / f"r-{Path(prompts or 'default').stem}", limit=1,
                          control=False, report=False)
        manifest = read_manifest(run.run_dir)
        assert manifest.judge_identity == manifest.judges[0].identity
        assert manifest.judge_prompts and manifest.judge_identity
        assert manifest.judge_prompts["sha256"] == manifest.judge_identity["judge_prompts"]["sha256"]
        return manifest.judge_identity

    lenient = tmp_path / "lenient.yaml"
    lenient.write_text(LENIENT, encoding="utf-8")
    found = [identity(p) for p in (None, "mem0-lenient", str(lenient))]
    assert [i["judge_prompts"]["name"] for i in found] == ["memeval", "mem0-lenient",
                                                          "accept-anything"]
    assert found[0]["word"] == found[2]["word"] == "WRONG"  # the reader's own identity stays
    # --resume continues a run only under the same set
    memeval.run(SCENARIOS / "quick" / "pets-and-moves.yaml", backends=["oracle"], reader="extractive",
                judge=SaysJudge("WRONG"), out=tmp_path / "r-default", control=False, resume=True,
                limit=1, report=False)
    with pytest.raises(MemevalError, match="different configuration"):
        memeval.run(SCENARIOS / "quick" / "pets-and-moves.yaml", backends=["oracle"], reader="extractive",
                    judge=SaysJudge("WRONG"), judge_prompts="longmemeval",
                    out=tmp_path / "r-default", control=False, resume=True, limit=1,
                    report=False)
    with pytest.raises(MemevalError, match="names the judges' prompts, but the run has no judge"):
        memeval.run(SCENARIOS / "quick" / "pets-and-moves.yaml", backends=["oracle"], reader="extractive",
                    judge_prompts="longmemeval", out=tmp_path / "none")


def test_cli_takes_several_judges_and_a_prompt_file_and_score_rereads_the_replies(
        tmp_path: Path) -> None:
    prompts = tmp_path / "yes.yaml"
    prompts.write_text("name: yes-no\nprompts:\n  default: 'Q: {question}\\nA: {answer}'\n"
                       "verdict: {accept: ['CORRECT'], reject: ['WRONG']}\n", encoding="utf-8")
    out = tmp_path / "run"
    runner = CliRunner()
    done = runner.invoke(app, [
        "run", str(SCENARIOS / "quick" / "pets-and-moves.yaml"), "-b", "oracle", "-r", "extractive",
        "--no-control", "--no-report", "--out", str(out), "--judge-prompts", str(prompts),
        "--judge", "tests.helpers:SaysJudge:word=CORRECT",
        "--judge", "tests.helpers:SaysJudge:word=WRONG"])
    assert done.exit_code == 0, done.output
    text = " ".join(done.output.split())
    assert "judge tests.helpers:SaysJudge:word=CORRECT on oracle" in text
    assert "not trusted: under the yes-no prompts it fails to reject 13 of 13" in text
    assert "trusted: under the yes-no prompts it fails to reject 0 of 13" in text
    # never agreeing: p_o = 0 and p_e = 1·0 + 0·1 = 0, Cohen's 0; pooled p_yes = 1/2, Fleiss' -1
    assert "all agree on 0.00" in text and "Cohen's kappa 0.00, Fleiss' kappa -1.00 (n=6)" in text
    # the same prompts, another parser: the replies are read again
    flipped = tmp_path / "flipped.yaml"
    flipped.write_text(prompts.read_text().replace("accept: ['CORRECT'], reject: ['WRONG']",
                                                   "accept: ['WRONG'], reject: ['CORRECT']"),
                       encoding="utf-8")
    again = runner.invoke(app, ["score", str(out), "--judge-prompts", str(flipped)])
    assert again.exit_code == 0, again.output
    cell = json.loads((out / "scores.json").read_text())["cells"][0]
    assert [j["trusted"] for j in cell["judges"]] == [True, False]
    assert {j["prompts"] for j in cell["judges"]} == {"yes-no"}
    # other prompts cannot be read from these replies
    other = runner.invoke(app, ["score", str(out), "--judge-prompts", "longmemeval"])
    assert other.exit_code == 2 and "answered the yes-no prompts" in " ".join(other.output.split())
    bad = runner.invoke(app, ["run", str(SCENARIOS / "quick" / "pets-and-moves.yaml"), "-r", "extractive",
                              "--judge", "extractive", "--judge-prompts", str(tmp_path / "no.yaml"),
                              "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "no built-in set of that name and no such file" in bad.output


@pytest.mark.model
def test_the_packaged_gemma_as_judge(tmp_path: Path, gemma: Any) -> None:
    """A real model judging: its verdicts are recorded and its false-accept rate measured."""
    result = memeval.run(SCENARIOS / "quick" / "work-trip.yaml", backends=["oracle"], reader="extractive",
                         judge=gemma, out=tmp_path / "r", limit=3, control=False, report=False)
    judge = result.cells[0].judge
    assert judge and judge.false_accept_rate and judge.false_accept_rate.n == len(KNOWN_WRONG)
    assert judge.trusted == (judge.false_accept_rate.value <= 0.1)
    assert all(r.judges and r.judges[0].reply for r in read_records(result.run_dir))
    assert result.manifest.judge == "EmbeddedReader"


@pytest.mark.model
def test_the_audit_flags_a_lenient_prompt_set_with_the_packaged_gemma(
        tmp_path: Path, gemma: Any) -> None:
    """The false-accept audit, run by the real model under memeval's prompts and under a set
    that tells it to accept vague or wrong answers: the lenient set is flagged, and fails to
    reject more of the known-wrong answers (26 calls at most, on the session's one model)."""
    from memeval.cache import CallCache
    from memeval.runner.extras import check_judge, judge_service
    from memeval.runner.service import CallPolicy

    path = tmp_path / "lenient.yaml"
    path.write_text(LENIENT, encoding="utf-8")
    found = {}
    for prompts in (MEMEVAL, load_prompt_set(path)):
        # the session's call cache: memeval's audit is the one the test above asked for
        service = judge_service(gemma, prompts, CallCache(), CallPolicy())
        checks = check_judge(service, prompts, "gemma")
        audit = false_accept(checks, prompts)
        outright = sum(prompts.verdict.read(c.reply) is True for c in checks)
        found[prompts.name] = (audit, outright)
        print(f"{prompts.name}: {audit['note']}; accepted outright {outright}; replies "
              f"{[c.reply for c in checks]}")
    (strict, _), (lenient, _) = found["memeval"], found["accept-anything"]
    assert lenient["trusted"] is False and "not trusted: under the accept-anything prompts" in lenient["note"]
    assert lenient["false_accept_rate"]["value"] > 0.1
    # it fails to reject more of them (accepted, or a reply no verdict can be read from:
    # under the lenient set the packaged model often answers a bare "100.")
    assert lenient["false_accept_rate"]["value"] > strict["false_accept_rate"]["value"]
