"""Lexical memory: each user's turns in a BM25 index (bm25s), recalled by the words they share."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import bm25s  # type: ignore[import-untyped] # ships no type information
import numpy as np

from memeval.adapters.backends import render_turns
from memeval.protocols import CellContext, Footprint, MemoryBackend, Query, Recall, RecallItem, Turn


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    from nltk.stem import PorterStemmer  # an algorithm: no NLTK data, no download

    return PorterStemmer()


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return str(_stemmer().stem(word))


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased words of two or more characters, less English stopwords (NLTK's list, as bm25s
    ships it), Porter-stemmed."""
    if not texts:
        return []
    return bm25s.tokenize(texts, stopwords="en_plus", stemmer=lambda words: [_stem(w) for w in words],
                          return_ids=False, show_progress=False)


@dataclass
class _Store:
    """One user's turns in conversation order, their tokens, and the index last built over them."""

    turns: list[Turn] = field(default_factory=list)
    tokens: list[list[str]] = field(default_factory=list)
    index: Any = None
    built: int = 0  # turns in `index`


class Bm25(MemoryBackend):
    """Stores one chunk per turn in a per-user BM25 index; recalls the turns best matching the query.

    bm25s builds an index in one batch, so `observe` only appends the turn (O(1)); the first
    recall for a user after new turns tokenizes those turns and rebuilds that user's index once
    (other users' indexes are left as they are). Turns that share no word with the query are
    never recalled; equal scores go to the earlier turn, so a recall is deterministic. The
    recalled turns are shown in conversation order; each item carries its BM25 score.
    Footprint: turns stored and the bytes of their text (running totals); `detail` adds the
    bytes of the indexes as last built.

    Args:
        top_k: Turns recalled per query (ignored when `budget` is given).
        budget: Recall turns by score until this many reader tokens are used.
        k1: BM25's term-frequency saturation.
        b: BM25's length normalisation.
    """

    def __init__(self, top_k: int = 5, budget: int | None = None, k1: float = 1.5, b: float = 0.75):
        self.top_k, self.budget, self.k1, self.b = top_k, budget, k1, b
        self._count: Any = len
        self.rebuilds = 0  # index builds so far, all users together
        self._forget()

    def _forget(self) -> None:
        self._stores: dict[str, _Store] = {}
        self._items: Counter[str] = Counter()  # user -> turns stored (running totals)
        self._bytes: Counter[str] = Counter()  # user -> bytes of stored text

    def bind(self, context: CellContext) -> None:
        self._count = context.count_tokens
        self._forget()  # a reused instance: the previous cell's turns are done with

    def reset(self, scope: str) -> None:
        self._stores.pop(scope, None)
        self._items.pop(scope, None)
        self._bytes.pop(scope, None)

    def observe(self, turn: Turn) -> None:
        self._stores.setdefault(turn.user, _Store()).turns.append(turn)
        self._items[turn.user] += 1
        self._bytes[turn.user] += len(turn.text.encode())

    def _index(self, store: _Store) -> Any:
        """The user's index, rebuilt first if turns came in since the last build."""
        if store.built < len(store.turns):
            store.tokens += tokenize([t.text for t in store.turns[len(store.tokens):]])
            store.index, store.built = None, len(store.turns)
            if any(store.tokens):  # bm25s cannot index a corpus without a single word
                store.index = bm25s.BM25(k1=self.k1, b=self.b)
                store.index.index(store.tokens, show_progress=False)
                self.rebuilds += 1
        return store.index

    def ranked(self, query: Query, n: int | None = None) -> list[tuple[int, Turn, float]]:
        """(position, turn, score) of the user's matching turns, best first, earliest on ties."""
        store = self._stores.get(query.user)
        index = None if store is None else self._index(store)
        if store is None or index is None:
            return []
        words = [w for w in tokenize([query.text])[0] if w in index.vocab_dict]
        if not words:
            return []
        scores = index.get_scores(words)
        hits = np.flatnonzero(scores > 0)
        hits = hits[np.lexsort((hits, -scores[hits]))][:n]  # by score, then conversation order
        return [(int(i), store.turns[i], float(scores[i])) for i in hits]

    def settle(self, user: str) -> None:
        if (store := self._stores.get(user)) is not None:
            self._index(store)  # built lazily, once per change: an observe cost

    def recall(self, query: Query) -> Recall:
        hits = self.ranked(query, None if self.budget is not None else self.top_k)
        if self.budget is not None:
            kept, used = [], 0
            for hit in hits:
                cost = self._count(render_turns([hit[1]])) + 1
                if used + cost > self.budget:
                    continue  # a shorter, lower-scored turn may still fit
                kept.append(hit)
                used += cost
            hits = kept
        hits.sort(key=lambda h: h[0])  # conversation order reads best
        return Recall(text=render_turns(t for _, t, _ in hits), items=tuple(
            RecallItem(text=render_turns([t]), turn_id=t.id, score=round(s, 6)) for _, t, s in hits))

    def footprint(self) -> Footprint:
        # the indexes as last built (a recall rebuilds them): a detail, not part of `bytes`
        index_bytes = sum(int(a.nbytes) for s in self._stores.values() if s.index is not None
                          for a in s.index.scores.values() if hasattr(a, "nbytes"))
        return Footprint(items=self._items.total(), bytes=self._bytes.total(),
                         detail={"text_bytes": self._bytes.total(), "index_bytes": index_bytes})
