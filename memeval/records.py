"""What a run writes, and how it is described: records, the manifest, run options, cells.

This is the bottom of the run's stack: it imports nothing above `protocols` and `texts`.
A `ProbeRecord` holds measurements only; whether an answer is correct,
memorized or a violation is decided at score time (`memeval.scoring`).
A `Cell` (one scenario × backend × reader under a `RunConfig`) is plain JSON,
so it can run in a fresh process or on another machine.

Over 400 lines on purpose: the record types and the run directory's I/O (records in
groups, text blocks joined back, the lock) change together whenever the format does.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from memeval.errors import MemevalError
from memeval.protocols import Footprint, MemoryBackend, Reader, RecallItem, Usage
from memeval.texts import INLINE_CHARS, BlockWriter, join_blocks, read_blocks

RECORDS = "records.jsonl"
MANIFEST = "manifest.json"
SCORES = "scores.json"
PRICES = "prices.json"
JUDGE = "judge.json"
JUDGE_PROMPTS = "judge_prompts.json"
LOCK = ".lock"

DEFAULT_BACKENDS = ("full_context", "no_memory", "oracle")
DEFAULT_READER = "embedded"
#: The backend whose answers measure memorization: the reader with no memory at all.
CONTROL = "no_memory"

#: A record's identity: (scenario, backend, reader, probe, epoch).
RecordKey = tuple[str, str, str, str, int]


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch of a run with seed `seed`.

    Epoch 0 keeps the run's own seed, so that a run of one epoch is the run it always was;
    epoch e >= 1 takes the first 8 bytes of sha256("memeval-epoch:{seed}:{e}") as a big-endian
    number, modulo 2**31 (a seed every library accepts).

    Args:
        seed: The run's seed.
        epoch: The epoch, from 0.

    Returns:
        The seed handed to the epoch's backends and readers.
    """
    if epoch == 0:
        return seed
    digest = hashlib.sha256(f"memeval-epoch:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**31


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExpectedFact(_Record):
    """A fact a probe expects, with how long ago it was planted."""

    id: str
    answers: list[str]
    sessions_ago: int
    tokens_ago: int


class EvidenceTurn(_Record):
    """A turn a probe names as evidence, with how long ago it was said."""

    id: str
    text: str
    sessions_ago: int
    tokens_ago: int
    session: str | None = Field(None, description="The session that holds it (None in runs "
                                "made before memeval recorded it).")


class CanaryExposure(_Record):
    """How readily the reader produces a planted secret, with and without memory."""

    fact: str
    candidates: int
    rank_with_memory: int = Field(description="Rank of the true secret by likelihood (1 = best).")
    rank_without_memory: int


class EssPoint(_Record):
    """Effective state size at one position of the reader's prompt, per layer and head."""

    label: str = Field(description="session_boundary, fact:<id> or probe.")
    token: int
    values: dict[str, list[list[float]]] = Field(
        description="Metric (tol_1e-2, tol_1e-3, entropy; `_nosink` without the first column) "
        "to a layers × heads table.")


#: The label of the judge in runs made before memeval kept several (their one judge).
ONE_JUDGE = "judge"


class JudgeReply(_Record):
    """What an LLM judge replied about an answer; it is read as a verdict at score time."""

    judge: str = Field(ONE_JUDGE, description="The judge's label (`--judge`).")
    reply: str
    error: bool = Field(False, description="The judge's call failed; `reply` holds the error.")


class JudgeCheck(_Record):
    """The judge's reply to one built-in known-wrong answer."""

    judge: str = Field(ONE_JUDGE, description="The judge's label (`--judge`).")
    kind: str
    answer: str
    reply: str
    error: bool = False


class AuditFact(_Record):
    """A fact planted for the audited user so far, as the store audit checks it."""

    id: str
    answers: list[str]
    supersedes: str | None = Field(None, description="The fact this one updates.")


class StoreAudit(_Record):
    """What a backend listed as held for one user at one session end (`MemoryBackend.memories`);
    which facts it stored, missed or left stale is decided at score time."""

    session: str
    session_index: int = Field(description="The session's place in the timeline (0: the "
                               "first; filler sessions count).")
    user: str
    memories: list[str] = Field(description="The backend's memories for `user`, as it listed them.")
    facts: list[AuditFact] = Field(description="The facts planted in `user`'s sessions up to "
                                   "this one, in the order they were first planted.")


class ProbeRecord(_Record):
    """Everything measured for one probe in one (scenario, backend, reader) cell."""

    scenario: str
    scenario_sha256: str
    backend: str
    reader: str
    probe: str
    kind: str
    user: str
    question: str
    accepted: list[list[str]] = Field(description="Answer groups; one of each must appear.")
    expected: list[ExpectedFact] = Field(default_factory=list)
    evidence: list[EvidenceTurn] = Field(default_factory=list)
    rejected: list[str] = Field(default_factory=list)
    forbidden: list[str] = Field(default_factory=list)
    recall_text: str = ""
    recall_items: list[RecallItem] = Field(default_factory=list)
    recall_tokens: int = 0
    answer: str | None = None
    usage: Usage = Usage()
    reader_stats: dict[str, float] = Field(default_factory=dict,
                                           description="The reader's own measurements of this call.")
    cached: bool = False
    observe_s: list[float] = Field(default_factory=list,
                                   description="Latency of each observe since the previous probe.")
    recall_s: float | None = None
    deferred_s: float | None = Field(None, description="Work the backend deferred from observe "
                                     "(batched embedding, background writes), finished before "
                                     "this recall: an observe cost, not a recall cost.")
    answer_s: float | None = None
    footprint: Footprint | None = None
    backend_usage: Usage = Usage()
    peak_rss_bytes: int = 0
    tokens_observed: int = Field(0, description="Conversation tokens replayed before this probe.")
    copied_span: int = Field(0, description="Longest run of conversation words the answer copies.")
    answer_logprobs: list[float] | None = None
    control: bool = Field(False, description="A record of the automatic no-memory control.")
    canary: list[CanaryExposure] = Field(default_factory=list)
    ess: list[EssPoint] = Field(default_factory=list)
    judges: list[JudgeReply] = Field(default_factory=list, description="Each judge's reply "
                                     "to the answer, in the order of `--judge`.")
    error: str | None = None
    error_stage: str | None = None
    epoch: int = Field(0, description="The repetition of the cell this record is from "
                       "(`--epochs`); 0 in runs of one epoch.")
    audits: list[StoreAudit] = Field(default_factory=list, description="Store audits of the "
                                     "session ends since the previous probe of the timeline "
                                     "(backends that list their memories).")

    @model_validator(mode="before")
    @classmethod
    def _earlier_format(cls, data: Any) -> Any:
        # runs of memeval 0.1 kept verdicts in records: drop them, they are decided at score time
        if isinstance(data, dict) and ("memorized" in data or "correct" in (data.get("judge") or {})):
            data = {k: v for k, v in data.items() if k != "memorized"}
            if data.get("judge"):
                data["judge"] = {"reply": data["judge"]["reply"]}
        if isinstance(data, dict) and "judge" in data:  # one judge, before several were kept
            one = data["judge"]
            data = {k: v for k, v in data.items() if k != "judge"}
            data["judges"] = [] if one is None else [one]
        return data

    @property
    def key(self) -> RecordKey:
        return (self.scenario, self.backend, self.reader, self.probe, self.epoch)


BackendSpec = str | MemoryBackend | type[MemoryBackend]
ReaderSpec = str | Reader


class RunConfig(BaseModel):
    """Every option of a run, in one place: `memeval run` flags, `memeval.run()` keywords,
    and the manifest's `config` (where adapter objects appear by their labels)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, frozen=True)

    backends: list[BackendSpec] = Field(
        default_factory=lambda: list[BackendSpec](DEFAULT_BACKENDS),
        description="Backends: NAME[:opt=value,...] (e.g. full_context:max_tokens=2000), "
        "module:Class, MemoryBackend instances or classes.")
    reader: ReaderSpec = Field(DEFAULT_READER, description="Reader NAME[:opt=value,...], "
                               "module:Class, or a Reader instance.")
    out: Path | None = Field(None, description="Run directory (default runs/<timestamp>).")
    seed: int = Field(0, description="Seed handed to every backend and reader.")
    epochs: int = Field(1, ge=1, description="Run each cell N times, each epoch under its own "
                        "seed derived from --seed (epoch 0 keeps it); scores give the mean and "
                        "spread across epochs.")
    limit: int | None = Field(None, ge=1, description="Ask at most N probes per scenario.")
    resume: bool = Field(False, description="Continue the run in `out`, asking only probes "
                         "not yet recorded.")
    cache: bool = Field(True, description="Use the persistent call cache.")
    max_concurrency: int = Field(1, ge=1, description="Reader requests in flight at once "
                                 "(for remote readers).")
    retries: int = Field(3, ge=0, description="Further attempts after a failure the reader "
                         "calls transient (429, 5xx, timeout, lost connection).")
    control: bool = Field(True, description="Also run the no-memory control, which measures "
                          "memorization.")
    prices: Path | None = Field(None, description="Price table (YAML or JSON) for token cost "
                                "in money.")
    ess: bool = Field(False, description="Measure the effective state size of a local "
                      "reader's attention per probe.")
    judge: list[ReaderSpec] = Field(default_factory=list, description="A reader (as `reader`) "
                                    "that gives a second verdict on every answer; several "
                                    "judges are compared with each other (kappa).")
    judge_prompts: str | None = Field(None, description="The judges' prompt set: memeval "
                                      "(default), longmemeval, mem0-lenient, or a YAML file "
                                      "of prompts per probe kind and a verdict parser.")
    report: bool = Field(True, description="Write report.html beside the records.")
    parity: list[str] = Field(default_factory=list, description="Benchmark-parity scorers: "
                              "token_f1 (LoCoMo), retrieval (LongMemEval recall@k, NDCG@k).")
    retrieval_k: list[int] = Field(default_factory=lambda: [1, 3, 5, 10], description="The k "
                                   "of the retrieval metrics (recall@k, NDCG@k ...), e.g. "
                                   "1,3,5,10.")
    max_error_rate: float = Field(0.0, ge=0.0, le=1.0, description="`memeval run` exits 1 "
                                  "when a larger share of probes failed (default: any failure); "
                                  "the table is printed either way.")
    executor: str = Field("local", description="Where cells run: local (one after another in "
                          "this process) or ray[:address=auto|ray://host:port,num_cpus=N,"
                          "num_gpus=N,memory=BYTES] (each cell a Ray task).")

    @field_validator("judge", mode="before")
    @classmethod
    def _judges(cls, value: Any) -> Any:
        # one judge, as memeval took it before it took several (and as manifests kept it)
        if value is None:
            return []
        return value if isinstance(value, (list, tuple)) else [value]

    @field_validator("judge_prompts", mode="before")
    @classmethod
    def _prompts_path(cls, value: Any) -> Any:
        return str(value) if isinstance(value, Path) else value

    @field_validator("retrieval_k", mode="before")
    @classmethod
    def _k_list(cls, value: Any) -> Any:
        if isinstance(value, str):  # the command line's "1,3,5,10"
            try:
                value = [int(k) for k in value.split(",") if k.strip()]
            except ValueError:
                raise ValueError("write whole numbers separated by commas, e.g. 1,3,5,10") from None
        if isinstance(value, list) and (not value or any(
                not isinstance(k, int) or k < 1 for k in value)):
            raise ValueError("give at least one k, each 1 or more, e.g. 1,3,5,10")
        return value

    @classmethod
    def describe(cls) -> str:
        """The options as a Google-style `Args:` block, for docstrings."""
        lines = [f"    {name}: {field.description}" for name, field in cls.model_fields.items()]
        return "\n".join(lines)


class ScenarioEntry(_Record):
    id: str
    path: str | None
    sha256: str
    probes: int


class JudgeEntry(_Record):
    """A judge of the run: its label, and its identity (the reader's, with the prompt set)."""

    label: str
    identity: dict[str, Any]


class Manifest(_Record):
    """The resolved configuration of a run; enough to reproduce it."""

    memeval_version: str
    created: str
    command: list[str]
    config: RunConfig = Field(description="The run's options; adapters by their labels.")
    reader: str
    reader_identity: dict[str, Any]
    backends: list[str]
    control: str | None = Field(None, description="The no-memory control's backend label.")
    judge: str | None = Field(None, description="The first judge's label (all: `judges`).")
    judge_identity: dict[str, Any] | None = None
    judges: list[JudgeEntry] = Field(default_factory=list)
    judge_prompts: dict[str, Any] | None = Field(None, description="The judges' prompt set: "
                                                 "name, sha256 and source file.")
    scenarios: list[ScenarioEntry]
    versions: dict[str, str]
    git_commit: str | None
    resumed: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _earlier_format(cls, data: Any) -> Any:
        # memeval 0.1 kept the options at the top level
        if isinstance(data, dict) and "config" not in data and "seed" in data:
            data = dict(data)
            options = {k: data.pop(k) for k in ("seed", "limit", "ess", "parity") if k in data}
            policy = data.pop("call_policy", {}) or {}
            data["config"] = {**options, "backends": data.get("backends", []),
                              "reader": data.get("reader", DEFAULT_READER),
                              "judge": data.get("judge"), "control": data.get("control") is not None,
                              **{k: policy[k] for k in ("max_concurrency", "retries") if k in policy}}
        if isinstance(data, dict) and "judges" not in data and data.get("judge"):  # one judge
            data = {**data, "judges": [{"label": data["judge"],
                                        "identity": data.get("judge_identity") or {}}]}
        return data

    def fingerprint(self) -> dict[str, Any]:
        """What must match for `--resume` to continue this run (concurrency and retries may
        change)."""
        return {
            "seed": self.config.seed, "limit": self.config.limit, "epochs": self.config.epochs,
            "reader": self.reader,
            "reader_identity": self.reader_identity, "backends": self.backends,
            "control": self.control, "judge": [j.identity for j in self.judges],
            "scenarios": [(s.id, s.sha256) for s in self.scenarios],
        }


class AdapterRef(_Record):
    """A backend or reader as a cell names it: its label, and the spec that builds it."""

    label: str
    spec: str | None = Field(description="NAME[:opts] or module:Class[:opts]; None for an "
                             "object given in Python, which only its own process can run.")


class Cell(_Record):
    """One scenario × backend × reader under a run's settings; JSON, runnable anywhere.

    The scenario travels by content (its JSON), checked against its hash.
    """

    scenario: dict[str, Any]
    scenario_sha256: str
    scenario_path: str | None = None
    backend: AdapterRef
    reader: AdapterRef
    judges: list[AdapterRef] = Field(default_factory=list)
    judge_prompts: dict[str, Any] | None = Field(None, description="The judges' prompt set "
                                                 "(a dump of memeval.scoring.prompts.PromptSet).")
    control: bool = Field(False, description="This cell is the no-memory control.")
    probes: list[str] = Field(description="Ids of the probes to ask (resume leaves some out).")
    seed: int = Field(0, description="The epoch's seed (`epoch_seed`), handed to the backend "
                      "and to a reader that samples.")
    epoch: int = 0
    ess: bool = False
    cache: bool = True
    max_concurrency: int = 1
    retries: int = 3
    workdir: str = Field(description="A private folder for the backend's files.")

    @property
    def name(self) -> str:
        epoch = f" · epoch {self.epoch}" if self.epoch else ""
        return f"{self.scenario.get('id')} × {self.backend.label}{epoch}"


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON so that a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)


_ITEMS = TypeAdapter(list[RecallItem])


def _audits_json(audits: list[StoreAudit], blocks: BlockWriter) -> str:
    """Store audits as JSON, a long listing as block ids: one memory a line, so that what
    several session ends hold is stored once."""
    out = []
    for audit in audits:
        data = audit.model_dump(mode="json")
        listed = "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in audit.memories)
        if len(listed) >= INLINE_CHARS:
            data["memories"] = {"blocks": blocks.put(listed)}
        out.append(data)
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def _parse_audits(audits: list[Any], blocks: dict[str, str], where: str) -> None:
    """Listings stored as block ids, joined back in place."""
    for audit in audits:
        listed = audit.get("memories") if isinstance(audit, dict) else None
        if isinstance(listed, dict):
            audit["memories"] = [json.loads(m) for m in join_blocks(
                listed.get("blocks", []), blocks, where).split("\n") if m]


def _record_line(record: ProbeRecord, blocks: BlockWriter) -> str:
    """A record as one JSON line, its long recalled text, items and memory listings as block
    ids."""
    line = record.model_dump_json(exclude={"recall_text", "recall_items", "audits"})
    if record.audits:  # left out when empty: records of other backends stay as they were
        line = f'{line[:-1]},"audits":{_audits_json(record.audits, blocks)}}}'
    items = _ITEMS.dump_json(record.recall_items).decode()
    text: str | dict[str, list[str]] = record.recall_text
    if len(record.recall_text) >= INLINE_CHARS:
        text = {"blocks": blocks.put(record.recall_text)}
    if len(items) >= INLINE_CHARS:  # one item a line, so that items two probes share are shared
        items = json.dumps({"blocks": blocks.put(
            # defaults left out: a field most items leave empty (session_id) costs nothing
            "".join(item.model_dump_json(exclude_defaults=True) + "\n"
                    for item in record.recall_items))})
    return f'{line[:-1]},"recall_text":{json.dumps(text, ensure_ascii=False)},"recall_items":{items}}}'


def _parse_record(line: bytes, blocks: dict[str, str], where: str) -> ProbeRecord:
    data = json.loads(line)
    if isinstance(data, dict):
        text, items = data.get("recall_text"), data.get("recall_items")
        if isinstance(text, dict):
            data["recall_text"] = join_blocks(text.get("blocks", []), blocks, where)
        if isinstance(items, dict):
            # "\n" only: JSON leaves U+2028 and U+0085 as they are, and splitlines splits there
            data["recall_items"] = [json.loads(item) for item in join_blocks(
                items.get("blocks", []), blocks, where).split("\n") if item]
        if isinstance(data.get("audits"), list):
            _parse_audits(data["audits"], blocks, where)
    return ProbeRecord.model_validate(data)


def read_records(run_dir: Path, repair: bool = False) -> list[ProbeRecord]:
    """Read records.jsonl (long texts from texts.jsonl); a torn last line (a killed writer) is
    dropped, or cut off with `repair`."""
    path = Path(run_dir) / RECORDS
    if not path.exists():
        return []
    raw = path.read_bytes()
    blocks = read_blocks(Path(run_dir), repair=repair)
    records: list[ProbeRecord] = []
    good_end = 0
    offset = 0
    for number, line in enumerate(raw.splitlines(keepends=True), start=1):
        offset += len(line)
        if not line.endswith(b"\n"):
            break  # torn final write: the probe will be asked again
        try:
            records.append(_parse_record(line, blocks, f"{path}:{number}"))
        except (ValidationError, ValueError) as exc:
            reason = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else "not JSON"
            raise MemevalError(f"{path}:{number}: not a probe record ({reason}); "
                               "the file was edited by hand or is from another tool") from None
        good_end = offset
    if repair and good_end != len(raw):
        with path.open("r+b") as fh:
            fh.truncate(good_end)
    return records


class RecordWriter:
    """Appends records in groups: each group made durable by one sync, after the text blocks
    its records refer to.

    A group is committed when it holds `every_n` records, when `every_s` seconds have passed
    since the last commit, and on `commit()` or `close()`. A killed writer loses at most the
    group in flight (and perhaps a torn last line, which readers drop): resume asks exactly
    those probes again.
    """

    def __init__(self, run_dir: Path, every_n: int = 256, every_s: float = 1.0):
        self._blocks = BlockWriter(Path(run_dir))
        self._fh = (Path(run_dir) / RECORDS).open("ab")
        self._every_n, self._every_s = every_n, every_s
        self._lines: list[str] = []
        self._last = time.monotonic()

    def write(self, record: ProbeRecord) -> None:
        self.write_many([record])

    def write_many(self, records: list[ProbeRecord]) -> None:
        """Add records to the group, committing it when it is due."""
        self._lines += [_record_line(r, self._blocks) for r in records]
        if len(self._lines) >= self._every_n or time.monotonic() - self._last >= self._every_s:
            self.commit()

    def commit(self) -> None:
        """Make every record written so far durable."""
        self._blocks.sync()
        if self._lines:
            self._fh.write("".join(line + "\n" for line in self._lines).encode())
            self._lines = []
            self._fh.flush()
            os.fsync(self._fh.fileno())
        self._last = time.monotonic()

    def close(self) -> None:
        self.commit()
        self._blocks.close()
        self._fh.close()


def rewrite_records(run_dir: Path, records: list[ProbeRecord]) -> None:
    """Replace records.jsonl atomically (used by resume to drop failed probes)."""
    path = Path(run_dir) / RECORDS
    tmp = path.with_name(RECORDS + ".tmp")
    blocks = BlockWriter(Path(run_dir))
    with tmp.open("wb") as fh:
        for record in records:
            fh.write(_record_line(record, blocks).encode() + b"\n")
        blocks.close()  # the blocks first: a record never refers to a block not yet stored
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class RunLock:
    """One writer per run directory: a second process is refused in one line naming the
    holder. The lock is the OS's (flock), so a killed holder leaves nothing to clean up."""

    def __init__(self, run_dir: Path):
        from filelock import FileLock

        self._dir = Path(run_dir)
        self._lock = FileLock(self._dir / LOCK, timeout=0)
        self._holder = self._dir / (LOCK + ".pid")

    def __enter__(self) -> RunLock:
        from filelock import Timeout

        if self._dir.exists() and not self._dir.is_dir():
            raise MemevalError(f"{self._dir} is a file, not a run directory; choose another --out")
        self._dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            try:
                holder = self._holder.read_text().strip()
            except OSError:
                holder = "another process"
            raise MemevalError(f"{self._dir} is in use by memeval (pid {holder}); wait for it to "
                               "finish, or choose another --out") from None
        self._holder.write_text(str(os.getpid()))
        return self

    def __exit__(self, *exc: object) -> None:
        self._holder.unlink(missing_ok=True)
        self._lock.release()


def read_manifest(run_dir: Path) -> Manifest:
    path = Path(run_dir) / MANIFEST
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MemevalError(f"{path}: no manifest; is {run_dir} a memeval run directory?") from None
    except ValidationError as exc:
        raise MemevalError(f"{path}: not a memeval manifest ({exc.errors()[0]['msg']})") from None


def read_judge_checks(run_dir: Path) -> list[JudgeCheck] | None:
    """The judges' replies to the built-in known-wrong answers, if the run had a judge."""
    path = Path(run_dir) / JUDGE
    if not path.exists():
        return None
    return [JudgeCheck.model_validate(c) for c in json.loads(path.read_text(encoding="utf-8"))]
