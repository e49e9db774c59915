"""A rolling summary for the gist, plus retrieval for the details."""

from __future__ import annotations

from memeval.adapters.backends.rag import Rag
from memeval.adapters.backends.summary import Summary
from memeval.protocols import (
    CellContext,
    Footprint,
    MemoryBackend,
    Query,
    Reader,
    Recall,
    SessionInfo,
    Turn,
    Usage,
)


class Hybrid(MemoryBackend):
    """Recalls the user's summary followed by the most similar stored turns.

    Args:
        top_k: Turns retrieved per query.
        budget: Largest summary, in reader tokens.
        chunk: RAG chunking: "turn", "session" or "window".
        summarizer: A reader spec or Reader for the summary; default: the run's reader.
        persist: Keep the chromadb files in the run directory.
    """

    def __init__(self, top_k: int = 5, budget: int = 256, chunk: str = "turn",
                 summarizer: str | Reader | None = None, persist: bool = True):
        self.summary = Summary(budget=budget, summarizer=summarizer)
        self.rag = Rag(top_k=top_k, chunk=chunk, persist=persist)

    def bind(self, context: CellContext) -> None:
        self.summary.bind(context)
        self.rag.bind(context)

    def reset(self, scope: str) -> None:
        self.summary.reset(scope)
        self.rag.reset(scope)

    def observe(self, turn: Turn) -> None:
        self.summary.observe(turn)
        self.rag.observe(turn)

    def end_session(self, session: SessionInfo) -> None:
        self.summary.end_session(session)
        self.rag.end_session(session)

    def recall(self, query: Query) -> Recall:
        gist, details = self.summary.recall(query), self.rag.recall(query)
        parts = [f"Summary:\n{gist.text}" if gist.text else "",
                 f"Relevant conversation:\n{details.text}" if details.text else ""]
        return Recall(text="\n\n".join(p for p in parts if p), items=details.items)

    def footprint(self) -> Footprint:
        a, b = self.summary.footprint(), self.rag.footprint()
        return Footprint(items=a.items + b.items, bytes=a.bytes + b.bytes,
                         detail={**b.detail, "summary_bytes": a.bytes})

    def model_usage(self) -> Usage:
        a, b = self.summary.model_usage(), self.rag.model_usage()
        return Usage(input_tokens=a.input_tokens + b.input_tokens,
                     output_tokens=a.output_tokens + b.output_tokens)

    def close(self) -> None:
        self.rag.close()
