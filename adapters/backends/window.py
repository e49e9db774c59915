"""The last N tokens of the user's history: a fixed-size sliding window."""

from __future__ import annotations

from memeval.adapters.backends.full_context import FullContext
from memeval.protocols import CellContext


class Window(FullContext):
    """Recalls the most recent turns that fit in `tokens` reader tokens.

    Args:
        tokens: Window size in reader tokens (capped by the reader's context).
    """

    def __init__(self, tokens: int = 1024):
        if tokens < 1:
            raise ValueError("tokens must be at least 1")
        super().__init__(max_tokens=tokens)

    def bind(self, context: CellContext) -> None:
        super().bind(context)
        self.max_tokens = min(self.max_tokens or context.context_tokens, context.context_tokens)
