"""The README's custom backend is the shipped example, and it passes the conformance kit."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import memeval
from memeval.testing import assert_conforms

from .conftest import ROOT, SCENARIOS


def _example():
    spec = importlib.util.spec_from_file_location("keyword_memory", ROOT / "examples" / "keyword_memory.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.KeywordMemory


def test_readme_shows_the_example_verbatim() -> None:
    readme = (ROOT / "README.md").read_text()
    assert (ROOT / "examples" / "keyword_memory.py").read_text() in readme


def test_example_backend_passes_the_kit_and_runs(tmp_path: Path) -> None:
    keyword_memory = _example()
    assert_conforms(keyword_memory)
    result = memeval.run(SCENARIOS, backends=[keyword_memory(), "oracle"], reader="extractive",
                         out=tmp_path / "run")
    cells = {c["backend"]: c for c in result.scores_json["cells"]}
    assert 0 < cells["KeywordMemory"]["evidence_retention"]["value"] <= 1
