"""The langchain backend with real LangChain and LangGraph stores and the packaged MiniLM."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("langchain_core", reason="the langchain extra: pip install 'memeval[langchain]'")
pytest.importorskip("langgraph", reason="the langchain extra: pip install 'memeval[langchain]'")

from langchain_core.vectorstores import InMemoryVectorStore
from langgraph.store.memory import InMemoryStore

import memeval
from memeval.adapters.backends.langchain import LangChain
from memeval.adapters.embedders.minilm import MiniLMEmbedder
from memeval.registry import build_backend
from memeval.testing import assert_conforms

from ..conftest import SCENARIOS


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_runs_the_bundled_scenarios_by_name(tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS / "quick", backends=["langchain", "langchain:store=langgraph,top_k=3",
                                              "oracle"], reader="extractive", out=tmp_path / "run")
    cells = {c["backend"]: c for c in result.scores_json["cells"]}
    oracle = cells["oracle"]["evidence_retention"]["value"]
    for name in ("langchain", "langchain:store=langgraph,top_k=3"):
        assert cells[name]["errors"] == 0
        assert 0 < cells[name]["evidence_retention"]["value"] <= oracle
        assert cells[name]["footprint"]["peak_items"] > 0
    records = result.records()
    bob = records[(records["probe"] == "bob_dog") & records["backend"].str.startswith("langchain")]
    assert len(bob) == 2 and not bob["recall_text"].str.contains("Zorblat").any()


def test_users_own_objects_conform(embedder: MiniLMEmbedder) -> None:
    assert_conforms(lambda: LangChain(store=InMemoryVectorStore(embedding=embedder)))
    assert_conforms(lambda: LangChain(store=InMemoryStore(
        index={"dims": 384, "embed": embedder.embed_documents})))


@pytest.mark.parametrize("spec", ["langchain", "langchain:store=langgraph"])
def test_named_stores_conform(spec: str) -> None:
    assert_conforms(lambda: build_backend(spec)[1])


def test_a_users_vector_store_object_in_a_run(embedder: MiniLMEmbedder, tmp_path: Path) -> None:
    store = InMemoryVectorStore(embedding=embedder)
    result = memeval.run(SCENARIOS / "quick" / "garden-club.yaml", backends=[LangChain(store=store, top_k=2)],
                         reader="extractive", out=tmp_path / "run")
    assert result.scores_json["cells"][0]["evidence_retention"]["value"] > 0
    assert len(store.store) > 0  # the user's own store holds the turns


def test_bad_store_name() -> None:
    with pytest.raises(ValueError, match="store must be one of vectorstore, langgraph"):
        LangChain(store="pinecone")
