"""The contracts memeval programs against: MemoryBackend, Reader and Embedder.

Adapters are thin: they store, recall and answer. Timing, token counting,
caching, retries and footprint sampling are done once by the runner around
every implementation, so a third-party backend gets every metric for free.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, Self, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from memeval.scenario.schema import Scenario


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Role = Literal["user", "assistant"]


class Turn(_Frozen):
    """One utterance of a conversation, as a backend observes it."""

    id: str
    session_id: str
    user: str = Field(description="The user (scope) this conversation belongs to.")
    role: Role
    text: str
    time: datetime | None = None


class SessionInfo(_Frozen):
    """A finished session, handed to `MemoryBackend.end_session`."""

    id: str
    user: str
    time: datetime | None = None
    turn_count: int


class Query(_Frozen):
    """What a backend is asked to recall for."""

    text: str
    user: str
    time: datetime | None = None
    probe_id: str = ""


class RecallItem(_Frozen):
    """One stored item a recall drew on.

    `turn_id` may name several turns, comma-separated (a chunk); `session_id` then names
    their sessions in the same way. `score`: higher is better (retrieval metrics rank by it).
    """

    text: str
    turn_id: str | None = None
    score: float | None = None
    session_id: str | None = Field(None, description="The session of each turn in `turn_id`; "
                                   "filled in by the runner when the backend leaves it out.")


class Recall(_Frozen):
    """The text handed to the reader, and the items it came from."""

    text: str
    items: tuple[RecallItem, ...] = ()


class Footprint(_Frozen):
    """What a backend holds right now."""

    items: int
    bytes: int
    detail: dict[str, int] = Field(default_factory=dict)


class Usage(_Frozen):
    """Tokens a model call spent."""

    input_tokens: int = 0
    output_tokens: int = 0


class Answer(_Frozen):
    """A reader's answer to one question."""

    text: str
    usage: Usage = Usage()
    logprobs: tuple[float, ...] | None = None
    stats: dict[str, float] = Field(
        default_factory=dict, description="What only the reader can measure (local models: "
        "KV-cache bytes, peak GPU memory, tokens per second).")


@dataclass
class CellContext:
    """What the runner tells a backend about the cell it runs in.

    Attributes:
        count_tokens: The reader's tokenizer, so budgets are in reader tokens.
        context_tokens: How many tokens of recalled text the reader can take.
        workdir: A private folder for the backend's files.
        seed: The run's seed.
        ground_truth: The scenario, given only to backends that declare
            `needs_ground_truth` (reference backends such as `oracle`).
        reader: The run's reader, through the runner's call cache, for backends
            that write with a model (summaries); its calls count as the backend's.
        cached: Wraps another reader (a backend's own summarizer, say) in the
            runner's call cache.
    """

    count_tokens: Callable[[str], int]
    context_tokens: int
    workdir: Path
    seed: int = 0
    ground_truth: Scenario | None = None
    reader: Reader | None = None
    cached: Callable[[Reader], Reader] = lambda reader: reader


