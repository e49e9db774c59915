"""The control: a memory that recalls nothing."""

from __future__ import annotations

from memeval.protocols import Footprint, MemoryBackend, Query, Recall, Turn


class NoMemory(MemoryBackend):
    """Recalls nothing; what a reader still answers comes from its parameters."""

    def reset(self, scope: str) -> None:
        pass

    def observe(self, turn: Turn) -> None:
        pass

    def recall(self, query: Query) -> Recall:
        return Recall(text="")

    def footprint(self) -> Footprint:
        return Footprint(items=0, bytes=0)
