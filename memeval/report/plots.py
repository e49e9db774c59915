"""matplotlib figures of a run's scores, for notebooks (`pip install 'memeval[local]'`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from memeval.report.html import pareto
from memeval.report.memory_points import Run, cells_of, pareto_points
from memeval.scoring.model import CellScores

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _name(cell: CellScores) -> str:
    return cell.backend + (" (control)" if cell.control else "")


def plot_retention(run: Run, unit: str = "sessions", measure: str = "answer") -> Figure:
    """Retention against distance (`unit`: sessions or tokens), one line per backend, with
    95 % Wilson intervals and the fitted half-life in the legend.

    Args:
        run: A `RunResult`, a run directory, or its `Scores`.
        unit: "sessions" or "tokens" between planting and probing.
        measure: "answer" or "evidence" retention.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for cell in cells_of(run):
        if cell.control:
            continue
        curve = getattr(getattr(cell.retention_curve, unit), measure)
        if not curve.bins:
            continue
        xs = [(b.low + b.high) / 2 for b in curve.bins]
        ys = [b.value for b in curve.bins]
        errors = [[b.value - b.ci95[0] for b in curve.bins], [b.ci95[1] - b.value for b in curve.bins]]
        label = _name(cell) + (f" (half-life {curve.half_life:g})" if curve.half_life else "")
        ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, label=label)
    ax.set_xlabel(f"{unit} between planting and probe")
    ax.set_ylabel(f"{measure} retention")
    ax.set_ylim(-0.02, 1.02)
    if unit == "tokens":
        ax.set_xscale("symlog", linthresh=512)
    ax.legend(fontsize=8)
    ax.set_title(f"{measure.capitalize()} retention against distance")
    fig.tight_layout()
    return fig


def plot_cost_vs_retention(run: Run, tokens: str = "reader_input") -> Figure:
    """Tokens per probe against answer retention, one point per backend, with the Pareto
    frontier of strategies (fewest tokens for the retention) dashed.

    Args:
        run: A `RunResult`, a run directory, or its `Scores`.
        tokens: "reader_input" or "recalled" tokens per probe.
    """
    import matplotlib.pyplot as plt

    points = [(_name(c), getattr(c.tokens, tokens).mean or 0.0,
               c.answer_retention.value if c.answer_retention else 0.0) for c in cells_of(run)]
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, x, y in points:
        ax.scatter([x], [y], s=40)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    frontier = sorted((x, y) for name, x, y in points if name in pareto(points))
    if len(frontier) > 1:
        ax.plot(*zip(*frontier, strict=True), linestyle="--", color="grey", label="Pareto frontier")
        ax.legend(fontsize=8)
    ax.set_xlabel(f"{tokens.replace('_', ' ')} tokens per probe")
    ax.set_ylabel("answer retention")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Cost against retention")
    fig.tight_layout()
    return fig


def plot_pareto(runs: Run | list[Run]) -> Figure:
    """Answer retention against bytes held (log scale), both kinds of memory on one chart:
    agent backends by their peak footprint, KV-cache policies by the KV bytes held at the
    answer; the Pareto frontier (fewest bytes for the retention) dashed.

    Args:
        runs: A `RunResult`, a run directory or its `Scores`, or a list of them (one run per
            reader policy, say).
    """
    import matplotlib.pyplot as plt

    points = pareto_points(runs)
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind, marker, label in (("agent", "o", "agent memory (footprint)"),
                                ("kv", "s", "KV cache (bytes at the answer)")):
        mine = [(n, x, y) for k, n, x, y in points if k == kind]
        if mine:
            ax.scatter([x for _, x, _ in mine], [y for _, _, y in mine], marker=marker, s=40, label=label)
        for name, x, y in mine:
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=7)
    named = [(f"{k}:{n}", x, y) for k, n, x, y in points]
    frontier = sorted((x, y) for name, x, y in named if name in pareto(named))
    if len(frontier) > 1:
        ax.plot(*zip(*frontier, strict=True), linestyle="--", color="grey", label="Pareto frontier")
    if points:
        ax.set_xscale("log")
        ax.legend(fontsize=8)
    ax.set_xlabel("bytes held (log)")
    ax.set_ylabel("answer retention")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Retention against memory: agent backends and KV-cache policies")
    fig.tight_layout()
    return fig
