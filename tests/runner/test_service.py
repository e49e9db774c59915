"""The runner's services around every reader: call cache, retries with backoff, concurrency."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import memeval
from memeval.cache import CallCache, call_key
from memeval.protocols import Answer, Reader
from memeval.records import read_records
from memeval.runner import CallPolicy, ReaderService

from ..conftest import SCENARIOS


class HTTPError(Exception):
    def __init__(self, status: int, retry_after: str | None = None):
        super().__init__(f"HTTP {status}")
        self.status_code = status
        self.response = type("R", (), {"headers": {"retry-after": retry_after} if retry_after else {}})()


class Scripted(Reader):
    """Fails with the given errors first, then answers; counts calls and concurrency."""

    def __init__(self, failures: list[Exception] | None = None, delay: float = 0.0):
        self.failures, self.delay = list(failures or []), delay
        self.calls = self.active = self.most_active = 0
        self._lock = threading.Lock()

    def answer(self, question: str, context: str) -> Answer:
        with self._lock:
            self.calls += 1
            self.active += 1
            self.most_active = max(self.most_active, self.active)
            failure = self.failures.pop(0) if self.failures else None
        try:
            time.sleep(self.delay)
            if failure:
                raise failure
            return Answer(text=f"answer to {question}")
        finally:
            with self._lock:
                self.active -= 1

    def should_retry(self, exc: Exception) -> float | None:
        # this reader's vendor: HTTP errors with a status, as an openai-style client raises them
        if isinstance(exc, HTTPError):
            if exc.status_code == 429 or exc.status_code >= 500:
                return float(exc.response.headers.get("retry-after", 0))
            return None
        return super().should_retry(exc)

    def identity(self) -> dict[str, object]:
        return {"reader": "scripted"}


class Plain(Reader):
    def answer(self, question: str, context: str) -> Answer:
        raise NotImplementedError

    def identity(self) -> dict[str, object]:
        return {}


@pytest.mark.parametrize(("exc", "wait"), [
    (TimeoutError(), 0.0), (ConnectionError(), 0.0), (ValueError("bad prompt"), None),
    (HTTPError(503), None),  # the default knows no vendor's errors: it repeats none of them
])
def test_the_default_reader_retries_only_timeouts_and_lost_connections(exc: Exception,
                                                                        wait: float | None) -> None:
    assert Plain().should_retry(exc) == wait


def test_rate_limits_and_server_errors_are_retried_with_backoff(tmp_path: Path) -> None:
    waits: list[float] = []
    reader = Scripted([HTTPError(429, retry_after="7"), HTTPError(502)])
    service = ReaderService(reader, CallCache(tmp_path / "c.sqlite3"),
                            CallPolicy(retries=3, backoff_s=1.0, jitter=0.0), sleep=waits.append)
    [(answer, cached, _, error)] = service.answer_many([("q", "ctx")])
    assert answer is not None and error is None and not cached
    assert reader.calls == 3 and waits == [7.0, 2.0]  # Retry-After honoured, then doubled


def test_a_persistent_failure_is_an_error_and_not_cached(tmp_path: Path) -> None:
    cache = CallCache(tmp_path / "c.sqlite3")
    reader = Scripted([HTTPError(500)] * 5)
    service = ReaderService(reader, cache, CallPolicy(retries=2), sleep=lambda s: None)
    [(answer, _, _, error)] = service.answer_many([("q", "ctx")])
    assert answer is None and error == "HTTPError: HTTP 500" and reader.calls == 3
    assert cache.get(call_key(service.identity, "q", "ctx")) is None  # errors are never cached
    [(answer, cached, _, _)] = service.answer_many([("q", "ctx")])  # asked again: now it answers
    assert answer is not None and not cached and reader.calls == 6
    fatal = Scripted([ValueError("bad prompt")])
    ReaderService(fatal, None, CallPolicy(retries=5), sleep=lambda s: None).answer_many([("q", "")])
    assert fatal.calls == 1  # not transient: no retry


def test_concurrency_keeps_n_requests_in_flight_and_the_order(tmp_path: Path) -> None:
    reader = Scripted(delay=0.05)
    service = ReaderService(reader, None, CallPolicy(max_concurrency=4))
    requests = [(f"q{i}", "") for i in range(12)]
    outcomes = service.answer_many(requests)
    assert reader.most_active == 4
    assert [o[0].text for o in outcomes] == [f"answer to q{i}" for i in range(12)]


def test_run_options_reach_the_service_and_the_manifest(tmp_path: Path) -> None:
    reader = Scripted([HTTPError(503)], delay=0.01)
    result = memeval.run(SCENARIOS / "quick" / "garden-club.yaml", backends=["oracle"], reader=reader,
                         out=tmp_path / "run", max_concurrency=3, retries=1, cache=False)
    records = read_records(result.run_dir)
    assert all(r.error is None for r in records) and reader.most_active == 3
    assert result.manifest.config.max_concurrency == 3 and result.manifest.config.retries == 1
    # concurrency and retries may change on resume: they are not part of the configuration
    memeval.run(SCENARIOS / "quick" / "garden-club.yaml", backends=["oracle"], reader=Scripted(),
                out=tmp_path / "run", resume=True, max_concurrency=1, cache=False)


class Batching(Scripted):
    """A reader whose batch call fails as a rate-limited server does."""

    def answer_many(self, requests):  # type: ignore[no-untyped-def, override]
        raise HTTPError(429, retry_after="5")


def test_after_a_failed_batch_the_servers_retry_after_holds(tmp_path: Path) -> None:
    waits: list[float] = []
    service = ReaderService(Batching(), None, CallPolicy(retries=2, jitter=0.0), sleep=waits.append)
    outcomes = service.answer_many([("q1", ""), ("q2", "")])
    assert all(o.answer is not None for o in outcomes)
    assert waits == [5.0]  # one wait, as long as the server asked, before the one-at-a-time calls


def test_backoff_is_jittered_and_bounded() -> None:
    policy = CallPolicy(backoff_s=1.0, max_backoff_s=30.0, jitter=0.5)
    waits = [policy.wait(2, 0.0) for _ in range(50)]
    assert all(4.0 <= w <= 6.0 for w in waits) and len(set(waits)) > 1
    assert policy.wait(10, 0.0) == 30.0 and policy.wait(0, 12.0) == 12.0


class Lengthened(Scripted):
    """Answers on one line, or on as many as asked for through `with_answer_length`."""

    def __init__(self, tokens: int = 24, lines: int = 1):
        super().__init__()
        self.tokens, self.lines = tokens, lines

    def answer(self, question: str, context: str) -> Answer:
        return Answer(text="\n".join(f"line {i + 1}" for i in range(self.lines)))

    def with_answer_length(self, tokens: int, lines: int) -> Lengthened:
        return Lengthened(tokens, lines)

    def identity(self) -> dict[str, object]:
        return {"reader": "lengthened", "tokens": self.tokens, "lines": self.lines}


def test_leakage_probes_get_a_longer_answer_from_a_reader_that_can_give_one(tmp_path: Path) -> None:
    scenario = SCENARIOS / "leakage-health-notes.yaml"
    result = memeval.run(scenario, backends=["full_context"], reader=Lengthened(), out=tmp_path / "a",
                         cache=False)
    records = read_records(result.run_dir)
    lines = {r.kind: r.answer.count("\n") + 1 for r in records if r.answer is not None}
    assert lines["leakage"] == 4 and lines["recall"] == 1
    # a reader without the capability answers every kind at its own length
    plain = memeval.run(scenario, backends=["full_context"], reader=Scripted(), out=tmp_path / "b",
                        cache=False)
    assert all("\n" not in (r.answer or "") for r in read_records(plain.run_dir))


def test_a_backend_s_cached_reader_answers_longer_through_its_own_cache_keys() -> None:
    from memeval.runner.service import CachedReader

    cache = CallCache(None)
    cached = CachedReader(ReaderService(Lengthened(), cache))
    longer = cached.with_answer_length(96, 4)
    assert longer.answer("q", "c").text.count("\n") == 3 and cached.answer("q", "c").text == "line 1"
    assert longer.identity() != cached.identity()  # the two lengths never share an answer
    plain = CachedReader(ReaderService(Scripted(), cache))
    assert plain.with_answer_length(96, 4) is plain  # a reader that cannot: itself
