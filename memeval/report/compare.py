"""`memeval compare RUN_A RUN_B`: paired per-probe differences with McNemar's exact test."""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape
from pathlib import Path
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


def paired_difference(a: list[ProbeVerdict], b: list[ProbeVerdict],
            verdict: Callable[[ProbeVerdict], bool | None]) -> dict[str, Any]:
    by_key = {(v.scenario, v.probe): v for v in b}
    pairs = [(va, vb) for v in a if (o := by_key.get((v.scenario, v.probe))) is not None
             and (va := verdict(v)) is not None and (vb := verdict(o)) is not None]
    n = len(pairs)
    only_a = sum(1 for x, y in pairs if x and not y)
    only_b = sum(1 for x, y in pairs if y and not x)
    if n == 0:
        return {"pairs": 0, "a": None, "b": None, "difference": None, "only_a": 0, "only_b": 0,
                "p_value": 1.0}
    mean_a = sum(float(x) for x, _ in pairs) / n
    mean_b = sum(float(y) for _, y in pairs) / n
    return {"pairs": n, "a": round(mean_a, DIGITS), "b": round(mean_b, DIGITS),
            "difference": round(mean_b - mean_a, DIGITS),
            "only_a": only_a, "only_b": only_b, "p_value": mcnemar_exact(only_a, only_b)}


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
    test the differences in answer and full-evidence retention."""
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
            "reader_a": manifests[0].reader, "reader_b": manifests[1].reader, "rows": rows}


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
                f'<td>{m["only_a"]}</td><td>{m["only_b"]}</td><td>{m["p_value"]:.4f}</td></tr>')
    head = "".join(f"<th>{h}</th>" for h in ("backend A", "backend B", "retention", "pairs", "A",
                                              "B", "B − A", "only A right", "only B right",
                                              "McNemar p"))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>memeval compare</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px}}table{{border-collapse:collapse}}
td,th{{padding:4px 8px;border-bottom:1px solid #eee;text-align:right}}.l{{text-align:left}}</style>
</head><body><h1>memeval compare</h1>
<p>A: {escape(result["a"])} ({escape(result["reader_a"])}) · B: {escape(result["b"])}
 ({escape(result["reader_b"])})</p>
<table id="compare"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>
<p>Paired by scenario and probe. Evidence counts a probe as retained when everything it needs
was recalled. McNemar's exact test (two-sided) uses only the discordant pairs.</p>
</body></html>
"""
