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
    result = memeval.run(SCENARIOS / "quick", backends=["mem0:top_k=3", "oracle"], reader="extractive",
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


def test_mem0_lists_what_it_holds_for_each_user(tmp_path: Path) -> None:
    from memeval.protocols import CellContext, SessionInfo, Turn

    backend = build_backend("mem0")[1]
    backend.bind(CellContext(count_tokens=len, context_tokens=4096, workdir=tmp_path))
    for user in ("alice", "bob"):
        backend.reset(user)
    for i in range(25):  # more than get_all's default of 20
        backend.observe(Turn(id=f"a1.t{i}", session_id="a1", user="alice", role="user",
                             text=f"Note {i}: my locker code is Vellamorn-{i}."))
    backend.end_session(SessionInfo(id="a1", user="alice", turn_count=25))
    listed = backend.memories("alice")
    assert len(listed) == 25 and any("Vellamorn-7" in m for m in listed)
    assert backend.memories("bob") == []
    assert backend.footprint().items == 25
    backend.close()
