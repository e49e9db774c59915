"""`memeval compare` over epochs: pairs are (probe, epoch), and the detectable difference."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

import memeval
from memeval.cli import app
from memeval.report import compare_runs
from memeval.report.compare import paired_difference, paired_mde
from memeval.scoring.model import ProbeVerdict

from ..conftest import SCENARIOS


def test_mde_by_hand() -> None:
    # n = 100 pairs, 15 discordant: psi = 0.15; z_a = 1.959964, z_b = 0.841621
    # delta = sqrt(psi) (z_a sqrt(n) + z_b sqrt(n - z_a^2 + z_b^2)) / (n + z_b^2)
    #       = 0.387298 · (19.599640 + 0.841621 · sqrt(96.866867)) / 100.708326
    #       = 0.387298 · (19.599640 + 8.283321) / 100.708326 = 0.387298 · 0.276869 = 0.107231
    assert paired_mde(100, 15) == pytest.approx(0.107231, abs=1e-6)
    # it solves the power equation: sqrt(n) delta = z_a sqrt(psi) + z_b sqrt(psi - delta^2)
    delta, psi = paired_mde(100, 15) or 0.0, 0.15
    assert math.sqrt(100) * delta == pytest.approx(
        1.959964 * math.sqrt(psi) + 0.841621 * math.sqrt(psi - delta**2), abs=1e-4)
    # four times the pairs at the same discordance: about half the difference
    assert paired_mde(400, 60) == pytest.approx(0.107231 / 2, rel=0.02)
    assert paired_mde(100, 0) is None  # no discordant pair: psi cannot be estimated
    assert paired_mde(3, 2) is None  # fewer pairs than z_a^2


def verdict(probe: str, epoch: int, correct: bool) -> ProbeVerdict:
    return ProbeVerdict(scenario="s", backend="b", reader="r", probe=probe, kind="recall",
                        epoch=epoch, error=False, evidence=None, correct=correct, violation=None,
                        memorized=None)


def test_pairs_are_the_same_probe_in_the_same_epoch() -> None:
    # both runs: p right in epoch 0, wrong in epoch 1; paired across epochs they would disagree
    a = [verdict("p", 0, True), verdict("p", 1, False)]
    b = [verdict("p", 0, True), verdict("p", 1, False)]
    same = paired_difference(a, b, lambda v: v.correct)
    assert (same["pairs"], same["only_a"], same["only_b"], same["difference"]) == (2, 0, 0, 0.0)
    assert same["mde80"] is None  # no discordant pair
    # a run of one epoch pairs with the other's epoch 0 only
    one = paired_difference([verdict("p", 0, False)], b, lambda v: v.correct)
    assert (one["pairs"], one["only_a"], one["only_b"]) == (1, 0, 1)


def test_compare_two_runs_of_two_epochs(tmp_path: Path) -> None:
    scenario = SCENARIOS / "quick" / "pets-and-moves.yaml"
    a = memeval.run(scenario, backends=["full_context"], reader="extractive",
                    out=tmp_path / "a", report=False, control=False, epochs=2)
    b = memeval.run(scenario, backends=["window:tokens=40"], reader="extractive",
                    out=tmp_path / "b", report=False, control=False, epochs=2)
    compared = compare_runs(a.run_dir, b.run_dir)
    (row,) = compared["rows"]
    answerable = [v for v in a.verdicts if v.correct is not None]
    assert row["answer"]["pairs"] == len(answerable)  # both epochs, each probe once per epoch
    assert {v.epoch for v in answerable} == {0, 1}
    assert (compared["epochs_a"], compared["epochs_b"]) == (2, 2)
    m = row["evidence"]  # full_context recalls every fact, a 40-token window none of them
    assert m["only_a"] == m["pairs"] > 0
    expected = paired_mde(m["pairs"], m["only_a"] + m["only_b"])
    assert expected is not None and m["mde80"] == expected
    shown = CliRunner().invoke(app, ["compare", str(a.run_dir), str(b.run_dir)])
    assert shown.exit_code == 0, shown.output
    assert "MDE" in shown.output and "epochs: A 2, B 2" in shown.output
    assert f"±{expected:.3f}" in shown.output


class Coin(memeval.protocols.Reader):
    """Answers right or wrong by a seeded coin: a reader that samples."""

    def __init__(self) -> None:
        self.random = random.Random(0)

    def set_seed(self, seed: int) -> bool:
        self.random = random.Random(seed)
        return True

    def answer(self, question: str, context: str) -> memeval.protocols.Answer:
        line = context.strip().splitlines()[-1] if context.strip() else ""
        return memeval.protocols.Answer(text=line if self.random.random() < 0.5 else "no idea")

    def identity(self) -> dict[str, object]:
        return {"reader": "coin"}


def test_the_report_shows_each_epoch_and_the_spread(tmp_path: Path) -> None:
    scenario = SCENARIOS / "quick" / "pets-and-moves.yaml"
    run = memeval.run(scenario, backends=["oracle"], reader=Coin(), out=tmp_path / "r",
                      control=False, cache=False, epochs=3)
    stat = run.cell("oracle").epochs.figures["answer_retention"]
    html = (run.run_dir / "report.html").read_text()
    section = html.split('<table id="epochs">')[1].split("</table>")[0]
    row = next(r for r in section.split("<tr>") if "answer retention" in r)
    assert ", ".join(f"{v:.2f}" for v in stat.values) in row and f"{stat.mean:.2f}" in row
    assert len(stat.values) == 3 and stat.std is not None and stat.std > 0  # the coin moved it
    # a run of one epoch has no such section
    one = memeval.run(scenario, backends=["oracle"], reader="extractive", out=tmp_path / "one",
                      control=False, cache=False)
    assert 'id="epochs"' not in (one.run_dir / "report.html").read_text()
