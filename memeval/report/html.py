"""`memeval report`: one self-contained HTML file per run, readable offline from file://.

One module on purpose: every section renders from the same few helpers (rates, bytes,
chart names), and the page must stay one string with nothing loaded from elsewhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from html import escape
from pathlib import Path

from memeval.records import Manifest, ProbeRecord, RecordKey, read_manifest, read_records
from memeval.report.compare import paired_difference
from memeval.report.memory_points import pareto_chart
from memeval.report.svg import Series, bars, line_chart, scatter
from memeval.scoring.epochs import HEADLINE_FIGURES
from memeval.scoring.model import CellScores, ProbeVerdict, Rate, Scores, Summary, read_scores
from memeval.scoring.verdicts import is_oracle
from memeval.texts import INLINE_CHARS, block_id, split_blocks

REPORT = "report.html"

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1280px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:13px}th,td{padding:4px 8px;border-bottom:1px solid #eee;
text-align:right;vertical-align:top}th{background:#f6f6f6;position:sticky;top:0}
td.l,th.l{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{border:1px solid #eee;background:#fff}svg text{font-size:10px;fill:#333}
svg .t{font-size:12px;font-weight:600}svg .ax{stroke:#888}svg .grid{stroke:#f0f0f0}
.ok{color:#1a7f37}.bad{color:#cf222e}.muted{color:#777}mark{background:#fff3a3}
pre{white-space:pre-wrap;max-height:320px;overflow:auto;background:#fafafa;padding:8px;margin:4px 0}
details>summary{cursor:pointer}.filters{margin:8px 0;display:flex;gap:12px;align-items:center}
tr.hidden{display:none}.note{background:#fff8e5;padding:6px 10px;border-left:3px solid #e3b341}
"""

SCRIPT = r"""
(function(){
  var text=document.getElementById('f-text'), backend=document.getElementById('f-backend'),
      failed=document.getElementById('f-failed'), count=document.getElementById('f-count');
  function apply(){
    var q=text.value.toLowerCase(), b=backend.value, only=failed.checked, shown=0;
    var rows=document.querySelectorAll('#probes tbody tr');
    for(var i=0;i<rows.length;i++){
      var r=rows[i], hit=(!q||r.textContent.toLowerCase().indexOf(q)>=0)
        &&(!b||r.getAttribute('data-backend')===b)&&(!only||r.getAttribute('data-ok')!=='1');
      r.className=hit?'':'hidden'; if(hit)shown++;
    }
    count.textContent=shown+' shown';
  }
  text.addEventListener('input',apply);backend.addEventListener('change',apply);
  failed.addEventListener('change',apply);apply();
  // long recalled texts are stored once, as blocks; a probe's text is joined when it is opened
  var store=JSON.parse(document.getElementById('blocks').textContent);
  function esc(s){return s.replace(/&/g,'&amp;').replace(/</g,'&lt;').replace(/>/g,'&gt;');}
  function fill(pre){
    var text=pre.getAttribute('data-blocks').split(' ').map(function(id){return store[id];}).join('');
    var needles=JSON.parse(pre.getAttribute('data-needles')).filter(function(n){return n.trim();})
      .sort(function(a,b){return b.length-a.length;});
    var out='',at=0,m;
    if(needles.length){
      var re=new RegExp(needles.map(function(n){return n.replace(/[.*+?^${}()|[\]\\]/g,'\\$&');})
        .join('|'),'gi');
      while((m=re.exec(text))){
        out+=esc(text.slice(at,m.index))+'<mark>'+esc(m[0])+'</mark>';at=m.index+m[0].length;
      }
    }
    pre.innerHTML=out+esc(text.slice(at));pre.removeAttribute('data-blocks');
  }
  window.memevalFill=fill;
  var folds=document.querySelectorAll('#probes details');
  for(var k=0;k<folds.length;k++){folds[k].addEventListener('toggle',function(){
    var pres=this.querySelectorAll('pre[data-blocks]');for(var j=0;j<pres.length;j++)fill(pres[j]);
  });}
})();
"""


def _rate(stat: Rate | None) -> str:
    if stat is None:
        return '<span class="muted">–</span>'
    low, high = stat.ci95
    return f'{stat.value:.2f} <span class="muted">[{low:.2f}, {high:.2f}] n={stat.n}</span>'


