"""`memeval compare RUN_A RUN_B`: paired per-probe differences with McNemar's exact test, and
the smallest difference the pairs could detect."""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape
from pathlib import Path
from statistics import NormalDist
from typing import Any

from memeval.errors import MemevalError
from memeval.records import read_manifest
from memeval.scoring.model import ProbeVerdict, read_scores
from memeval.scoring.stats import DIGITS


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant pair counts b and c."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return round(min(1.0, 2 * tail), DIGITS)


def paired_mde(n: int, discordant: int, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """Smallest difference of paired proportions detectable with `power` at two-sided `alpha`.

    Connor's (1987) normal approximation to McNemar's test: with n pairs, a share
    psi = discordant / n of them discordant, z_a = z(1 - alpha/2) and z_b = z(power), the
    sample size that detects a difference delta solves
    sqrt(n) * delta = z_a * sqrt(psi) + z_b * sqrt(psi - delta**2), whose root is
    delta = sqrt(psi) * (z_a * sqrt(n) + z_b * sqrt(n - z_a**2 + z_b**2)) / (n + z_b**2).

    Args:
        n: Pairs.
        discordant: Pairs whose two verdicts differ (psi is estimated from them).
        alpha: Two-sided significance level.
        power: Probability of detecting a true difference of the returned size.

    Returns:
        The difference, as a share of the pairs (may exceed psi: then no difference is
        detectable at this discordance with so few pairs); None without a discordant pair
        (psi cannot be estimated) or with fewer pairs than z_a squared (about 4).
    """
    z_a = NormalDist().inv_cdf(1 - alpha / 2)
    z_b = NormalDist().inv_cdf(power)
    if discordant <= 0 or n < z_a * z_a:
        return None
    psi = discordant / n
    delta = math.sqrt(psi) * (z_a * math.sqrt(n) + z_b * math.sqrt(n - z_a**2 + z_b**2)) \
        / (n + z_b**2)
    return round(delta, DIGITS)


def paired_difference(a: list[ProbeVerdict], b: list[ProbeVerdict],
            verdict: Callable[[ProbeVerdict], bool | None]) -> dict[str, Any]:
    """Pairs of verdicts on the same scenario, probe and epoch: means, discordant counts,
    McNemar's exact p-value and the smallest difference detectable at 80 % power (`mde80`)."""
    by_key = {(v.scenario, v.probe, v.epoch): v for v in b}
    pairs = [(va, vb) for v in a if (o := by_key.get((v.scenario, v.probe, v.epoch))) is not None
             and (va := verdict(v)) is not None and (vb := verdict(o)) is not None]
    n = len(pairs)
    only_a = sum(1 for x, y in pairs if x and not y)
    only_b = sum(1 for x, y in pairs if y and not x)
    if n == 0:
        return {"pairs": 0, "a": None, "b": None, "difference": None, "only_a": 0, "only_b": 0,
                "p_value": 1.0, "mde80": None}
    mean_a = sum(float(x) for x, _ in pairs) / n
    mean_b = sum(float(y) for _, y in pairs) / n
    return {"pairs": n, "a": round(mean_a, DIGITS), "b": round(mean_b, DIGITS),
            "difference": round(mean_b - mean_a, DIGITS),
            "only_a": only_a, "only_b": only_b, "p_value": mcnemar_exact(only_a, only_b),
            "mde80": paired_mde(n, only_a + only_b)}


def _cells(run_dir: Path) -> dict[str, list[ProbeVerdict]]:
    """The verdicts of each backend of a run (the control left out), as the run scored them."""
    scores = read_scores(run_dir)
    controls = {c.backend for c in scores.cells if c.control}
    cells: dict[str, list[ProbeVerdict]] = {}
    for v in scores.verdicts:
        if not v.error and v.backend not in controls:
            cells.setdefault(v.backend, []).append(v)
    return cells


def compare_runs(run_a: str | Path, run_b: str | Path) -> dict[str, Any]:
    """Pair the probes of two runs, backend by backend (or the one backend of each run), and
    test the differences in answer and full-evidence retention.

    A probe pairs with the same scenario, probe and epoch of the other run: runs of several
    epochs pair epoch by epoch, and a run of one epoch pairs with the other's epoch 0.
    """
    manifests = read_manifest(Path(run_a)), read_manifest(Path(run_b))
    a, b = _cells(Path(run_a)), _cells(Path(run_b))
    shared = [name for name in a if name in b]
    if shared:
        matches = [(name, name) for name in shared]
    elif len(a) == 1 and len(b) == 1:
        matches = [(next(iter(a)), next(iter(b)))]
    else:
        raise MemevalError(f"{run_a} and {run_b} share no backend to pair; compare runs of the "
                           "same backends, or runs of one backend each")
    rows: list[dict[str, Any]] = []
    for name_a, name_b in matches:
        rows.append({
            "backend_a": name_a, "backend_b": name_b,
            "answer": paired_difference(a[name_a], b[name_b], lambda v: v.correct),
            # evidence as a yes/no per probe (everything it needs was recalled), so pairs test
            "evidence": paired_difference(a[name_a], b[name_b],
                                lambda v: None if v.evidence is None else v.evidence == 1.0),
        })
    if all(row["answer"]["pairs"] == 0 and row["evidence"]["pairs"] == 0 for row in rows):
        raise MemevalError(f"{run_a} and {run_b} have no probe in common; compare runs of the "
                           "same scenarios")
    return {"a": str(run_a), "b": str(run_b),
            "reader_a": manifests[0].reader, "reader_b": manifests[1].reader,
            "epochs_a": manifests[0].config.epochs, "epochs_b": manifests[1].config.epochs,
            "rows": rows}


def mde_text(mde: float | None) -> str:
    """The detectable difference as `±0.107`, or a dash when it cannot be estimated."""
    return "–" if mde is None else f"±{mde:.3f}"


def render_comparison(result: dict[str, Any]) -> str:
    """The comparison as a self-contained HTML page."""
    body = []
    for row in result["rows"]:
        for what in ("answer", "evidence"):
            m = row[what]
            if not m["pairs"]:
                continue
            body.append(
                f'<tr><td class="l">{escape(row["backend_a"])}</td><td class="l">'
                f'{escape(row["backend_b"])}</td><td class="l">{what}</td><td>{m["pairs"]}</td>'
                f'<td>{m["a"]:.3f}</td><td>{m["b"]:.3f}</td><td>{m["difference"]:+.3f}</td>'
                f'<td>{m["only_a"]}</td><td>{m["only_b"]}</td><td>{m["p_value"]:.4f}</td>'
                f'<td>{mde_text(m.get("mde80"))}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("backend A", "backend B", "retention", "pairs", "A",
                                              "B", "B − A", "only A right", "only B right",
                                              "McNemar p", "MDE 80 %"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>memeval compare</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px}}table{{border-collapse:collapse}}
td,th{{padding:4px 8px;border-bottom:1px solid #eee;text-align:right}}.l{{text-align:left}}</style>
</head><body><h1>memeval compare</h1>
<p>A: {escape(result["a"])} ({escape(result["reader_a"])}) · B: {escape(result["b"])}
 ({escape(result["reader_b"])})</p>
<table id="compare"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>
<p>Paired by scenario, probe and epoch. Evidence counts a probe as retained when everything it
needs was recalled. McNemar's exact test (two-sided) uses only the discordant pairs. MDE 80 %:
the smallest difference these pairs detect with 80 % power at a two-sided 5 % level (Connor's
approximation, from the share of discordant pairs; – without any).</p>
</body></html>
"""
