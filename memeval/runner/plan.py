"""Planning a run: resolve scenarios and adapters once, fail early, and cut the run into cells."""

from __future__ import annotations

import contextlib
import platform
import subprocess
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from memeval.cache import AnswerCache
from memeval.errors import MemevalError
from memeval.protocols import MemoryBackend, Reader, ReadsAttention
from memeval.records import (
    CONTROL,
    AdapterRef,
    Cell,
    JudgeEntry,
    Manifest,
    RecordKey,
    RunConfig,
    ScenarioEntry,
    epoch_seed,
)
from memeval.registry import build_backend, build_reader, redact
from memeval.runner.cell import CellRuntime
from memeval.runner.cluster import RayOptions, parse_executor, require_ray
from memeval.runner.loading import LoadedScenario, load_scenarios
from memeval.scenario.schema import Scenario
from memeval.scoring.parity import PARITY
from memeval.scoring.prices import PriceTable, load_prices
from memeval.scoring.prompts import MEMEVAL, PromptSet, judge_identity, load_prompt_set

_VERSIONED = ("memeval", "pydantic", "pyyaml", "torch", "transformers", "chromadb",
              "sentence-transformers", "openai", "langchain-core", "mem0ai")


@dataclass
class BackendChoice:
    """A backend of the plan, and how each of its cells gets one.

    Attributes:
        label: Its name in records and tables.
        spec: What builds it in another process (None: only this process can run it).
        instance: The user's own object: bound for each cell in turn, never closed.
        make: Builds a fresh backend per cell (closed after the cell).
    """

    label: str
    spec: str | None
    instance: MemoryBackend | None = None
    make: Callable[[], MemoryBackend] | None = None


@dataclass
class ReaderChoice:
    label: str
    spec: str | None
    reader: Reader

    @property
    def ref(self) -> AdapterRef:
        return AdapterRef(label=self.label, spec=self.spec)


@dataclass
class RunPlan:
    """Everything resolved before the first probe: scenarios, adapters, where to write."""

    config: RunConfig
    scenarios: list[LoadedScenario]
    backends: list[BackendChoice]
    reader: ReaderChoice
    out: Path
    control: str | None = None
    judges: list[ReaderChoice] = field(default_factory=list)
    prices: PriceTable | None = None
    ray: RayOptions | None = None  # None: the local executor
    judge_prompts: PromptSet = MEMEVAL

    def judge_entries(self) -> list[JudgeEntry]:
        """Each judge's label and identity (its reader's, with the prompt set's)."""
        return [JudgeEntry(label=j.label,
                           identity=judge_identity(j.reader.identity(), self.judge_prompts))
                for j in self.judges]

    def probe_ids(self, ls: LoadedScenario) -> list[str]:
        ids = [p.id for p in ls.probes]
        return ids[: self.config.limit] if self.config.limit is not None else ids

    @property
    def total(self) -> int:
        return (sum(len(self.probe_ids(ls)) for ls in self.scenarios) * len(self.backends)
                * self.config.epochs)

    def cells(self, done: Collection[RecordKey] = ()) -> list[Cell]:
        """The cells still to run, each with the probes not in `done` (record keys).

        Epoch by epoch: every cell of epoch 0 comes first, so that a run stopped early holds
        whole epochs. Each epoch's cells get the epoch's seed (`epoch_seed`).
        """
        cells = []
        for epoch in range(self.config.epochs):
            seed = epoch_seed(self.config.seed, epoch)
            for ls in self.scenarios:
                content = ls.scenario.model_dump(mode="json")
                for b in self.backends:
                    wanted = [p for p in self.probe_ids(ls)
                              if (ls.scenario.id, b.label, self.reader.label, p, epoch) not in done]
                    if not wanted:
                        continue
                    folder = f"{ls.scenario.id}--{_slug(b.label)}" + (f"--e{epoch}" if epoch else "")
                    cells.append(Cell(
                        scenario=content, scenario_sha256=ls.sha256, scenario_path=ls.path,
                        backend=AdapterRef(label=b.label, spec=b.spec), reader=self.reader.ref,
                        judges=[j.ref for j in self.judges],
                        judge_prompts=self.judge_prompts.model_dump(mode="json")
                        if self.judges else None,
                        control=b.label == self.control, probes=wanted, seed=seed, epoch=epoch,
                        ess=self.config.ess, cache=self.config.cache,
                        max_concurrency=self.config.max_concurrency, retries=self.config.retries,
                        workdir=str(self.out / "work" / folder)))
        return cells

    def runtime(self, cell: Cell, cache: AnswerCache | None,
                count_tokens: Callable[[str], int]) -> CellRuntime:
        """The objects this process already holds for `cell`: nothing is built twice."""
        choice = next(b for b in self.backends if b.label == cell.backend.label)
        return CellRuntime(reader=self.reader.reader, judges=[j.reader for j in self.judges],
                           backend=choice.instance, make_backend=choice.make, cache=cache,
                           count_tokens=count_tokens)

    def manifest(self, command: list[str]) -> Manifest:
        labels = [b.label for b in self.backends]
        shown = self.config.model_copy(update={
            "backends": labels, "reader": self.reader.label,
            "judge": [j.label for j in self.judges], "out": self.out})
        versions = _versions()
        judges = self.judge_entries()
        return Manifest(
            memeval_version=versions.get("memeval", "0"),
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            command=[redact(arg) for arg in command],
            config=shown, reader=self.reader.label, reader_identity=self.reader.reader.identity(),
            backends=labels, control=self.control,
            judge=judges[0].label if judges else None,
            judge_identity=judges[0].identity if judges else None, judges=judges,
            judge_prompts={"name": self.judge_prompts.name, "sha256": self.judge_prompts.sha256,
                           "source": self.judge_prompts.source} if judges else None,
            scenarios=[ScenarioEntry(id=ls.scenario.id, path=ls.path, sha256=ls.sha256,
                                     probes=len(self.probe_ids(ls))) for ls in self.scenarios],
            versions=versions, git_commit=_git_commit())