def fmt_bytes(n: float | None) -> str:
    """Bytes for people: 512 B, 7.2 KB, 1.3 GB; a dash for none."""
    if not n:
        return "–"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _ms(stat: Summary) -> str:
    """p50 / p95 / p99 in milliseconds; p99 a dash in scores written before it was kept."""
    if stat.p50 is None or stat.p95 is None:
        return "–"
    p99 = "–" if stat.p99 is None else f"{stat.p99 * 1000:.1f}"
    return f"{stat.p50 * 1000:.1f} / {stat.p95 * 1000:.1f} / {p99}"


def pareto(points: Sequence[tuple[str, float, float]]) -> list[str]:
    """Names of the points no other point beats: fewer or equal tokens and higher or equal
    retention, one of them strictly."""
    return [name for name, x, y in points
            if not any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for _, x2, y2 in points)]


def highlight(text: str, needles: Sequence[str]) -> str:
    """Escape `text`, marking every occurrence of the needles (case-insensitive)."""
    wanted = sorted({n for n in needles if n.strip()}, key=len, reverse=True)
    if not wanted:
        return escape(text)
    pattern = re.compile("|".join(re.escape(n) for n in wanted), re.IGNORECASE)
    out, at = [], 0
    for m in pattern.finditer(text):
        out += [escape(text[at:m.start()]), f"<mark>{escape(m.group(0))}</mark>"]
        at = m.end()
    return "".join(out) + escape(text[at:])


#: One sentence per column of the summary table, shown under it.
COLUMNS: dict[str, str] = {
    "evidence retention": "share of the expected facts that the recalled text held (no model "
                          "involved).",
    "answer retention": "share of probes with an answer to give that the reader answered "
                        "right (abstention and leakage probes are scored apart).",
    "memory score": "answer retention on the probes the oracle answers right with the same "
                    "reader: the reader's own ceiling taken out.",
    "abstention": "share of abstention probes answered \"I don't know\", as they should be.",
    "recalled tok/probe": "tokens the backend recalled for a probe (mean).",
    "reader in tok/probe": "tokens of the whole prompt the reader read (mean).",
    "footprint (max)": "the most the backend held at once, as it reports it.",
    "peak RSS": "the process's largest resident memory during the cell.",
    "recall ms": "time the backend took to recall, p50/p95/p99.",
    "observe ms": "time the backend took to store a turn, p50/p95/p99, including work it "
                  "deferred to its first recall.",
    "leak violations": "share of leakage and isolation probes whose answer (or, for isolation, "
                       "recall) held a forbidden value.",
}


def chart_name(cell: CellScores, cells: list[CellScores]) -> str:
    """A cell's name in a chart: the backend alone when every cell shares one reader."""
    if len({c.reader for c in cells}) > 1:
        return cell.label
    return f"{cell.backend} (control)" if cell.control else cell.backend


def _observe(cell: CellScores) -> str:
    """Observe latency per turn, and per turn again with the work deferred to recall added."""
    latency = cell.latency_s
    per_turn, deferred = latency.observe_per_turn, latency.deferred
    # shown where deferring matters: a no-op settle still takes a few microseconds
    if per_turn is None or not deferred or (deferred.mean or 0) < 1e-4:
        return _ms(latency.observe)
    return (f'{_ms(latency.observe)}<br><span class="muted">{per_turn * 1000:.3f} '
            "ms/turn with deferred work</span>")


def _summary(cells: list[CellScores]) -> str:
    head = ("backend · reader", "probes", *list(COLUMNS)[:4], *list(COLUMNS)[4:8],
            "recall ms p50/p95/p99", "observe ms p50/p95/p99", "leak violations", "errors")
    rows = []
    for c in cells:
        rows.append("<tr>" + "".join([
            f'<td class="l">{escape(c.label)}</td>', f"<td>{c.probes}</td>",
            f"<td>{_rate(c.evidence_retention)}</td>", f"<td>{_rate(c.answer_retention)}</td>",
            f"<td>{_rate(c.answer_retention_reader_normalized)}</td>",
            f"<td>{_rate(c.abstention)}</td>",
            f"<td>{c.tokens.recalled.mean or 0:.0f}</td>",
            f"<td>{c.tokens.reader_input.mean or 0:.0f}</td>",
            f'<td>{fmt_bytes(c.memory.usage_bytes["footprint"])}</td>',
            f'<td>{fmt_bytes(c.memory.usage_bytes["peak_rss"])}</td>',
            f"<td>{_ms(c.latency_s.recall)}</td>", f"<td>{_observe(c)}</td>",
            f"<td>{_rate(c.leakage.violation_rate)}</td>", f"<td>{c.errors}</td>"]) + "</tr>")
    header = "".join(f'<th class="{"l" if i == 0 else ""}">{escape(h)}</th>' for i, h in enumerate(head))
    memo = "".join(
        f'<p id="control">Control ({escape(c.label)}: the same reader with no memory at all) '
        f"answers {_rate(m)} of the probes with an answer to give from what the model "
        "already knows: its memorization, the same for every row.</p>"
        for c in cells if c.control and (m := c.leakage.memorization))
    legend = "".join(f"<li><b>{escape(k)}</b>: {escape(v)}</li>" for k, v in COLUMNS.items())
    return (f'<table id="summary"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}'
            f'</tbody></table>{memo}<ul class="muted" id="columns">{legend}</ul>')


