"""Both kinds of memory as points of one chart: agent backends by footprint, KV-cache
policies by the KV bytes held at the answer; for the plots and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from memeval.scoring.model import CellScores, Scores, read_scores


class _HasRunDir(Protocol):
    run_dir: Path


Run = Scores | str | Path | _HasRunDir


def cells_of(run: Run) -> list[CellScores]:
    if isinstance(run, Scores):
        return run.cells
    return read_scores(run if isinstance(run, (str, Path)) else run.run_dir).cells


def _policy(reader: str) -> str | None:
    """The KV policy in a reader label (`embedded:kv=snapkv,ratio=0.5` → `snapkv,ratio=0.5`)."""
    _, _, options = reader.partition(":")
    parts = [p for p in options.split(",") if p.split("=")[0] in {"kv", "ratio", "sink", "window", "bits"}]
    return ",".join(parts).removeprefix("kv=") if parts and parts != ["kv=full"] else None


def pareto_points(runs: Run | list[Run]) -> list[tuple[str, str, float, float]]:
    """(kind, name, bytes, answer retention) of every cell that is not a control: "agent"
    points at the backend's peak footprint (readers with the full cache), "kv" points at the
    mean KV-cache bytes held at the answer (local readers). Zero-byte points are left out."""
    cells = [c for run in (runs if isinstance(runs, list) else [runs]) for c in cells_of(run)
             if not c.control and c.answer_retention is not None]
    backends = {c.backend for c in cells}
    points = []
    for c in cells:
        y = c.answer_retention.value if c.answer_retention else 0.0
        policy = _policy(c.reader)
        if policy is None and c.footprint.peak_bytes > 0:
            points.append(("agent", c.backend, float(c.footprint.peak_bytes), y))
        if c.kv is not None and c.kv.bytes > 0:
            name = policy or "full cache"
            points.append(("kv", name if len(backends) == 1 else f"{c.backend} · {name}", c.kv.bytes, y))
    return points



def frontier(points: list[tuple[str, float, float]]) -> list[str]:
    """Names no other point beats: fewer or equal bytes and higher or equal retention."""
    return [name for name, x, y in points
            if not any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for _, x2, y2 in points)]


def pareto_chart(cells: list[CellScores]) -> str:
    """The report's figure (SVG, log10 of bytes), or nothing when no point has bytes."""
    import math

    from memeval.report.svg import scatter

    points = [(f"{'KV' if kind == 'kv' else 'agent'}: {name}", math.log10(x), y)
              for kind, name, x, y in pareto_points(Scores(cells=cells, verdicts=[]))]
    if not points:
        return ""
    return ("<h2>Retention against memory held</h2><div class=\"charts\">"
            + scatter("Agent memory (footprint) and KV cache (bytes at the answer); dashed: "
                      "Pareto frontier", points, "log10 bytes held", "answer retention",
                      frontier(points)) + "</div>")
