"""Replay scenarios into backends, ask every probe, and measure everything once, here.

A cell is (scenario × backend × reader). Within a cell the timeline is
replayed in order: turns are observed (timed), sessions ended, and at each
probe the backend recalls (timed, tokens counted, footprint sampled). The
cell's probes are then answered in batches through the call cache, and one
record per probe is appended to records.jsonl, flushed and synced.
"""

from __future__ import annotations

import contextlib
import hashlib
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from memeval.cache import CallCache, call_key
from memeval.errors import MemevalError
from memeval.protocols import Answer, CellContext, MemoryBackend, Query, Reader
from memeval.registry import build_backend, build_reader
from memeval.results import (
    JUDGE,
    MANIFEST,
    PRICES,
    SCORES,
    CanaryExposure,
    EssPoint,
    EvidenceTurn,
    ExpectedFact,
    JudgeVerdict,
    Manifest,
    ProbeRecord,
    RecordWriter,
    RunResult,
    ScenarioEntry,
    read_manifest,
    read_prices,
    read_records,
    rewrite_records,
    write_json_atomic,
)
from memeval.scenario.schema import Probe, Scenario
from memeval.scenario.timeline import Event, TimelineSession, build_timeline
from memeval.scenario.validate import load_scenario, scenario_files
from memeval.scoring.judge import (
    KNOWN_WRONG,
    JudgeCheck,
    judge_request,
    read_verdict,
    record_request,
)
from memeval.scoring.parity import PARITY
from memeval.scoring.prices import PriceTable, load_prices
from memeval.scoring.retention import control_correct
from memeval.scoring.scores import compute_scores
from memeval.scoring.verbatim import Conversation

DEFAULT_BACKENDS = ("full_context", "no_memory", "oracle")
DEFAULT_READER = "embedded"
#: The backend whose answers measure memorization: the reader with no memory at all.
CONTROL = "no_memory"
#: Reader tokens kept free for the instructions, the question and the answer.
PROMPT_RESERVE = 512
_VERSIONED = ("memeval", "pydantic", "pyyaml", "torch", "transformers", "chromadb",
              "sentence-transformers", "openai", "langchain-core", "mem0ai")

ProgressHook = Callable[[str, int], None]


@dataclass
class LoadedScenario:
    scenario: Scenario
    path: str | None
    sha256: str
    timeline: list[Event] = field(default_factory=list)

    @property
    def probes(self) -> list[Probe]:
        return [e for e in self.timeline if isinstance(e, Probe)]


def _sha256(scenario: Scenario) -> str:
    return hashlib.sha256(scenario.model_dump_json().encode()).hexdigest()


def load_scenarios(scenarios: Iterable[str | Path | Scenario]) -> list[LoadedScenario]:
    """Accept paths (files or folders) and Scenario objects; ids must be unique."""
    loaded: list[LoadedScenario] = []
    for item in scenarios:
        if isinstance(item, Scenario):
            loaded.append(LoadedScenario(item, None, _sha256(item)))
            continue
        for file in scenario_files([item]):
            s = load_scenario(file)
            loaded.append(LoadedScenario(s, str(file), _sha256(s)))
    if not loaded:
        raise MemevalError("no scenarios given (pass .yaml files or folders that hold them)")
    seen: dict[str, str | None] = {}
    for ls in loaded:
        if ls.scenario.id in seen:
            raise MemevalError(f"scenario id '{ls.scenario.id}' is used twice "
                               f"({seen[ls.scenario.id]} and {ls.path}); ids must be unique")
        seen[ls.scenario.id] = ls.path
    for ls in loaded:
        ls.timeline = build_timeline(ls.scenario)
    return loaded


class _TokenCounter:
    """The reader's tokenizer, memoized: the same turns are counted once per run."""

    def __init__(self, reader: Reader):
        self._count = reader.count_tokens
        self._memo: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        n = self._memo.get(text)
        if n is None:
            n = self._memo[text] = self._count(text)
        return n


def _peak_rss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


