"""Memory backends shipped with memeval."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Protocol


class Said(Protocol):
    """What rendering needs of a turn: a `Turn`, or a backend's lighter copy of one."""

    @property
    def session_id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def time(self) -> datetime | None: ...


def render_turns(turns: Iterable[Said]) -> str:
    """Recalled conversation as text: a dated header per session, then one line per turn."""
    lines: list[str] = []
    session = None
    for turn in turns:
        if turn.session_id != session:
            session = turn.session_id
            lines.append(f"[{turn.time:%Y-%m-%d %H:%M}]" if turn.time else "[session]")
        lines.append(f"{turn.role}: {turn.text}")
    return "\n".join(lines)


def folder_bytes(path: Path | None) -> int:
    """Bytes of the files under `path` (a store's size on disk)."""
    if path is None or not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
