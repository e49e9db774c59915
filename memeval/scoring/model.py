"""The typed scores of a run: `scores.json` is a dump of `Scores`.

The command line, the report, the plots and notebooks read these attributes;
nothing outside `memeval.scoring` computes a figure or a verdict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from memeval.errors import MemevalError
from memeval.records import SCORES, RecordKey

SCORES_FORMAT = 3


class _Score(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rate(_Score):
    """A mean of per-probe values in [0, 1], with n and a 95 % Wilson interval."""

    value: float
    n: int
    ci95: tuple[float, float]

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.ci95[0]:.2f}, {self.ci95[1]:.2f}]"


def rate_text(stat: Rate | None) -> str:
    """A rate as `0.39 [0.27, 0.52]`, or a dash when there is none."""
    return "–" if stat is None else str(stat)


class Memorization(Rate):
    """Share of probes the no-memory control answers correctly, and which they are."""

    probes: list[str]


class Summary(_Score):
    """n, mean, p50, p95, p99 and total of a list of numbers (None where there are none)."""

    n: int
    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None = Field(None, description="None in scores.json files written before "
                              "memeval computed it; `memeval score` adds it.")
    total: float


class Retention(_Score):
    evidence_retention: Rate | None
    answer_retention: Rate | None


class CurveBin(Rate):
    low: int
    high: int


class Curve(_Score):
    bins: list[CurveBin]
    half_life: float | None
    half_life_note: str


class CurvePair(_Score):
    evidence: Curve
    answer: Curve


class RetentionCurve(_Score):
    """Retention against distance, by sessions and by tokens between planting and probing."""

    sessions: CurvePair
    tokens: CurvePair


class Canary(_Score):
    n: int
    exposure_with_memory: float
    exposure_without_memory: float
    max_exposure_bits: float


class Leakage(_Score):
    violation_rate: Rate | None
    memorization: Memorization | None = Field(description="Of the control with this reader.")
    verbatim_words: int
    verbatim_rate: Rate | None
    canary: Canary | None


class Cost(_Score):
    currency: str
    reader: float | None
    backend: float | None
    total: float | None
    per_probe: float | None


class Tokens(_Score):
    recalled: Summary
    reader_input: Summary
    reader_output: Summary
    backend_input: int
    backend_output: int
    cost: Cost | None = Field(None, description="Only with a price table.")


class Latency(_Score):
    observe: Summary
    recall: Summary
    answer: Summary
    deferred: Summary | None = Field(None, description="Work deferred from observe and done "
                                     "before a recall (per probe); None for older records.")
    observe_per_turn: float | None = Field(None, description="Seconds of observing per turn, "
                                           "deferred work included.")


class Memory(_Score):
    usage_bytes: dict[str, int]
    processed_tokens: int
    efficiency_tokens_per_byte: dict[str, float | None]
    footprint_series: list[tuple[str, str, int, int]] = Field(
        description="(scenario, probe, tokens observed, footprint bytes) per probe.")


class FootprintPeak(_Score):
    peak_bytes: int
    peak_items: int


class EssMetric(_Score):
    places: dict[str, Summary] = Field(description="session_boundary, fact, probe.")
    probe_vs_correct_r: float | None


class JudgeScores(_Score):
    """One judge's verdicts against the deterministic ones, and its false-accept audit."""

    judge: str = Field("judge", description="The judge's label (`--judge`).")
    prompts: str = Field("memeval", description="The prompt set it was asked and read with.")
    agreement: Rate | None
    kappa: float | None = Field(None, description="Cohen's kappa with the deterministic "
                                "verdict; None where undefined (one verdict throughout).")
    judge_says_correct: Rate | None
    unreadable: int
    false_accept_rate: Rate | None = Field(description="Share of the built-in known-wrong "
                                           "answers it accepts under the prompt set.")
    trusted: bool
    note: str


class JudgeAgreement(_Score):
    """Agreement between several judges on the probes each gave a readable verdict on."""

    judges: list[str]
    n: int
    all_agree: Rate | None = Field(description="Share of probes where every judge agrees.")
    cohen_kappa: float | None = Field(description="Two judges only.")
    fleiss_kappa: float | None


