"""A rolling summary for the gist, plus retrieval for the details."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from memeval.adapters.backends import render_turns
from memeval.adapters.backends.rag import Rag
from memeval.adapters.backends.summary import Summary
from memeval.protocols import (
    CellContext,
    Embedder,
    Footprint,
    MemoryBackend,
    Query,
    Reader,
    Recall,
    RecallItem,
    SessionInfo,
    Turn,
    Usage,
)

if TYPE_CHECKING:
    from memeval.adapters.backends.bm25 import Bm25

LEXICAL = ("bm25",)


def rrf(rankings: Sequence[Sequence[str]], k: int = 60,
        order: Mapping[str, int] | None = None) -> list[tuple[str, float]]:
    """Reciprocal rank fusion: each id scores the sum of 1/(k + rank) over the rankings it is in.

    Ranks start at 1. Best first; equal scores go to the id earlier in `order` (conversation
    order), then to the smaller id, so the fused order is deterministic.
    """
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (k + rank)
    order = order or {}
    return sorted(fused.items(), key=lambda kv: (-kv[1], order.get(kv[0], len(order)), kv[0]))


class Hybrid(MemoryBackend):
    """Recalls the user's summary followed by the most similar stored turns.

    With `lexical="bm25"` the turns are chosen by reciprocal rank fusion of two rankings: the
    vector similarity of `rag` and the BM25 score of `bm25`, each proposing its best
    2 × `top_k` turns; a turn scores the sum of 1/(`rrf_k` + rank) over the rankings that hold
    it, the best `top_k` are kept (equal scores: the earlier turn) and shown in conversation
    order, each item carrying its fused score.

    Args:
        top_k: Turns retrieved per query.
        budget: Largest summary, in reader tokens.
        chunk: RAG chunking: "turn", "session" or "window" (fusion needs "turn").
        summarizer: A reader spec or Reader for the summary; default: the run's reader.
        persist: Keep the chromadb files in the run directory.
        lexical: None (vectors only) or "bm25" (fuse BM25 with the vectors).
        rrf_k: The rank constant of the fusion (60, the usual one).
        embedder: An `Embedder` for the vectors; default the packaged all-MiniLM-L6-v2.
    """

    def __init__(self, top_k: int = 5, budget: int = 256, chunk: str = "turn",
                 summarizer: str | Reader | None = None, persist: bool = True,
                 lexical: str | None = None, rrf_k: int = 60, embedder: Embedder | None = None):
        if lexical is not None and lexical not in LEXICAL:
            raise ValueError(f"lexical must be one of {', '.join(LEXICAL)} or none, not {lexical!r}")
        if lexical is not None and chunk != "turn":
            raise ValueError(f"lexical={lexical} fuses rankings of turns: it needs chunk=turn")
        self.top_k, self.rrf_k = top_k, rrf_k
        depth = top_k if lexical is None else 2 * top_k
        self.summary = Summary(budget=budget, summarizer=summarizer)
        self.rag = Rag(top_k=depth, chunk=chunk, persist=persist, embedder=embedder)
        self.bm25: Bm25 | None = None
        if lexical == "bm25":
            from memeval.adapters.backends.bm25 import Bm25  # bm25s only when asked for

            self.bm25 = Bm25(top_k=depth)
        self._order: dict[str, dict[str, int]] = {}  # user -> turn id -> position, for ties

    def bind(self, context: CellContext) -> None:
        self.summary.bind(context)
        self.rag.bind(context)
        if self.bm25 is not None:
            self.bm25.bind(context)
        self._order = {}

    def reset(self, scope: str) -> None:
        self.summary.reset(scope)
        self.rag.reset(scope)
        if self.bm25 is not None:
            self.bm25.reset(scope)
        self._order.pop(scope, None)

    def observe(self, turn: Turn) -> None:
        self.summary.observe(turn)
        self.rag.observe(turn)
        if self.bm25 is not None:
            self.bm25.observe(turn)
            order = self._order.setdefault(turn.user, {})
            order.setdefault(turn.id, len(order))

    def end_session(self, session: SessionInfo) -> None:
        self.summary.end_session(session)
        self.rag.end_session(session)

    def settle(self, user: str) -> None:
        self.rag.settle(user)
        if self.bm25 is not None:
            self.bm25.settle(user)

    def recall(self, query: Query) -> Recall:
        gist, details = self.summary.recall(query), self._details(query)
        parts = [f"Summary:\n{gist.text}" if gist.text else "",
                 f"Relevant conversation:\n{details.text}" if details.text else ""]
        return Recall(text="\n\n".join(p for p in parts if p), items=details.items)

    def _details(self, query: Query) -> Recall:
        vectors = self.rag.recall(query)
        if self.bm25 is None:
            return vectors
        order = self._order.get(query.user, {})
        last = len(order)
        # rag lists its items in conversation order: back to its ranking (ties: the earlier turn)
        by_vector = sorted(vectors.items, key=lambda i: (-(i.score or 0.0),
                                                         order.get(str(i.turn_id), last)))
        by_words = self.bm25.ranked(query, self.rag.top_k)
        texts = {str(i.turn_id): i.text for i in by_vector}
        for _, turn, _ in by_words:
            texts.setdefault(turn.id, render_turns([turn]))  # the same text as rag's item
        fused = rrf([[str(i.turn_id) for i in by_vector], [t.id for _, t, _ in by_words]],
                    k=self.rrf_k, order=order)[:self.top_k]
        fused.sort(key=lambda kv: order.get(kv[0], last))  # conversation order reads best
        return Recall(text="\n".join(texts[key] for key, _ in fused), items=tuple(
            RecallItem(text=texts[key], turn_id=key, score=round(score, 8)) for key, score in fused))

    def footprint(self) -> Footprint:
        a, b = self.summary.footprint(), self.rag.footprint()
        c = self.bm25.footprint() if self.bm25 is not None else Footprint(items=0, bytes=0)
        detail = {**b.detail, "summary_bytes": a.bytes}
        if self.bm25 is not None:
            detail["bm25_bytes"] = c.bytes
        return Footprint(items=a.items + b.items + c.items, bytes=a.bytes + b.bytes + c.bytes,
                         detail=detail)

    def model_usage(self) -> Usage:
        a, b = self.summary.model_usage(), self.rag.model_usage()
        return Usage(input_tokens=a.input_tokens + b.input_tokens,
                     output_tokens=a.output_tokens + b.output_tokens)

    def close(self) -> None:
        self.rag.close()
