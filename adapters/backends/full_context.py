"""All history, oldest turns dropped first when it outgrows the reader's context."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from memeval.adapters.backends import render_turns
from memeval.protocols import CellContext, Footprint, MemoryBackend, Query, Recall, RecallItem, Turn


class _Kept(NamedTuple):
    """A stored turn: a tuple is a sixth of a `Turn`'s memory, and a history holds millions."""

    id: str
    session_id: str
    role: str
    text: str
    time: datetime | None
    cost: int


class FullContext(MemoryBackend):
    """Hands the reader the user's whole conversation so far.

    Args:
        max_tokens: Budget for recalled text in reader tokens; default: what
            the reader's context window leaves after the prompt.
    """

    def __init__(self, max_tokens: int | None = None):
        self.max_tokens = max_tokens
        self._turns: dict[str, list[_Kept]] = defaultdict(list)
        self._count: Callable[[str], int] = len
        self._items = self._bytes = 0  # running totals: a footprint is taken at every probe
        self._header = 0

    def bind(self, context: CellContext) -> None:
        self._count = context.count_tokens
        self._header = self._count("[2025-01-01 00:00]")
        if self.max_tokens is None:
            self.max_tokens = context.context_tokens

    def reset(self, scope: str) -> None:
        for turn in self._turns.pop(scope, ()):
            self._items -= 1
            self._bytes -= len(turn.text.encode())

    def observe(self, turn: Turn) -> None:
        # a turn's share of the budget: its line plus, at worst, its session's date header
        cost = self._count(f"{turn.role}: {turn.text}") + self._header + 2
        self._turns[turn.user].append(
            _Kept(turn.id, turn.session_id, turn.role, turn.text, turn.time, cost))
        self._items += 1
        self._bytes += len(turn.text.encode())

    def recall(self, query: Query) -> Recall:
        budget = self.max_tokens if self.max_tokens is not None else float("inf")
        kept: list[_Kept] = []
        used = 0
        for turn in reversed(self._turns.get(query.user, [])):
            if used + turn.cost > budget:
                break
            kept.append(turn)
            used += turn.cost
        kept.reverse()
        return Recall(text=render_turns(kept),
                      items=tuple(RecallItem(text=t.text, turn_id=t.id) for t in kept))

    def footprint(self) -> Footprint:
        return Footprint(items=self._items, bytes=self._bytes)
