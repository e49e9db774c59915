"""Measurements beyond the answer, taken while a cell runs: canary exposure, the reader's
effective state size, and an LLM judge's replies."""

from __future__ import annotations

from pathlib import Path

from memeval.protocols import Reader, ReadsAttention
from memeval.records import (
    JUDGE,
    CanaryExposure,
    EssPoint,
    JudgeCheck,
    JudgeReply,
    ProbeRecord,
    write_json_atomic,
)
from memeval.runner.replay import PendingProbe
from memeval.runner.service import ReaderService, error_text
from memeval.scoring.judge import KNOWN_WRONG, judge_request, record_request


def expose(pending: PendingProbe, service: ReaderService) -> None:
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
        r.error, r.error_stage = error_text(exc), "canary"


def measure_ess(pending: PendingProbe, reader: Reader) -> None:
    r = pending.record
    if not isinstance(reader, ReadsAttention):
        r.error, r.error_stage = f"{type(reader).__name__} has no attention to read", "ess"
        return
    try:
        points = reader.effective_state_size(r.question, pending.context, pending.marks)
        r.ess = [EssPoint(label=p["label"], token=p["token"],
                          values={k: [[round(v, 3) for v in row] for row in table]
                                  for k, table in p["values"].items()}) for p in points]
    except Exception as exc:
        r.error, r.error_stage = error_text(exc), "ess"


def judge_records(records: list[ProbeRecord], judge: ReaderService) -> None:
    """Keep the judge's reply to each answer beside it; it is read as a verdict at score time."""
    asked = [r for r in records if r.answer is not None and r.error is None]
    for r, outcome in zip(asked, judge.answer_many([record_request(r) for r in asked]), strict=True):
        r.judge = (JudgeReply(reply=outcome.answer.text) if outcome.answer is not None
                   else JudgeReply(reply=f"error: {outcome.error}", error=True))


def check_judge(judge: ReaderService, out: Path) -> list[JudgeCheck]:
    """Have the judge rule on the built-in known-wrong answers; keep its replies in the run."""
    requests = [judge_request(c["kind"], c["question"], c["answer"], c.get("accepted", []),
                              c.get("rejected"), c.get("forbidden")) for c in KNOWN_WRONG]
    checks = []
    for case, outcome in zip(KNOWN_WRONG, judge.answer_many(requests), strict=True):
        failed = outcome.answer is None
        reply = f"error: {outcome.error}" if outcome.answer is None else outcome.answer.text
        checks.append(JudgeCheck(kind=case["kind"], answer=case["answer"], reply=reply, error=failed))
    write_json_atomic(out / JUDGE, [c.model_dump() for c in checks])
    return checks
