"""The mem0 backend with real mem0 (local qdrant, the packaged MiniLM), raw-storage mode."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import memeval
from memeval.registry import build_backend
from memeval.testing import assert_conforms

from ..conftest import SCENARIOS

if importlib.util.find_spec("mem0") is None:  # find, not import: importing turns telemetry on
    pytest.skip("mem0 is an optional extra: pip install 'memeval[mem0]'", allow_module_level=True)


def test_mem0_conforms() -> None:
    assert_conforms(lambda: build_backend("mem0")[1])


def test_mem0_runs_the_bundled_scenarios(tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS, backends=["mem0:top_k=3", "oracle"], reader="extractive",
                         out=tmp_path / "run")
    cells = {c["backend"]: c for c in result.scores_json["cells"]}
    mem0 = cells["mem0:top_k=3"]
    assert mem0["errors"] == 0
    assert 0 < mem0["evidence_retention"]["value"] <= cells["oracle"]["evidence_retention"]["value"]
    assert mem0["footprint"]["peak_items"] > 0
    assert list((tmp_path / "run" / "work").glob("*mem0*/mem0/history.db"))
    records = result.records()
    bob = records[(records["probe"] == "bob_dog") & (records["backend"] == "mem0:top_k=3")]
    assert not bob["recall_text"].str.contains("Zorblat").any()


def test_extraction_mode_needs_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(memeval.MemevalError, match="infer=true needs a model"):
        build_backend("mem0:infer=true")
