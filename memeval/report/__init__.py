"""The HTML report of a run, and the paired comparison of two runs."""

from memeval.report.compare import compare_runs, mcnemar_exact, render_comparison
from memeval.report.html import REPORT, render_report, write_report

__all__ = ["REPORT", "compare_runs", "mcnemar_exact", "render_comparison", "render_report",
           "write_report"]
