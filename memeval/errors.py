"""Errors memeval reports to its users as one line, never as a traceback."""

from __future__ import annotations

from dataclasses import dataclass


class MemevalError(Exception):
    """An error caused by the user's input or setup; its message is the whole story."""


@dataclass(frozen=True)
class Problem:
    """One authoring mistake at a place in a file."""

    file: str
    line: int
    column: int
    message: str
    fix: str

    def __post_init__(self) -> None:
        # one line whatever the file held: a quoted value may span lines
        for name in ("message", "fix"):
            text = getattr(self, name)
            if "\n" in text or "\r" in text:
                object.__setattr__(self, name, text.replace("\r", "\\r").replace("\n", "\\n"))

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message} ({self.fix})"


class ScenarioError(MemevalError):
    """A scenario file has one or more problems."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
