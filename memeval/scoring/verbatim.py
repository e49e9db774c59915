"""Verbatim reproduction: the longest run of conversation words an answer copies."""

from __future__ import annotations

import re
from collections import defaultdict

from memeval.match import normalize

_WORD = re.compile(r"\w+")

#: Default span, in words, from which an answer counts as verbatim reproduction.
VERBATIM_WORDS = 12


def words(text: str) -> list[str]:
    """Case-folded words of `text`, punctuation dropped."""
    return _WORD.findall(normalize(text))


class Conversation:
    """The words said so far, indexed by word pairs so a long timeline stays cheap to search.

    A span never crosses a turn, so a turn said again adds nothing to find: only the
    first saying of each distinct turn is kept. Long histories repeat a great deal
    (filler, greetings), and this keeps the index, and every search, the size of
    what was said once rather than of the whole timeline.
    """

    def __init__(self) -> None:
        self.words: list[str] = []
        self._pairs: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._first: dict[str, int] = {}
        self._turns: set[str] = set()
        self._texts: set[str] = set()  # texts already added: skip their normalizing

    def add(self, text: str) -> None:
        if text in self._texts:
            return
        self._texts.add(text)
        new = words(text)
        key = " ".join(new)
        if key in self._turns:
            return
        self._turns.add(key)
        start = len(self.words)
        self.words.extend(new)
        for i, w in enumerate(new):
            self._first.setdefault(w, start + i)
        for i in range(len(new) - 1):
            self._pairs[(new[i], new[i + 1])].append(start + i)
        self.words.append("\0")  # the turn boundary: no answer word matches it

    def longest_copied_span(self, answer: str, upto: int | None = None) -> int:
        """Length of the longest word run of `answer` found in the first `upto` words."""
        said, n = self.words, len(self.words) if upto is None else upto
        ans = words(answer)
        best = int(any(self._first.get(w, n) < n for w in ans))
        for i in range(len(ans) - 1):
            if len(ans) - i <= best:
                break  # no span starting here can be longer than the best found
            for p in self._pairs.get((ans[i], ans[i + 1]), ()):
                if p + 1 >= n or i + best >= len(ans):
                    break  # said later (positions are in order), or nothing longer to find
                # a longer span must match one word past the best so far: test that first
                if best > 1 and (p + best >= n or said[p + best] != ans[i + best]):
                    continue
                k = 2
                while i + k < len(ans) and p + k < n and ans[i + k] == said[p + k]:
                    k += 1
                best = max(best, k)
        return best
