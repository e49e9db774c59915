"""Small statistics: Wilson intervals and percentiles, rounded for stable output."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

Z95 = 1.959963984540054
DIGITS = 6


def wilson(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion (successes may be fractional)."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (round(max(0.0, centre - half), DIGITS), round(min(1.0, centre + half), DIGITS))


def rate(values: Sequence[float]) -> dict[str, Any] | None:
    """Mean of per-probe values in [0, 1] with n and a 95 % Wilson interval."""
    if not values:
        return None
    total = float(sum(values))
    return {"value": round(total / len(values), DIGITS), "n": len(values),
            "ci95": list(wilson(total, len(values)))}


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile, q in [0, 100]: the value at rank (n - 1) * q / 100 of the
    sorted values, interpolated between its two neighbours (numpy's default, "linear")."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return round(ordered[low] + (ordered[high] - ordered[low]) * (pos - low), DIGITS)


def summary(values: Sequence[float]) -> dict[str, Any]:
    """n, mean, p50, p95, p99 and total of a list of numbers."""
    return {
        "n": len(values),
        "mean": round(sum(values) / len(values), DIGITS) if values else None,
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "total": round(float(sum(values)), DIGITS),
    }


def pearson(pairs: Sequence[tuple[float, float]]) -> float | None:
    """Pearson correlation of (x, y) pairs; None when either side does not vary."""
    n = len(pairs)
    if n < 2:
        return None
    mx = sum(x for x, _ in pairs) / n
    my = sum(y for _, y in pairs) / n
    sxy = sum((x - mx) * (y - my) for x, y in pairs)
    sxx = sum((x - mx) ** 2 for x, _ in pairs)
    syy = sum((y - my) ** 2 for _, y in pairs)
    if sxx == 0 or syy == 0:
        return None
    return round(sxy / math.sqrt(sxx * syy), DIGITS)
