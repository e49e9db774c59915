"""Scores across epochs: the probe is the unit of a rate, and each figure's spread by hand."""

from __future__ import annotations

import pytest

from memeval.records import ProbeRecord
from memeval.scoring.epochs import epoch_stat, figures
from memeval.scoring.scores import compute_scores
from memeval.scoring.stats import wilson

#: Whether each of four probes was answered right, in each of three epochs.
RIGHT = {0: [1, 1, 0, 0],   # 0.50
         1: [1, 1, 1, 0],   # 0.75
         2: [1, 0, 0, 0]}   # 0.25


def record(probe: int, epoch: int, right: bool, backend: str = "mem") -> ProbeRecord:
    return ProbeRecord(scenario="s", scenario_sha256="0" * 64, backend=backend, reader="r",
                       probe=f"p{probe}", kind="recall", user="user", question=f"q{probe}?",
                       accepted=[["Zorblat"]], answer="Zorblat" if right else "Rex",
                       recall_s=0.001 * (probe + 1) * (epoch + 1), epoch=epoch)


def records(epochs: dict[int, list[int]]) -> list[ProbeRecord]:
    return [record(i, e, bool(ok)) for e, row in epochs.items() for i, ok in enumerate(row)]


def test_epoch_stat_by_hand() -> None:
    # mean (0.5 + 0.7 + 0.6) / 3 = 0.6; sd sqrt((0.01 + 0.01 + 0) / 2) = 0.1;
    # 95 % t interval: 0.6 ± t(0.975, 2) · 0.1 / sqrt(3) = 0.6 ± 4.302653 · 0.057735 = 0.6 ± 0.248414
    stat = epoch_stat([0.5, 0.7, 0.6])
    assert stat is not None
    assert (stat["n"], stat["mean"], stat["std"], stat["min"], stat["max"]) == (3, 0.6, 0.1, 0.5, 0.7)
    assert stat["ci95"] == pytest.approx([0.351586, 0.848414], abs=2e-6)
    one = epoch_stat([0.4])
    assert one is not None and one["std"] is None and one["ci95"] is None
    assert epoch_stat([]) is None
    # latencies are not rates: the interval is not cut at 1
    wide = epoch_stat([1.0, 3.0], bounded=False)
    assert wide is not None and wide["ci95"] is not None and wide["ci95"][1] > 1


def test_answer_retention_across_three_epochs_by_hand() -> None:
    (cell,) = compute_scores(records(RIGHT)).cells
    spread = cell.epochs
    assert spread is not None and spread.n == 3 and spread.epochs == [0, 1, 2]
    stat = spread.figures["answer_retention"]
    assert stat.values == [0.5, 0.75, 0.25]
    # mean 0.5; sd sqrt((0 + 0.0625 + 0.0625) / 2) = 0.25; min 0.25, max 0.75;
    # 0.5 ± 4.302653 · 0.25 / sqrt(3) = 0.5 ± 0.621017: clipped to [0, 1]
    assert (stat.mean, stat.std, stat.min, stat.max) == (0.5, 0.25, 0.25, 0.75)
    assert stat.ci95 == (0.0, 1.0)
    # the pooled rate: each probe's share over the epochs (1, 2/3, 1/3, 0), n = 4 probes, not 12
    pooled = cell.answer_retention
    assert pooled is not None and pooled.value == 0.5 and pooled.n == 4
    assert pooled.ci95 == wilson(2.0, 4)
    assert cell.probes == 12
    # latency percentiles get a spread too: recall p50 of epoch e is 0.0025 · (e + 1)
    assert spread.figures["latency_s.recall.p50"].values == [0.0025, 0.005, 0.0075]


def test_one_epoch_scores_as_before() -> None:
    (cell,) = compute_scores(records({0: RIGHT[0]})).cells
    assert cell.epochs is None
    stat = cell.answer_retention
    assert stat is not None and (stat.value, stat.n) == (0.5, 4) and stat.ci95 == wilson(2.0, 4)


def test_memorized_and_the_control_join_within_the_epoch() -> None:
    # the control answers p0 in epoch 1 only: p0 is memorized in epoch 1, not in epoch 0
    rs = records({0: [1, 1], 1: [1, 1]})
    rs += [record(0, 0, False, "no_memory"), record(1, 0, False, "no_memory"),
           record(0, 1, True, "no_memory"), record(1, 1, False, "no_memory")]
    for r in rs:
        r.control = r.backend == "no_memory"
    scores = compute_scores(rs)
    memorized = {(v.probe, v.epoch): v.memorized for v in scores.verdicts if v.backend == "mem"}
    assert memorized == {("p0", 0): False, ("p1", 0): False, ("p0", 1): True, ("p1", 1): False}
    cell = scores.cell("mem")
    assert cell.memorized_probes == 1
    # memorization: the control's share per probe over epochs (p0: 1/2, p1: 0) -> 0.25 of 2
    memo = cell.leakage.memorization
    assert memo is not None and (memo.value, memo.n) == (0.25, 2) and memo.probes == ["s/p0"]
    assert cell.epochs is not None
    assert cell.epochs.figures["leakage.memorization"].values == [0.0, 0.5]


def test_figures_walks_rates_and_means_but_not_lists() -> None:
    found = figures({
        "answer_retention": {"value": 0.5, "n": 4, "ci95": [0.1, 0.9]},
        "retrieval": {"turn": {"overall": {"mrr": {"mean": 0.25, "n": 2, "ci95": [0, 1]}}}},
        "retention_curve": {"bins": [{"value": 1.0, "n": 1, "ci95": [0, 1]}]},
        "latency_s": {"recall": {"n": 3, "mean": 0.1, "p50": 0.1, "p95": 0.2, "p99": 0.3}},
        "abstention": None,
    })
    assert found == {"answer_retention": (0.5, True),
                     "retrieval.turn.overall.mrr": (0.25, True),
                     "latency_s.recall.p50": (0.1, False), "latency_s.recall.p95": (0.2, False),
                     "latency_s.recall.p99": (0.3, False)}
