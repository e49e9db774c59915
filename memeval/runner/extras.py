"""Measurements beyond the answer, taken while a cell runs: canary exposure, the reader's
effective state size, and the LLM judges' replies."""

from __future__ import annotations

from pathlib import Path

from memeval.cache import AnswerCache
from memeval.protocols import Reader, ReadsAttention
from memeval.records import (
    JUDGE,
    JUDGE_PROMPTS,
    CanaryExposure,
    EssPoint,
    JudgeCheck,
    JudgeReply,
    ProbeRecord,
    write_json_atomic,
)
from memeval.runner.replay import PendingProbe
from memeval.runner.service import CallPolicy, ReaderService, error_text
from memeval.scoring.judge import KNOWN_WRONG, known_wrong_requests, record_request
from memeval.scoring.prompts import PromptSet, judge_identity


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


def judge_service(judge: Reader, prompts: PromptSet, cache: AnswerCache | None,
                  policy: CallPolicy) -> ReaderService:
    """The judge's calls, cached under its identity with the prompt set's (`judge_identity`)."""
    service = ReaderService(judge, cache, policy)
    service.identity = judge_identity(judge.identity(), prompts)
    return service


def judge_records(records: list[ProbeRecord], judges: list[tuple[str, ReaderService]],
                  prompts: PromptSet) -> None:
    """Keep each judge's reply to each answer beside it; it is read as a verdict at score time."""
    asked = [r for r in records if r.answer is not None and r.error is None]
    requests = [record_request(r, prompts) for r in asked]
    for label, judge in judges:
        for r, outcome in zip(asked, judge.answer_many(requests), strict=True):
            r.judges.append(JudgeReply(judge=label, reply=outcome.answer.text)
                            if outcome.answer is not None else
                            JudgeReply(judge=label, reply=f"error: {outcome.error}", error=True))


def check_judge(judge: ReaderService, prompts: PromptSet, label: str) -> list[JudgeCheck]:
    """The false-accept audit: the judge's replies to the built-in known-wrong answers, asked
    in the words of `prompts`."""
    checks = []
    for case, outcome in zip(KNOWN_WRONG, judge.answer_many(known_wrong_requests(prompts)),
                             strict=True):
        failed = outcome.answer is None
        reply = f"error: {outcome.error}" if outcome.answer is None else outcome.answer.text
        checks.append(JudgeCheck(judge=label, kind=case["kind"], answer=case["answer"],
                                 reply=reply, error=failed))
    return checks


def check_judges(judges: list[tuple[str, ReaderService]], prompts: PromptSet, out: Path
                 ) -> list[JudgeCheck]:
    """Audit every judge; keep their replies (judge.json) and the prompt set
    (judge_prompts.json, so that `memeval score` reads the replies as the run did)."""
    checks = [c for label, judge in judges for c in check_judge(judge, prompts, label)]
    write_json_atomic(out / JUDGE, [c.model_dump() for c in checks])
    write_json_atomic(out / JUDGE_PROMPTS, prompts.model_dump(mode="json"))
    return checks