class MeanInterval(_Score):
    """A mean of per-probe values in [0, 1], with n and a 95 % Student-t interval."""

    mean: float
    n: int
    ci95: tuple[float, float]


class RetrievalAtK(_Score):
    """Retrieval metrics at one k: rates (Wilson) and means (t interval)."""

    recall_any: Rate
    recall_all: Rate
    recall: MeanInterval = Field(description="LoCoMo's: share of evidence turns in the top k.")
    precision: MeanInterval
    ndcg: MeanInterval


class RetrievalLevel(_Score):
    n: int = Field(description="Probes with evidence that count at this level.")
    at: dict[str, RetrievalAtK] = Field(description="By `@k`.")
    mrr: MeanInterval


class RetrievalBlock(_Score):
    overall: RetrievalLevel | None
    by_kind: dict[str, RetrievalLevel]


class RetrievalScores(_Score):
    """Retrieval metrics of the recalled items at turn and session level
    (`memeval.scoring.retrieval` defines them)."""

    k: list[int]
    turn: RetrievalBlock
    session: RetrievalBlock


class KvUse(_Score):
    """KV cache held at the answer: means over the records of a local reader."""

    n: int
    bytes: float = Field(description="Measured from the cache tensors.")
    formula_bytes: float = Field(description="By the policy's formula.")
    compression_ratio: float = Field(description="Full-cache bytes over bytes held (1: full cache).")
    answer_retention: Rate | None


class KvScores(KvUse):
    by_kind: dict[str, KvUse]


class EpochStat(_Score):
    """One figure across the epochs of a cell: its value in each epoch, their mean and spread."""

    n: int = Field(description="Epochs with a value (a figure no probe counts in is left out).")
    values: list[float] = Field(description="The figure in each of those epochs, in order.")
    mean: float
    std: float | None = Field(description="Sample standard deviation (n − 1); None for n = 1.")
    min: float
    max: float
    ci95: tuple[float, float] | None = Field(
        description="95 % Student-t interval of the mean over epochs (n − 1 degrees of "
        "freedom), clipped to [0, 1] for rates and at 0 otherwise; None for n = 1.")

    def __str__(self) -> str:
        if self.std is None or self.ci95 is None:
            return f"{self.mean:.2f} (one epoch)"
        return (f"{self.mean:.2f} ± {self.std:.2f} (range {self.min:.2f}–{self.max:.2f}, "
                f"95% CI {self.ci95[0]:.2f}–{self.ci95[1]:.2f})")


class EpochScores(_Score):
    """The spread of a cell's figures across epochs (`--epochs N`, N > 1)."""

    n: int = Field(description="Epochs recorded for this cell.")
    epochs: list[int]
    figures: dict[str, EpochStat] = Field(
        description="By the figure's dotted path in the cell: every rate and mean with an "
        "interval (`answer_retention`, `by_kind.update.answer_retention`, "
        "`retrieval.session.overall.at.@5.recall_any` ...), and latency p50/p95/p99.")


class AuditFigures(_Score):
    """The store audit's figures over a set of (planted fact, session end) checks."""

    checks: int = Field(description="(fact, session end) checks, every epoch's.")
    stored: int = Field(description="Checks where one of the fact's answers is in a memory.")
    missing: int
    stale: int = Field(description="Checks of a superseded fact whose value is stored while "
                       "the latest value of its updates is not.")
    extraction_recall: Rate | None = Field(description="Share of checks of current facts "
                                           "(updated by no fact planted so far) that are stored.")
    stale_rate: Rate | None = Field(description="Share of checks of superseded facts that "
                                    "are stale; None when no planted fact was updated.")


class StoreAuditScores(AuditFigures):
    """What a backend that lists its memories held at its session ends
    (`memeval.scoring.audit` defines the checks)."""

    audits: int = Field(description="Session ends audited, every epoch's.")
    final: AuditFigures = Field(description="At the last session end audited of each user.")


