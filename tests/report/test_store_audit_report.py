"""The report's Store audit table: one row per cell whose backend lists its memories."""

from __future__ import annotations

from pathlib import Path

import memeval
from memeval.report.html import write_report

from ..conftest import SCENARIOS
from ..helpers import FirstSessionMemory


def test_the_report_shows_the_store_audit_of_listing_backends_only(tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS / "update-new-job.yaml", backends=[FirstSessionMemory, "oracle"],
                         reader="extractive", control=False, cache=False, report=False,
                         out=tmp_path / "run")
    html = write_report(result.run_dir).read_text()
    table = html.split('<table id="store-audit">', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 2  # the header and FirstSessionMemory; oracle lists nothing
    assert "FirstSessionMemory" in table and "oracle" not in table
    assert "0.72" in table and "n=25" in table


def test_no_listing_backend_no_table(tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS / "update-new-job.yaml", backends=["oracle"], reader="extractive",
                         control=False, cache=False, out=tmp_path / "run")
    assert "Store audit" not in (result.run_dir / "report.html").read_text()
