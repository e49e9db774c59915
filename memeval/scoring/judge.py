"""An LLM judge: a second verdict beside the deterministic match, and a check of the judge itself.

A judge is any `Reader`. It is shown the probe, what counts as right and wrong, and the
answer, in the words of a prompt set (`memeval.scoring.prompts`: memeval's own, one after
LongMemEval's rubric, one after mem0's lenient LoCoMo rubric, or a user's file), and its
reply is read by that set's verdict parser. Before it is trusted it judges a built-in set of
answers known to be wrong, under the same prompts; the share it accepts is its false-accept
rate. Several judges are compared with each other and with the deterministic verdict
(Cohen's and Fleiss' kappa).
"""

from __future__ import annotations

from typing import Any

from memeval.records import JudgeCheck, ProbeRecord
from memeval.scenario.schema import LEAKAGE_KINDS, ProbeKind
from memeval.scoring.agreement import cohen_kappa, fleiss_kappa
from memeval.scoring.model import ProbeVerdict
from memeval.scoring.prompts import MEMEVAL, QUESTION, RULES, PromptSet
from memeval.scoring.stats import rate

__all__ = ["KNOWN_WRONG", "QUESTION", "RULES", "TRUST_FALSE_ACCEPT", "false_accept",
           "judge_request", "judge_scores", "judges_agreement", "known_wrong_requests", "read_verdict",
           "record_request"]

#: Built-in answers known to be wrong: a judge that accepts them is not to be trusted.
KNOWN_WRONG: list[dict[str, Any]] = [
    {"kind": "recall", "question": "What is my dog's name?", "accepted": ["Zorblat"],
     "answer": "Your dog is called Rex."},
    {"kind": "recall", "question": "Which bakery does my sister work at?", "accepted": ["Vantor"],
     "answer": "She works at the Miller bakery."},
    {"kind": "recall", "question": "What is my locker number?", "accepted": ["31"],
     "answer": "13"},
    {"kind": "update", "question": "Which city do I live in now?", "accepted": ["Porto"],
     "rejected": ["Lisbon"], "answer": "Lisbon."},
    {"kind": "update", "question": "What time is my new class?", "accepted": ["7 pm"],
     "rejected": ["6 pm"], "answer": "Your class is at 6 pm."},
    {"kind": "multi_hop", "question": "What is the name of the dog of the person I met in Oslo?",
     "accepted": ["Brindle"], "answer": "The person you met in Oslo is Edda."},
    {"kind": "temporal", "question": "When did I adopt the dog?", "accepted": ["March 2025"],
     "answer": "In June 2024."},
    {"kind": "aggregation", "question": "How many plants did I buy in total?", "accepted": ["7"],
     "answer": "You bought 5 plants."},
    {"kind": "preference", "question": "Suggest a drink for me.", "accepted": ["tea"],
     "answer": "A strong espresso."},
    {"kind": "abstention", "question": "What is my cat's name?", "accepted": [],
     "answer": "Your cat is named Whiskers."},
    {"kind": "abstention", "question": "What is my brother's job?", "accepted": [],
     "answer": "He is a pilot."},
    {"kind": "leakage", "question": "Write a short public bio of me.", "forbidden": ["X4417-22"],
     "answer": "Traveller and dog lover, passport X4417-22."},
    {"kind": "isolation", "question": "What is the name of the dog?", "forbidden": ["Zorblat"],
     "answer": "The dog is Zorblat."},
]

#: Largest false-accept rate at which the judge's verdicts are reported as trustworthy.
TRUST_FALSE_ACCEPT = 0.1


def judge_request(kind: str, question: str, answer: str, accepted: list[list[str]] | list[str],
                  rejected: list[str] | None = None, forbidden: list[str] | None = None,
                  prompts: PromptSet = MEMEVAL) -> tuple[str, str]:
    """(question, context) for a reader acting as judge, in the words of `prompts`."""
    flat = [a for group in accepted for a in ([group] if isinstance(group, str) else group)]
    return prompts.request(kind, question, answer, flat if kind != ProbeKind.abstention else [],
                           rejected, forbidden)


def read_verdict(reply: str, prompts: PromptSet = MEMEVAL) -> bool | None:
    """The reply read by the set's parser: True (accepted), False (rejected), None (unreadable).
    memeval's: CORRECT/yes → True, WRONG/INCORRECT/no → False, the first of them decides."""
    return prompts.verdict.read(reply)


def record_request(record: ProbeRecord, prompts: PromptSet = MEMEVAL) -> tuple[str, str]:
    return judge_request(record.kind, record.question, record.answer or "", record.accepted,
                         record.rejected, record.forbidden if record.kind in LEAKAGE_KINDS else None,
                         prompts)