class CellScores(Retention):
    """Scores of one (backend, reader) over all its scenarios."""

    backend: str
    reader: str
    control: bool
    probes: int
    errors: int
    scenarios: list[str]
    answer_retention_memory_only: Rate | None
    answer_retention_reader_normalized: Rate | None = Field(
        None, description="Answer retention on the probes the oracle's reader answers: the "
        "reader's own ceiling taken out. None when the run has no oracle.")
    abstention: Rate | None = Field(
        None, description="Share of abstention probes answered with \"I don't know\"; "
        "not part of answer retention.")
    memorized_probes: int
    by_kind: dict[str, Retention]
    retention_curve: RetentionCurve
    leakage: Leakage
    tokens: Tokens
    latency_s: Latency
    memory: Memory
    footprint: FootprintPeak
    peak_rss_bytes: int
    ess: dict[str, EssMetric] | None
    kv: KvScores | None = Field(None, description="Local readers only: KV-cache bytes and "
                                "compression against answer retention.")
    judge: JudgeScores | None = Field(description="The first judge (each: `judges`).")
    judges: list[JudgeScores] = Field(default_factory=list)
    judge_agreement: JudgeAgreement | None = Field(None, description="Between judges, when "
                                                   "there are two or more.")
    parity: dict[str, Any] | None = None
    retrieval: RetrievalScores | None = Field(None, description="None when the backend "
                                              "returns no item naming a turn.")
    store_audit: StoreAuditScores | None = Field(None, description="None when the backend "
                                                 "does not list its memories.")
    epochs: EpochScores | None = Field(None, description="Mean and spread across epochs; "
                                       "None for a run of one epoch.")

    @property
    def label(self) -> str:
        return f"{self.backend} · {self.reader}" + (" (control)" if self.control else "")


class ProbeVerdict(_Score):
    """The verdicts on one record, decided at score time."""

    scenario: str
    backend: str
    reader: str
    probe: str
    kind: str
    epoch: int = 0
    error: bool
    evidence: float | None = Field(description="Share of expected facts or evidence turns "
                                   "the recall held; None when the probe names none.")
    correct: bool | None = Field(description="None for leakage kinds and probes with nothing "
                                 "to match.")
    violation: bool | None = Field(description="Leakage and isolation probes only.")
    memorized: bool | None = Field(description="The no-memory control answered this probe.")
    oracle_correct: bool | None = Field(None, description="The oracle backend, with the same "
                                        "reader, answered this probe; None without an oracle.")
    judge_correct: bool | None = Field(None, description="The first judge's verdict.")
    judges: dict[str, bool | None] = Field(default_factory=dict, description="Each judge's "
                                           "verdict by label (None: unreadable or failed).")

    @property
    def ok(self) -> bool:
        """Neither an error, a wrong answer nor a violation."""
        return not self.error and self.correct is not False and self.violation is not True


class Scores(_Score):
    """scores.json."""

    format: int = SCORES_FORMAT
    cells: list[CellScores]
    verdicts: list[ProbeVerdict]

    def cell(self, backend: str) -> CellScores:
        """The cell of `backend` (the first, when several readers ran it)."""
        for cell in self.cells:
            if cell.backend == backend:
                return cell
        raise KeyError(backend)

    def verdict_map(self) -> dict[RecordKey, ProbeVerdict]:
        """Verdicts by record key (scenario, backend, reader, probe, epoch)."""
        return {(v.scenario, v.backend, v.reader, v.probe, v.epoch): v for v in self.verdicts}


def read_scores(run_dir: str | Path) -> Scores:
    """Read a run's scores.json; a missing or older file says how to re-score it."""
    path = Path(run_dir) / SCORES
    try:
        return Scores.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MemevalError(f"{path}: no scores; run `memeval score {run_dir}` first") from None
    except ValidationError:
        raise MemevalError(f"{path}: scores of another memeval version; run "
                           f"`memeval score {run_dir}` to recompute them") from None


def dump_scores(scores: Scores) -> dict[str, Any]:
    """The JSON payload of scores.json."""
    payload: dict[str, Any] = json.loads(scores.model_dump_json())
    return payload
