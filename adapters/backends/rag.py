"""Retrieval-augmented memory: chunks of conversation in embedded chromadb, recalled by similarity."""

from __future__ import annotations

import uuid
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from memeval.adapters.backends import folder_bytes, render_turns
from memeval.protocols import (
    CellContext,
    Embedder,
    Footprint,
    MemoryBackend,
    Query,
    Recall,
    RecallItem,
    SessionInfo,
    Turn,
    Usage,
)

CHUNKS = ("turn", "session", "window")


def chroma_embedding_function(embedder: Embedder) -> Any:
    """Wrap an Embedder for chromadb, so chromadb never loads (or downloads) its own model."""
    from chromadb.api.types import EmbeddingFunction

    class _Ours(EmbeddingFunction):
        def __init__(self) -> None:
            pass

        def __call__(self, input: list[str]) -> list[list[float]]:  # type: ignore[override] # lists pass
            return embedder.embed_documents(list(input))

        def embed_query(self, input: list[str]) -> list[list[float]]:  # type: ignore[override] # lists pass
            return [embedder.embed_query(text) for text in input]

        @staticmethod
        def name() -> str:
            return "memeval"

        def get_config(self) -> dict[str, Any]:
            return {}

        @staticmethod
        def build_from_config(config: dict[str, Any]) -> Any:
            return _Ours()

    return _Ours()