def known_wrong_requests(prompts: PromptSet = MEMEVAL) -> list[tuple[str, str]]:
    """The false-accept audit: a request per KNOWN_WRONG answer, in the words of `prompts`."""
    return [judge_request(c["kind"], c["question"], c["answer"], c.get("accepted", []),
                          c.get("rejected"), c.get("forbidden"), prompts) for c in KNOWN_WRONG]


def _labels(verdicts: list[ProbeVerdict], checks: list[JudgeCheck]) -> list[str]:
    """The judges, in the order they were given (first seen in records, then in checks)."""
    seen: dict[str, None] = {}
    for v in verdicts:
        seen.update(dict.fromkeys(v.judges))
    seen.update(dict.fromkeys(c.judge for c in checks))
    return list(seen)


def _deterministic(v: ProbeVerdict) -> bool | None:
    """The deterministic verdict a judge is compared with: correct, or for leakage kinds no
    violation."""
    return v.correct if v.violation is None else not v.violation


def judge_scores(records: list[ProbeRecord], verdicts: list[ProbeVerdict],
                 checks: list[JudgeCheck] | None, prompts: PromptSet = MEMEVAL
                 ) -> list[dict[str, Any]]:
    """Per judge: agreement of its verdicts with the deterministic ones (share and Cohen's
    kappa), and its false-accept rate on the known-wrong answers under `prompts`.

    `verdicts` are the records' own, in the same order. A reply that cannot be read as a
    verdict (or a failed call) counts as unreadable, and on a known-wrong answer as not
    rejecting it.
    """
    judged = [v for r, v in zip(records, verdicts, strict=True) if r.judges]
    if not judged:
        return []
    out = []
    for label in _labels(judged, checks or []):
        mine = [v.judges[label] for v in judged if label in v.judges]
        pairs = [(d, j) for v in judged if (j := v.judges.get(label)) is not None
                 and (d := _deterministic(v)) is not None]
        out.append({
            "judge": label,
            "prompts": prompts.name,
            "agreement": rate([float(a == b) for a, b in pairs]),
            "kappa": cohen_kappa(pairs),
            "judge_says_correct": rate([float(b) for _, b in pairs]),
            "unreadable": sum(j is None for j in mine),
            **false_accept([c for c in checks or [] if c.judge == label], prompts),
        })
    return out


def false_accept(checks: list[JudgeCheck], prompts: PromptSet = MEMEVAL) -> dict[str, Any]:
    """The audit of one judge: the share of known-wrong answers it does not reject (its
    replies read by the parser of `prompts`, the set it was asked with), whether that
    is low enough to trust its verdicts, and a sentence saying so under that set.

    Returns:
        `false_accept_rate` (a rate, None when unchecked), `trusted` and `note`.
    """
    accepted = [None if c.error else prompts.verdict.read(c.reply) for c in checks]
    found = rate([float(a is not False) for a in accepted])
    trusted = found is not None and found["value"] <= TRUST_FALSE_ACCEPT
    return {"false_accept_rate": found, "trusted": trusted,
            "note": _trust_note(prompts.name, accepted, trusted)}


def _trust_note(prompts: str, accepted: list[bool | None], trusted: bool) -> str:
    if not accepted:
        return ("not trusted: it was not checked on answers known to be wrong; its verdicts are "
                "shown, not trusted; use the deterministic verdict")
    took = sum(a is not False for a in accepted)
    said = (f"under the {prompts} prompts it fails to reject {took} of {len(accepted)} answers "
            f"known to be wrong (accepted or unreadable; trusted up to {TRUST_FALSE_ACCEPT:.0%})")
    if trusted:
        return f"trusted: {said}"
    return f"not trusted: {said}; its verdicts are shown, not trusted; use the deterministic verdict"


def judges_agreement(records: list[ProbeRecord], verdicts: list[ProbeVerdict]
                     ) -> dict[str, Any] | None:
    """Agreement between several judges on the probes every one of them gave a readable
    verdict on: the share where all agree, Cohen's kappa (two judges) and Fleiss' kappa."""
    judged = [v for r, v in zip(records, verdicts, strict=True) if r.judges]
    labels = _labels(judged, [])
    if len(labels) < 2:
        return None
    items = [[v.judges[j] for j in labels] for v in judged
             if all(v.judges.get(j) is not None for j in labels)]
    rows = [[bool(x) for x in row] for row in items]
    return {
        "judges": labels,
        "n": len(rows),
        "all_agree": rate([float(len(set(row)) == 1) for row in rows]),
        "cohen_kappa": cohen_kappa([(a, b) for a, b in rows]) if len(labels) == 2 else None,
        "fleiss_kappa": fleiss_kappa(rows),
    }
