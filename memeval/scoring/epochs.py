"""A cell's figures across epochs (`--epochs N`): each epoch scored alone, then the spread.

Every rate and every mean with an interval in a cell's scores, and the latency
percentiles, are collected by their dotted path in each epoch's `CellScores`; for each
path the epochs' values give a mean, a sample standard deviation, min, max and a 95 %
Student-t interval of the mean over epochs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from memeval.scoring.model import CellScores, EpochScores
from memeval.scoring.retrieval import t975
from memeval.scoring.stats import DIGITS

#: The figures whose spread across epochs the command line and the report show first.
HEADLINE_FIGURES = (("evidence retention", "evidence_retention"), ("answer retention", "answer_retention"),
                    ("memory score", "answer_retention_reader_normalized"))

#: Latency percentiles whose spread is kept (seconds; not bounded by 1).
LATENCY_STAGES = ("observe", "recall", "answer", "deferred")
LATENCY_POINTS = ("p50", "p95", "p99")


def epoch_stat(values: Sequence[float], bounded: bool = True) -> dict[str, Any] | None:
    """Mean, sample standard deviation (n − 1), min, max and a 95 % t interval of the mean.

    Args:
        values: The figure in each epoch.
        bounded: A rate in [0, 1] (the interval is clipped to it); otherwise clipped at 0.

    Returns:
        The `EpochStat` fields, or None when there are no values. With one value the
        standard deviation and the interval are None.
    """
    n = len(values)
    if n == 0:
        return None
    mean = sum(values) / n
    std = ci95 = None
    if n > 1:
        sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
        half = t975(n - 1) * sd / math.sqrt(n)
        high = mean + half
        ci95 = [round(max(0.0, mean - half), DIGITS),
                round(min(1.0, high) if bounded else high, DIGITS)]
        std = round(sd, DIGITS)
    return {"n": n, "values": [round(v, DIGITS) for v in values], "mean": round(mean, DIGITS),
            "std": std, "min": round(min(values), DIGITS), "max": round(max(values), DIGITS),
            "ci95": ci95}


def figures(cell: dict[str, Any]) -> dict[str, tuple[float, bool]]:
    """Every figure of one cell's scores (as JSON) that gets a spread: path to (value, bounded).

    Rates (`value`, `n`, `ci95`) and means with an interval (`mean`, `n`, `ci95`) anywhere in
    the cell, lists (the retention curve's bins) aside, and the latency percentiles.
    """
    found: dict[str, tuple[float, bool]] = {}

    def walk(node: dict[str, Any], path: str) -> None:
        if {"value", "n", "ci95"} <= node.keys():
            found[path] = (float(node["value"]), True)
            return
        if {"mean", "n", "ci95"} <= node.keys():
            found[path] = (float(node["mean"]), True)
            return
        for name, child in node.items():
            if isinstance(child, dict) and name not in ("epochs", "latency_s"):
                walk(child, f"{path}.{name}" if path else name)

    walk(cell, "")
    for stage in LATENCY_STAGES:
        stat = (cell.get("latency_s") or {}).get(stage) or {}
        for point in LATENCY_POINTS:
            if stat.get(point) is not None:
                found[f"latency_s.{stage}.{point}"] = (float(stat[point]), False)
    return found


def epoch_scores(per_epoch: Mapping[int, CellScores]) -> EpochScores:
    """The `EpochScores` of one cell from its scores in each epoch (in epoch order)."""
    epochs = sorted(per_epoch)
    seen = [figures(per_epoch[e].model_dump(mode="json")) for e in epochs]
    paths: dict[str, bool] = {}
    for found in seen:
        for path, (_, bounded) in found.items():
            paths.setdefault(path, bounded)
    out: dict[str, Any] = {}
    for path, bounded in paths.items():
        stat = epoch_stat([found[path][0] for found in seen if path in found], bounded)
        if stat is not None:
            out[path] = stat
    return EpochScores.model_validate({"n": len(epochs), "epochs": epochs, "figures": out})
