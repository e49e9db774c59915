"""The notebooks run top to bottom on the defaults, and show their table and figures."""

from __future__ import annotations

import pytest

from .conftest import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")


def execute(name: str, **parameters: str) -> list[dict]:
    """Run a notebook top to bottom; `parameters` (source text) override its parameters cell, as
    papermill does: a cell inserted after the one tagged `parameters`."""
    notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    if parameters:
        at = next(i for i, cell in enumerate(notebook.cells)
                  if "parameters" in cell.metadata.get("tags", []))
        source = "\n".join(f"{key} = {value}" for key, value in parameters.items())
        notebook.cells.insert(at + 1, nbformat.v4.new_code_cell(source))
    nbclient.NotebookClient(notebook, timeout=1800, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    return [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]


def kinds(outputs: list[dict]) -> list[str]:
    return [mime for out in outputs for mime in out.get("data", {})]


@pytest.mark.model
def test_compare_strategies_shows_the_table_and_figures() -> None:
    # one scenario, three probes: the whole quick set takes minutes (the summaries are model calls)
    outputs = execute("compare_strategies.ipynb", LIMIT="3",
                      SCENARIOS='ROOT / "scenarios" / "quick" / "pets-and-moves.yaml"')
    assert kinds(outputs).count("image/png") >= 2
    tables = [out["data"]["text/html"] for out in outputs if "text/html" in out.get("data", {})]
    assert any("<table" in t and "evidence_retention" in t and "summary" in t for t in tables)
    text = "".join(out.get("text", "") for out in outputs)
    assert "memorization ratio of the no-memory control" in text
    assert "report.html" in text


@pytest.mark.model
def test_your_backend_checks_then_evaluates_a_custom_backend() -> None:
    outputs = execute("your_backend.ipynb", LIMIT="3",
                      SCENARIOS='ROOT / "scenarios" / "quick" / "pets-and-moves.yaml"')
    text = "".join(out.get("text", "") for out in outputs)
    assert "KeywordMemory" in text and "evidence" in text
    assert kinds(outputs).count("image/png") >= 1
    assert any("<table" in out["data"]["text/html"] for out in outputs
               if "text/html" in out.get("data", {}))


@pytest.mark.model
def test_kv_policies_compares_policies_on_one_chart() -> None:
    outputs = execute("kv_policies.ipynb", LIMIT="2")
    assert kinds(outputs).count("image/png") >= 1
    tables = [out["data"]["text/html"] for out in outputs if "text/html" in out.get("data", {})]
    assert any("<table" in t and "compression_ratio" in t and "snapkv 50 %" in t for t in tables)
    text = "".join(out.get("text", "") for out in outputs)
    gap = float(text.split("largest gap ")[1].split("%")[0])
    assert gap <= 5.0 and "report.html" in text
