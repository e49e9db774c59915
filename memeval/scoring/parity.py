"""Scorers that match the published benchmarks, for parity with their papers.

- `token_f1` (LoCoMo, `task_eval/evaluation.py` `eval_question_answering`): token F1 between
  answer and gold after LoCoMo's normalization (commas dropped, case, punctuation, the words
  a/an/the/and) and Porter stemming. Multi-hop (category 1): answer and gold split on
  commas, each gold part scored by its best answer part, the mean over gold parts.
  Temporal, open-domain and single-hop (2, 3, 4): F1 against the whole gold; open-domain's
  rule (only the gold before the first ';') is applied by `memeval import locomo`, which
  writes that part as the first accepted answer. Adversarial (5, abstention probes): 1 when
  the answer contains "no information available" or "not mentioned" (any case), else 0.
- `retrieval` (LongMemEval, `src/retrieval/eval_utils.py`): turn-level recall_any@k,
  recall_all@k and NDCG@k as `memeval.scoring.retrieval` computes them.
"""

from __future__ import annotations

import re
import string
from collections import Counter, defaultdict
from functools import lru_cache
from typing import Any

from memeval.records import ProbeRecord
from memeval.scoring.retrieval import probe_metrics
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


def multi_hop_f1(prediction: str, gold: str) -> float:
    """LoCoMo's `f1`: each comma-separated gold part scored by its best prediction part."""
    guesses = [p.strip() for p in prediction.split(",")]
    parts = [g.strip() for g in gold.split(",")]
    return sum(max(token_f1(g, p) for g in guesses) for p in parts) / len(parts)


def adversarial_score(prediction: str) -> float:
    """LoCoMo's category-5 rule: the answer must say "no information available" or "not
    mentioned" (any case); any other abstention wording scores 0."""
    said = prediction.lower()
    return float("no information available" in said or "not mentioned" in said)


def record_f1(record: ProbeRecord) -> float | None:
    """The LoCoMo score of a record's answer; None where it has no gold answer."""
    if record.answer is None:
        return None
    if record.kind == "abstention":
        return adversarial_score(record.answer)
    if not record.accepted:
        return None
    gold = record.accepted[0][0]
    if record.kind == "multi_hop":
        return multi_hop_f1(record.answer, gold)
    return token_f1(record.answer, gold)


def retrieval_at(record: ProbeRecord, k: int) -> dict[str, float] | None:
    """LongMemEval's turn-level recall_any@k, recall_all@k and NDCG@k of one record."""
    found = probe_metrics(record, "turn", [k])
    if found is None:
        return None
    return {name: found[f"@{k}"][name] for name in ("recall_any", "recall_all", "ndcg")}


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
