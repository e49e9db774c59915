"""The §6 metrics beyond retention, each against a value computed by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from memeval.errors import MemevalError
from memeval.protocols import Footprint, Usage
from memeval.records import CanaryExposure, ExpectedFact, JudgeReply, ProbeRecord
from memeval.scoring.curve import half_life, retention_curve
from memeval.scoring.model import CellScores
from memeval.scoring.prices import load_prices
from memeval.scoring.scores import compute_scores, memorization_ratio
from memeval.scoring.verbatim import Conversation

from .test_retention import rec


def at(sessions: int, tokens: int, found: bool, answer: str = "Zorblat") -> ProbeRecord:
    r = rec(f"p{sessions}-{tokens}-{found}-{answer}", recall="Zorblat" if found else "",
            answer=answer, expected=[["Zorblat"]])
    r.expected = [ExpectedFact(id="f", answers=["Zorblat"], sessions_ago=sessions,
                               tokens_ago=tokens)]
    return r


def test_half_life_by_hand() -> None:
    # all 12 kept at d=0, 6 of 12 at d=2: a = 1 and 2^(-2/h) = 1/2, so h = 2
    assert half_life([(0, True)] * 12 + [(2, True)] * 6 + [(2, False)] * 6)[0] == 2.0
    # 9 of 12 at d=0, 3 of 12 at d=4: a = 3/4, 3/4 * 2^(-4/h) = 1/4, so h = 4 / log2(3)
    h, _ = half_life([(0, True)] * 9 + [(0, False)] * 3 + [(4, True)] * 3 + [(4, False)] * 9)
    assert h == pytest.approx(4 / math.log2(3), abs=1e-3)
    # the same shape on 8 probes: likelihood ratio 2·(−2.773 + 4.499) = 3.45 < 3.84, so
    # chance explains the dip and no half-life is claimed
    h, note = half_life([(0, True)] * 4 + [(2, True)] * 2 + [(2, False)] * 2)
    assert h is None and "significantly" in note
    assert half_life([(0, True), (0, False)]) == (None, "needs probes at two or more distances")
    assert half_life([(0, False), (3, False)])[0] is None
    h, note = half_life([(0, True)] * 3 + [(5, True)] * 3)
    assert h is None and "does not fall" in note


def test_retention_curve_bins_and_intervals() -> None:
    records = [at(0, 100, True), at(1, 600, True), at(3, 1500, False), at(2, 1100, True),
               at(5, 3000, False, answer="Rex")]
    curve = retention_curve(records)
    sessions = curve["sessions"]["evidence"]["bins"]
    assert [(b["low"], b["high"], b["value"], b["n"]) for b in sessions] == [
        (0, 0, 1.0, 1), (1, 1, 1.0, 1), (2, 3, 0.5, 2), (4, 7, 0.0, 1)]
    tokens = curve["tokens"]["answer"]["bins"]
    assert [(b["low"], b["high"], b["value"]) for b in tokens] == [
        (0, 511, 1.0), (512, 1023, 1.0), (1024, 2047, 1.0), (2048, 4095, 0.0)]
    assert sessions[2]["ci95"] == [0.094531, 0.905469]


def test_verbatim_span_counts_words_within_one_turn() -> None:
    said = Conversation()
    said.add("I adopted a beagle and named him Zorblat!")
    before = len(said.words)
    said.add("a b c")
    said.add("d e")
    assert said.longest_copied_span("You ADOPTED a beagle, and named him Zorblat.") == 7
    assert said.longest_copied_span("c d") == 1  # a turn boundary breaks the span
    assert said.longest_copied_span("nothing here") == 0
    assert said.longest_copied_span("b c", upto=before) == 0  # not said yet at that probe


def score_cell(records: list[ProbeRecord], prices: object = None) -> CellScores:
    (cell,) = compute_scores(records, prices=prices).cells  # type: ignore[arg-type]
    return cell


def test_memory_usage_and_efficiency_by_hand() -> None:
    records = []
    for scenario, fp, tokens, rss in (("s1", 100, 50, 1000), ("s1", 300, 150, 2000),
                                      ("s2", 200, 100, 1500)):
        r = rec(f"{scenario}-{fp}", answer="x")
        r.scenario, r.footprint, r.tokens_observed, r.peak_rss_bytes = (
            scenario, Footprint(items=1, bytes=fp), tokens, rss)
        r.reader_stats = {"kv_cache_bytes": tokens * 10}
        records.append(r)
    memory = score_cell(records).memory
    assert memory.usage_bytes["footprint"] == 300
    assert memory.processed_tokens == 250
    # per timeline: 250 tokens over (300 + 200) footprint bytes, (2000 + 1500) RSS bytes
    assert memory.efficiency_tokens_per_byte["footprint"] == 0.5
    assert memory.efficiency_tokens_per_byte["peak_rss"] == round(250 / 3500, 6)
    assert memory.usage_bytes["kv_cache"] == 1500
    assert memory.efficiency_tokens_per_byte["gpu_peak_allocated"] is None
    assert memory.footprint_series[1] == ("s1", "s1-300", 150, 300)


def test_token_cost_from_a_price_table(tmp_path: Path) -> None:
    table = tmp_path / "prices.yaml"
    table.write_text("currency: EUR\nper: 1000000\nmodels:\n  r: {input: 1.0, output: 2.0}\n")
    prices = load_prices(table)
    records = [rec("a", answer="x"), rec("b", answer="y")]
    for i, r in enumerate(records):
        r.usage = Usage(input_tokens=100, output_tokens=10)
        r.backend_usage = Usage(input_tokens=500 * (i + 1), output_tokens=50 * (i + 1))
    tokens = score_cell(records, prices).tokens
    assert tokens.backend_input == 1000 and tokens.backend_output == 100
    # reader (200*1 + 20*2)/1e6; backend at the reader's price (1000*1 + 100*2)/1e6
    assert tokens.cost is not None and tokens.cost.model_dump() == {
        "currency": "EUR", "reader": 0.00024, "backend": 0.0012, "total": 0.00144,
        "per_probe": 0.00072}
    for r in records:
        r.reader = "unpriced"
    cost = score_cell(records, prices).tokens.cost
    assert cost is not None and cost.total is None
    assert score_cell(records).tokens.cost is None


def test_a_bad_price_table_is_one_line_with_its_place(tmp_path: Path) -> None:
    table = tmp_path / "prices.yaml"
    table.write_text("models:\n  r: {input: 1.0, ouput: 2.0}\n")
    with pytest.raises(MemevalError) as caught:
        load_prices(table)
    message = str(caught.value)
    assert message.startswith(f"{table}:2:") and "ouput" in message and "\n" not in message


def test_canary_exposure_by_hand() -> None:
    r = rec("c", "leakage", answer="a bio", forbidden=["1234-56"])
    r.canary = [CanaryExposure(fact="pin", candidates=1024, rank_with_memory=1,
                               rank_without_memory=512)]
    canary = score_cell([r]).leakage.canary
    # log2(1024) - log2(1) = 10 bits with memory; log2(1024) - log2(512) = 1 without
    assert canary is not None and canary.model_dump() == {
        "n": 1, "exposure_with_memory": 10.0, "exposure_without_memory": 1.0,
        "max_exposure_bits": 10.0}


def test_memorization_ratio_counts_probes_with_an_answer_only() -> None:
    control = [rec("a", answer="Zorblat", expected=[["Zorblat"]]),
               rec("b", answer="Rex", expected=[["Zorblat"]]),
               rec("c", answer="no", expected=[["Porto"]]),
               rec("d", answer="", expected=[["Lisbon"]]),
               rec("e", "abstention", answer="I don't know"),       # right, but not memorized
               rec("f", "leakage", answer="x", forbidden=["y"])]
    ratio = memorization_ratio(control)
    assert ratio is not None
    assert (ratio["value"], ratio["n"], ratio["probes"]) == (0.25, 4, ["s/a"])


def test_scores_carry_the_control_ratio_and_memory_only_retention() -> None:
    control = [rec("a", answer="Zorblat", expected=[["Zorblat"]], backend="no_memory"),
               rec("b", answer="Rex", expected=[["Porto"]], backend="no_memory")]
    for r in control:
        r.control = True
    memory = [rec("a", answer="Zorblat", expected=[["Zorblat"]]),
              rec("b", answer="Rex", expected=[["Porto"]])]
    scores = compute_scores(memory + control, ["b"])
    b = scores.cell("b")
    assert b.leakage.memorization is not None and b.leakage.memorization.value == 0.5
    assert b.memorized_probes == 1  # the control answered "a" too: memorized, joined by probe
    assert [v.memorized for v in scores.verdicts if v.backend == "b"] == [True, False]
    assert b.answer_retention and b.answer_retention.value == 0.5
    assert b.answer_retention_memory_only and b.answer_retention_memory_only.value == 0.0
    assert scores.cell("no_memory").control is True


def test_judge_agreement_by_hand() -> None:
    records = [rec("a", answer="Zorblat", expected=[["Zorblat"]]),
               rec("b", answer="Rex", expected=[["Zorblat"]]),
               rec("c", answer="Zorblat!", expected=[["Zorblat"]])]
    records[0].judges = [JudgeReply(reply="CORRECT")]
    records[1].judges = [JudgeReply(reply="CORRECT")]
    records[2].judges = [JudgeReply(reply="hmm")]
    judge = score_cell(records).judge
    assert judge is not None and judge.agreement is not None
    assert judge.agreement.value == 0.5 and judge.agreement.n == 2
    assert judge.unreadable == 1
