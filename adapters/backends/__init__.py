"""Memory backends shipped with memeval."""

from __future__ import annotations

from memeval.protocols import Turn


def render_turn(turn: Turn) -> str:
    """One line of recalled conversation: date, speaker and text."""
    stamp = f"[{turn.time:%Y-%m-%d %H:%M}] " if turn.time else ""
    return f"{stamp}{turn.role}: {turn.text}"
