"""`memeval generate`: seeded, valid at every size, on its token target."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import memeval
from memeval.cli import app
from memeval.scenario import load_scenario
from memeval.scenario.generate import write_generated
from memeval.scenario.timeline import TimelineSession, build_timeline
from memeval.tokens import count_tokens


def test_same_seed_same_file_and_another_seed_another(tmp_path: Path) -> None:
    params = {"facts": 15, "sessions": 12, "users": 2, "tokens": 6000, "updates": 0.3,
              "sensitive": 0.3}
    write_generated(tmp_path / "a.yaml", seed=5, **params)
    write_generated(tmp_path / "b.yaml", seed=5, **params)
    write_generated(tmp_path / "c.yaml", seed=6, **params)
    assert (tmp_path / "a.yaml").read_bytes() == (tmp_path / "b.yaml").read_bytes()
    assert (tmp_path / "a.yaml").read_bytes() != (tmp_path / "c.yaml").read_bytes()


@pytest.mark.parametrize(("facts", "sessions", "users", "tokens", "updates", "sensitive"), [
    (1, 2, 1, 300, 0.0, 0.0), (10, 6, 1, 3000, 1.0, 1.0), (40, 30, 3, 20_000, 0.2, 0.1),
    (100, 50, 8, 60_000, 0.5, 0.5)])
def test_every_generated_file_validates_and_meets_its_target(
        tmp_path: Path, facts: int, sessions: int, users: int, tokens: int, updates: float,
        sensitive: float) -> None:
    path = tmp_path / "g.yaml"
    made = write_generated(path, facts=facts, sessions=sessions, users=users, tokens=tokens,
                           updates=updates, sensitive=sensitive, seed=1)
    scenario = load_scenario(path)  # raises on any validation problem
    updated = sum(1 for f in scenario.facts if f.supersedes)
    assert len(scenario.facts) == facts + updated == made["facts"]
    assert made["kinds"].get("update", 0) == updated and made["kinds"]["abstention"] == users
    assert made["kinds"].get("temporal") == facts
    assert made["kinds"].get("leakage", 0) == sum(1 for f in scenario.facts
                                                  if f.sensitive and not f.supersedes)
    assert made["kinds"].get("isolation", 0) == (made["kinds"].get("leakage", 0) if users > 1
                                                 else 0)
    said = sum(count_tokens(t.text) for e in build_timeline(scenario)
               if isinstance(e, TimelineSession) for t in e.turns)
    if tokens >= 3000:
        assert abs(said - tokens) <= 0.1 * tokens


def test_a_generated_scenario_runs(tmp_path: Path) -> None:
    write_generated(tmp_path / "g.yaml", facts=6, sessions=6, users=2, tokens=2000,
                    updates=0.5, sensitive=0.5, seed=2)
    result = memeval.run(tmp_path / "g.yaml", backends=["oracle"], reader="extractive",
                         out=tmp_path / "run", report=False)
    cell = result.scores_json["cells"][0]
    assert cell["evidence_retention"]["value"] == 1.0 and cell["errors"] == 0


def test_bad_arguments_are_one_line_and_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "g.yaml"
    result = CliRunner().invoke(app, ["generate", "--out", str(out), "--users", "41"])
    assert result.exit_code == 2 and "--users must be between 1 and 40" in result.output
    assert "Traceback" not in result.output and not out.exists()
    result = CliRunner().invoke(app, ["generate", "--out", str(out), "--updates", "1.5"])
    assert "--updates is a rate between 0 and 1" in result.output
    result = CliRunner().invoke(app, ["generate", "--out", str(out), "--facts", "3",
                                      "--tokens", "1000"])
    assert result.exit_code == 0, result.output
    assert len(load_scenario(out).facts) >= 3
