"""Retention against distance (sessions or tokens between planting and probing), and its half-life."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from memeval.records import ProbeRecord, RecordKey
from memeval.scoring.retention import EvidenceItems, answer_correct, evidence_items
from memeval.scoring.stats import DIGITS, rate

#: Token distances are binned by powers of two from this many tokens.
TOKEN_BIN_START = 512

Point = tuple[float, bool]  # (distance, retained)

#: 95th percentile of chi-square with one degree of freedom.
LR_CRITICAL = 3.841


Found = Mapping[RecordKey, EvidenceItems]


def _items(records: Sequence[ProbeRecord], unit: str, found: Found
           ) -> tuple[list[Point], list[Point]]:
    """Evidence items (one per expected fact or evidence turn) and answer items (one per probe)."""
    attr = f"{unit}_ago"
    evidence: list[Point] = []
    answers: list[Point] = []
    for r in records:
        if r.error is not None:
            continue
        items = [(getattr(item, attr), held) for item, held in found[r.key]]
        evidence += items
        distances = [d for d, _ in items]
        correct = answer_correct(r)
        if distances and correct is not None:
            answers.append((max(distances), correct))  # a probe is as far as its oldest fact
    return evidence, answers


def _bin(unit: str, distance: float) -> tuple[int, int]:
    """[low, high] of the bin holding `distance`: 0, 1, 2–3, 4–7… sessions; 0–511, 512–1023… tokens."""
    d = int(distance)
    if unit == "tokens":
        if d < TOKEN_BIN_START:
            return (0, TOKEN_BIN_START - 1)
        low = TOKEN_BIN_START * 2 ** int(math.log2(d / TOKEN_BIN_START))
        return (low, 2 * low - 1)
    if d < 2:
        return (d, d)
    low = 2 ** int(math.log2(d))
    return (low, 2 * low - 1)


def _binned(points: list[Point], unit: str) -> list[dict[str, Any]]:
    bins: dict[tuple[int, int], list[float]] = {}
    for d, ok in points:
        bins.setdefault(_bin(unit, d), []).append(float(ok))
    return [{"low": low, "high": high, **(rate(v) or {})} for (low, high), v in sorted(bins.items())]


def _golden_max(f: Callable[[float], float], low: float, high: float, tol: float = 1e-8) -> float:
    ratio = (math.sqrt(5) - 1) / 2
    a, b = low, high
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol * max(1.0, abs(b)):
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return (a + b) / 2


def _loglik(groups: list[tuple[float, int, int]], a: float, lam: float) -> float:
    total = 0.0
    for d, hits, misses in groups:
        p = min(max(a * 2 ** (-lam * d), 1e-12), 1 - 1e-12)
        total += hits * math.log(p) + misses * math.log(1 - p)
    return total


def half_life(points: list[Point]) -> tuple[float | None, str]:
    """Fit retention(d) = a · 2^(−d/h) by maximum likelihood; return (h, note).

    h is None, with the reason in the note, when the data do not allow a fit.
    """
    distances = {d for d, _ in points}
    if len(distances) < 2:
        return None, "needs probes at two or more distances"
    if not any(ok for _, ok in points):
        return None, "nothing was retained at any distance"
    counts: dict[float, list[int]] = {d: [0, 0] for d in distances}
    for d, ok in points:
        counts[d][0 if ok else 1] += 1
    groups = [(d, hits, misses) for d, (hits, misses) in counts.items()]
    scale = max(distances)
    lam_max = 50 / scale  # half-life down to 2 % of the longest distance

    def profile(lam: float) -> float:
        a = _golden_max(lambda a: _loglik(groups, a, lam), 1e-9, 1.0)
        return _loglik(groups, a, lam)

    lam = _golden_max(profile, 0.0, lam_max)
    # no decay: the best fit is flat (its half-life is many times the data's reach)
    if lam * scale < 1e-3 or profile(0.0) >= profile(lam) - 1e-9:
        return None, f"retention does not fall over distances up to {scale:g}: the half-life " \
                     "is longer than the data reach"
    if lam >= lam_max * 0.999:
        return None, "retention falls to nothing before the nearest distance measured"
    # a likelihood-ratio test against no decay (chi-square, 1 df, 5 %): a dip that chance
    # explains is no forgetting, and a half-life fitted to it would be read as one
    if 2 * (profile(lam) - profile(0.0)) < LR_CRITICAL:
        return None, f"retention does not fall significantly over distances up to {scale:g}"
    return round(1 / lam, DIGITS - 3), "fitted a · 2^(−d/h) by maximum likelihood"


def retention_curve(records: Sequence[ProbeRecord], found: Found | None = None) -> dict[str, Any]:
    """Binned evidence and answer retention with Wilson intervals, and the half-life, per unit
    (`found`: each record's evidence items, when the caller has them)."""
    if found is None:
        found = {r.key: evidence_items(r) for r in records if r.error is None}
    out: dict[str, Any] = {}
    for unit in ("sessions", "tokens"):
        evidence, answers = _items(records, unit, found)
        block: dict[str, Any] = {}
        for name, points in (("evidence", evidence), ("answer", answers)):
            h, note = half_life(points)
            if name == "answer" and h is not None and block["evidence"]["half_life"] is None:
                # answers that worsen with distance while the evidence does not are the
                # reader's doing (longer prompts), not the memory forgetting
                h, note = None, "the evidence does not fall with distance: no half-life of memory"
            block[name] = {"bins": _binned(points, unit), "half_life": h, "half_life_note": note}
        out[unit] = block
    return out
