"""Deterministic answer matching: case- and space-insensitive, on word boundaries."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

_SPACE = re.compile(r"\s+")

_UNKNOWN = re.compile(
    r"\b(i\s+(do\s*n[o']?t|don't|dont|cannot|can't|can\s*not)\s+(know|say|tell|recall|remember|find|see)"
    r"|not\s+(known|sure|mentioned|stated|provided|specified|given|in\s+the\s+notes)"
    r"|unknown|no\s+(information|idea|record|mention|notes?)"
    r"|never\s+(mentioned|said|told)|(isn't|is\s+not|wasn't|was\s+not)\s+(mentioned|stated|known)"
    r"|(don't|do\s+not)\s+have\s+(that|this|any|enough)\s+information|n/a)\b",
    re.IGNORECASE,
)


def normalize(text: str) -> str:
    """Fold case, unicode forms and runs of white space."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", text).strip()


@lru_cache(maxsize=1 << 15)  # a scenario's answers, all of them: 4,096 thrashed at 5,000 facts
def _pattern(needle: str) -> re.Pattern[str]:
    # Word boundaries only where the needle itself starts/ends with a word
    # character, so "X4417-22" and "$5" still match inside punctuation.
    body = r"\s+".join(re.escape(part) for part in needle.split(" "))
    head = r"(?<!\w)" if needle[:1].isalnum() else ""
    tail = r"(?!\w)" if needle[-1:].isalnum() else ""
    return re.compile(head + body + tail)


def contains(text: str, needle: str) -> bool:
    """Whether `needle` occurs in `text`, ignoring case and spacing, as whole words."""
    needle = normalize(needle)
    return bool(needle) and _pattern(needle).search(normalize(text)) is not None


def contains_any(text: str, needles: Iterable[str], normalized: bool = False) -> bool:
    """Whether any of `needles` occurs in `text` (already `normalize`d when `normalized`)."""
    haystack = text if normalized else normalize(text)
    return any(_pattern(n).search(haystack) for n in map(normalize, needles) if n)


_WORD = re.compile(r"\w+")


class NeedleSet:
    """`contains_any` for many needles searched in many texts: a needle's pattern is tried
    only when the text holds the needle's first word."""

    def __init__(self, needles: Iterable[str]):
        self._by_word: dict[str, list[re.Pattern[str]]] = {}
        self._always: list[re.Pattern[str]] = []
        for needle in {normalize(n) for n in needles} - {""}:
            first = _WORD.match(needle)
            if first:
                self._by_word.setdefault(first.group(0), []).append(_pattern(needle))
            else:  # starts with punctuation ("$5"): always tried
                self._always.append(_pattern(needle))

    def found_in(self, text: str) -> bool:
        """Whether any needle occurs in `text`, as `contains_any` decides it."""
        haystack = normalize(text)
        candidates = [p for w in set(_WORD.findall(haystack)) for p in self._by_word.get(w, ())]
        return any(p.search(haystack) for p in candidates + self._always)


def says_unknown(text: str) -> bool:
    """Whether an answer says the information is not known."""
    return _UNKNOWN.search(text) is not None or not text.strip()
