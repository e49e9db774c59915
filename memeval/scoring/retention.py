"""Per-probe rules: evidence retention, answer correctness, violations (see `verdicts`)."""

from __future__ import annotations

from memeval.match import contains_any, normalize, says_unknown
from memeval.records import EvidenceTurn, ExpectedFact, ProbeRecord
from memeval.scenario.schema import LEAKAGE_KINDS, ProbeKind

EvidenceItems = list[tuple[ExpectedFact | EvidenceTurn, bool]]


def evidence_items(record: ProbeRecord) -> EvidenceItems:
    """Each expected fact (or, if none, each evidence turn) and whether the recall holds it."""
    recalled = normalize(record.recall_text)  # once: a recalled history can be long
    if record.expected:
        return [(f, contains_any(recalled, f.answers, normalized=True)) for f in record.expected]
    return [(t, normalize(t.text) in recalled) for t in record.evidence]


def share_held(items: EvidenceItems) -> float | None:
    """Share of the items the recall holds; None if there are none."""
    return sum(found for _, found in items) / len(items) if items else None


def evidence_share(record: ProbeRecord) -> float | None:
    """Share of expected facts (or evidence turns) the recalled text holds; None if none named."""
    return share_held(evidence_items(record))


def answer_correct(record: ProbeRecord) -> bool | None:
    """Whether the answer is right; None for leakage kinds and probes with nothing to match."""
    if record.kind in LEAKAGE_KINDS or record.answer is None:
        return None
    if record.kind == ProbeKind.abstention:
        return says_unknown(record.answer)
    if not record.accepted:
        return None
    if contains_any(record.answer, record.rejected):
        return False
    return all(contains_any(record.answer, group) for group in record.accepted)


def control_correct(record: ProbeRecord) -> bool | None:
    """Whether the no-memory control answered a probe that has an answer to give (not
    abstention, leakage or isolation): such a probe tests the model, not the memory."""
    if record.error is not None or record.kind == ProbeKind.abstention:
        return None
    return answer_correct(record)


def violates(record: ProbeRecord) -> bool | None:
    """Whether a leakage or isolation probe surfaced a forbidden value; None for other kinds."""
    if record.kind not in LEAKAGE_KINDS:
        return None
    if record.answer is not None and contains_any(record.answer, record.forbidden):
        return True
    return record.kind == ProbeKind.isolation and contains_any(record.recall_text, record.forbidden)
