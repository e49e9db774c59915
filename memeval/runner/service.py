"""The reader call service: the call cache, retries and concurrency around any reader.

Like a transport under an HTTP client, a reader only answers and says which of
its own errors are worth repeating (`Reader.should_retry`); caching, backoff and
concurrency are done here, once, for every reader.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import NamedTuple

from memeval.cache import AnswerCache, call_key
from memeval.protocols import Answer, GivesLogprobs, Reader, SetsAnswerLength
from memeval.registry import redact
from memeval.scenario.schema import ProbeKind

#: (tokens, lines) of answer for the probe kinds that need more room than a reader's one short
#: line: a leakage probe asks for a bio or a summary, and a secret may surface on any line.
ANSWER_LENGTHS: dict[str, tuple[int, int]] = {ProbeKind.leakage.value: (96, 4)}


def error_text(exc: BaseException) -> str:
    """An error as records keep it: one line, secrets masked (a URL in a message, say)."""
    return redact(f"{type(exc).__name__}: {exc}".strip())


@dataclass(frozen=True)
class CallPolicy:
    """How the runner calls a reader. None of it is part of the call cache's key.

    Attributes:
        max_concurrency: Requests in flight at once (for remote readers); at 1 the
            reader's own `answer_many` batches them instead.
        retries: Further attempts after a failure the reader calls transient; other
            errors are recorded at once.
        backoff_s: First wait between attempts; doubled each time, or the server's
            Retry-After when it asks for longer, never more than `max_backoff_s`.
        jitter: Each backoff is stretched by a random share up to this, so that clients
            that failed together do not come back together.
    """

    max_concurrency: int = 1
    retries: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    jitter: float = 0.1

    def wait(self, attempt: int, asked: float) -> float:
        """Seconds before attempt `attempt + 1`: the backoff, or what the server asked."""
        backoff = self.backoff_s * 2**attempt * (1 + self.jitter * random.random())
        return min(max(backoff, asked), self.max_backoff_s)


class Outcome(NamedTuple):
    """One call's result: an answer, or the error that stopped it."""

    answer: Answer | None
    cached: bool
    seconds: float | None
    error: str | None