def plan_run(scenarios: Iterable[str | Path | Scenario], config: RunConfig) -> RunPlan:
    """Load the scenarios and build every adapter once, so a mistake stops the run before
    its first probe, in one line."""
    loaded = load_scenarios(scenarios)
    if not config.backends:
        raise MemevalError("no backends given (e.g. --backend full_context)")
    unknown = [name for name in config.parity if name not in PARITY]
    if unknown:
        raise MemevalError(f"unknown parity scorer '{unknown[0]}' (known: {', '.join(PARITY)})")
    prices = load_prices(config.prices) if config.prices else None
    ray = parse_executor(config.executor)
    if ray is not None:
        require_ray()
    backends = [_choose(spec) for spec in config.backends]
    labels = [b.label for b in backends]
    dup = next((x for x in labels if labels.count(x) > 1), None)
    if dup:
        raise MemevalError(f"backend '{dup}' is given twice; give each backend once")
    reader = _reader(config.reader)
    if config.ess and not isinstance(reader.reader, ReadsAttention):
        raise MemevalError(f"--ess needs a local transformers reader (embedded or "
                           f"transformers:model=PATH); '{reader.label}' has no attention to read")
    if config.control and CONTROL not in labels:
        backends.append(_choose(CONTROL))
    judges = [_reader(spec) for spec in config.judge]
    names = [j.label for j in judges]
    twice = next((x for x in names if names.count(x) > 1), None)
    if twice:
        raise MemevalError(f"judge '{twice}' is given twice; give each judge once (two of one "
                           "model differ by an option, e.g. max_new_tokens)")
    if config.judge_prompts is not None and not judges:
        raise MemevalError(f"--judge-prompts {config.judge_prompts} names the judges' prompts, "
                           "but the run has no judge; add --judge READER")
    prompts = load_prompt_set(config.judge_prompts or MEMEVAL.name)
    stuck = [b.label for b in backends if b.spec is None] + \
        [r.label for r in (reader, *judges) if r.spec is None]
    if ray is not None and stuck:
        raise MemevalError(f"'{stuck[0]}' was given as a Python object, which cannot travel to "
                           "a Ray worker; give it by name or as module:Class")
    return RunPlan(config, loaded, backends, reader,
                   Path(config.out) if config.out else _default_out(),
                   CONTROL if config.control else None, judges, prices, ray, prompts)


def _choose(spec: str | MemoryBackend | type[MemoryBackend]) -> BackendChoice:
    label, probe = build_backend(spec)  # fails early on a bad name, option or class
    if isinstance(spec, str):
        probe.close()
        return BackendChoice(label, spec, make=lambda: build_backend(spec)[1])
    if isinstance(spec, type):
        probe.close()
        importable = spec.__module__ != "__main__" and "<locals>" not in spec.__qualname__
        return BackendChoice(label, f"{spec.__module__}:{spec.__qualname__}" if importable else None,
                             make=spec)
    return BackendChoice(label, None, instance=probe)


def _reader(spec: str | Reader) -> ReaderChoice:
    label, reader = build_reader(spec)
    _check_reader(label, reader)
    return ReaderChoice(label, spec if isinstance(spec, str) else None, reader)


def _check_reader(label: str, reader: Reader) -> None:
    """Load the reader's tokenizer now, so a missing extra is one line, not a traceback mid-run."""
    try:
        reader.count_tokens("memeval")
    except ModuleNotFoundError as exc:
        raise MemevalError(f"reader '{label}' needs the package '{exc.name}' (install memeval's "
                           "extra for it: pip install 'memeval[local]' for the Gemma reader)") from None
    except Exception as exc:
        raise MemevalError(f"reader '{label}' failed to start: {type(exc).__name__}: {exc}") from None


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)[:80]


def _default_out() -> Path:
    return Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")


@lru_cache(maxsize=1)  # a process imports one version of each: reading metadata is 40 ms
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
