"""The langchain backend lists what its store holds for a user (the store audit's hook)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("langchain_core", reason="the langchain extra: pip install 'memeval[langchain]'")
pytest.importorskip("langgraph", reason="the langchain extra: pip install 'memeval[langchain]'")

from langchain_core.vectorstores import InMemoryVectorStore
from langgraph.store.memory import InMemoryStore

from memeval.adapters.backends.langchain import LangChain
from memeval.protocols import Turn
from memeval.testing import HashEmbedder, assert_conforms


def stores() -> list[Any]:
    embedder = HashEmbedder()
    return [InMemoryVectorStore(embedding=embedder),  # duck-typed Embeddings
            InMemoryStore(index={"dims": embedder.dimensions, "embed": embedder.embed_documents})]


@pytest.mark.parametrize("store", stores(), ids=["vectorstore", "langgraph"])
def test_memories_are_the_stores_texts_for_that_user(store: Any) -> None:
    backend = LangChain(store=store, batch_size=8)
    for i, (user, text) in enumerate([("alice", "My code is Vellamorn-58."),
                                      ("bob", "My parrot is Quintessa."),
                                      ("alice", "I live in Porto.")]):
        backend.observe(Turn(id=f"s.t{i}", session_id="s", user=user, role="user", text=text))
    # still batched: listing writes the batch first
    assert backend.memories("alice") == ["My code is Vellamorn-58.", "I live in Porto."]
    assert backend.memories("bob") == ["My parrot is Quintessa."]
    backend.reset("alice")
    assert backend.memories("alice") == [] and backend.memories("carol") == []


def test_it_conforms_with_the_hook() -> None:
    assert_conforms(lambda: LangChain(store=stores()[0]))
