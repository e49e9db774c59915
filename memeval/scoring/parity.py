"""Scorers that match the published benchmarks, for parity with their papers.

- `token_f1` (LoCoMo): token F1 between answer and gold after LoCoMo's normalization
  (case, punctuation, the articles a/an/the and "and") and Porter stemming; multi-hop gold
  answers are split on commas and each part takes its best-matching part of the answer;
  abstention counts 1 when the answer says it does not know.
- `retrieval` (LongMemEval): over the recalled items' turn ids, in recall order,
  recall_any@k (some evidence turn in the top k), recall_all@k (every one) and NDCG@k with
  binary relevance.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter, defaultdict
from functools import lru_cache
from typing import Any

from memeval.match import says_unknown
from memeval.records import ProbeRecord
from memeval.scoring.stats import DIGITS, summary

PARITY = ("token_f1", "retrieval")
RETRIEVAL_K = (5, 10)
_ARTICLES = re.compile(r"\b(a|an|the|and)\b")


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    from nltk.stem import PorterStemmer

    return PorterStemmer()


def _tokens(text: str) -> list[str]:
    text = text.replace(",", "").lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = " ".join(_ARTICLES.sub(" ", text).split())
    return [_stemmer().stem(w) for w in text.split()]


def token_f1(prediction: str, gold: str) -> float:
    """LoCoMo's token F1 of one answer against one gold answer."""
    pred, ref = _tokens(prediction), _tokens(gold)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def record_f1(record: ProbeRecord) -> float | None:
    """The LoCoMo score of a record's answer; None where it has no gold answer."""
    if record.answer is None:
        return None
    if record.kind == "abstention":
        return float(says_unknown(record.answer))
    if not record.accepted:
        return None
    gold = record.accepted[0][0]
    if record.kind == "multi_hop":
        parts = [p for p in gold.split(",") if p.strip()]
        guesses = record.answer.split(",")
        return sum(max(token_f1(g, p) for g in guesses) for p in parts) / len(parts)
    return token_f1(record.answer, gold.split(";")[0])


def retrieval_at(record: ProbeRecord, k: int) -> dict[str, float] | None:
    """recall_any@k, recall_all@k and NDCG@k of the evidence turns among the recalled items."""
    wanted = {t.id for t in record.evidence}
    if not wanted:
        return None
    ranked = [item.turn_id for item in record.recall_items][:k]
    hits = [1.0 if tid in wanted else 0.0 for tid in ranked]
    dcg = sum(h / math.log2(rank + 2) for rank, h in enumerate(hits))
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(len(wanted), k)))
    found = wanted & set(ranked)
    return {"recall_any": float(bool(found)), "recall_all": float(found == wanted),
            "ndcg": dcg / ideal}


def parity_scores(records: list[ProbeRecord], names: list[str]) -> dict[str, Any]:
    """The selected parity scorers over a cell's records."""
    out: dict[str, Any] = {}
    if "token_f1" in names:
        by_kind: dict[str, list[float]] = defaultdict(list)
        for r in records:
            if (f1 := record_f1(r)) is not None:
                by_kind[r.kind].append(f1)
        values = [v for vs in by_kind.values() for v in vs]
        out["token_f1"] = {"mean": round(sum(values) / len(values), DIGITS) if values else None,
                           "n": len(values),
                           "by_kind": {k: summary(v)["mean"] for k, v in sorted(by_kind.items())}}
    if "retrieval" in names:
        block: dict[str, Any] = {}
        for k in RETRIEVAL_K:
            rows = [m for r in records if (m := retrieval_at(r, k)) is not None]
            block[f"@{k}"] = {name: round(sum(m[name] for m in rows) / len(rows), DIGITS)
                              if rows else None for name in ("recall_any", "recall_all", "ndcg")}
            block[f"@{k}"]["n"] = len(rows)
        out["retrieval"] = block
    return out
