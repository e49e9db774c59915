"""Any LangChain `VectorStore` (with its `Embeddings`) or LangGraph `BaseStore` as a memory."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from memeval.adapters.backends import render_turns
from memeval.protocols import CellContext, Footprint, MemoryBackend, Query, Recall, RecallItem, Turn

STORES = ("vectorstore", "langgraph")


class LangChain(MemoryBackend):
    """Stores each turn in a LangChain vector store or LangGraph store; recalls the top matches.

    Args:
        store: A `langchain_core.vectorstores.VectorStore` or a `langgraph.store.base.BaseStore`
            (your own objects, from Python); or, from the command line, "vectorstore"
            (`InMemoryVectorStore`) or "langgraph" (`InMemoryStore` with a vector index),
            both embedding with the packaged MiniLM.
        top_k: Turns recalled per query.
        batch_size: Turns added to the store together.
    """

    def __init__(self, store: Any = "vectorstore", top_k: int = 5, batch_size: int = 64):
        if isinstance(store, str) and store not in STORES:
            raise ValueError(f"store must be one of {', '.join(STORES)} or a store object")
        self.store, self.top_k, self.batch_size = store, top_k, batch_size
        self._pending: list[Turn] = []
        self._ids: dict[str, dict[str, int]] = defaultdict(dict)  # user -> turn id -> text bytes
        self._turns: dict[str, Turn] = {}

    def bind(self, context: CellContext) -> None:
        if isinstance(self.store, str):
            from memeval.adapters.embedders.minilm import MiniLMEmbedder

            embedder = MiniLMEmbedder()
            if self.store == "langgraph":
                from langgraph.store.memory import InMemoryStore

                # langgraph's IndexConfig types `embed` narrower than the callables it accepts
                index: Any = {"dims": MiniLMEmbedder.dimensions, "embed": embedder.embed_documents}
                self.store = InMemoryStore(index=index)
            else:
                from langchain_core.vectorstores import InMemoryVectorStore

                self.store = InMemoryVectorStore(embedding=embedder)  # type: ignore[arg-type] # duck-typed Embeddings

    @property
    def _is_graph_store(self) -> bool:
        from langgraph.store.base import BaseStore

        return isinstance(self.store, BaseStore)

    def reset(self, scope: str) -> None:
        self._pending = [t for t in self._pending if t.user != scope]
        ids = list(self._ids.pop(scope, {}))
        if not ids:
            return
        if self._is_graph_store:
            for key in ids:
                self.store.delete(("memeval", scope), key)
        else:
            self.store.delete(ids=ids)
        for key in ids:
            self._turns.pop(key, None)

    def observe(self, turn: Turn) -> None:
        self._pending.append(turn)
        if len(self._pending) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        turns, self._pending = self._pending, []
        if not turns:
            return
        if self._is_graph_store:
            for t in turns:
                self.store.put(("memeval", t.user), t.id, {"text": t.text, "role": t.role})
        else:
            self.store.add_texts([t.text for t in turns], ids=[t.id for t in turns],
                                 metadatas=[{"user": t.user, "session": t.session_id, "role": t.role}
                                            for t in turns])
        for t in turns:
            self._ids[t.user][t.id] = len(t.text.encode())
            self._turns[t.id] = t

    def settle(self, user: str) -> None:
        self._flush()

    def recall(self, query: Query) -> Recall:
        self._flush()
        if not self._ids.get(query.user):
            return Recall(text="")
        if self._is_graph_store:
            found = self.store.search(("memeval", query.user), query=query.text, limit=self.top_k)
            hits = [(item.key, item.score) for item in found]
        else:
            hits = [(doc.id, score) for doc, score in self._search(query)]
        # the store's own filter may be ignored by some stores: never let another user through
        hits = [(key, score) for key, score in hits if key in self._ids[query.user]][: self.top_k]
        order = {key: i for i, key in enumerate(self._ids[query.user])}  # conversation order
        turns = sorted((self._turns[key] for key, _ in hits), key=lambda t: order[t.id])
        scores = dict(hits)
        return Recall(text=render_turns(turns), items=tuple(
            RecallItem(text=t.text, turn_id=t.id, score=scores[t.id]) for t in turns))

    def _search(self, query: Query) -> list[tuple[Any, float]]:
        from langchain_core.vectorstores import InMemoryVectorStore

        user = query.user
        if isinstance(self.store, InMemoryVectorStore):
            return self.store.similarity_search_with_score(
                query.text, k=self.top_k, filter=lambda doc: doc.metadata.get("user") == user)
        return self.store.similarity_search_with_score(query.text, k=self.top_k, filter={"user": user})

    def memories(self, user: str) -> list[str]:
        """The texts the store holds under the user's turn ids (read back from the store, not
        from this adapter's copy)."""
        self._flush()
        keys = list(self._ids.get(user, {}))
        if not keys:
            return []
        if self._is_graph_store:
            items = [self.store.get(("memeval", user), key) for key in keys]
            return [item.value["text"] for item in items if item is not None]
        return [doc.page_content for doc in self.store.get_by_ids(keys)]

    def footprint(self) -> Footprint:
        self._flush()
        sizes = [size for per_user in self._ids.values() for size in per_user.values()]
        return Footprint(items=len(sizes), bytes=sum(sizes), detail={"text_bytes": sum(sizes)})
