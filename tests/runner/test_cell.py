"""A cell is one unit of work: JSON in, records out, in any process, in any order."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import memeval
from memeval.errors import MemevalError
from memeval.protocols import Footprint, MemoryBackend, Query, Recall, Turn
from memeval.records import Cell, RunConfig, read_records
from memeval.runner import CellRuntime, execute_cell, plan_run

from ..conftest import ROOT, SCENARIOS
from ..helpers import MEASURED

#: Measured, not replayed: they differ between any two runs.


def comparable(records: list) -> list[dict]:
    rows = []
    for r in records:
        row = r.model_dump(exclude=MEASURED)
        if row["footprint"]:
            row["footprint"]["detail"].pop("disk_bytes", None)  # files on disk vary by run dir
        rows.append(row)
    return sorted(rows, key=lambda row: (row["scenario"], row["backend"], row["probe"]))


def test_each_cell_runs_alone_in_a_fresh_process_from_its_json(tmp_path: Path) -> None:
    backends = ["full_context", "window:tokens=200", "oracle", "rag:persist=false"]
    scenarios = [SCENARIOS / "quick" / "pets-and-moves.yaml", SCENARIOS / "update-new-job.yaml"]
    result = memeval.run(scenarios, backends=backends, reader="extractive", out=tmp_path / "run",
                         report=False)
    in_process = read_records(result.run_dir)

    plan = plan_run(scenarios, RunConfig(backends=backends, reader="extractive",
                                         out=tmp_path / "cells"))
    cells = plan.cells()
    assert len(cells) == len(scenarios) * (len(backends) + 1)  # the control is one more cell
    assert any(c.control for c in cells)
    apart = []
    for i, cell in enumerate(reversed(cells)):  # any order: no cell waits for another
        path = tmp_path / f"cell-{i}.json"
        path.write_text(cell.model_dump_json())
        assert Cell.model_validate_json(path.read_text()) == cell
        done = subprocess.run([sys.executable, "-m", "memeval.runner", str(path)],
                              capture_output=True, text=True, check=True, cwd=ROOT)
        apart += [memeval.records.ProbeRecord.model_validate_json(line)
                  for line in done.stdout.splitlines()]
    assert len(apart) == len(in_process)
    assert comparable(apart) == comparable(in_process)


def test_a_cell_that_was_altered_in_transit_is_refused(tmp_path: Path) -> None:
    plan = plan_run([SCENARIOS / "quick" / "garden-club.yaml"],
                    RunConfig(backends=["oracle"], reader="extractive", out=tmp_path, control=False))
    cell = plan.cells()[0]
    tampered = json.loads(cell.model_dump_json())
    tampered["scenario"]["title"] = "something else"
    with pytest.raises(MemevalError, match="does not match its hash"):
        execute_cell(Cell.model_validate(tampered))


def test_a_python_object_cell_says_it_cannot_travel(tmp_path: Path) -> None:
    from memeval.adapters.backends.full_context import FullContext

    plan = plan_run([SCENARIOS / "quick" / "garden-club.yaml"],
                    RunConfig(backends=[FullContext()], reader="extractive", out=tmp_path,
                              control=False))
    (cell,) = plan.cells()
    assert cell.backend.spec is None
    with pytest.raises(MemevalError, match="given as a Python object"):
        CellRuntime.for_cell(cell)
    path = tmp_path / "cell.json"
    path.write_text(cell.model_dump_json())
    done = subprocess.run([sys.executable, "-m", "memeval.runner", str(path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: backend 'FullContext' was given as a Python object")


class Counting(MemoryBackend):
    """Keeps turns per user; counts binds and closes, and fails once closed."""

    def __init__(self) -> None:
        self.turns: dict[str, list[Turn]] = {}
        self.binds = self.closes = 0

    def bind(self, context: object) -> None:
        assert not self.closes, "used after close()"
        self.binds += 1

    def reset(self, scope: str) -> None:
        self.turns[scope] = []

    def observe(self, turn: Turn) -> None:
        self.turns.setdefault(turn.user, []).append(turn)

    def recall(self, query: Query) -> Recall:
        assert not self.closes, "used after close()"
        return Recall(text="\n".join(t.text for t in self.turns.get(query.user, [])))

    def footprint(self) -> Footprint:
        return Footprint(items=sum(map(len, self.turns.values())), bytes=0)

    def close(self) -> None:
        self.closes += 1


def test_the_runner_closes_what_it_builds_and_never_what_it_is_given(tmp_path: Path) -> None:
    scenarios = [SCENARIOS / "quick" / "pets-and-moves.yaml", SCENARIOS / "quick" / "garden-club.yaml",
                 SCENARIOS / "quick" / "work-trip.yaml"]
    mine = Counting()
    with mine:
        result = memeval.run(scenarios, backends=[mine], reader="extractive", out=tmp_path / "a",
                             control=False, report=False)
        assert mine.binds == 3 and mine.closes == 0  # one bind per cell, never closed
        assert all(r.error is None for r in read_records(result.run_dir))
    assert mine.closes == 1  # by the context manager, the owner

    built: list[Counting] = []

    class Built(Counting):
        def __init__(self) -> None:
            super().__init__()
            built.append(self)

    memeval.run(scenarios, backends=[Built], reader="extractive", out=tmp_path / "b",
                control=False, report=False)
    # one probe instance when planning, then one per cell: each closed exactly once
    assert len(built) == 4 and all(b.closes == 1 for b in built)


def test_a_rag_instance_serves_three_scenarios(tmp_path: Path) -> None:
    from memeval.adapters.backends.rag import Rag

    scenarios = [SCENARIOS / "quick" / "pets-and-moves.yaml", SCENARIOS / "quick" / "garden-club.yaml",
                 SCENARIOS / "quick" / "work-trip.yaml"]
    with Rag(persist=False) as rag:
        result = memeval.run(scenarios, backends=[rag], reader="extractive", out=tmp_path / "run",
                             control=False, report=False)
    records = read_records(result.run_dir)
    assert {r.scenario for r in records} == {"pets-and-moves", "garden-club", "work-trip"}
    assert all(r.error is None for r in records), [r.error for r in records if r.error]
    rag_cell = result.cell("Rag")
    assert rag_cell.evidence_retention and rag_cell.evidence_retention.value > 0.5
