"""The HTML report, the paired comparison and the plotting helpers."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

import memeval
from memeval.cli import app
from memeval.report import compare_runs, mcnemar_exact
from memeval.report.html import highlight, pareto
from memeval.scenario import parse_scenario

from ..conftest import SCENARIOS

HOSTILE = textwrap.dedent("""\
    memeval: 1
    id: hostile
    title: "<script>alert('title')</script>"
    facts:
      - id: tag
        text: The user's tag is <script>alert(1)</script>.
        answers: ["<script>alert(1)</script>"]
    sessions:
      - id: s1
        turns:
          - user: "My tag is <script>alert(1)</script> and <img src=x onerror=alert(2)>"
            plants: [tag]
    probes:
      - id: tag
        question: "What is my tag? <b>bold</b>"
        expects: [tag]
    """)


def test_pareto_frontier_by_hand() -> None:
    points = [("a", 10, 0.5), ("b", 20, 0.5), ("c", 30, 0.9), ("d", 5, 0.1), ("e", 40, 0.8)]
    # b costs more than a for the same retention; e costs more than c for less
    assert pareto(points) == ["a", "c", "d"]


def test_mcnemar_exact_by_hand() -> None:
    assert mcnemar_exact(0, 5) == 0.0625            # 2 * (1/2)^5
    assert mcnemar_exact(2, 8) == 0.109375          # 2 * (1 + 10 + 45) / 1024
    assert mcnemar_exact(1, 1) == 1.0 and mcnemar_exact(0, 0) == 1.0


def test_highlight_marks_and_escapes() -> None:
    assert highlight("dog <Zorblat> & zorblat", ["zorblat"]) == \
        "dog &lt;<mark>Zorblat</mark>&gt; &amp; <mark>zorblat</mark>"


def test_run_writes_a_self_contained_report_with_text_escaped(tmp_path: Path) -> None:
    result = memeval.run([parse_scenario(HOSTILE), SCENARIOS / "quick" / "pets-and-moves.yaml"],
                         backends=["full_context", "window:tokens=200"], reader="extractive",
                         out=tmp_path / "run")
    html = (result.run_dir / "report.html").read_text(encoding="utf-8")
    assert html.count("<script") == 2  # ours only (the script, the text blocks): text is escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<img src=x" not in html
    assert "<b>bold</b>" not in html
    assert not re.search(r'(src|href)="?(https?:)?//', html)  # nothing from the network
    assert 'id="summary"' in html and html.count("<svg") >= 5
    records = result.records()
    assert html.count("<tr data-backend=") == len(records)
    assert "<mark>" in html  # the evidence is highlighted in the recalled context
    for cell in ("full_context", "window:tokens=200", "no_memory"):
        assert f">{cell} · extractive" in html
    # recall and observe latency cells: p50 / p95 / p99 in ms, never falling
    assert "recall ms p50/p95/p99" in html and "observe ms p50/p95/p99" in html
    summary = html[html.index('<table id="summary">'):]
    summary = summary[:summary.index("</table>")]
    cells = re.findall(r"<td>(\d+\.\d) / (\d+\.\d) / (\d+\.\d)</td>", summary)
    assert len(cells) == 2 * 3  # recall and observe, for the three cells
    assert all(float(p50) <= float(p95) <= float(p99) for p50, p95, p99 in cells)


def test_report_and_compare_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    a = memeval.run(SCENARIOS, backends=["window:tokens=150"], reader="extractive",
                    out=tmp_path / "a", report=False)
    b = memeval.run(SCENARIOS, backends=["oracle"], reader="extractive", out=tmp_path / "b")
    assert not (a.run_dir / "report.html").exists()
    result = runner.invoke(app, ["report", str(a.run_dir), "--out", str(tmp_path / "a.html")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "a.html").read_text().startswith("<!DOCTYPE html>")
    result = runner.invoke(app, ["compare", str(a.run_dir), str(b.run_dir),
                                 "--out", str(tmp_path / "cmp.html")])
    assert result.exit_code == 0, result.output
    assert "McNemar" in result.output and "window:tokens=150" in result.output
    compared = compare_runs(a.run_dir, b.run_dir)
    (row,) = compared["rows"]
    evidence = row["evidence"]
    # the oracle recalls every needed fact; a 150-token window misses the old ones
    assert evidence["b"] == 1.0 and evidence["only_a"] == 0 and evidence["only_b"] > 0
    assert evidence["p_value"] == mcnemar_exact(0, evidence["only_b"])
    assert 'id="compare"' in (tmp_path / "cmp.html").read_text()
    result = runner.invoke(app, ["compare", str(a.run_dir), str(tmp_path)])
    assert result.exit_code == 2 and "no manifest" in result.output


def test_plot_helpers_return_figures(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    result = memeval.run(SCENARIOS, backends=["full_context", "window:tokens=150", "oracle"],
                         reader="extractive", out=tmp_path / "run", report=False)
    fig = result.plot_retention()
    lines = fig.axes[0].get_legend_handles_labels()[1]
    assert any(label.startswith("window:tokens=150") for label in lines)
    fig = result.plot_cost_vs_retention()
    assert len(fig.axes[0].collections) == 4  # three backends and the control
    assert "Pareto frontier" in fig.axes[0].get_legend_handles_labels()[1]
    from memeval.report.plots import plot_retention

    assert plot_retention(result.scored, unit="tokens").axes


def test_a_long_recalled_history_is_in_the_report_once(tmp_path: Path) -> None:
    import json

    result = memeval.run(SCENARIOS / "quick" / "pets-and-moves.yaml", backends=["full_context"],
                         reader="extractive", out=tmp_path / "run", control=False)
    html = (result.run_dir / "report.html").read_text(encoding="utf-8")
    store = json.loads(re.search(r'<script type="application/json" id="blocks">(.*?)</script>',
                                 html, re.S)[1])
    shown = re.findall(r'<pre data-blocks="([^"]+)"', html)
    from memeval.records import read_records

    records = [r for r in read_records(result.run_dir) if len(r.recall_text) >= 1024]
    assert len(shown) == len(records) > 1
    by_text = {r.recall_text for r in records}
    assert {"".join(store[i] for i in ids.split()) for ids in shown} == by_text
    # every probe recalls the history so far: stored once, it is about the longest one
    assert sum(map(len, store.values())) < 2 * max(map(len, by_text))


@pytest.mark.skipif(__import__("shutil").which("node") is None, reason="needs node")
def test_the_page_script_highlights_as_the_report_does() -> None:
    import json
    import subprocess

    from memeval.report.html import SCRIPT

    text = "user: my dog <Zorblat> & zorblat moved to Porto.\n" * 40
    needles = ["zorblat", "Porto", "", "a.b"]
    stub = """
    var el=function(){return {value:'',checked:false,textContent:'',addEventListener:function(){}};};
    var document={getElementById:function(id){var e=el();
        if(id==='blocks')e.textContent=JSON.stringify({b1:TEXT.slice(0,100),b2:TEXT.slice(100)});
        return e;},
      querySelectorAll:function(){return [];}};
    var window={};
    """.replace("TEXT", json.dumps(text))
    pre = ("var attrs={'data-blocks':'b1 b2','data-needles':NEEDLES},pre={innerHTML:'',"
           "getAttribute:function(k){return attrs[k];},removeAttribute:function(k){delete attrs[k];}};"
           "window.memevalFill(pre);process.stdout.write(pre.innerHTML);"
           ).replace("NEEDLES", json.dumps(json.dumps(needles)))
    done = subprocess.run(["node", "-e", stub + SCRIPT + pre], capture_output=True, text=True,
                          check=True)
    assert done.stdout == highlight(text, needles).replace("&#x27;", "'").replace("&quot;", '"')


def test_a_partial_run_says_so_in_its_report(tmp_path: Path) -> None:
    from memeval.records import RECORDS
    from memeval.report import write_report

    result = memeval.run(SCENARIOS / "quick" / "pets-and-moves.yaml", backends=["oracle"],
                         reader="extractive", out=tmp_path / "run")
    whole = (result.run_dir / "report.html").read_text(encoding="utf-8")
    assert 'id="partial"' not in whole
    planned = len((result.run_dir / RECORDS).read_text().splitlines())
    lines = (result.run_dir / RECORDS).read_text().splitlines(keepends=True)
    (result.run_dir / RECORDS).write_text("".join(lines[:3]))  # stopped after three probes
    html = write_report(result.run_dir).read_text(encoding="utf-8")
    assert f"<b>Partial run</b>: 3 of {planned} probes recorded" in html
    assert "--resume" in html


def test_headline_names_the_leader_and_the_control_appears_once(tmp_path: Path) -> None:
    """extractive reader: full_context holds every fact, a two-turn window few."""
    result = memeval.run([SCENARIOS / "quick" / "pets-and-moves.yaml"],
                         backends=["full_context", "window:tokens=40", "oracle"],
                         reader="extractive", out=tmp_path / "run", cache=False)
    html = (tmp_path / "run" / "report.html").read_text()
    head = html[html.index('<p id="headline">'):]
    head = head[:head.index("</p>")]
    assert "<b>full_context</b> keeps the most" in head and "Next is <b>window" in head
    full, none = result.cell("full_context"), result.cell("window:tokens=40")
    assert full.evidence_retention and none.evidence_retention
    assert full.evidence_retention.value > none.evidence_retention.value
    assert ("significant" in head) and "McNemar" in head and "oracle" in head
    # memorization is one sentence under the table, not a column repeated on every row
    assert html.count('id="control"') == 1 and "memorization (control)" not in html
    assert all(name in html for name in ("memory score", "abstention", "evidence retention"))
    # the retention chart of a cell names its backend whole, not "no_memory · extractive (contro"
    assert "Retention vs distance: full_context" in html and "(contro<" not in html


def test_axis_ticks_are_round() -> None:
    from memeval.report.svg import nice_ticks, scatter

    assert nice_ticks(105.265, 471.508) == [100, 200, 300, 400, 500]
    assert nice_ticks(0.0, 0.97) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    svg = scatter("t", [("a", 105.265, 0.3), ("b", 471.508, 0.6)], "x", "y")
    x_labels = re.findall(r'y="250" text-anchor="middle">([^<]+)</text>', svg)
    assert x_labels == ["0", "200", "400", "600"]  # the points padded by 15 %, then rounded
