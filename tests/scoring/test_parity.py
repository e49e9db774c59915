"""Benchmark-parity scorers against values computed by hand."""

from __future__ import annotations

import math

import pytest

from memeval.protocols import RecallItem
from memeval.records import EvidenceTurn
from memeval.scoring.parity import parity_scores, record_f1, retrieval_at, token_f1

from .test_retention import rec


def test_token_f1_normalizes_and_stems() -> None:
    # "the dogs ran to Porto" -> dog ran to porto; "dog run porto": 2 shared of 4 and 3
    assert token_f1("The dogs ran to Porto.", "dog run porto") == pytest.approx(2 * 0.5 * (2 / 3)
                                                                               / (0.5 + 2 / 3))
    assert token_f1("A sunrise", "the sunrise") == 1.0 and token_f1("x", "y") == 0.0


def test_record_f1_multi_hop_and_abstention() -> None:
    multi = rec("m", "multi_hop", answer="rainbow flag, adoption",
                accepted=[["rainbow flag, adoption agencies"]])
    # parts "rainbow flag" (F1 1) and "adoption agencies" (best: "adoption", F1 2/3)
    assert record_f1(multi) == pytest.approx((1 + 2 / 3) / 2)
    assert record_f1(rec("a", "abstention", answer="I don't know")) == 1.0
    assert record_f1(rec("o", accepted=[["Likely no; she prefers painting"]], answer="likely no")) == 1.0


def test_retrieval_at_k_by_hand() -> None:
    r = rec("r", answer="x")
    r.evidence = [EvidenceTurn(id=t, text=t, sessions_ago=0, tokens_ago=0) for t in ("D1:1", "D2:2")]
    r.recall_items = [RecallItem(text="", turn_id=t) for t in ("D3:1", "D1:1", "D4:4", "D2:2")]
    at2 = retrieval_at(r, 2)
    assert at2 is not None
    # one of two found at rank 2: DCG 1/log2(3); ideal 1 + 1/log2(3)
    assert at2 == {"recall_any": 1.0, "recall_all": 0.0,
                   "ndcg": pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))}
    at5 = retrieval_at(r, 5)
    assert at5 is not None and at5["recall_all"] == 1.0
    scores = parity_scores([r], ["retrieval"])
    assert scores["retrieval"]["@5"]["recall_all"] == 1.0 and "token_f1" not in scores