class Rag(MemoryBackend):
    """Stores conversation chunks with their embeddings; recalls the most similar for the user.

    Args:
        top_k: Chunks recalled per query (ignored when `budget` is given).
        budget: Recall chunks by similarity until this many reader tokens are used.
        chunk: "turn" (one chunk per turn), "session" (one per session) or "window"
            (consecutive turns of about `window_tokens` tokens).
        window_tokens: Chunk size for `chunk=window`.
        persist: Keep the chromadb files in the run directory (False: in memory).
        batch_size: Chunks embedded together; embedding is batched across turns.
        embedder: An `Embedder`; default all-MiniLM-L6-v2 from its PyPI package.
    """

    def __init__(self, top_k: int = 5, budget: int | None = None, chunk: str = "turn",
                 window_tokens: int = 256, persist: bool = True, batch_size: int = 64,
                 embedder: Embedder | None = None):
        if chunk not in CHUNKS:
            raise ValueError(f"chunk must be one of {', '.join(CHUNKS)}, not {chunk!r}")
        self.top_k, self.budget, self.chunk = top_k, budget, chunk
        self.window_tokens, self.persist, self.batch_size = window_tokens, persist, batch_size
        self.embedder = embedder
        self._count: Any = len
        self._collection: Any = None
        self._path: Path | None = None
        self._open: dict[str, list[Turn]] = defaultdict(list)  # turns not yet in a chunk
        self._ready: list[tuple[str, list[Turn]]] = []  # chunks waiting to be embedded
        self._chunks: dict[str, tuple[str, int]] = {}  # chunk id -> (user, text bytes)
        self._ordinal = 0
        self._dims = 0
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memeval-rag")
        self._writing: Future[Any] | None = None

    def bind(self, context: CellContext) -> None:
        import chromadb
        from chromadb.config import Settings

        if self.embedder is None:
            from memeval.adapters.embedders.minilm import MiniLMEmbedder

            self.embedder = MiniLMEmbedder(batch_size=self.batch_size)
        self._count = context.count_tokens
        settings = Settings(anonymized_telemetry=False, allow_reset=True)
        if self.persist:
            self._path = context.workdir / "chroma"
            client = chromadb.PersistentClient(path=str(self._path), settings=settings)
        else:
            client = chromadb.EphemeralClient(settings=settings)
        # ephemeral clients in one process share state: a unique name keeps cells apart
        self._collection = client.create_collection(
            f"memeval-{uuid.uuid4().hex}", embedding_function=chroma_embedding_function(self.embedder),
            metadata={"hnsw:space": "cosine"})

    def reset(self, scope: str) -> None:
        self._open.pop(scope, None)
        self._ready = [(user, turns) for user, turns in self._ready if user != scope]
        ids = [cid for cid, (user, _) in self._chunks.items() if user == scope]
        self._settle()
        if ids:
            self._collection.delete(ids=ids)
        for cid in ids:
            del self._chunks[cid]

    def observe(self, turn: Turn) -> None:
        if self.chunk == "turn":
            self._ready.append((turn.user, [turn]))
        else:
            self._open[turn.user].append(turn)
            if self.chunk == "window" and sum(
                    self._count(t.text) for t in self._open[turn.user]) >= self.window_tokens:
                self._ready.append((turn.user, self._open.pop(turn.user)))
        if len(self._ready) >= self.batch_size:
            self._flush()

    def end_session(self, session: SessionInfo) -> None:
        if self.chunk == "session" and self._open.get(session.user):
            self._ready.append((session.user, self._open.pop(session.user)))
        # no flush here: sessions are short, and embedding pays off in full batches
        if len(self._ready) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        if not self._ready:
            return
        ids, texts, contents, metas = [], [], [], []
        for user, turns in self._ready:
            self._ordinal += 1
            cid = f"{turns[0].id}~{self._ordinal}"
            text = render_turns(turns)
            ids.append(cid)
            texts.append(text)
            # embed what was said; dates and speakers only dilute the similarity
            contents.append("\n".join(t.text for t in turns))
            metas.append({"user": user, "session": turns[0].session_id, "role": turns[0].role,
                          "time": turns[0].time.isoformat() if turns[0].time else "",
                          "turns": ",".join(t.id for t in turns), "ordinal": self._ordinal})
            self._chunks[cid] = (user, len(text.encode()))
        self._ready = []
        vectors = self.embedder.embed_documents(contents)  # type: ignore[union-attr] # set by bind
        self._dims = len(vectors[0])
        # Store in the background while the next batch is embedded; _settle() waits.
        self._settle()
        self._writing = self._writer.submit(self._collection.add, ids=ids, documents=texts,
                                            metadatas=metas, embeddings=vectors)

    def _settle(self) -> None:
        """Wait for the last background write (and raise its error, if any)."""
        if self._writing is not None:
            writing, self._writing = self._writing, None
            writing.result()

    def recall(self, query: Query) -> Recall:
        pending = self._open.get(query.user)
        if pending:  # an unfinished window or session: make it searchable now
            self._ready.append((query.user, self._open.pop(query.user)))
        self._flush()
        self._settle()
        stored = sum(1 for user, _ in self._chunks.values() if user == query.user)
        if not stored:
            return Recall(text="")
        want = stored if self.budget is not None else min(self.top_k, stored)
        # Ask for more than needed and cut by (distance, ordinal) ourselves: identical chunks
        # (repeated filler) tie, and the index returns either of them at random.
        found = self._collection.query(
            query_embeddings=[self.embedder.embed_query(query.text)],  # type: ignore[union-attr] # bind
            n_results=min(2 * want, stored), where={"user": query.user},
            include=["documents", "metadatas", "distances"])
        hits = sorted(zip(found["documents"][0], found["metadatas"][0], found["distances"][0],
                          strict=True), key=lambda h: (round(h[2], 6), h[1]["ordinal"]))[:want]
        if self.budget is not None:
            kept, used = [], 0
            for hit in hits:
                cost = self._count(hit[0]) + 1
                if used + cost > self.budget:
                    continue  # a smaller, less similar chunk may still fit
                kept.append(hit)
                used += cost
            hits = kept
        hits.sort(key=lambda h: h[1]["ordinal"])  # conversation order reads best
        return Recall(text="\n".join(doc for doc, _, _ in hits), items=tuple(
            RecallItem(text=doc, turn_id=str(meta["turns"]), score=round(1 - dist, 6))
            for doc, meta, dist in hits))

    def footprint(self) -> Footprint:
        self._flush()
        self._settle()
        items = len(self._chunks)
        text_bytes = sum(size for _, size in self._chunks.values())
        vector_bytes = items * self._dims * 4  # float32
        detail = {"text_bytes": text_bytes, "vector_bytes": vector_bytes}
        if self._path is not None:
            detail["disk_bytes"] = folder_bytes(self._path)
        return Footprint(items=items, bytes=text_bytes + vector_bytes, detail=detail)

    def close(self) -> None:
        """Finish the last write and stop the writer thread (the runner calls this per cell)."""
        self._settle()
        self._writer.shutdown()

    def model_usage(self) -> Usage:
        return Usage(input_tokens=getattr(self.embedder, "tokens", 0))
