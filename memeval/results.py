"""RunResult: the facade over a run directory — typed scores, pandas views, plots, the report."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memeval.records import SCORES, Manifest, read_manifest, read_records
from memeval.scoring.model import CellScores, ProbeVerdict, Scores, read_scores

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure


class RunResult:
    """A finished (or partial) run directory.

    `cells` and `cell(backend)` give the typed scores (`memeval.scoring.model`),
    `records()` and `scores()` pandas frames, `plot_*` matplotlib figures.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)

    @property
    def manifest(self) -> Manifest:
        return read_manifest(self.run_dir)

    @cached_property
    def scored(self) -> Scores:
        """scores.json, typed (read once)."""
        return read_scores(self.run_dir)

    @property
    def cells(self) -> list[CellScores]:
        """The scores of each (backend, reader), in the order the run was given them."""
        return self.scored.cells

    def cell(self, backend: str) -> CellScores:
        """The scores of one backend (KeyError if the run has none of that name)."""
        return self.scored.cell(backend)

    @property
    def verdicts(self) -> list[ProbeVerdict]:
        """The verdict on every record, decided when the run was scored."""
        return self.scored.verdicts

    @property
    def scores_json(self) -> dict[str, Any]:
        """scores.json as a plain dict, as written by the run (or by `memeval score`)."""
        payload: dict[str, Any] = json.loads((self.run_dir / SCORES).read_text(encoding="utf-8"))
        return payload

    def records(self) -> pd.DataFrame:
        """One row per probe record, nested fields flattened, with its verdicts."""
        import pandas as pd

        verdicts = self.scored.verdict_map()
        rows = []
        for r in read_records(self.run_dir):
            row = r.model_dump(exclude={"recall_items", "expected", "evidence", "observe_s",
                                        "answer_logprobs", "canary", "ess", "judges",
                                        "backend_usage"})
            usage = row.pop("usage")
            row["input_tokens"], row["output_tokens"] = usage["input_tokens"], usage["output_tokens"]
            fp = row.pop("footprint") or {}
            row["footprint_items"], row["footprint_bytes"] = fp.get("items"), fp.get("bytes")
            row.update({f"reader_{k}": v for k, v in row.pop("reader_stats").items()})
            row["observe_count"] = len(r.observe_s)
            v = verdicts.get(r.key)
            for name in ("evidence", "correct", "violation", "memorized", "oracle_correct",
                         "judge_correct"):
                row[name] = getattr(v, name) if v else None
            for label, verdict in (v.judges.items() if v and len(v.judges) > 1 else ()):
                row[f"judge_correct[{label}]"] = verdict  # each of several judges
            rows.append(row)
        return pd.DataFrame(rows)

    def scores(self) -> pd.DataFrame:
        """One row per (backend, reader, probe kind) plus an `all` row per cell."""
        import pandas as pd

        rows = []
        for cell in self.cells:
            for kind, block in {"all": cell, **cell.by_kind}.items():
                row: dict[str, Any] = {"backend": cell.backend, "reader": cell.reader, "kind": kind}
                for metric in ("evidence_retention", "answer_retention",
                               "answer_retention_reader_normalized"):
                    stat = getattr(block, metric, None)  # the normalized score is per cell
                    row[metric] = stat.value if stat else None
                    row[f"{metric}_n"] = stat.n if stat else 0
                    row[f"{metric}_low"], row[f"{metric}_high"] = stat.ci95 if stat else (None, None)
                rows.append(row)
        return pd.DataFrame(rows)

    def plot_retention(self, unit: str = "sessions", measure: str = "answer") -> Figure:
        """Retention against distance per backend (see `memeval.report.plots`)."""
        from memeval.report.plots import plot_retention

        return plot_retention(self.scored, unit, measure)

    def plot_cost_vs_retention(self, tokens: str = "reader_input") -> Figure:
        """Tokens per probe against answer retention with the Pareto frontier."""
        from memeval.report.plots import plot_cost_vs_retention

        return plot_cost_vs_retention(self.scored, tokens)

    def plot_pareto(self, *others: RunResult) -> Figure:
        """Answer retention against bytes held: agent backends by footprint, KV-cache policies
        by KV bytes, with the Pareto frontier; `others` adds runs (one per reader policy)."""
        from memeval.report.plots import plot_pareto

        return plot_pareto([self.scored, *(o.scored for o in others)])

    def report(self, out: str | Path | None = None) -> Path:
        """Write the self-contained HTML report; return its path."""
        from memeval.report import write_report

        return write_report(self.run_dir, out)

    def __repr__(self) -> str:
        return f"RunResult({str(self.run_dir)!r})"
