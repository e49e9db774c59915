"""LongMemEval and LoCoMo files, in their exact formats, as scenarios with evidence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import memeval
from memeval.cli import app
from memeval.errors import MemevalError
from memeval.scenario import load_scenario
from memeval.scenario.importers import locomo, longmemeval, write_scenarios

FIXTURES = Path(__file__).parent / "fixtures"
LME = FIXTURES / "longmemeval_sample.json"
LOCOMO = FIXTURES / "locomo_sample.json"


def by_id(scenarios: list[dict]) -> dict[str, dict]:
    return {s["id"]: s for s in scenarios}


def test_longmemeval_fields_and_types(tmp_path: Path) -> None:
    made = write_scenarios(longmemeval(LME), tmp_path)
    # one scenario per question; question_type mapped; _abs is abstention
    assert made["scenarios"] == 7
    assert made["kinds"] == {"recall": 2, "temporal": 1, "update": 1, "preference": 1,
                             "aggregation": 1, "abstention": 1}
    s = load_scenario(tmp_path / "longmemeval-e47becba.yaml")
    (probe,) = s.probes
    assert probe.answers == ["Business Administration"] and probe.kind.value == "recall"
    # the has_answer turn of the answer session is the evidence; empty turns are dropped
    assert probe.evidence == ["answer_280352e9.t0"]
    assert [len(x.turns) for x in s.sessions] == [2, 2]
    assert str(probe.time) == "2023-05-30 23:40:00"
    assert str(s.sessions[0].time) == "2023-05-20 02:21:00"
    temporal = load_scenario(tmp_path / "longmemeval-71017276.yaml")
    assert [x.id for x in temporal.sessions] == ["s_b2", "answer_a1"]  # replayed in time order
    assert temporal.probes[0].answers == ["12"]  # integer answers become text
    update = load_scenario(tmp_path / "longmemeval-0a995998.yaml").probes[0]
    # an answer session with no has_answer mark is evidence as a whole
    assert update.evidence == ["answer_u1.t0", "answer_u2.t0"]
    abstain = load_scenario(tmp_path / "longmemeval-e47becba_abs.yaml").probes[0]
    assert abstain.kind.value == "abstention" and not abstain.answers and not abstain.evidence


def test_locomo_fields_and_categories(tmp_path: Path) -> None:
    scenarios = by_id(locomo(LOCOMO))
    conv = scenarios["locomo-conv-26"]
    kinds = [p["kind"] for p in conv["probes"]]
    # categories 1 multi_hop, 2 temporal, 3 and 4 recall; 5 left out by default
    assert kinds == ["temporal", "recall", "recall", "multi_hop", "recall"]
    probes = {p["question"]: p for p in conv["probes"]}
    assert probes["How many kids does Melanie have?"]["answers"] == ["3"]
    assert probes["What flag did Caroline show, and what is she researching?"]["evidence"] == \
        ["D1:3", "D2:2"]  # "D1:3; D2:2" split
    assert "evidence" not in probes["Would Caroline pursue writing as a career?"]
    assert "1 evidence reference" in conv["description"]
    turns = conv["sessions"][0]["turns"]
    assert turns[0] == {"id": "D1:1", "user": "Caroline: Hey Mel! I went to an LGBTQ support "
                        "group yesterday."}
    assert turns[1]["assistant"].startswith("Melanie: ")  # both speakers kept
    assert turns[2]["user"].endswith("[shares a photo: a photo of a rainbow flag on a wall]")
    assert conv["sessions"][1]["time"] == "2023-06-27T10:37:00"
    with_adversarial = by_id(locomo(LOCOMO, adversarial=True))
    adversarial = [p for p in with_adversarial["locomo-conv-26"]["probes"]
                   if p["kind"] == "abstention"]
    assert len(adversarial) == 1 and "answers" not in adversarial[0]
    made = write_scenarios(list(with_adversarial.values()), tmp_path)
    assert made == {"scenarios": 2, "probes": 8,
                    "kinds": {"temporal": 1, "recall": 4, "multi_hop": 1, "abstention": 2}}


@pytest.mark.parametrize(("edit", "path", "message"), [
    (lambda d: d[1].update(question_type="chit-chat"), "$[1].question_type", "unknown type"),
    (lambda d: d[0]["haystack_sessions"][1][0].update(role="system"),
     "$[0].haystack_sessions[1][0].role", "expected 'user' or 'assistant'"),
    (lambda d: d[2].pop("question_date"), "$[2].question_date", "missing"),
    (lambda d: d[0]["haystack_dates"].__setitem__(0, "yesterday"), "$[0].haystack_dates[0]",
     "unreadable date"),
])
def test_malformed_longmemeval_is_one_line_with_its_json_path(tmp_path: Path, edit, path: str,
                                                              message: str) -> None:
    data = json.loads(LME.read_text())
    edit(data)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(MemevalError) as caught:
        longmemeval(bad)
    assert str(caught.value).startswith(f"{bad}: {path}: ") and message in str(caught.value)


def test_import_commands_write_all_or_nothing(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "lme"
    result = runner.invoke(app, ["import", "longmemeval", str(LME), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 7 scenario(s)" in result.output and len(list(out.glob("*.yaml"))) == 7
    data = json.loads(LOCOMO.read_text())
    data[1]["conversation"]["session_1"][0]["speaker"] = "Nobody"
    bad = tmp_path / "locomo.json"
    bad.write_text(json.dumps(data))
    result = runner.invoke(app, ["import", "locomo", str(bad), "--out", str(tmp_path / "loc")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "$[1].conversation.session_1[0].speaker" in result.output
    assert not (tmp_path / "loc").exists()  # conv-26 was fine, but nothing is half-written


def test_imported_scenarios_run_with_parity_scorers(tmp_path: Path) -> None:
    write_scenarios(locomo(LOCOMO), tmp_path / "loc")
    result = memeval.run(tmp_path / "loc", backends=["rag:top_k=2", "oracle"], reader="extractive",
                         out=tmp_path / "run", parity=["token_f1", "retrieval"], report=False)
    cells = {c["backend"]: c for c in result.scores_json["cells"]}
    oracle = cells["oracle"]["parity"]
    assert oracle["retrieval"]["@5"]["recall_all"] == 1.0 and oracle["retrieval"]["@5"]["n"] == 5
    assert 0.0 < oracle["token_f1"]["mean"] <= 1.0
    rag = cells["rag:top_k=2"]["parity"]["retrieval"]
    assert rag["@5"]["recall_any"] >= rag["@5"]["recall_all"]
    assert memeval.run(tmp_path / "loc", backends=["oracle"], reader="extractive",
                       out=tmp_path / "run2", report=False).cells[0].parity is None