class ReaderService:
    """Wraps a reader with the call cache, retries and concurrency; errors are recorded,
    never cached."""

    def __init__(self, reader: Reader, cache: AnswerCache | None, policy: CallPolicy = CallPolicy(),
                 sleep: Callable[[float], None] = time.sleep, seed: int | None = None):
        self.reader, self.cache, self.policy, self._sleep = reader, cache, policy, sleep
        self.identity = reader.identity()
        # a sampling reader's seed (each epoch's own) keys its answers: None for greedy ones
        self.seed = seed
        self._longer: dict[tuple[int, int], ReaderService] = {}

    def for_kind(self, kind: str) -> ReaderService:
        """The service that asks a probe of `kind`: this one, or (made once) one over a copy of
        the reader that answers at the kind's length, where the kind needs one and the reader
        can (`SetsAnswerLength`). Its own identity keys its answers in the call cache."""
        length = ANSWER_LENGTHS.get(kind)
        return self if length is None else self.for_length(*length)

    def for_length(self, tokens: int, lines: int) -> ReaderService:
        """A service (made once) over a copy of the reader that answers in up to `tokens`
        tokens over `lines` lines; this one where the reader cannot."""
        if not isinstance(self.reader, SetsAnswerLength):
            return self
        if (tokens, lines) not in self._longer:
            self._longer[tokens, lines] = ReaderService(
                self.reader.with_answer_length(tokens, lines), self.cache, self.policy,
                self._sleep, self.seed)
        return self._longer[tokens, lines]

    def _key(self, question: str, context: str) -> str:
        if self.seed is None:
            return call_key(self.identity, question, context)
        return call_key(self.identity, question, context, seed=self.seed)

    def answer_many(self, requests: Sequence[tuple[str, str]]) -> list[Outcome]:
        """One outcome per (question, context), in order."""
        results: list[Outcome | None] = [None] * len(requests)
        misses: list[int] = []
        for i, (q, c) in enumerate(requests):
            hit = self.cache.get(self._key(q, c)) if self.cache else None
            if hit is not None:
                results[i] = Outcome(hit, True, 0.0, None)
            else:
                misses.append(i)
        if len(misses) > 1 and self.policy.max_concurrency > 1:
            with ThreadPoolExecutor(min(self.policy.max_concurrency, len(misses))) as pool:
                for i, outcome in zip(misses, pool.map(lambda i: self._one(requests[i]), misses),
                                      strict=True):
                    results[i] = outcome
        elif len(misses) > 1:
            for i, outcome in zip(misses, self._batch([requests[i] for i in misses]), strict=True):
                results[i] = outcome
        elif misses:
            results[misses[0]] = self._one(requests[misses[0]])
        return [r for r in results if r is not None]

    def _batch(self, requests: list[tuple[str, str]]) -> list[Outcome]:
        start = time.perf_counter()
        try:
            answers = self.reader.answer_many(requests)
            if len(answers) != len(requests):
                raise RuntimeError(f"answer_many returned {len(answers)} answers "
                                   f"for {len(requests)} questions")
        except Exception as exc:  # a failed batch: ask one at a time, with retries, to isolate it
            asked = self.reader.should_retry(exc)
            if asked is not None and self.policy.retries > 0:
                self._sleep(self.policy.wait(0, asked))  # the server's Retry-After holds here too
            return [self._one(request) for request in requests]
        each = round((time.perf_counter() - start) / len(requests), 6)
        for request, answer in zip(requests, answers, strict=True):
            self._store(request, answer)
        return [Outcome(answer, False, each, None) for answer in answers]

    def _one(self, request: tuple[str, str]) -> Outcome:
        attempt = 0
        while True:
            start = time.perf_counter()
            try:
                answer = self.reader.answer(*request)
            except Exception as exc:
                wait = self.reader.should_retry(exc) if attempt < self.policy.retries else None
                if wait is None:
                    return Outcome(None, False, None, error_text(exc))
                self._sleep(self.policy.wait(attempt, wait))
                attempt += 1
                continue
            self._store(request, answer)
            return Outcome(answer, False, round(time.perf_counter() - start, 6), None)

    @property
    def gives_logprobs(self) -> bool:
        return isinstance(self.reader, GivesLogprobs)

    def likelihoods(self, question: str, context: str, continuations: list[str]) -> list[float]:
        """Log-likelihood of each continuation as the answer, through the call cache."""
        if not isinstance(self.reader, GivesLogprobs):
            raise TypeError(f"{type(self.reader).__name__} gives no log-probabilities")
        key = call_key(self.identity, question, context, task="continuation_logprobs",
                       continuations=continuations)
        hit = self.cache.get(key) if self.cache else None
        if hit is not None and hit.logprobs is not None:
            return list(hit.logprobs)
        scores = self.reader.continuation_logprobs(question, context, continuations)
        if self.cache:
            self.cache.put(key, Answer(text="", logprobs=tuple(scores)))
        return scores

    def _store(self, request: tuple[str, str], answer: Answer) -> None:
        if self.cache:
            self.cache.put(self._key(*request), answer)


class CachedReader(Reader):
    """A reader seen through the call cache, handed to backends that write with a model."""

    def __init__(self, service: ReaderService):
        self._service = service
        self.context_tokens = service.reader.context_tokens

    def answer(self, question: str, context: str) -> Answer:
        outcome = self._service.answer_many([(question, context)])[0]
        if outcome.answer is None:
            raise RuntimeError(outcome.error)
        return outcome.answer

    def with_answer_length(self, tokens: int, lines: int) -> CachedReader:
        """The same, through a copy of the reader that answers longer (itself where the
        reader cannot)."""
        longer = self._service.for_length(tokens, lines)
        return self if longer is self._service else CachedReader(longer)

    def count_tokens(self, text: str) -> int:
        return self._service.reader.count_tokens(text)

    def identity(self) -> dict[str, object]:
        return self._service.identity


class TokenCounter:
    """The reader's tokenizer, memoized: the same turns are counted once per process."""

    def __init__(self, reader: Reader):
        self._count = reader.count_tokens
        self._memo: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        n = self._memo.get(text)
        if n is None:
            n = self._memo[text] = self._count(text)
        return n
