"""The run directory: manifest.json, records.jsonl, scores.json, and pandas views of them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from memeval.errors import MemevalError
from memeval.protocols import Footprint, RecallItem, Usage

if TYPE_CHECKING:
    import pandas as pd

    from memeval.scoring.prices import PriceTable

RECORDS = "records.jsonl"
MANIFEST = "manifest.json"
SCORES = "scores.json"
PRICES = "prices.json"
JUDGE = "judge.json"


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


class JudgeVerdict(_Record):
    """A second opinion on an answer from an LLM judge."""

    correct: bool | None = Field(description="None when the judge's reply could not be read.")
    reply: str


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
    answer_s: float | None = None
    footprint: Footprint | None = None
    backend_usage: Usage = Usage()
    peak_rss_bytes: int = 0
    tokens_observed: int = Field(0, description="Conversation tokens replayed before this probe.")
    copied_span: int = Field(0, description="Longest run of conversation words the answer copies.")
    answer_logprobs: list[float] | None = None
    control: bool = Field(False, description="A record of the automatic no-memory control.")
    memorized: bool | None = Field(None, description="The no-memory control answered this probe "
                                   "correctly: it tests the model, not the memory.")
    canary: list[CanaryExposure] = Field(default_factory=list)
    ess: list[EssPoint] = Field(default_factory=list)
    judge: JudgeVerdict | None = None
    error: str | None = None
    error_stage: str | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.scenario, self.backend, self.reader, self.probe)


class ScenarioEntry(_Record):
    id: str
    path: str | None
    sha256: str
    probes: int


class Manifest(_Record):
    """The resolved configuration of a run; enough to reproduce it."""

    memeval_version: str
    created: str
    command: list[str]
    seed: int
    limit: int | None
    reader: str
    reader_identity: dict[str, Any]
    backends: list[str]
    control: str | None = Field(None, description="The no-memory control's backend label.")
    judge: str | None = None
    judge_identity: dict[str, Any] | None = None
    ess: bool = Field(False, description="Effective state size was measured per probe.")
    parity: list[str] = Field(default_factory=list, description="Benchmark-parity scorers.")
    scenarios: list[ScenarioEntry]
    versions: dict[str, str]
    git_commit: str | None
    resumed: list[str] = Field(default_factory=list)
    call_policy: dict[str, Any] = Field(default_factory=dict,
                                        description="Concurrency and retries; free to change on resume.")

    def fingerprint(self) -> dict[str, Any]:
        """What must match for `--resume` to continue this run."""
        return {
            "seed": self.seed, "limit": self.limit, "reader": self.reader,
            "reader_identity": self.reader_identity, "backends": self.backends,
            "control": self.control, "judge": self.judge_identity,
            "scenarios": [(s.id, s.sha256) for s in self.scenarios],
        }


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON so that a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)


def read_records(run_dir: Path, repair: bool = False) -> list[ProbeRecord]:
    """Read records.jsonl; a torn last line (a killed writer) is dropped, or cut off with `repair`."""
    path = Path(run_dir) / RECORDS
    if not path.exists():
        return []
    raw = path.read_bytes()
    records: list[ProbeRecord] = []
    good_end = 0
    offset = 0
    for number, line in enumerate(raw.splitlines(keepends=True), start=1):
        offset += len(line)
        if not line.endswith(b"\n"):
            break  # torn final write: the probe will be asked again
        try:
            records.append(ProbeRecord.model_validate_json(line))
        except ValidationError as exc:
            raise MemevalError(f"{path}:{number}: not a probe record ({exc.errors()[0]['msg']}); "
                               "the file was edited by hand or is from another tool") from None
        good_end = offset
    if repair and good_end != len(raw):
        with path.open("r+b") as fh:
            fh.truncate(good_end)
    return records


class RecordWriter:
    """Appends records one line at a time, flushed and synced per probe."""

    def __init__(self, run_dir: Path):
        self._fh = (Path(run_dir) / RECORDS).open("ab")

    def write(self, record: ProbeRecord) -> None:
        self._fh.write(record.model_dump_json().encode() + b"\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def rewrite_records(run_dir: Path, records: list[ProbeRecord]) -> None:
    """Replace records.jsonl atomically (used by resume to drop failed probes)."""
    path = Path(run_dir) / RECORDS
    tmp = path.with_name(RECORDS + ".tmp")
    with tmp.open("wb") as fh:
        for record in records:
            fh.write(record.model_dump_json().encode() + b"\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_manifest(run_dir: Path) -> Manifest:
    path = Path(run_dir) / MANIFEST
    try:
        return Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MemevalError(f"{path}: no manifest; is {run_dir} a memeval run directory?") from None
    except ValidationError as exc:
        raise MemevalError(f"{path}: not a memeval manifest ({exc.errors()[0]['msg']})") from None


def read_prices(run_dir: Path) -> PriceTable | None:
    """The price table a run was given, if any."""
    from memeval.scoring.prices import PriceTable

    path = Path(run_dir) / PRICES
    if not path.exists():
        return None
    return PriceTable.model_validate_json(path.read_text(encoding="utf-8"))


def read_judge_checks(run_dir: Path) -> list[Any] | None:
    """The judge's verdicts on the built-in known-wrong answers, if the run had a judge."""
    from memeval.scoring.judge import JudgeCheck

    path = Path(run_dir) / JUDGE
    if not path.exists():
        return None
    return [JudgeCheck.model_validate(c) for c in json.loads(path.read_text(encoding="utf-8"))]