def headline(cells: list[CellScores], verdicts: list[ProbeVerdict]) -> str:
    """One sentence: which memory keeps most (evidence retention), at what cost, and whether
    its lead over the next is significant (exact McNemar on all-facts-held, paired by probe).
    The control and the oracle are references, not contenders."""
    contenders = sorted((c for c in cells if not c.control and not is_oracle(c.backend)
                         and c.evidence_retention),
                        key=lambda c: (-(c.evidence_retention.value if c.evidence_retention
                                         else 0), c.tokens.recalled.mean or 0))
    if not contenders:
        return ""
    best = contenders[0]
    text = (f"<b>{escape(best.backend)}</b> keeps the most: evidence retention "
            f"{_rate(best.evidence_retention)}, memory score "
            f"{_rate(best.answer_retention_reader_normalized)}, at "
            f"{best.tokens.recalled.mean or 0:,.0f} recalled tokens per probe and a footprint "
            f"of {fmt_bytes(best.memory.usage_bytes['footprint'])}.")
    if len(contenders) > 1:
        runner_up = contenders[1]
        held = {c.backend: [v for v in verdicts if v.backend == c.backend and v.reader == c.reader
                            and not v.error] for c in (best, runner_up)}
        paired = paired_difference(held[runner_up.backend], held[best.backend],
                         lambda v: None if v.evidence is None else v.evidence == 1.0)
        verdict = ("significant" if paired["p_value"] < 0.05 else "not significant at this n")
        text += (f" Next is <b>{escape(runner_up.backend)}</b> "
                 f"({_rate(runner_up.evidence_retention)}); on {paired['pairs']} paired probes "
                 f"the difference in probes with every fact held is {verdict} "
                 f"(exact McNemar p = {paired['p_value']:.3g}).")
    oracle = next((c for c in cells if is_oracle(c.backend) and c.answer_retention), None)
    if oracle and oracle.answer_retention:
        text += (f" Handed exactly the facts (the oracle), the reader answers "
                 f"{oracle.answer_retention.value:.2f}: its own ceiling.")
    return f'<p id="headline">{text}</p>\n'


def _curves(cells: list[CellScores]) -> str:
    charts = []
    for c in cells:
        if c.control or is_oracle(c.backend):  # neither can forget: no curve to read
            continue
        series, ticks = [], {}
        for what in ("evidence", "answer"):
            curve = getattr(c.retention_curve.sessions, what)
            pts, ivs = [], []
            for b in curve.bins:
                mid = (b.low + b.high) / 2
                ticks[mid] = str(b.low) if b.low == b.high else f"{b.low}–{b.high}"
                pts.append((mid, b.value))
                ivs.append(b.ci95)
            h = curve.half_life
            name = f"{what} (half-life {h:g})" if h else what
            series.append(Series(name, pts, ivs, dashed=what == "answer"))
        charts.append(line_chart(f"Retention vs distance: {chart_name(c, cells)}", series,
                                 "sessions between planting and probe", "retention", (0.0, 1.0),
                                 sorted(ticks.items())))
    return '<div class="charts">' + "".join(charts) + "</div>"


def _cost(cells: list[CellScores]) -> str:
    points = [(chart_name(c, cells), c.tokens.reader_input.mean or 0.0,
               c.answer_retention.value if c.answer_retention else 0.0) for c in cells]
    return scatter("Cost against retention (dashed: Pareto frontier)", points,
                   "reader input tokens per probe", "answer retention", pareto(points))