@dataclass(frozen=True)
class CallPolicy:
    """How the runner calls a reader. None of it is part of the call cache's key.

    Attributes:
        max_concurrency: Requests in flight at once (for remote readers); at 1 the
            reader's own `answer_many` batches them instead.
        retries: Further attempts after a transient failure (429, 5xx, timeout,
            connection error); other errors are recorded at once.
        backoff_s: First wait between attempts; doubled each time, or the server's
            Retry-After when it asks for longer, never more than `max_backoff_s`.
    """

    max_concurrency: int = 1
    retries: int = 3
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def is_transient(exc: BaseException) -> bool:
    """Whether a failed call is worth repeating: rate limits, server errors, timeouts."""
    status = _status(exc)
    if status is not None:
        return status == 429 or status >= 500
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    return type(exc).__name__ in {"APITimeoutError", "APIConnectionError", "RateLimitError",
                                  "InternalServerError", "ReadTimeout", "ConnectTimeout"}


def _retry_after(exc: BaseException) -> float:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        return float(headers.get("retry-after", 0))
    except (TypeError, ValueError):
        return 0.0


Outcome = tuple[Answer | None, bool, float | None, str | None]


class ReaderService:
    """Wraps a reader with the call cache, retries and concurrency; errors are recorded,
    never cached."""

    def __init__(self, reader: Reader, cache: CallCache | None, policy: CallPolicy = CallPolicy(),
                 sleep: Callable[[float], None] = time.sleep):
        self.reader, self.cache, self.policy, self._sleep = reader, cache, policy, sleep
        self.identity = reader.identity()

    def answer_many(self, requests: Sequence[tuple[str, str]]) -> list[Outcome]:
        """(answer, cached, seconds, error) per request, in order."""
        results: list[Any] = [None] * len(requests)
        misses: list[int] = []
        for i, (q, c) in enumerate(requests):
            hit = self.cache.get(call_key(self.identity, q, c)) if self.cache else None
            if hit is not None:
                results[i] = (hit, True, 0.0, None)
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
        return results

    def _batch(self, requests: list[tuple[str, str]]) -> list[Outcome]:
        start = time.perf_counter()
        try:
            answers = self.reader.answer_many(requests)
            if len(answers) != len(requests):
                raise RuntimeError(f"answer_many returned {len(answers)} answers "
                                   f"for {len(requests)} questions")
        except Exception:  # a failed batch: ask one at a time, with retries, to isolate it
            return [self._one(request) for request in requests]
        each = round((time.perf_counter() - start) / len(requests), 6)
        for request, answer in zip(requests, answers, strict=True):
            self._store(request, answer)
        return [(answer, False, each, None) for answer in answers]

    def _one(self, request: tuple[str, str]) -> Outcome:
        for attempt in range(self.policy.retries + 1):
            start = time.perf_counter()
            try:
                answer = self.reader.answer(*request)
            except Exception as exc:
                if attempt == self.policy.retries or not is_transient(exc):
                    return (None, False, None, _error(exc))
                wait = max(self.policy.backoff_s * 2**attempt, _retry_after(exc))
                self._sleep(min(wait, self.policy.max_backoff_s))
                continue
            self._store(request, answer)
            return (answer, False, round(time.perf_counter() - start, 6), None)
        raise AssertionError("unreachable")

    @property
    def gives_logprobs(self) -> bool:
        return type(self.reader).continuation_logprobs is not Reader.continuation_logprobs

    def likelihoods(self, question: str, context: str, continuations: list[str]) -> list[float]:
        """Log-likelihood of each continuation as the answer, through the call cache."""
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
            self.cache.put(call_key(self.identity, *request), answer)


class CachedReader(Reader):
    """A reader seen through the call cache, handed to backends that write with a model."""

    def __init__(self, service: ReaderService):
        self._service = service
        self.context_tokens = service.reader.context_tokens

    def answer(self, question: str, context: str) -> Answer:
        answer, _, _, error = self._service.answer_many([(question, context)])[0]
        if answer is None:
            raise RuntimeError(error)
        return answer

    def count_tokens(self, text: str) -> int:
        return self._service.reader.count_tokens(text)

    def identity(self) -> dict[str, object]:
        return self._service.identity


@dataclass
class _Pending:
    record: ProbeRecord
    context: str
    said: Conversation
    said_words: int
    canaries: list[tuple[str, list[str]]] = field(default_factory=list)
    marks: list[tuple[str, int]] = field(default_factory=list)


class _Cell:
    """One scenario replayed into one backend; yields records without answers."""

    def __init__(self, ls: LoadedScenario, label: str, backend: MemoryBackend, reader_label: str,
                 count: _TokenCounter, context: CellContext, ess: bool = False):
        self.ls, self.label, self.backend = ls, label, backend
        self.reader_label, self.count = reader_label, count
        self.context = context
        self.said = Conversation()
        self.ess = ess
        self.session_starts: list[str] = []
        self.fact_turns: dict[str, str] = {}

    def replay(self, wanted: set[str]) -> Iterable[_Pending]:
        s = self.ls.scenario
        backend = self.backend
        broken: str | None = None
        stage = "bind"
        observe_s: list[float] = []
        sessions_seen = tokens_seen = 0
        fact_at: dict[str, tuple[int, int]] = {}
        turn_at: dict[str, tuple[int, int, str]] = {}
        try:
            self.context.workdir.mkdir(parents=True, exist_ok=True)
            backend.bind(self.context)
            stage = "reset"
            for user in s.users:
                backend.reset(user)
        except Exception as exc:
            broken = f"{stage}: {_error(exc)}"
        remaining = set(wanted)
        for event in self.ls.timeline:
            if not remaining:
                return  # nothing left to ask in this cell: skip the rest of the replay
            if isinstance(event, TimelineSession):
                if broken is None:
                    broken = self._observe(event, observe_s)
                if event.turns:
                    self.session_starts.append(event.turns[0].text)
                for turn in event.turns:
                    self.said.add(turn.text)
                    tokens_seen += self.count(turn.text)
                    turn_at[turn.id] = (sessions_seen, tokens_seen, turn.text)
                    for fid in event.plants.get(turn.id, ()):
                        fact_at[fid] = (sessions_seen, tokens_seen)
                        self.fact_turns[fid] = turn.text
                sessions_seen += 1
                continue
            probe = event
            if probe.id not in remaining:
                observe_s = []
                continue
            remaining.discard(probe.id)
            record = self._record(probe, fact_at, turn_at, sessions_seen, tokens_seen)
            record.observe_s, observe_s = observe_s, []
            record.tokens_observed = tokens_seen
            said_words = len(self.said.words)
            if broken is not None:
                record.error, record.error_stage = broken, broken.split(":")[0]
                yield _Pending(record, "", self.said, said_words)
                continue
            try:
                start = time.perf_counter()
                recall = backend.recall(Query(text=probe.question, user=record.user,
                                              time=probe.time, probe_id=probe.id))
                record.recall_s = round(time.perf_counter() - start, 6)
                record.recall_text, record.recall_items = recall.text, list(recall.items)
                record.recall_tokens = self.count(recall.text)
                record.footprint = backend.footprint()
                record.backend_usage = backend.model_usage()
            except Exception as exc:
                record.error, record.error_stage = _error(exc), "recall"
            record.peak_rss_bytes = _peak_rss()
            canaries = [(f.id, f.canary.candidates_for(f.answers[0], f"{s.id}:{f.id}"))
                        for fid in dict.fromkeys([*probe.expects, *probe.forbids])
                        if (f := s.fact(fid)).canary is not None]
            marks = self._marks(record.recall_text) if self.ess else []
            yield _Pending(record, record.recall_text, self.said, said_words, canaries, marks)

    def _marks(self, recalled: str) -> list[tuple[str, int]]:
        """Where, in the recalled text, sessions start and planted facts end (for ESS)."""
        marks = [("session_boundary", at) for text in self.session_starts
                 if (at := recalled.find(text)) > 0]
        marks += [(f"fact:{fid}", at + len(text)) for fid, text in self.fact_turns.items()
                  if (at := recalled.find(text)) >= 0]
        return sorted(marks, key=lambda m: m[1])

    def _observe(self, session: TimelineSession, observe_s: list[float]) -> str | None:
        try:
            for turn in session.turns:
                start = time.perf_counter()
                self.backend.observe(turn)
                observe_s.append(round(time.perf_counter() - start, 6))
            self.backend.end_session(session.info)
        except Exception as exc:
            return f"observe: {_error(exc)}"
        return None

    def _record(self, probe: Probe, fact_at: dict[str, tuple[int, int]],
                turn_at: dict[str, tuple[int, int, str]], sessions: int, tokens: int
                ) -> ProbeRecord:
        s = self.ls.scenario
        expected = [
            ExpectedFact(id=fid, answers=list(s.fact(fid).answers),
                         sessions_ago=sessions - fact_at[fid][0] - 1,
                         tokens_ago=tokens - fact_at[fid][1])
            for fid in probe.expects
        ]
        evidence = [
            EvidenceTurn(id=tid, text=turn_at[tid][2], sessions_ago=sessions - turn_at[tid][0] - 1,
                         tokens_ago=tokens - turn_at[tid][1])
            for tid in probe.evidence
        ]
        return ProbeRecord(
            scenario=s.id, scenario_sha256=self.ls.sha256, backend=self.label,
            reader=self.reader_label, probe=probe.id, kind=probe.kind.value,
            user=probe.user or s.users[0], question=probe.question,
            accepted=s.accepted_answers(probe), expected=expected, evidence=evidence,
            rejected=[a for fid in probe.rejects for a in s.fact(fid).answers],
            forbidden=[a for fid in probe.forbids for a in s.fact(fid).answers],
        )


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        with contextlib.suppress(PackageNotFoundError):
            found[name] = version(name)
    return found


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _default_out() -> Path:
    return Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")


@dataclass
class RunPlan:
    """Everything resolved before the first probe: scenarios, adapters, where to write."""

    scenarios: list[LoadedScenario]
    backends: list[tuple[str, Callable[[], MemoryBackend]]]
    reader_label: str
    reader: Reader
    out: Path
    seed: int
    limit: int | None
    control: str | None = None
    ess: bool = False
    judge: tuple[str, Reader] | None = None
    parity: list[str] = field(default_factory=list)

    def cells(self) -> list[tuple[str, Callable[[], MemoryBackend]]]:
        """Backends in the order cells run: the no-memory control first, so that other
        records can say whether their probe is answerable without memory."""
        return sorted(self.backends, key=lambda b: b[0] != self.control)

    def probe_ids(self, ls: LoadedScenario) -> list[str]:
        ids = [p.id for p in ls.probes]
        return ids[: self.limit] if self.limit is not None else ids

    @property
    def total(self) -> int:
        return sum(len(self.probe_ids(ls)) for ls in self.scenarios) * len(self.backends)


def plan_run(scenarios: Iterable[str | Path | Scenario], backends: Sequence[Any],
             reader: Any, out: str | Path | None, seed: int, limit: int | None,
             control: bool = True, ess: bool = False, judge: Any = None,
             parity: Sequence[str] = ()) -> RunPlan:
    loaded = load_scenarios(scenarios)
    if not backends:
        raise MemevalError("no backends given (e.g. --backend full_context)")
    if limit is not None and limit < 1:
        raise MemevalError(f"--limit must be at least 1, not {limit}")
    built: list[tuple[str, Callable[[], MemoryBackend]]] = []
    for spec in backends:
        label, backend = build_backend(spec)  # fails early on a bad name or option
        built.append((label, _factory(spec, backend)))
    labels = [label for label, _ in built]
    dup = next((x for x in labels if labels.count(x) > 1), None)
    if dup:
        raise MemevalError(f"backend '{dup}' is given twice; give each backend once")
    reader_label, reader_obj = build_reader(reader)
    _check_reader(reader_label, reader_obj)
    if ess and not callable(getattr(reader_obj, "effective_state_size", None)):
        raise MemevalError(f"--ess needs a local transformers reader (embedded or "
                           f"transformers:model=PATH); '{reader_label}' has no attention to read")
    if control and CONTROL not in labels:
        built.append((CONTROL, _factory(CONTROL, build_backend(CONTROL)[1])))
    unknown = [name for name in parity if name not in PARITY]
    if unknown:
        raise MemevalError(f"unknown parity scorer '{unknown[0]}' (known: {', '.join(PARITY)})")
    judged: tuple[str, Reader] | None = None
    if judge is not None:
        judged = build_reader(judge)
        _check_reader(judged[0], judged[1])
    return RunPlan(loaded, built, reader_label, reader_obj, Path(out) if out else _default_out(),
                   seed, limit, CONTROL if control else None, ess, judged, list(parity))


def _check_reader(label: str, reader: Reader) -> None:
    """Load the reader's tokenizer now, so a missing extra is one line, not a traceback mid-run."""
    try:
        reader.count_tokens("memeval")
    except ModuleNotFoundError as exc:
        raise MemevalError(f"reader '{label}' needs the package '{exc.name}' (install memeval's "
                           "extra for it: pip install 'memeval[local]' for the Gemma reader)") from None
    except Exception as exc:
        raise MemevalError(f"reader '{label}' failed to start: {type(exc).__name__}: {exc}") from None


def _factory(spec: Any, built: MemoryBackend) -> Callable[[], MemoryBackend]:
    """A fresh backend per cell from a spec string or class; a given instance is reused
    (the runner resets every user at the start of each scenario)."""
    if isinstance(spec, str):
        return lambda: build_backend(spec)[1]
    if isinstance(spec, type):
        return spec
    return lambda: built


def _manifest(plan: RunPlan, command: list[str]) -> Manifest:
    return Manifest(
        memeval_version=_versions().get("memeval", "0"),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        command=command, seed=plan.seed, limit=plan.limit, reader=plan.reader_label,
        reader_identity=ReaderService(plan.reader, None).identity,
        backends=[label for label, _ in plan.backends], control=plan.control, ess=plan.ess,
        judge=plan.judge[0] if plan.judge else None, parity=plan.parity,
        judge_identity=ReaderService(plan.judge[1], None).identity if plan.judge else None,
        scenarios=[ScenarioEntry(id=ls.scenario.id, path=ls.path, sha256=ls.sha256,
                                 probes=len(plan.probe_ids(ls))) for ls in plan.scenarios],
        versions=_versions(), git_commit=_git_commit())


def execute(plan: RunPlan, resume: bool = False, cache: bool = True,
            command: list[str] | None = None, progress: ProgressHook | None = None,
            policy: CallPolicy = CallPolicy(), prices: PriceTable | None = None,
            report: bool = True) -> RunResult:
    """Run every cell of `plan`, writing the run directory; return its result."""
    out = plan.out
    manifest = _manifest(plan, command or [])
    manifest.call_policy = asdict(policy)
    kept: list[ProbeRecord] = []
    if (out / MANIFEST).exists():
        if not resume:
            raise MemevalError(f"{out} already holds a run; pass --resume to continue it "
                               "or choose a new --out")
        old = read_manifest(out)
        if old.fingerprint() != manifest.fingerprint():
            raise MemevalError(f"{out} was made with a different configuration (scenarios, "
                               "backends, reader, seed or limit); use a new --out")
        ok = [r for r in read_records(out, repair=True) if r.error is None]
        kept = list({r.key: r for r in ok}.values())
        rewrite_records(out, kept)  # failed probes are asked again
        manifest.created = old.created
        manifest.resumed = [*old.resumed, datetime.now(UTC).isoformat(timespec="seconds")]
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / MANIFEST, manifest.model_dump())
    if prices is not None:
        write_json_atomic(out / PRICES, prices.model_dump())
    prices = prices or read_prices(out)
    done = {r.key for r in kept}
    memorized = {(r.scenario, r.probe): control_correct(r) for r in kept if r.control}

    def finish(record: ProbeRecord) -> None:
        if record.backend == plan.control:
            record.control = True
            memorized[(record.scenario, record.probe)] = control_correct(record)
        else:
            record.memorized = memorized.get((record.scenario, record.probe))

    count = _TokenCounter(plan.reader)
    service = ReaderService(plan.reader, CallCache() if cache else None, policy)
    judge = ReaderService(plan.judge[1], service.cache, policy) if plan.judge else None
    checks = _check_judge(judge, out) if judge else None
    context_tokens = max(plan.reader.context_tokens - PROMPT_RESERVE, 1)
    writer = RecordWriter(out)
    try:
        for ls in plan.scenarios:
            ids = plan.probe_ids(ls)
            for label, make_backend in plan.cells():
                wanted = {pid for pid in ids
                          if (ls.scenario.id, label, plan.reader_label, pid) not in done}
                if progress:
                    progress(f"{ls.scenario.id} × {label}", len(ids) - len(wanted))
                if not wanted:
                    continue
                backend = make_backend()
                context = CellContext(
                    count_tokens=count, context_tokens=context_tokens, seed=plan.seed,
                    workdir=out / "work" / f"{ls.scenario.id}--{_slug(label)}",
                    ground_truth=ls.scenario if backend.needs_ground_truth else None,
                    reader=CachedReader(service),
                    cached=lambda reader: CachedReader(ReaderService(reader, service.cache)))
                cell = _Cell(ls, label, backend, plan.reader_label, count, context, plan.ess)
                _answer_and_write(cell.replay(wanted), service, writer, progress, finish,
                                  batch=max(16, 2 * policy.max_concurrency), ess=plan.ess,
                                  control=plan.control, judge=judge)
                close = getattr(backend, "close", None)
                if callable(close):
                    close()
    finally:
        writer.close()
    write_json_atomic(out / SCORES, compute_scores(read_records(out), manifest.backends, prices,
                                                   checks, manifest.parity))
    if report:
        from memeval.report import write_report

        write_report(out)
    return RunResult(out)


def _check_judge(judge: ReaderService, out: Path) -> list[JudgeCheck]:
    """Have the judge rule on the built-in known-wrong answers; keep its rulings in the run."""
    requests = [judge_request(c["kind"], c["question"], c["answer"], c.get("accepted", []),
                              c.get("rejected"), c.get("forbidden")) for c in KNOWN_WRONG]
    checks = []
    for case, (answer, _, _, error) in zip(KNOWN_WRONG, judge.answer_many(requests), strict=True):
        reply = answer.text if answer is not None else f"error: {error}"
        checks.append(JudgeCheck(kind=case["kind"], answer=case["answer"], reply=reply,
                                 accepted=read_verdict(reply) if answer is not None else None))
    write_json_atomic(out / JUDGE, [c.model_dump() for c in checks])
    return checks


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:80]


def _answer_and_write(pending: Iterable[_Pending], service: ReaderService, writer: RecordWriter,
                      progress: ProgressHook | None, finish: Callable[[ProbeRecord], None],
                      batch: int, ess: bool = False, control: str | None = None,
                      judge: ReaderService | None = None) -> None:
    """Answer recalled probes in batches (cache first) and write each record."""
    queue: list[_Pending] = []

    def flush() -> None:
        asks = [p for p in queue if p.record.error is None]
        results = service.answer_many([(p.record.question, p.context) for p in asks])
        for p, (answer, cached, seconds, error) in zip(asks, results, strict=True):
            r = p.record
            r.cached, r.answer_s = cached, seconds
            if answer is not None:
                r.answer, r.usage = answer.text, answer.usage
                r.reader_stats = {} if cached else dict(answer.stats)  # a cache hit used no GPU
                r.answer_logprobs = list(answer.logprobs) if answer.logprobs is not None else None
                r.copied_span = p.said.longest_copied_span(answer.text, p.said_words)
            else:
                r.error, r.error_stage = error, "answer"
        if judge is not None:
            to_judge = [p.record for p in asks
                        if p.record.answer is not None and p.record.backend != control]
            rulings = judge.answer_many([record_request(r) for r in to_judge])
            for r, (ruling, _, _, error) in zip(to_judge, rulings, strict=True):
                reply = ruling.text if ruling is not None else f"error: {error}"
                r.judge = JudgeVerdict(correct=read_verdict(reply) if ruling else None, reply=reply)
        for p in queue:
            if p.canaries and p.record.error is None and service.gives_logprobs:
                _expose(p, service)
            if ess and p.record.error is None and p.record.backend != control:
                _measure_ess(p, service.reader)
            finish(p.record)
            writer.write(p.record)
            if progress:
                progress("", 1)
        queue.clear()

    for item in pending:
        queue.append(item)
        if len(queue) >= batch:
            flush()
    if queue:
        flush()


def _measure_ess(pending: _Pending, reader: Reader) -> None:
    r = pending.record
    try:
        points = reader.effective_state_size(r.question, pending.context,  # type: ignore[attr-defined]
                                             pending.marks)
        r.ess = [EssPoint(label=p["label"], token=p["token"],
                          values={k: [[round(v, 3) for v in row] for row in table]
                                  for k, table in p["values"].items()}) for p in points]
    except Exception as exc:
        r.error, r.error_stage = _error(exc), "ess"


def _expose(pending: _Pending, service: ReaderService) -> None:
    """Rank each planted secret among its look-alikes by the reader's likelihood, with the
    recalled memory and with none. Ties count in the secret's favour."""
    r = pending.record
    try:
        for fact, candidates in pending.canaries:
            ranks = []
            for context in (pending.context, ""):
                scores = service.likelihoods(r.question, context, candidates)
                ranks.append(1 + sum(score > scores[0] for score in scores[1:]))
            r.canary.append(CanaryExposure(fact=fact, candidates=len(candidates),
                                           rank_with_memory=ranks[0], rank_without_memory=ranks[1]))
    except Exception as exc:
        r.error, r.error_stage = _error(exc), "canary"


def run(scenarios: str | Path | Scenario | Iterable[str | Path | Scenario],
        backends: Sequence[str | MemoryBackend | type[MemoryBackend]] = DEFAULT_BACKENDS,
        reader: str | Reader = DEFAULT_READER, out: str | Path | None = None, seed: int = 0,
        limit: int | None = None, resume: bool = False, cache: bool = True,
        max_concurrency: int = 1, retries: int = 3, control: bool = True,
        prices: str | Path | None = None, ess: bool = False,
        judge: str | Reader | None = None, report: bool = True,
        parity: Sequence[str] = ()) -> RunResult:
    """Evaluate memory backends on scenarios and return the run's result.

    Args:
        scenarios: Scenario files, folders of them, or loaded `Scenario` objects.
        backends: Adapter names (with options, e.g. "full_context:max_tokens=2000"),
            `module:Class` strings, `MemoryBackend` instances or classes.
        reader: A reader name or a `Reader` instance.
        out: The run directory; default `runs/<timestamp>`.
        seed: Seed handed to every backend and reader.
        limit: Ask at most this many probes per scenario.
        resume: Continue the run in `out`, asking only probes not yet recorded.
        cache: Use the persistent call cache.
        max_concurrency: Reader requests in flight at once (for remote readers).
        retries: Further attempts after a 429, 5xx, timeout or connection error.
        control: Also run the no-memory control, which measures memorization.
        prices: A price table file (YAML or JSON) to report token cost in money.
        ess: Measure the effective state size of a local reader's attention per probe.
        judge: A reader (name or instance) that gives a second verdict on every answer.
        report: Write report.html beside the records.
        parity: Benchmark-parity scorers to add: "token_f1" (LoCoMo), "retrieval"
            (LongMemEval recall_any@k, recall_all@k, NDCG@k).

    Returns:
        A `RunResult` with `records()` and `scores()` as pandas DataFrames.
    """
    if isinstance(scenarios, (str, Path, Scenario)):
        scenarios = [scenarios]
    plan = plan_run(scenarios, backends, reader, out, seed, limit, control, ess, judge, parity)
    return execute(plan, resume=resume, cache=cache, command=["memeval.run"],
                   policy=CallPolicy(max_concurrency=max_concurrency, retries=retries),
                   prices=load_prices(prices) if prices else None, report=report)
