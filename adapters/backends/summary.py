"""A rolling summary, rewritten by a model at the end of every session."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from memeval.adapters.backends import render_turns
from memeval.protocols import (
    CellContext,
    Footprint,
    MemoryBackend,
    Query,
    Reader,
    Recall,
    SessionInfo,
    SetsAnswerLength,
    Turn,
    Usage,
)

# Phrased as an instruction: asked "what is worth remembering", the packaged base
# model answers "I don't know." for every session; asked this, it states a fact.
QUESTION = "Summarize what the user said."
#: Room for a summary where the summarizer can take it (`SetsAnswerLength`): tokens, lines.
SUMMARY_LENGTH = (96, 4)


class Summary(MemoryBackend):
    """Keeps, per user, a summary of each past session, newest last, within a token budget.

    At each session end the summarizer reads the session and writes what is
    worth remembering; the oldest session notes are dropped when the summary
    outgrows `budget`. The tokens the summarizer spends are the backend's own cost.

    Args:
        budget: Largest summary, in reader tokens.
        summarizer: A reader spec (e.g. "embedded", "openai:model=...") or Reader;
            default: the run's reader.
    """

    def __init__(self, budget: int = 256, summarizer: str | Reader | None = None):
        self.budget, self.summarizer = budget, summarizer
        self._reader: Reader | None = None
        self._count: Callable[[str], int] = len
        self._session: dict[str, list[Turn]] = defaultdict(list)
        self._notes: dict[str, list[tuple[str, int]]] = defaultdict(list)  # (note, tokens)
        self._usage = Usage()

    def bind(self, context: CellContext) -> None:
        from memeval.registry import build_reader

        reader = (context.cached(build_reader(self.summarizer)[1]) if self.summarizer
                  else context.reader)
        if reader is None:
            raise ValueError("the summary backend needs a model: pass summarizer=READER")
        # one line of summary holds one fact at most: ask for several where the model can
        self._reader = (reader.with_answer_length(*SUMMARY_LENGTH)
                        if isinstance(reader, SetsAnswerLength) else reader)
        self._count = context.count_tokens

    def reset(self, scope: str) -> None:
        self._session.pop(scope, None)
        self._notes.pop(scope, None)

    def observe(self, turn: Turn) -> None:
        self._session[turn.user].append(turn)

    def end_session(self, session: SessionInfo) -> None:
        turns = self._session.pop(session.user, [])
        if not turns or self._reader is None:
            return
        answer = self._reader.answer(QUESTION, render_turns(turns))
        self._usage = Usage(input_tokens=self._usage.input_tokens + answer.usage.input_tokens,
                            output_tokens=self._usage.output_tokens + answer.usage.output_tokens)
        stamp = f"[{session.time:%Y-%m-%d}] " if session.time else ""
        note = stamp + " ".join(answer.text.split())  # one line per session's note
        notes = self._notes[session.user]
        notes.append((note, self._count(note) + 1))
        while len(notes) > 1 and sum(tokens for _, tokens in notes) > self.budget:
            notes.pop(0)

    def recall(self, query: Query) -> Recall:
        return Recall(text="\n".join(note for note, _ in self._notes.get(query.user, [])))

    def footprint(self) -> Footprint:
        notes = [note for user_notes in self._notes.values() for note, _ in user_notes]
        pending = [t.text for turns in self._session.values() for t in turns]
        return Footprint(items=len(notes) + len(pending),
                         bytes=sum(len(x.encode()) for x in notes + pending))

    def model_usage(self) -> Usage:
        return self._usage

    def memories(self, user: str) -> list[str]:
        """The user's session notes, oldest first: the summary is all it keeps."""
        return [note for note, _ in self._notes.get(user, [])]
