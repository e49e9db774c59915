"""Retrieval-augmented memory: chunks of conversation in embedded chromadb, recalled by similarity."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter, defaultdict
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
        self._client: Any = None
        self._function: Any = None
        self._path: Path | None = None
        self._forget()
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
        self._function = chroma_embedding_function(self.embedder)
        settings = Settings(anonymized_telemetry=False, allow_reset=True)
        self._release()  # a reused instance: the previous cell's store is done with
        if self.persist:
            self._path = context.workdir / "chroma"
            self._client = chromadb.PersistentClient(path=str(self._path), settings=settings)
        else:
            self._path = None
            self._client = chromadb.EphemeralClient(settings=settings)

    def _forget(self) -> None:
        """Start with an empty store: no collections, chunks or running totals."""
        # One collection per user, made on its first write: a filtered query on one shared
        # collection scans the metadata (14 ms at 7k chunks, 110 ms at 73k).
        self._collections: dict[str, Any] = {}
        self._open: dict[str, list[Turn]] = defaultdict(list)  # turns not yet in a chunk
        # Chunks wait per user, so that each batch is one embedding call and one add to one
        # collection: an add costs about 8 ms on top of its chunks.
        self._ready: dict[str, list[list[Turn]]] = defaultdict(list)
        # running totals, so recall and footprint never walk the stored chunks
        self._items: Counter[str] = Counter()  # user -> chunks stored
        # user -> hash of an embedded text -> ids of the chunks holding it, oldest first
        self._same: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        self._text_bytes: Counter[str] = Counter()  # user -> bytes of stored chunk text
        self._ordinal = 0

    def _release(self) -> None:
        """Finish writing and drop in-memory collections (ephemeral clients share one process)."""
        self._settle()
        if self._path is None:  # this cell's client is the in-memory one
            for collection in self._collections.values():
                self._client.delete_collection(collection.name)
        self._forget()

    def reset(self, scope: str) -> None:
        self._open.pop(scope, None)
        self._ready.pop(scope, None)
        self._settle()
        collection = self._collections.pop(scope, None)
        if collection is not None:
            self._client.delete_collection(collection.name)
        self._items.pop(scope, None)
        self._text_bytes.pop(scope, None)
        self._same.pop(scope, None)

    def observe(self, turn: Turn) -> None:
        if self.chunk == "turn":
            self._queue(turn.user, [turn])
        else:
            self._open[turn.user].append(turn)
            if self.chunk == "window" and sum(
                    self._count(t.text) for t in self._open[turn.user]) >= self.window_tokens:
                self._queue(turn.user, self._open.pop(turn.user))

    def end_session(self, session: SessionInfo) -> None:
        if self.chunk == "session" and self._open.get(session.user):
            self._queue(session.user, self._open.pop(session.user))

    def _queue(self, user: str, chunk: list[Turn]) -> None:
        # no flush before a batch is full: sessions are short, and embedding pays off in batches
        self._ready[user].append(chunk)
        if len(self._ready[user]) >= self.batch_size:
            self._flush(user)

    def _flush(self, user: str) -> None:
        chunks = self._ready.pop(user, None)
        if not chunks:
            return
        # embed what was said; dates and speakers only dilute the similarity
        contents = ["\n".join(t.text for t in turns) for turns in chunks]
        vectors = self.embedder.embed_documents(contents)  # type: ignore[union-attr] # set by bind
        self._dims = len(vectors[0])
        ids, texts, metas = [], [], []
        for turns, content in zip(chunks, contents, strict=True):
            self._ordinal += 1
            ids.append(f"{turns[0].id}~{self._ordinal}")
            key = hashlib.blake2b(content.encode(), digest_size=8).hexdigest()
            self._same[user][key].append(ids[-1])
            texts.append(render_turns(turns))
            metas.append({"user": user, "session": turns[0].session_id, "role": turns[0].role,
                          "time": turns[0].time.isoformat() if turns[0].time else "",
                          "turns": ",".join(t.id for t in turns), "ordinal": self._ordinal,
                          "content": key})
        self._items[user] += len(texts)
        self._text_bytes[user] += sum(len(text.encode()) for text in texts)
        # Store in the background while the next batch is embedded; _settle() waits, so only
        # one thread at a time calls chromadb.
        self._settle()
        if user not in self._collections:
            # user names may hold any character: the collection's name is ours
            self._collections[user] = self._client.create_collection(
                f"memeval-{uuid.uuid4().hex}", metadata={"hnsw:space": "cosine"},
                embedding_function=self._function)
        self._writing = self._writer.submit(self._collections[user].add, ids=ids,
                                            documents=texts, metadatas=metas, embeddings=vectors)

    def _settle(self) -> None:
        """Wait for the last background write (and raise its error, if any)."""
        if self._writing is not None:
            writing, self._writing = self._writing, None
            writing.result()

    def settle(self, user: str) -> None:
        if self._open.get(user):  # an unfinished window or session: searchable now
            self._ready[user].append(self._open.pop(user))
        self._flush(user)  # other users' chunks can wait: they are never searched here
        self._settle()

    def recall(self, query: Query) -> Recall:
        self.settle(query.user)  # a no-op after the runner's own call
        stored = self._items[query.user]
        if not stored:
            return Recall(text="")
        want = stored if self.budget is not None else min(self.top_k, stored)
        # Ask for more than needed and cut by (distance, ordinal) ourselves: identical chunks
        # (repeated filler) tie, and the index returns either of them at random.
        found = self._collections[query.user].query(
            query_embeddings=[self.embedder.embed_query(query.text)],  # type: ignore[union-attr] # bind
            n_results=min(2 * want, stored), include=["documents", "metadatas", "distances"])
        hits = sorted(self._earliest(query.user, found),
                      key=lambda h: (round(h[2], 6), h[1]["ordinal"]))[:want]
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

    def _earliest(self, user: str, found: Any) -> list[tuple[str, Any, float]]:
        """The hits, each chunk of a repeated text replaced by the earliest chunks that hold it.

        Identical texts (repeated filler) have one embedding and tie, and the index returns
        any of them at random: without this the same conversation would recall other
        chunks (other dates) from one run to the next.
        """
        hits = list(zip(found["ids"][0], found["documents"][0], found["metadatas"][0],
                        found["distances"][0], strict=True))
        taken: Counter[str] = Counter()
        chosen = []
        for _, _, meta, dist in hits:
            key = str(meta.get("content", ""))
            same = self._same[user].get(key, [])
            if taken[key] < len(same):
                chosen.append((same[taken[key]], dist))
                taken[key] += 1
        have = {cid: (doc, meta) for cid, doc, meta, _ in hits}
        missing = [cid for cid, _ in chosen if cid not in have]
        if missing:
            got = self._collections[user].get(ids=missing, include=["documents", "metadatas"])
            have.update(zip(got["ids"], zip(got["documents"], got["metadatas"], strict=True),
                            strict=True))
        return [(*have[cid], dist) for cid, dist in chosen]

    def footprint(self) -> Footprint:
        for user in list(self._ready):
            self._flush(user)
        self._settle()
        items, text_bytes = self._items.total(), self._text_bytes.total()
        vector_bytes = items * self._dims * 4  # float32
        detail = {"text_bytes": text_bytes, "vector_bytes": vector_bytes}
        if self._path is not None:
            detail["disk_bytes"] = folder_bytes(self._path)
        return Footprint(items=items, bytes=text_bytes + vector_bytes, detail=detail)

    def close(self) -> None:
        """Finish the last write, drop in-memory collections, stop the writer (the runner: per cell)."""
        if self._client is not None:
            self._release()
        self._writer.shutdown()

    def model_usage(self) -> Usage:
        return Usage(input_tokens=getattr(self.embedder, "tokens", 0))
