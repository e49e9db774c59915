"""Static checks in the test command: the import floors (import-linter) and types (mypy).

memeval.adapters lives in the top-level adapters/ folder and is mapped into the package at
install time; both tools read the package from disk, so they run on a copy laid out as
installed (memeval/adapters inside memeval/), with pyproject.toml's settings.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT


def installed_layout(where: Path) -> Path:
    shutil.copytree(ROOT / "memeval", where / "memeval",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "adapters", where / "memeval" / "adapters",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", where / "pyproject.toml")
    return where


def tool(tree: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).with_name(name)), *args], cwd=tree,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(tree)})


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return tool(tree, "lint-imports", "--no-cache")


def test_the_floors_hold_and_there_is_no_cycle(tmp_path: Path) -> None:
    done = lint_imports(installed_layout(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def test_an_upward_import_or_a_cycle_breaks_the_contracts(tmp_path: Path) -> None:
    tree = installed_layout(tmp_path)
    records = tree / "memeval" / "records.py"
    records.write_text(records.read_text() + "\nfrom memeval.scoring import stats  # noqa\n")
    backend = tree / "memeval" / "adapters" / "backends" / "no_memory.py"
    backend.write_text(backend.read_text() + "\nimport memeval.runner  # noqa\n")
    done = lint_imports(tree)
    assert done.returncode == 1
    assert "memeval.records -> memeval.scoring.stats" in done.stdout
    assert "memeval.adapters.backends.no_memory -> memeval.runner" in done.stdout
    # a cycle inside one floor: scoring.stats importing scoring.scores, which imports stats
    stats = tree / "memeval" / "scoring" / "stats.py"
    stats.write_text(stats.read_text() + "\nimport memeval.scoring.scores  # noqa\n")
    again = lint_imports(tree)
    assert "no import cycle among the modules of any package BROKEN" in again.stdout


def test_memeval_and_its_adapters_type_check(tmp_path: Path) -> None:
    done = tool(installed_layout(tmp_path), "mypy", "memeval", "--cache-dir", str(tmp_path / ".mypy"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout
