"""Run one cell alone: `execute_cell(cell)` in any process, from the cell's JSON.

A cell is one scenario × backend × reader. It is replayed, its probes answered
in batches through the call cache, and its records returned; nothing here
depends on any other cell (the no-memory control included) or on the run
directory. From a shell: `python -m memeval.runner CELL.json > records.jsonl`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from memeval.cache import AnswerCache, CallCache
from memeval.errors import MemevalError
from memeval.protocols import CellContext, MemoryBackend, Reader, TakesSeed
from memeval.records import Cell, ProbeRecord
from memeval.registry import build_backend, build_reader
from memeval.runner.extras import expose, judge_records, judge_service, measure_ess
from memeval.runner.loading import from_content
from memeval.runner.memory import few_collections
from memeval.runner.replay import CellReplay, PendingProbe
from memeval.runner.service import CachedReader, CallPolicy, ReaderService, TokenCounter
from memeval.scoring.prompts import MEMEVAL, PromptSet

#: Reader tokens kept free for the instructions, the question and the answer.
PROMPT_RESERVE = 512

_READERS: dict[str, Reader] = {}


def _reader(spec: str | None, label: str) -> Reader:
    """A reader built from its spec once per process (a local model loads once)."""
    if spec is None:
        raise MemevalError(f"reader '{label}' was given as a Python object; to run a cell in "
                           "another process give it by name or as module:Class")
    if spec not in _READERS:
        _READERS[spec] = build_reader(spec)[1]
    return _READERS[spec]


@dataclass
class CellRuntime:
    """The live objects a cell runs with; `for_cell` builds them from the cell's specs.

    Attributes:
        reader: The reader answering the probes.
        judges: The LLM judges, in the order of the cell's `judges`.
        backend: An instance given by the user: bound for this cell, never closed.
        make_backend: Builds a fresh backend; the cell closes what it builds.
        cache: The call cache, or None to call every model afresh.
        count_tokens: The reader's tokenizer (memoized across cells by the caller).
    """

    reader: Reader
    judges: list[Reader] = field(default_factory=list)
    backend: MemoryBackend | None = None
    make_backend: Callable[[], MemoryBackend] | None = None
    cache: AnswerCache | None = None
    count_tokens: Callable[[str], int] | None = None

    @classmethod
    def for_cell(cls, cell: Cell, cache: AnswerCache | None = None) -> CellRuntime:
        """Build what `cell` names; its model calls go through `cache`, or else this machine's
        call cache when the cell uses one."""
        spec = cell.backend.spec
        if spec is None:
            raise MemevalError(f"backend '{cell.backend.label}' was given as a Python object; "
                               "to run a cell in another process give it by name or as "
                               "module:Class")
        return cls(reader=_reader(cell.reader.spec, cell.reader.label),
                   judges=[_reader(j.spec, j.label) for j in cell.judges],
                   make_backend=lambda: build_backend(spec)[1],
                   cache=cache if cache is not None else CallCache() if cell.cache else None)


def iter_cell(cell: Cell, runtime: CellRuntime | None = None) -> Iterator[ProbeRecord]:
    """Run `cell`, yielding each probe's record as its batch is answered."""
    rt = runtime or CellRuntime.for_cell(cell)
    ls = from_content(cell.scenario, cell.scenario_sha256, cell.scenario_path)
    policy = CallPolicy(max_concurrency=cell.max_concurrency, retries=cell.retries)
    service = ReaderService(rt.reader, rt.cache, policy, seed=seed_reader(rt.reader, cell.seed))
    judge = _judges(cell, rt, policy)
    count = rt.count_tokens or TokenCounter(rt.reader)
    owned = rt.backend is None
    backend = rt.backend if rt.backend is not None else _build(rt, cell)
    context = CellContext(
        count_tokens=count, context_tokens=max(rt.reader.context_tokens - PROMPT_RESERVE, 1),
        seed=cell.seed, workdir=Path(cell.workdir),
        ground_truth=ls.scenario if backend.needs_ground_truth else None,
        reader=CachedReader(service),
        cached=lambda reader: CachedReader(ReaderService(reader, service.cache,
                                                         seed=seed_reader(reader, cell.seed))))
    replay = CellReplay(ls, cell.backend.label, backend, cell.reader.label, count, context,
                        ess=cell.ess and not cell.control)
    batch = max(16, 2 * policy.max_concurrency)
    queue: list[PendingProbe] = []
    try:
        for pending in replay.replay(set(cell.probes)):
            pending.record.control = cell.control
            pending.record.epoch = cell.epoch
            queue.append(pending)
            if len(queue) >= batch:
                yield from _answer(queue, service, judge, replay.ess)
                queue = []
        if queue:
            yield from _answer(queue, service, judge, replay.ess)
    finally:
        if owned:
            backend.close()


def seed_reader(reader: Reader, seed: int) -> int | None:
    """Hand `seed` to a reader that takes one; return it when the reader's answers depend on
    it (the call cache then keys them by it), None otherwise."""
    if isinstance(reader, TakesSeed) and reader.set_seed(seed):
        return seed
    return None


def execute_cell(cell: Cell, runtime: CellRuntime | None = None) -> list[ProbeRecord]:
    """Run `cell` alone and return its records (one per probe it names)."""
    with few_collections():
        return list(iter_cell(cell, runtime))


def _build(rt: CellRuntime, cell: Cell) -> MemoryBackend:
    if rt.make_backend is None:
        raise MemevalError(f"no way to build backend '{cell.backend.label}'")
    return rt.make_backend()


def _judges(cell: Cell, rt: CellRuntime, policy: CallPolicy
            ) -> Callable[[list[ProbeRecord]], None] | None:
    """What has the cell's judges rule on a batch of records (None: no judge; the control's
    answers are not judged)."""
    if not rt.judges or cell.control:
        return None
    prompts = PromptSet.model_validate(cell.judge_prompts) if cell.judge_prompts else MEMEVAL
    services = [(ref.label, judge_service(reader, prompts, rt.cache, policy))
                for ref, reader in zip(cell.judges, rt.judges, strict=True)]
    return lambda records: judge_records(records, services, prompts)


def _answer(queue: list[PendingProbe], service: ReaderService,
            judge: Callable[[list[ProbeRecord]], None] | None, ess: bool) -> Iterator[ProbeRecord]:
    """Answer recalled probes together (cache first), then take the extra measurements."""
    asks = [p for p in queue if p.record.error is None]
    by_length: dict[ReaderService, list[PendingProbe]] = {}
    for p in asks:  # a kind that needs a longer answer goes through its own service
        by_length.setdefault(service.for_kind(p.record.kind), []).append(p)
    answered = [(p, outcome) for asker, group in by_length.items()
                for p, outcome in zip(group, asker.answer_many(
                    [(p.record.question, p.context) for p in group]), strict=True)]
    for p, outcome in answered:
        r = p.record
        r.cached, r.answer_s = outcome.cached, outcome.seconds
        if outcome.answer is not None:
            answer = outcome.answer
            r.answer, r.usage = answer.text, answer.usage
            r.reader_stats = {} if outcome.cached else dict(answer.stats)  # a hit used no GPU
            r.answer_logprobs = list(answer.logprobs) if answer.logprobs is not None else None
            r.copied_span = p.said.longest_copied_span(answer.text, p.said_words)
        else:
            r.error, r.error_stage = outcome.error, "answer"
    if judge is not None:
        judge([p.record for p in asks])
    for p in queue:
        if p.canaries and p.record.error is None and service.gives_logprobs:
            expose(p, service)
        if ess and p.record.error is None:
            measure_ess(p, service.reader)
        yield p.record


def main(argv: list[str] | None = None) -> int:
    """Run the cell in the JSON file `argv[0]`; print its records as JSON lines."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m memeval.runner CELL.json", file=sys.stderr)
        return 2
    try:
        cell = Cell.model_validate_json(Path(args[0]).read_text(encoding="utf-8"))
        with few_collections():
            for record in iter_cell(cell):
                sys.stdout.write(record.model_dump_json() + "\n")
    except MemevalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.flush()
    return 0
