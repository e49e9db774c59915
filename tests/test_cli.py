from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import memeval
from memeval.cli import PlainProgress, app, duration_text

from .conftest import SCENARIOS

runner = CliRunner()


def test_validate_accepts_every_bundled_scenario() -> None:
    result = runner.invoke(app, ["validate", str(SCENARIOS)])
    assert result.exit_code == 0, result.output
    assert f"{len(list(SCENARIOS.rglob('*.yaml')))} scenario file(s) OK" in result.output


def test_validate_prints_one_line_per_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (SCENARIOS / "quick" / "garden-club.yaml").read_text()
    bad.write_text(text.replace("title:", "titel:").replace("expects: [tomato]", "expects: [tomatoe]"))
    result = subprocess.run([sys.executable, "-m", "memeval.cli", "validate", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert lines == [
        f"{bad}:{_line(bad, 'titel:')}:1: unknown key 'titel' (did you mean 'title'?)",
        f"{bad}:{_line(bad, 'tomatoe')}:15: unknown fact 'tomatoe' (did you mean 'tomato'?)",
    ]
    assert "Traceback" not in result.stderr + result.stdout


def test_a_flood_of_problems_is_cut_short_per_file_unless_all(tmp_path: Path) -> None:
    from memeval.scenario import validate_paths

    # a few problems in one file, and the wrong turn format (two problems a turn) in another
    few = tmp_path / "a-few.yaml"
    few.write_text((SCENARIOS / "quick" / "garden-club.yaml").read_text().replace("title:", "titel:"))
    flood = tmp_path / "flood.yaml"
    turns = "".join(f"      - role: user\n        content: hello {i}\n" for i in range(1000))
    flood.write_text("memeval: 1\nid: flood\ntitle: Flood\nfacts: []\nsessions:\n  - id: s1\n"
                     f"    time: 2025-03-01T09:00:00\n    turns:\n{turns}probes: []\n")
    _, problems = validate_paths([tmp_path])
    flooded = [str(p) for p in problems if p.file == str(flood)]
    assert len(flooded) > 2000
    more = f"... and {len(flooded) - 50:,} more problems in {flood} (fix these first"
    capped = runner.invoke(app, ["validate", str(tmp_path)])
    assert capped.exit_code == 1
    assert capped.stdout.splitlines() == [
        f"{few}:{_line(few, 'titel:')}:1: unknown key 'titel' (did you mean 'title'?)",
        *flooded[:50], f"{more}, or see them all with --all)"]
    assert f"{len(problems):,} problem(s) in 2 file(s)" in capped.stderr
    every = runner.invoke(app, ["validate", "--all", str(tmp_path)])
    assert every.exit_code == 1 and every.stdout.splitlines() == [str(p) for p in problems]
    # a run says the same, on stderr, and where to see the rest
    run = runner.invoke(app, ["run", str(flood), "-r", "extractive", "--out", str(tmp_path / "r")])
    assert run.exit_code == 2
    lines = run.stderr.splitlines()
    assert lines[:-1] == [f"error: {line}" for line in flooded[:50]]
    assert lines[-1] == f"error: {more}, or see them all with `memeval validate --all {flood}`)"


def _line(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_run_on_a_bad_scenario_is_one_line_per_problem_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((SCENARIOS / "quick" / "work-trip.yaml").read_text().replace("users", "usres", 1)
                   .replace("question: Which seat", "questoin: Which seat"))
    result = subprocess.run([sys.executable, "-m", "memeval.cli", "run", str(bad), "--reader",
                             "extractive", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}:{_line(bad, 'questoin')}:5: unknown key 'questoin' (did you mean 'question'?)" \
        in result.stderr.replace("error: ", "")
    assert not (tmp_path / "out").exists()


def test_outside_a_terminal_progress_is_plain_lines(tmp_path: Path) -> None:
    """In a log or a pipe a live bar shows nothing until the end; plain lines say how far."""
    env = {name: value for name, value in os.environ.items()
           if name not in {"FORCE_COLOR", "TTY_COMPATIBLE"}}  # either would make it a terminal
    done = subprocess.run(
        [sys.executable, "-m", "memeval.cli", "run", str(SCENARIOS / "quick" / "pets-and-moves.yaml"),
         "-b", "no_memory", "-b", "oracle", "-r", "extractive", "--no-control", "--no-report",
         "--no-cache", "--out", str(tmp_path / "run")],
        env={**env, "MEMEVAL_PROGRESS_EVERY": "0"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("[memeval]")]
    assert lines[:2] == ["[memeval] starting: 0/12 probes",
                         "[memeval] pets-and-moves × no_memory: 0/12 probes"]
    pattern = re.compile(r"\[memeval\] pets-and-moves × (no_memory|oracle): (\d+)/12 probes, "
                         r"[\d.]+ (probes/s|s/probe)(, ETA \d+s)?")
    updates = [pattern.fullmatch(line) for line in lines[2:-1]]
    assert all(updates), lines
    # a line for every probe (the period is 0), and one as the second cell starts
    assert [(m[1], int(m[2])) for m in updates if m] == \
        [("no_memory", n) for n in range(1, 7)] + [("oracle", n) for n in range(6, 13)]
    assert re.fullmatch(r"\[memeval\] done: 12/12 probes in \d+s, [\d.]+ probes/s", lines[-1])
    assert "\x1b" not in done.stdout + done.stderr  # no colour, no cursor moves
    assert "\r" not in done.stdout  # no bar redrawn
    assert not re.search(r"12/12 \d+:\d\d:\d\d", done.stdout)  # nor the bar's last state


def test_plain_progress_is_a_line_per_cell_and_at_most_one_per_period() -> None:
    out = io.StringIO()
    now = [0.0]  # the seconds the clock reads
    lines = PlainProgress(Console(file=out), total=400, every=30, clock=lambda: now[0])
    with lines:
        for now[0], cell, advance in [
            (0, "resuming", 40),  # recorded before: no part of the rate
            (1, "pets-and-moves × rag", 0),
            (20, "", 60),  # 19 s after the last line: quiet
            (80 / 2.1, "", 20),  # 120 done, 80 of them in 38 s
            (50, "", 10),
            (60, "pets-and-moves × window", 0),  # a new cell: at once
            (300, "", 270),
        ]:
            lines(cell, advance)
    assert out.getvalue().splitlines() == [
        "[memeval] resuming: 40/400 probes",
        "[memeval] pets-and-moves × rag: 40/400 probes",
        "[memeval] pets-and-moves × rag: 120/400 probes, 2.1 probes/s, ETA 2m13s",
        "[memeval] pets-and-moves × window: 130/400 probes, 1.5 probes/s, ETA 3m00s",
        "[memeval] pets-and-moves × window: 400/400 probes, 1.2 probes/s",
        "[memeval] done: 400/400 probes in 5m00s, 1.2 probes/s",
    ]
    # a slow reader is seconds per probe, and an interrupted run has no "done" line
    out = io.StringIO()
    now = [0.0]
    with pytest.raises(KeyboardInterrupt), PlainProgress(Console(file=out), 100, 30,
                                                         lambda: now[0]) as slow:
        slow("starting", 0)
        now[0] = 80.0
        slow("", 2)
        raise KeyboardInterrupt
    assert out.getvalue().splitlines()[-1] == \
        "[memeval] starting: 2/100 probes, 40.0 s/probe, ETA 1h05m"
    assert duration_text(45.4) == "45s"


def test_a_bad_progress_period_is_one_line(tmp_path: Path) -> None:
    done = runner.invoke(app, ["run", str(SCENARIOS / "quick" / "garden-club.yaml"), "-r", "extractive",
                               "--out", str(tmp_path)], env={"MEMEVAL_PROGRESS_EVERY": "soon"})
    assert done.exit_code == 2
    assert "MEMEVAL_PROGRESS_EVERY='soon' is not a number of seconds" in done.output
    assert not (tmp_path / "manifest.json").exists()


def test_unknown_backend_is_one_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", str(SCENARIOS), "-b", "ful_context", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "unknown adapter 'ful_context' (did you mean 'full_context'?" in result.output
    result = runner.invoke(app, ["run", str(SCENARIOS), "-b", "full_context:maxtokens=5",
                                 "--out", str(tmp_path)])
    assert "has no option 'maxtokens' (options: max_tokens)" in result.output


def test_run_prints_the_table_and_score_reproduces_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["run", str(SCENARIOS), "--reader", "extractive", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("full_context", "no_memory (control)", "oracle", "evidence", "memory"):
        assert name in result.output
    before = (out / "scores.json").read_bytes()
    (out / "scores.json").unlink()
    result = runner.invoke(app, ["score", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "scores.json").read_bytes() == before
    # a price table given to `score` is kept, so scoring again gives the same bytes
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  extractive: {input: 0.5, output: 1.5}\n")
    assert runner.invoke(app, ["score", str(out), "--prices", str(prices)]).exit_code == 0
    priced = json.loads((out / "scores.json").read_text())
    assert priced["cells"][0]["tokens"]["cost"]["currency"] == "USD"
    with_prices = (out / "scores.json").read_bytes()
    assert runner.invoke(app, ["score", str(out)]).exit_code == 0
    assert (out / "scores.json").read_bytes() == with_prices


def test_score_on_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["score", str(tmp_path)])
    assert result.exit_code == 2 and "no manifest" in result.output


def test_schema_is_a_json_schema_of_the_format() -> None:
    result = runner.invoke(app, ["schema"])
    schema = json.loads(result.output)
    assert schema["$schema"].endswith("2020-12/schema")
    assert {"memeval", "facts", "sessions", "probes"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    # the copy beside the bundled scenarios, which editors read, is up to date
    assert json.loads((SCENARIOS / "memeval.schema.json").read_text()) == schema
    assert all(path.read_text().startswith("# yaml-language-server: $schema=memeval.schema.json")
               for path in SCENARIOS.glob("*.yaml"))


def test_broken_user_modules_and_readers_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken_memory.py").write_text("def oops(:\n")
    (tmp_path / "picky_memory.py").write_text(
        "from memeval.adapters.backends.no_memory import NoMemory\n"
        "class Picky(NoMemory):\n    def __init__(self):\n        raise RuntimeError('no db')\n")
    (tmp_path / "lost_reader.py").write_text(
        "from memeval.adapters.readers.extractive import ExtractiveReader\n"
        "class Lost(ExtractiveReader):\n    def count_tokens(self, text):\n"
        "        import torch_that_is_not_installed\n")
    cases = [
        (["-b", "broken_memory:Thing"], "importing broken_memory failed: SyntaxError"),
        (["-b", "picky_memory:Picky"], "backend 'picky_memory:Picky' failed to start: RuntimeError: no db"),
        (["-r", "lost_reader:Lost"], "needs the package 'torch_that_is_not_installed'"),
    ]
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    for args, message in cases:
        result = subprocess.run([sys.executable, "-m", "memeval.cli", "run", str(SCENARIOS), *args,
                                 "--out", str(tmp_path / "out")], capture_output=True, text=True,
                                env=env)
        assert result.returncode == 2, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr


def test_run_options_are_the_run_config_fields() -> None:
    """One list of run options: the CLI's flags, memeval.run()'s keywords and the manifest."""
    import typer.main

    from memeval.records import RunConfig

    group = typer.main.get_command(app)
    params = {p.name for p in group.commands["run"].params} - {"paths"}  # type: ignore[attr-defined]
    assert params == (set(RunConfig.model_fields) - {"backends"}) | {"backend"}
    doc = memeval.run.__doc__ or ""
    assert all(f"    {name}: " in doc for name in RunConfig.model_fields)


def test_a_misspelt_run_option_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(memeval.MemevalError, match=r"run option 'retires'.*options: backends"):
        memeval.run(SCENARIOS / "quick" / "garden-club.yaml", reader="extractive", out=tmp_path, retires=2)
    with pytest.raises(memeval.MemevalError, match=r"run option 'limit'"):
        memeval.run(SCENARIOS / "quick" / "garden-club.yaml", reader="extractive", out=tmp_path, limit=0)


def test_hostile_command_lines_are_one_line_and_fail(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = runner.invoke(app, ["validate", str(empty)])
    assert done.exit_code == 2 and "no scenario files" in done.output
    bad_option = runner.invoke(app, ["run", str(SCENARIOS / "quick" / "garden-club.yaml"), "-r", "extractive",
                                     "-b", "window:tokens=abc", "--out", str(tmp_path / "r")])
    assert bad_option.exit_code == 2
    assert "option tokens='abc' is not a whole number" in bad_option.output
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    into_file = runner.invoke(app, ["run", str(SCENARIOS / "quick" / "garden-club.yaml"), "-r", "extractive",
                                    "--out", str(a_file)])
    assert into_file.exit_code == 2 and "is a file, not a run directory" in into_file.output
    for result in (bad_option, into_file):
        assert "Traceback" not in result.output


def test_a_run_with_failed_probes_exits_1_and_still_prints_the_table(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(SCENARIOS.parent), os.environ.get("PYTHONPATH")]))}
    args = [sys.executable, "-m", "memeval.cli", "run", str(SCENARIOS / "quick" / "pets-and-moves.yaml"),
            "-b", "tests.helpers:FlakyBackend", "-r", "extractive", "--no-control", "--no-report"]
    failing = subprocess.run([*args, "--out", str(tmp_path / "a")], env=env, capture_output=True,
                             text=True)
    assert failing.returncode == 1, failing.stderr
    assert "FlakyBackend" in failing.stdout and "1 of 6 probes failed" in failing.stderr
    allowed = subprocess.run([*args, "--out", str(tmp_path / "b"), "--max-error-rate", "0.2"],
                             env=env, capture_output=True, text=True)
    assert allowed.returncode == 0, allowed.stderr


def test_no_secret_reaches_the_run_directory_or_the_console(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(SCENARIOS.parent), os.environ.get("PYTHONPATH")]))}
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "memeval.cli", "run", str(SCENARIOS / "quick" / "garden-club.yaml"), "--limit",
         "2", "--retries", "0", "-b", "tests.helpers:KeyedMemory:api_key=sk-PLANTED-1",
         "-r", "openai:model=m,timeout=1,base_url=http://ann:PLANTED-2@127.0.0.1:9/v1?key=PLANTED-3",
         "--out", str(out)], env=env, capture_output=True, text=True)
    assert done.returncode == 1  # nothing answers on port 9: every probe failed
    assert "PLANTED" not in done.stdout + done.stderr
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"manifest.json", "records.jsonl", "scores.json", "report.html"} <= {p.name for p in files}
    leaks = [p.name for p in files if b"PLANTED" in p.read_bytes()]
    assert leaks == []
    assert "api_key=***" in (out / "manifest.json").read_text()


def test_ctrl_c_while_scenarios_load_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import memeval.runner

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(memeval.runner, "plan_run", interrupted)
    done = runner.invoke(app, ["run", str(SCENARIOS), "-r", "extractive"])
    assert done.exit_code == 130 and "interrupted" in done.output
    assert "Traceback" not in done.output and "UnboundLocalError" not in done.output
