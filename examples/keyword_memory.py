"""A complete custom memory backend: recalls the user's turns that share most words with the question."""

from __future__ import annotations

import re
from collections import defaultdict

from memeval import Footprint, MemoryBackend, Query, Recall, RecallItem, Turn


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


class KeywordMemory(MemoryBackend):
    def __init__(self, top_k: int = 4):
        self.top_k = top_k
        self.turns: dict[str, list[Turn]] = defaultdict(list)  # one list per user

    def reset(self, scope: str) -> None:
        self.turns.pop(scope, None)

    def observe(self, turn: Turn) -> None:
        self.turns[turn.user].append(turn)

    def recall(self, query: Query) -> Recall:
        asked = words(query.text)
        scored = [(len(asked & words(t.text)), i) for i, t in enumerate(self.turns[query.user])]
        best = sorted(i for _, i in sorted(s for s in scored if s[0] > 0)[-self.top_k:])
        turns = [self.turns[query.user][i] for i in best]  # back in conversation order
        return Recall(
            text="\n".join(f"{t.role}: {t.text}" for t in turns),
            items=tuple(RecallItem(text=t.text, turn_id=t.id) for t in turns),
        )

    def footprint(self) -> Footprint:
        texts = [t.text for turns in self.turns.values() for t in turns]
        return Footprint(items=len(texts), bytes=sum(len(x.encode()) for x in texts))
