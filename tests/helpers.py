"""Test doubles for unit-testing the runner (never the only test of an adapter)."""

from __future__ import annotations

import time

from memeval.protocols import (
    Answer,
    Footprint,
    MemoryBackend,
    Query,
    Reader,
    Recall,
    SessionInfo,
    Turn,
    Usage,
)

#: Record fields that are measurements of this machine at this moment, not results.
MEASURED = {"observe_s", "recall_s", "deferred_s", "answer_s", "cached", "peak_rss_bytes"}


class EchoReader(Reader):
    """Answers with the last line of the context; `delay` seconds per answer."""

    context_tokens = 100_000

    def __init__(self, delay: float = 0.0, fail_on: str = ""):
        self.delay, self.fail_on, self.calls = delay, fail_on, 0

    def answer(self, question: str, context: str) -> Answer:
        self.calls += 1
        time.sleep(self.delay)
        if self.fail_on and self.fail_on in question:
            raise ConnectionError("server went away")
        text = context.strip().splitlines()[-1] if context.strip() else "I don't know."
        return Answer(text=text, usage=Usage(input_tokens=len(context.split()), output_tokens=1))

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def identity(self) -> dict[str, object]:
        return {"reader": "echo"}


class FlakyBackend(MemoryBackend):
    """Keeps every turn of every user in one list; recall fails for questions containing 'cat'."""

    def __init__(self) -> None:
        self.turns: list[Turn] = []

    def reset(self, scope: str) -> None:
        self.turns = [t for t in self.turns if t.user != scope]

    def observe(self, turn: Turn) -> None:
        self.turns.append(turn)

    def recall(self, query: Query) -> Recall:
        if "cat" in query.text:
            raise RuntimeError("index corrupted")
        return Recall(text="\n".join(t.text for t in self.turns))

    def footprint(self) -> Footprint:
        return Footprint(items=len(self.turns), bytes=sum(len(t.text) for t in self.turns))


class KeyedMemory(FlakyBackend):
    """A backend that takes a secret option, as a hosted memory service would."""

    def __init__(self, api_key: str = "") -> None:
        super().__init__()
        self.api_key = api_key


class SaysJudge(Reader):
    """A judge double that always replies `word`."""

    def __init__(self, word: str = "CORRECT"):
        self.word = word

    def answer(self, question: str, context: str) -> Answer:
        return Answer(text=self.word)

    def identity(self) -> dict[str, object]:
        return {"reader": "says", "word": self.word}


class StrictJudge(Reader):
    """A judge double for memeval's prompt set: it accepts an answer only if it quotes the
    accepted answer (abstention: says it does not know; leakage: keeps the secret)."""

    def answer(self, question: str, context: str) -> Answer:
        fields = dict(line.split(": ", 1) for line in context.splitlines() if ": " in line)
        given = fields.get("Answer given", "")
        if "Secret value that must not appear" in fields:
            ok = fields["Secret value that must not appear"] not in given
        elif "Accepted answer" not in fields:
            ok = "know" in given
        else:
            ok = any(a in given for a in fields["Accepted answer"].split(" / "))
        return Answer(text="CORRECT" if ok else "WRONG")

    def identity(self) -> dict[str, object]:
        return {"reader": "strict"}


class FirstSessionMemory(MemoryBackend):
    """Keeps each user's first session only and lists it (the store audit's hook): every
    later update is missed, so each superseded value stays stale."""

    def __init__(self) -> None:
        self.kept: dict[str, list[Turn]] = {}
        self.closed: set[str] = set()  # users whose first session has ended

    def reset(self, scope: str) -> None:
        self.kept.pop(scope, None)
        self.closed.discard(scope)

    def observe(self, turn: Turn) -> None:
        if turn.user not in self.closed:
            self.kept.setdefault(turn.user, []).append(turn)

    def end_session(self, session: SessionInfo) -> None:
        self.closed.add(session.user)

    def recall(self, query: Query) -> Recall:
        return Recall(text="\n".join(self.memories(query.user)))

    def footprint(self) -> Footprint:
        texts = [t.text for turns in self.kept.values() for t in turns]
        return Footprint(items=len(texts), bytes=sum(len(x) for x in texts))

    def memories(self, user: str) -> list[str]:
        return [t.text for t in self.kept.get(user, [])]


class SaysSummary(Reader):
    """A summarizer double: every summary is `text`."""

    def __init__(self, text: str):
        self.text = text

    def answer(self, question: str, context: str) -> Answer:
        return Answer(text=self.text, usage=Usage(input_tokens=len(context.split()), output_tokens=1))

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def identity(self) -> dict[str, object]:
        return {"reader": "says-summary", "text": self.text}
