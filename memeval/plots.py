"""matplotlib figures of a run's scores, for notebooks (`pip install 'memeval[local]'`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from memeval.results import RunResult


def _cells(run: RunResult | dict[str, Any] | str | Path) -> list[dict[str, Any]]:
    if isinstance(run, dict):
        return run["cells"]
    if isinstance(run, (str, Path)):
        from memeval.results import RunResult

        run = RunResult(run)
    return run.scores_json["cells"]


def _name(cell: dict[str, Any]) -> str:
    return cell["backend"] + (" (control)" if cell["control"] else "")


def plot_retention(run: RunResult | dict[str, Any] | str | Path, unit: str = "sessions",
                   measure: str = "answer") -> Figure:
    """Retention against distance (`unit`: sessions or tokens), one line per backend, with
    95 % Wilson intervals and the fitted half-life in the legend.

    Args:
        run: A `RunResult`, a run directory, or a scores.json dict.
        unit: "sessions" or "tokens" between planting and probing.
        measure: "answer" or "evidence" retention.
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for cell in _cells(run):
        if cell["control"]:
            continue
        block = cell["retention_curve"][unit][measure]
        bins = block["bins"]
        if not bins:
            continue
        xs = [(b["low"] + b["high"]) / 2 for b in bins]
        ys = [b["value"] for b in bins]
        errors = [[y - b["ci95"][0] for y, b in zip(ys, bins, strict=True)],
                  [b["ci95"][1] - y for y, b in zip(ys, bins, strict=True)]]
        label = _name(cell) + (f" (half-life {block['half_life']:g})" if block["half_life"] else "")
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


def plot_cost_vs_retention(run: RunResult | dict[str, Any] | str | Path,
                           tokens: str = "reader_input") -> Figure:
    """Tokens per probe against answer retention, one point per backend, with the Pareto
    frontier of strategies (fewest tokens for the retention) dashed.

    Args:
        run: A `RunResult`, a run directory, or a scores.json dict.
        tokens: "reader_input" or "recalled" tokens per probe.
    """
    import matplotlib.pyplot as plt

    from memeval.report.html import pareto

    points = [(_name(c), c["tokens"][tokens]["mean"] or 0.0,
               (c["answer_retention"] or {}).get("value", 0.0)) for c in _cells(run)]
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