class RunResult:
    """A finished (or partial) run directory, with pandas views."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)

    @property
    def manifest(self) -> Manifest:
        return read_manifest(self.run_dir)

    @property
    def scores_json(self) -> dict[str, Any]:
        """scores.json as written by the run (or by `memeval score`)."""
        return json.loads((self.run_dir / SCORES).read_text(encoding="utf-8"))

    def records(self) -> pd.DataFrame:
        """One row per probe record, nested fields flattened."""
        import pandas as pd

        rows = []
        for r in read_records(self.run_dir):
            row = r.model_dump(exclude={"recall_items", "expected", "evidence", "observe_s",
                                        "answer_logprobs", "canary", "ess"})
            judge = row.pop("judge")
            row["judge_correct"] = judge["correct"] if judge else None
            usage = row.pop("usage")
            row["input_tokens"], row["output_tokens"] = usage["input_tokens"], usage["output_tokens"]
            fp = row.pop("footprint") or {}
            row["footprint_items"], row["footprint_bytes"] = fp.get("items"), fp.get("bytes")
            row.pop("backend_usage")
            row.update({f"reader_{k}": v for k, v in row.pop("reader_stats").items()})
            row["observe_count"] = len(r.observe_s)
            rows.append(row)
        return pd.DataFrame(rows)

    def scores(self) -> pd.DataFrame:
        """One row per (backend, reader, probe kind) plus an `all` row per cell."""
        import pandas as pd

        rows = []
        for cell in self.scores_json["cells"]:
            for kind, block in {"all": cell, **cell["by_kind"]}.items():
                row = {"backend": cell["backend"], "reader": cell["reader"], "kind": kind}
                for metric in ("evidence_retention", "answer_retention"):
                    stat = block.get(metric)
                    row[metric] = stat["value"] if stat else None
                    row[f"{metric}_n"] = stat["n"] if stat else 0
                    row[f"{metric}_low"], row[f"{metric}_high"] = (stat["ci95"] if stat
                                                                   else (None, None))
                rows.append(row)
        return pd.DataFrame(rows)

    def plot_retention(self, unit: str = "sessions", measure: str = "answer") -> Any:
        """Retention against distance per backend: a matplotlib figure (see `memeval.plots`)."""
        from memeval.plots import plot_retention

        return plot_retention(self, unit, measure)

    def plot_cost_vs_retention(self, tokens: str = "reader_input") -> Any:
        """Tokens per probe against answer retention with the Pareto frontier (a figure)."""
        from memeval.plots import plot_cost_vs_retention

        return plot_cost_vs_retention(self, tokens)

    def report(self, out: str | Path | None = None) -> Path:
        """Write the self-contained HTML report; return its path."""
        from memeval.report import write_report

        return write_report(self.run_dir, out)

    def __repr__(self) -> str:
        return f"RunResult({str(self.run_dir)!r})"