class MemoryBackend(ABC):
    """A memory under test.

    The runner calls `bind` once per cell, `reset(user)` for every user at the
    start of each scenario, then `observe` for each turn, `end_session` after
    each session (then `memories`, for a backend that lists them) and `recall`
    for each probe. A backend must keep each user's
    memory apart: a query for one user never surfaces another user's turns.

    Lifecycle: a backend the runner builds (from a name or a class) is closed
    by the runner after its cell. An instance you pass in is yours: the runner
    binds it again for every cell it serves, one cell at a time, and never
    closes it; use it as a context manager (`with Rag() as rag: ...`) or call
    `close()` yourself.
    """

    #: Reference backends that read the scenario's answers set this to True.
    needs_ground_truth: ClassVar[bool] = False

    def bind(self, context: CellContext) -> None:  # noqa: B027 - optional hook
        """Receive the cell's context before anything else. Optional."""

    @abstractmethod
    def reset(self, scope: str) -> None:
        """Forget everything stored for the user `scope`."""

    @abstractmethod
    def observe(self, turn: Turn) -> None:
        """Take in one turn of conversation."""

    def end_session(self, session: SessionInfo) -> None:  # noqa: B027 - optional hook
        """Called after the last turn of a session. Optional."""

    def settle(self, user: str) -> None:  # noqa: B027 - optional hook
        """Finish what `observe` deferred for `user` (batched embedding, background writes).

        Optional. The runner calls it just before each recall and charges its time to
        observing, so that batching does not make storing look free and recall look slow.
        """

    @abstractmethod
    def recall(self, query: Query) -> Recall:
        """Return what the reader should see to answer `query`."""

    @abstractmethod
    def footprint(self) -> Footprint:
        """Report stored items and bytes held now."""

    def model_usage(self) -> Usage:
        """Tokens this backend spent on its own model calls so far. Optional."""
        return Usage()

    def memories(self, user: str) -> list[str] | None:
        """What this backend holds for `user` now, one memory a string. Optional.

        The store audit: after each session end the runner lists them and memeval checks,
        at score time, which planted facts were stored, missed or left stale. A backend that
        writes its memories with a model (summaries, extracted facts) is then judged by what
        it stored, not only by what it recalls. The runner calls `settle(user)` just before
        (deferred writes count as observing). Return only `user`'s memories; None (the
        default) means the backend does not list them.
        """
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release threads, files and connections. Optional; a second call is harmless."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class Reader(ABC):
    """A model that answers a question from recalled text."""

    #: Largest prompt, in the reader's tokens.
    context_tokens: int = 8192

    @abstractmethod
    def answer(self, question: str, context: str) -> Answer:
        """Answer `question` using only `context`."""

    def answer_many(self, requests: Sequence[tuple[str, str]]) -> list[Answer]:
        """Answer several (question, context) pairs; readers that batch override it."""
        return [self.answer(q, c) for q, c in requests]

    def should_retry(self, exc: Exception) -> float | None:
        """Whether a failed call is worth repeating, and the least wait before it.

        Return None to record the error at once, or the seconds the server asked to
        wait (0 for "retry with the runner's backoff"). Readers map their own
        vendor's errors (rate limits, server errors, timeouts); the default retries
        only timeouts and lost connections.
        """
        return 0.0 if isinstance(exc, (TimeoutError, ConnectionError)) else None

    def count_tokens(self, text: str) -> int:
        """Count tokens with the reader's own tokenizer (default: cl100k_base)."""
        from memeval.tokens import count_tokens

        return count_tokens(text)

    @abstractmethod
    def identity(self) -> dict[str, object]:
        """Model and generation settings that determine an answer.

        The call cache is keyed by this and the prompt: anything that changes
        an answer belongs here; concurrency, retries and timeouts do not.
        """


@runtime_checkable
class GivesLogprobs(Protocol):
    """A reader that scores continuations (local models): canary exposure needs it."""

    def continuation_logprobs(self, question: str, context: str,
                              continuations: Sequence[str]) -> list[float]:
        """Log-likelihood of each continuation as the answer to `question` from `context`."""
        ...


@runtime_checkable
class SetsAnswerLength(Protocol):
    """A reader whose answers may run longer than its default: a leakage probe asks for a
    bio or a summary, and a secret can surface on any of its lines."""

    def with_answer_length(self, tokens: int, lines: int) -> Reader:
        """A reader like this one (sharing its model or clients) whose answers run to at
        most `tokens` tokens over `lines` lines."""
        ...


@runtime_checkable
class TakesSeed(Protocol):
    """A reader whose answers may depend on a seed (one that samples).

    The runner calls `set_seed` with each cell's seed before the cell's first call (each
    epoch has its own), and keys the call cache by that seed when the reader says its
    answers depend on it, so that the cache never makes two epochs answer alike.
    """

    def set_seed(self, seed: int) -> bool:
        """Use `seed` for the calls that follow; return whether answers depend on it
        (False when decoding is greedy, so that epochs may share cached answers)."""
        ...


@runtime_checkable
class ReadsAttention(Protocol):
    """A reader whose attention can be read (local transformers): `--ess` needs it."""

    def effective_state_size(self, question: str, context: str,
                             marks: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
        """ESS at marked character offsets of `context` and at the question: one
        {label, token, values} per place, values mapping each metric to a layers × heads table."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Text embeddings; the same method names as LangChain's `Embeddings`."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...