def _leakage(cells: list[CellScores]) -> str:
    rows = [(chart_name(c, cells), v.value, *v.ci95) for c in cells
            if (v := c.leakage.violation_rate)]
    memo = [(c.reader, m.value, *m.ci95) for c in cells
            if c.control and (m := c.leakage.memorization)]
    parts = [bars("Leakage and isolation violations", rows, "share of leakage/isolation probes")]
    if memo:
        parts.append(bars("Memorization (no-memory control)", memo,
                          "share of probes answered with no memory"))
    return '<div class="charts">' + "".join(parts) + "</div>"


def _footprint(cells: list[CellScores]) -> str:
    series = []
    for i, c in enumerate(cells):
        by_scenario: dict[str, list[tuple[float, float]]] = {}
        for scenario, _, tokens, size in c.memory.footprint_series:
            by_scenario.setdefault(scenario, []).append((float(tokens), float(size)))
        # one line per scenario (each is its own timeline), one colour per backend
        series += [Series(c.backend, sorted(pts), colour=i) for pts in by_scenario.values()]
    return line_chart("Footprint over time (one line per scenario)", series,
                      "conversation tokens observed", "footprint bytes")


def _ess(cells: list[CellScores]) -> str:
    """Mean ESS (over layers and heads) where it was taken, and its correlation at the probe
    with a correct answer; empty when the run did not measure ESS."""
    rows = []
    for c in cells:
        for metric, block in (c.ess or {}).items():
            where = [f'<td>{p.mean or 0:.2f} <span class="muted">n={p.n}</span></td>'
                     if (p := block.places.get(w)) else "<td>–</td>"
                     for w in ("session_boundary", "fact", "probe")]
            r = block.probe_vs_correct_r
            rows.append(f'<tr><td class="l">{escape(c.label)}</td><td class="l">{escape(metric)}'
                        f'</td>{"".join(where)}<td>{"–" if r is None else f"{r:+.2f}"}</td></tr>')
    if not rows:
        return ""
    return ("<h2>Effective state size</h2><table id=\"ess\"><thead><tr><th class=\"l\">"
            "backend · reader</th><th class=\"l\">metric</th><th>session boundaries</th>"
            "<th>after planted facts</th><th>at the probe</th><th>r with a correct answer</th>"
            "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _verdict(r: ProbeRecord, v: ProbeVerdict) -> str:
    if v.error:
        return f'<span class="bad">error ({escape(r.error_stage or "")})</span>'
    if v.violation is not None:
        return '<span class="bad">violation</span>' if v.violation else '<span class="ok">no leak</span>'
    if v.correct is None:
        return '<span class="muted">–</span>'
    return '<span class="ok">correct</span>' if v.correct else '<span class="bad">wrong</span>'


def _recalled(text: str, needles: list[str], blocks: dict[str, str]) -> str:
    """A probe's recalled text: short ones highlighted here; long ones as ids of blocks stored
    once in the page (a keep-everything backend recalls nearly the same history at every
    probe), joined and highlighted by the page's script when the probe is opened."""
    if len(text) < INLINE_CHARS:
        return f"<pre>{highlight(text, needles) or '(nothing)'}</pre>"
    ids = []
    for block in split_blocks(text):
        ids.append(block_id(block))
        blocks[ids[-1]] = block
    return (f'<pre data-blocks="{" ".join(ids)}" data-needles="{escape(json.dumps(needles))}">'
            "</pre>")


def _blocks_script(blocks: dict[str, str]) -> str:
    # JSON in a script element, with no "<" at all: no text can end it or open a comment
    payload = json.dumps(blocks, ensure_ascii=False).replace("<", "\\u003c")
    return f'<script type="application/json" id="blocks">{payload}</script>'


def _probe_rows(records: list[ProbeRecord], verdicts: dict[RecordKey, ProbeVerdict],
                blocks: dict[str, str]) -> str:
    rows = []
    for r in records:
        v = verdicts[r.key]
        share = v.evidence
        needles = [a for f in r.expected for a in f.answers] + [t.text for t in r.evidence] + \
            r.forbidden
        details = "".join([
            f"<div><b>Question</b>: {escape(r.question)}</div>",
            f"<div><b>Expected</b>: {escape(' + '.join(' / '.join(g) for g in r.accepted)) or '–'}"
            + (f"; <b>rejected</b>: {escape(', '.join(r.rejected))}" if r.rejected else "")
            + (f"; <b>forbidden</b>: {escape(', '.join(r.forbidden))}" if r.forbidden else "")
            + "</div>",
            f"<div><b>Recalled</b> ({r.recall_tokens} tokens):</div>",
            _recalled(r.recall_text, needles, blocks),
            f"<div><b>Answer</b>: {escape(r.answer or '')}</div>",
            "".join(f"<div><b>Judge {escape(j.judge)}</b>: {escape(j.reply)}</div>"
                    for j in r.judges),
            "<div><b>Memorized</b>: the reader answers this with no memory</div>" if v.memorized
            else "",
            f'<div class="bad"><b>Error</b>: {escape(r.error)}</div>' if r.error else "",
        ])
        rows.append(
            f'<tr data-backend="{escape(r.backend)}" data-ok="{int(v.ok)}">'
            f'<td class="l">{escape(r.scenario)}</td><td class="l">{escape(r.backend)}</td>'
            f'<td class="l">{escape(r.kind)}</td>'
            f'<td class="l"><details><summary>{escape(r.probe)}'
            f'{f" (epoch {r.epoch})" if r.epoch else ""}: {escape(r.question)}</summary>'
            f"{details}</details></td>"
            f'<td>{"–" if share is None else f"{share:.2f}"}</td><td class="l">{_verdict(r, v)}</td>'
            "</tr>")
    return "".join(rows)


def _kappa(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _judges(cells: list[CellScores]) -> str:
    """Each judge per cell: whether it can be trusted under its prompt set (the false-accept
    audit), its agreement and kappa with the deterministic verdict; and between judges."""
    trust = {True: '<span class="ok">yes</span>', False: '<span class="bad">no</span>'}
    rows = [f'<tr><td class="l">{escape(c.label)}</td><td class="l">{escape(j.judge)}</td>'
            f'<td class="l">{escape(j.prompts)}</td><td>{_rate(j.false_accept_rate)}</td>'
            f'<td class="l">{trust[j.trusted]}</td><td>{_rate(j.agreement)}</td>'
            f"<td>{_kappa(j.kappa)}</td><td>{j.unreadable}</td></tr>"
            for c in cells for j in c.judges]
    if not rows:
        return ""
    between = "".join(
        f"<li>{escape(c.label)}: {', '.join(escape(j) for j in a.judges)} all agree on "
        f"{_rate(a.all_agree)}; Cohen's kappa {_kappa(a.cohen_kappa)}, Fleiss' kappa "
        f"{_kappa(a.fleiss_kappa)} (n={a.n})</li>"
        for c in cells if (a := c.judge_agreement) is not None)
    return ('<h2>Judges</h2><p class="muted">A judge is trusted when it accepts at most 10% of '
            "memeval's built-in answers known to be wrong, asked under its prompt set. Agreement "
            "and kappa are against the deterministic verdict.</p>"
            '<table id="judges"><thead><tr><th class="l">cell</th><th class="l">judge</th>'
            '<th class="l">prompts</th><th>false-accept</th><th class="l">trusted</th>'
            "<th>agreement</th><th>kappa</th><th>unreadable</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>"
            + (f"<p>Between judges:</p><ul>{between}</ul>" if between else "") + "\n")


def _epochs(cells: list[CellScores]) -> str:
    """The headline figures of each cell run over several epochs: each epoch's value, the
    mean, the spread and a t interval of the mean."""
    rows = [f'<tr><td class="l">{escape(c.label)}</td><td class="l">{escape(name)}</td>'
            f'<td>{", ".join(f"{v:.2f}" for v in stat.values)}</td><td>{stat.mean:.2f}</td>'
            f'<td>{"–" if stat.std is None else f"{stat.std:.2f}"}</td>'
            f"<td>{stat.min:.2f}–{stat.max:.2f}</td>"
            f'<td>{"–" if stat.ci95 is None else f"[{stat.ci95[0]:.2f}, {stat.ci95[1]:.2f}]"}</td></tr>'
            for c in cells if c.epochs for name, path in HEADLINE_FIGURES
            if (stat := c.epochs.figures.get(path)) is not None]
    if not rows:
        return ""
    return ('<h2>Across epochs</h2><p class="muted">Each cell run once per epoch, under its own '
            "seed: the figure in each epoch, their mean, sample standard deviation, range and "
            "95% Student-t interval of the mean (the spread a single run does not show).</p>"
            '<table id="epochs"><thead><tr><th class="l">cell</th><th class="l">figure</th>'
            "<th>per epoch</th><th>mean</th><th>sd</th><th>range</th><th>95% CI</th></tr></thead>"
            "<tbody>" + "".join(rows) + "</tbody></table>\n")


def _store_audit(cells: list[CellScores]) -> str:
    """What each backend that lists its memories held at its session ends, and at the last."""
    rows = [f'<tr><td class="l">{escape(c.label)}</td><td>{a.audits}</td>'
            f"<td>{_rate(a.extraction_recall)}</td><td>{_rate(a.stale_rate)}</td>"
            f"<td>{a.stored}</td><td>{a.missing}</td><td>{a.stale}</td>"
            f"<td>{_rate(a.final.extraction_recall)}</td><td>{_rate(a.final.stale_rate)}</td></tr>"
            for c in cells if (a := c.store_audit) is not None]
    if not rows:
        return ""
    return ('<h2>Store audit</h2><p class="muted">At each session end, every fact planted for '
            "the user so far is stored (an accepted answer is in a memory the backend lists), "
            "missing, or stale (superseded, its old value held while the latest is not). "
            "Extraction recall: share of checks of current facts that are stored; stale rate: "
            "share of checks of superseded facts that are stale; final: at each user's last "
            "session end.</p>"
            '<table id="store-audit"><thead><tr><th class="l">cell</th><th>session ends</th>'
            "<th>extraction recall</th><th>stale rate</th><th>stored</th><th>missing</th>"
            "<th>stale</th><th>final recall</th><th>final stale</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>\n")


def _partial(manifest: Manifest, records: list[ProbeRecord]) -> str:
    """A warning when the run recorded fewer probes than it planned (it was stopped)."""
    planned = (sum(s.probes for s in manifest.scenarios) * len(manifest.backends)
               * manifest.config.epochs)
    recorded = len({r.key for r in records})
    if recorded >= planned:
        return ""
    return (f'<p class="note" id="partial"><b>Partial run</b>: {recorded:,} of {planned:,} '
            "probes recorded; every figure here covers only those. Continue it with "
            f"<code>memeval run … --out {escape(str(manifest.config.out or 'RUN_DIR'))} "
            "--resume</code>.</p>\n")


def render_report(manifest: Manifest, records: list[ProbeRecord], scores: Scores) -> str:
    """The report as one HTML string: nothing is loaded from anywhere else."""
    cells = scores.cells
    blocks: dict[str, str] = {}
    backends = sorted({r.backend for r in records})
    options = "".join(f'<option value="{escape(b)}">{escape(b)}</option>' for b in backends)
    notes = "".join(f'<p class="note">Judge {escape(j.judge)} on {escape(c.label)}: '
                    f'{escape(j.note)}</p>' for c in cells for j in c.judges if not j.trusted)
    scenarios = ", ".join(escape(s.id) for s in manifest.scenarios)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>memeval report · {escape(manifest.reader)}</title><style>{STYLE}</style></head>
<body>
<h1>memeval report</h1>
<p>Reader <b>{escape(manifest.reader)}</b> · scenarios {scenarios} · seed {manifest.config.seed}
 · created {escape(manifest.created)} · memeval {escape(manifest.memeval_version)}</p>
{_partial(manifest, records)}{headline(cells, scores.verdicts)}<h2>Summary</h2>
{_summary(cells)}
<p class="muted">Rates: value [95% Wilson interval] n. Memory and tokens are per probe unless
said otherwise.</p>{notes}
{_epochs(cells)}{_judges(cells)}{_store_audit(cells)}<h2>Retention against distance</h2>
{_curves(cells)}
<h2>Cost against retention</h2>
<div class="charts">{_cost(cells)}{_footprint(cells)}</div>
<h2>Leakage</h2>
{_leakage(cells)}
{_ess(cells)}
{pareto_chart(cells)}
<h2>Probes</h2>
<div class="filters"><input id="f-text" type="search" placeholder="filter text">
<select id="f-backend"><option value="">all backends</option>{options}</select>
<label><input id="f-failed" type="checkbox"> only failures</label><span id="f-count"></span></div>
<table id="probes"><thead><tr><th class="l">scenario</th><th class="l">backend</th>
<th class="l">kind</th><th class="l">probe</th><th>evidence</th><th class="l">verdict</th></tr></thead>
<tbody>{_probe_rows(records, scores.verdict_map(), blocks)}</tbody></table>
{_blocks_script(blocks)}
<script>{SCRIPT}</script>
</body></html>
"""


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the run's report (default RUN_DIR/report.html) and return its path."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    records = sorted(read_records(run_dir), key=lambda r: (r.scenario, r.backend, r.probe, r.epoch))
    scores = read_scores(run_dir)
    path = Path(out) if out else run_dir / REPORT
    path.write_text(render_report(manifest, records, scores), encoding="utf-8")
    return path

