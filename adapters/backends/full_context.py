"""All history, oldest turns dropped first when it outgrows the reader's context."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from memeval.adapters.backends import render_turns
from memeval.protocols import CellContext, Footprint, MemoryBackend, Query, Recall, RecallItem, Turn


class FullContext(MemoryBackend):
    """Hands the reader the user's whole conversation so far.

    Args:
        max_tokens: Budget for recalled text in reader tokens; default: what
            the reader's context window leaves after the prompt.
    """

    def __init__(self, max_tokens: int | None = None):
        self.max_tokens = max_tokens
        self._turns: dict[str, list[tuple[Turn, int]]] = defaultdict(list)
        self._count: Callable[[str], int] = len

    def bind(self, context: CellContext) -> None:
        self._count = context.count_tokens
        if self.max_tokens is None:
            self.max_tokens = context.context_tokens

    def reset(self, scope: str) -> None:
        self._turns.pop(scope, None)

    def observe(self, turn: Turn) -> None:
        # a turn's share of the budget: its line plus, at worst, its session's date header
        cost = self._count(f"{turn.role}: {turn.text}") + self._count("[2025-01-01 00:00]") + 2
        self._turns[turn.user].append((turn, cost))

    def recall(self, query: Query) -> Recall:
        budget = self.max_tokens if self.max_tokens is not None else float("inf")
        kept: list[Turn] = []
        used = 0
        for turn, cost in reversed(self._turns.get(query.user, [])):
            if used + cost > budget:
                break
            kept.append(turn)
            used += cost
        kept.reverse()
        return Recall(text=render_turns(kept),
                      items=tuple(RecallItem(text=t.text, turn_id=t.id) for t in kept))

    def footprint(self) -> Footprint:
        turns = [t for user_turns in self._turns.values() for t, _ in user_turns]
        return Footprint(items=len(turns), bytes=sum(len(t.text.encode()) for t in turns))
