"""Retrieval metrics over the recalled items, at turn and at session level.

Definitions follow LongMemEval's `src/retrieval/eval_utils.py` (recall_any@k, recall_all@k,
NDCG@k) and LoCoMo's `task_eval/evaluation.py` (recall@k: the share of evidence found);
precision@k and MRR are the usual ones. For one probe:

- The ranking: the recalled items by score, higher first, when every item has one (ties keep
  recall order: backends show their hits in conversation order, not by rank); otherwise in
  recall order. An item of several turns (a chunk, comma-separated ids) stands for its turns
  in its order, as LoCoMo's RAG evaluation expands a context id list. At turn level the
  units ranked are the turn ids, at session level the sessions of those turns; a unit
  already ranked is not ranked again, so k counts distinct units (LongMemEval extends k at
  session level until it covers k distinct sessions; the same thing).
- Relevant units: the probe's evidence turns, or the sessions that hold them.
- recall_any@k = 1 if some relevant unit is among the top k; recall_all@k = 1 if all are;
  recall@k = the share of evidence turns whose unit is among the top k (LoCoMo weighs a
  session by its evidence turns); precision@k = relevant units in the top k / k (k, not the
  length of a shorter list); NDCG@k = DCG@k / IDCG@k with LongMemEval's DCG, rel_1 +
  Σ_{i=2..k} rel_i / log2(i), and IDCG the DCG of min(#relevant, k) relevant units;
  MRR = 1 / rank of the first relevant unit in the whole ranking (0 if none).

Only probes with evidence count (LongMemEval skips the others); at session level, only
probes whose record knows its evidence sessions (records made before memeval recorded
sessions do not).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from memeval.protocols import RecallItem
from memeval.records import ProbeRecord
from memeval.scoring.model import RetrievalScores
from memeval.scoring.stats import DIGITS, Z95, rate

DEFAULT_K = (1, 3, 5, 10)
LEVELS = ("turn", "session")
RATES = ("recall_any", "recall_all")
MEANS = ("recall", "precision", "ndcg")

# two-sided 95 % quantiles of Student's t for 1..9 degrees of freedom; above, a series
_T975 = (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004,
         2.262157)


def has_items(records: Sequence[ProbeRecord]) -> bool:
    """Whether the backend returned any item that names a turn."""
    return any(item.turn_id for r in records for item in r.recall_items)


def ranked_items(items: Sequence[RecallItem]) -> list[RecallItem]:
    """The items best first: by score (higher first, stable) when all have one, else as given."""
    if items and all(i.score is not None for i in items):
        return sorted(items, key=lambda i: -(i.score or 0.0))
    return list(items)


def _units(item: RecallItem, level: str) -> list[str]:
    turns = [t.strip() for t in (item.turn_id or "").split(",") if t.strip()]
    if level == "turn":
        return turns
    sessions = [s.strip() for s in (item.session_id or "").split(",")]
    # a turn of unknown session stands for a session of its own, relevant to nothing
    return [sessions[j] if j < len(sessions) and sessions[j] else f"\0{t}"
            for j, t in enumerate(turns)]


def ranking(items: Sequence[RecallItem], level: str) -> list[str]:
    """Distinct units (turn ids or session ids) in rank order."""
    seen: dict[str, None] = {}
    for item in ranked_items(items):
        for unit in _units(item, level):
            seen.setdefault(unit, None)
    return list(seen)


def evidence_units(record: ProbeRecord, level: str) -> list[str] | None:
    """The unit of each evidence turn (repeats kept, for LoCoMo's recall); None when the
    probe names no evidence or, at session level, its sessions are unknown."""
    if not record.evidence:
        return None
    if level == "turn":
        return [e.id for e in record.evidence]
    if any(e.session is None for e in record.evidence):
        return None
    return [e.session for e in record.evidence if e.session is not None]


def dcg(relevances: Sequence[float], k: int) -> float:
    """LongMemEval's DCG@k: rel_1 + Σ_{i=2..k} rel_i / log2(i) (ranks from 1)."""
    rel = list(relevances)[:k]
    return sum(r if i == 0 else r / math.log2(i + 1) for i, r in enumerate(rel))


def metrics_at(ranked: Sequence[str], evidence: Sequence[str], k: int) -> dict[str, float]:
    """recall_any, recall_all, recall, precision and NDCG at k of one probe's ranking."""
    relevant = set(evidence)
    top = set(ranked[:k])
    found = relevant & top
    ideal = dcg([1.0] * min(len(relevant), k), k)
    actual = dcg([1.0 if u in relevant else 0.0 for u in ranked[:k]], k)
    return {"recall_any": float(bool(found)), "recall_all": float(found == relevant),
            "recall": sum(u in top for u in evidence) / len(evidence),
            "precision": len(found) / k, "ndcg": actual / ideal if ideal else 0.0}


def reciprocal_rank(ranked: Sequence[str], evidence: Sequence[str]) -> float:
    """1 / rank of the first relevant unit; 0 when none is ranked."""
    relevant = set(evidence)
    return next((1 / (i + 1) for i, u in enumerate(ranked) if u in relevant), 0.0)


def probe_metrics(record: ProbeRecord, level: str, ks: Sequence[int]) -> dict[str, Any] | None:
    """Every metric of one record at one level: {"@k": {...}, "mrr": float}; None when the
    probe does not count."""
    evidence = evidence_units(record, level)
    if evidence is None:
        return None
    ranked = ranking(record.recall_items, level)
    out: dict[str, Any] = {f"@{k}": metrics_at(ranked, evidence, k) for k in ks}
    out["mrr"] = reciprocal_rank(ranked, evidence)
    return out


def t975(df: int) -> float:
    """Student's t two-sided 95 % quantile: a table to 9 degrees of freedom, then the
    Cornish-Fisher series in 1/df (error under 1e-5 from 10 on)."""
    if df < 1:
        raise ValueError("df must be at least 1")
    if df <= len(_T975):
        return _T975[df - 1]
    z, v = Z95, float(df)
    return (z + (z**3 + z) / (4 * v) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
            + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
            + (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / (92160 * v**4))


def mean_interval(values: Sequence[float]) -> dict[str, Any] | None:
    """Mean with n and a 95 % Student-t interval, clipped to [0, 1]; [0, 1] for one value."""
    n = len(values)
    if n == 0:
        return None
    mean = sum(values) / n
    if n == 1:
        return {"mean": round(mean, DIGITS), "n": 1, "ci95": [0.0, 1.0]}
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return {"mean": round(mean, DIGITS), "n": n,
            "ci95": [round(max(0.0, mean - half), DIGITS), round(min(1.0, mean + half), DIGITS)]}


def _level(rows: list[dict[str, Any]], ks: Sequence[int]) -> dict[str, Any] | None:
    if not rows:
        return None
    at = {f"@{k}": {**{name: rate([r[f"@{k}"][name] for r in rows]) for name in RATES},
                    **{name: mean_interval([r[f"@{k}"][name] for r in rows]) for name in MEANS}}
          for k in ks}
    return {"n": len(rows), "at": at, "mrr": mean_interval([r["mrr"] for r in rows])}


def retrieval_scores(records: Sequence[ProbeRecord], ks: Sequence[int] | None = None
                     ) -> RetrievalScores | None:
    """Turn- and session-level retrieval metrics of a cell's records, overall and per probe
    kind; None when its backend returned no item that names a turn."""
    if not has_items(records):
        return None
    ks = sorted(set(ks or DEFAULT_K))
    out: dict[str, Any] = {"k": ks}
    for level in LEVELS:
        by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in records:
            if (m := probe_metrics(r, level, ks)) is not None:
                by_kind[r.kind].append(m)
        out[level] = {"overall": _level([m for ms in by_kind.values() for m in ms], ks),
                      "by_kind": {kind: _level(ms, ks) for kind, ms in sorted(by_kind.items())}}
    return RetrievalScores.model_validate(out)


def scoring_items(record: ProbeRecord, k_max: int) -> list[RecallItem]:
    """The ranked prefix of a record's items that every metric up to `k_max` reads, without
    their texts: k_max distinct units at each level and the first relevant one of each.

    A keep-everything backend recalls thousands of items a probe; a long run's driver holds
    only this prefix in memory. It ranks as the whole list does (scores are dropped when the
    whole list is ranked in recall order, so that the prefix is too).
    """
    by_score = bool(record.recall_items) and all(i.score is not None for i in record.recall_items)
    wanted = {level: set(evidence) for level in LEVELS
              if (evidence := evidence_units(record, level)) is not None}
    seen: dict[str, set[str]] = {level: set() for level in wanted}
    hit = dict.fromkeys(wanted, False)
    kept: list[RecallItem] = []
    for item in ranked_items(record.recall_items):
        if kept and all(len(seen[lv]) >= k_max and hit[lv] for lv in wanted):
            break  # with no evidence, one item still says that the backend returns items
        kept.append(RecallItem(text="", turn_id=item.turn_id, session_id=item.session_id,
                               score=item.score if by_score else None))
        for level in wanted:
            units = _units(item, level)
            seen[level].update(units)
            hit[level] = hit[level] or not wanted[level].isdisjoint(units)
    return kept
