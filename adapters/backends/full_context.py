"""All history, oldest turns dropped first when it outgrows the reader's context."""

from __future__ import annotations

from collections import defaultdict

from memeval.adapters.backends import render_turn

from memeval.protocols import CellContext, Footprint, MemoryBackend, Query, Recall, RecallItem, Turn


class FullContext(MemoryBackend):
    """Hands the reader the user's whole conversation so far.

    Args:
        max_tokens: Budget for recalled text in reader tokens; default: what
            the reader's context window leaves after the prompt.
    """

    def __init__(self, max_tokens: int | None = None):
        self.max_tokens = max_tokens
        self._lines: dict[str, list[tuple[Turn, str, int]]] = defaultdict(list)
        self._count = len

    def bind(self, context: CellContext) -> None:
        self._count = context.count_tokens
        if self.max_tokens is None:
            self.max_tokens = context.context_tokens

    def reset(self, scope: str) -> None:
        self._lines.pop(scope, None)

    def observe(self, turn: Turn) -> None:
        line = render_turn(turn)
        self._lines[turn.user].append((turn, line, self._count(line) + 1))

    def recall(self, query: Query) -> Recall:
        budget = self.max_tokens if self.max_tokens is not None else float("inf")
        kept: list[tuple[Turn, str]] = []
        used = 0
        for turn, line, tokens in reversed(self._lines.get(query.user, [])):
            if used + tokens > budget:
                break
            kept.append((turn, line))
            used += tokens
        kept.reverse()
        return Recall(text="\n".join(line for _, line in kept),
                      items=tuple(RecallItem(text=t.text, turn_id=t.id) for t, _ in kept))

    def footprint(self) -> Footprint:
        lines = [line for user_lines in self._lines.values() for _, line, _ in user_lines]
        return Footprint(items=len(lines), bytes=sum(len(line.encode()) for line in lines))
