"""The `memeval` command line: run, validate, score, schema."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from memeval.errors import MemevalError, ScenarioError
from memeval.report.html import fmt_bytes

app = typer.Typer(
    help="Evaluate an AI agent's memory: retention, token cost, memory cost and leakage.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(width=None if sys.stdout.isatty() else 132)
err = Console(stderr=True)


def _fail(exc: MemevalError) -> typer.Exit:
    for line in str(exc).splitlines() or ["error"]:
        err.print(f"[red]error:[/red] {line}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _fmt_rate(stat: dict[str, Any] | None) -> str:
    if not stat:
        return "–"
    low, high = stat["ci95"]
    return f"{stat['value']:.2f} [{low:.2f}, {high:.2f}]"


def results_table(scores: dict[str, Any], title: str) -> Table:
    """One row per backend and reader: the figures that separate memory strategies."""
    table = Table(title=title, title_justify="left", caption="retention: value [95% Wilson CI]",
                  caption_justify="left")
    for name in ("backend", "reader", "probes", "evidence ret.", "answer ret.", "tok/probe",
                 "recall p50", "footprint", "leaks", "errors"):
        table.add_column(name, justify="left" if name in {"backend", "reader"} else "right",
                         overflow="fold")
    for cell in scores["cells"]:
        recall_p50 = cell["latency_s"]["recall"]["p50"]
        table.add_row(
            cell["backend"], cell["reader"], str(cell["probes"]),
            _fmt_rate(cell["evidence_retention"]), _fmt_rate(cell["answer_retention"]),
            f"{cell['tokens']['recalled']['mean'] or 0:.0f}",
            "–" if recall_p50 is None else f"{recall_p50 * 1000:.1f} ms",
            fmt_bytes(cell["footprint"]["peak_bytes"]) if cell["footprint"]["peak_bytes"] else "0 B",
            _fmt_rate(cell["leakage"]["violation_rate"]), str(cell["errors"]),
        )
    return table


def print_notes(scores: dict[str, Any]) -> None:
    """What the table cannot say: memorization, and a judge that is not to be trusted."""
    seen: set[str] = set()
    for cell in scores["cells"]:
        memo = cell["leakage"]["memorization"]
        if memo and cell["reader"] not in seen:
            seen.add(cell["reader"])
            console.print(f"memorization ({cell['reader']}, no-memory control): "
                          f"{_fmt_rate(memo)} of probes answered with no memory at all")
        judge = cell.get("judge")
        if judge:
            fa = judge["false_accept_rate"]
            console.print(f"judge on {cell['backend']}: agreement {_fmt_rate(judge['agreement'])}, "
                          f"false-accept {_fmt_rate(fa)}"
                          + ("" if judge["trusted"] else f" — [red]not trusted[/red]: {judge['note']}"))


@app.command()
def run(
    paths: Annotated[list[Path], typer.Argument(help="Scenario files or folders.")],
    backend: Annotated[list[str] | None, typer.Option(
        "--backend", "-b", help="Backend NAME[:opt=value,...] or module:Class; repeatable. "
        "Default: full_context, no_memory, oracle.")] = None,
    reader: Annotated[str, typer.Option("--reader", "-r", help="Reader NAME[:opt=value,...] "
                                        "or module:Class.")] = "embedded",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory "
                                             "(default runs/<timestamp>).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for every backend and reader.")] = 0,
    limit: Annotated[int | None, typer.Option(help="Ask at most N probes per scenario.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out.")] = False,
    cache: Annotated[bool, typer.Option(help="Use the persistent call cache.")] = True,
    max_concurrency: Annotated[int, typer.Option(
        min=1, help="Reader requests in flight at once (for remote readers).")] = 1,
    retries: Annotated[int, typer.Option(
        min=0, help="Further attempts after a 429, 5xx, timeout or connection error.")] = 3,
    control: Annotated[bool, typer.Option(
        help="Run the no-memory control, which measures memorization.")] = True,
    prices: Annotated[Path | None, typer.Option(
        help="Price table (YAML/JSON) for token cost in money.")] = None,
    ess: Annotated[bool, typer.Option(
        help="Measure the effective state size of a local reader's attention.")] = False,
    judge: Annotated[str | None, typer.Option(
        help="A reader (as --reader) that gives a second verdict on every answer.")] = None,
    report: Annotated[bool, typer.Option(help="Write report.html beside the records.")] = True,
    parity: Annotated[list[str] | None, typer.Option(
        help="Benchmark-parity scorer, repeatable: token_f1 (LoCoMo), retrieval "
        "(LongMemEval recall@k, NDCG@k).")] = None,
) -> None:
    """Replay scenarios into each backend, ask every probe, score, and print the table."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from memeval.runner import DEFAULT_BACKENDS, CallPolicy, execute, plan_run
    from memeval.scoring.prices import load_prices

    try:
        with console.status("loading scenarios and adapters…"):
            table = load_prices(prices) if prices else None
            plan = plan_run(paths, backend or list(DEFAULT_BACKENDS), reader, out, seed, limit,
                            control, ess, judge, parity or [])
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                            transient=False)
        task = progress.add_task("starting", total=plan.total)

        def hook(cell: str, advance: int) -> None:
            if cell:
                progress.update(task, description=cell)
            progress.advance(task, advance)

        with progress:
            result = execute(plan, resume=resume, cache=cache, command=sys.argv, progress=hook,
                             policy=CallPolicy(max_concurrency=max_concurrency, retries=retries),
                             prices=table, report=report)
    except KeyboardInterrupt:
        err.print(f"interrupted: records so far are kept; continue with "
                  f"`memeval run ... --out {plan.out} --resume`")
        raise typer.Exit(130) from None
    except MemevalError as exc:
        raise _fail(exc) from None
    console.print(results_table(result.scores_json, f"memeval run · {result.run_dir}"))
    print_notes(result.scores_json)
    console.print(f"records, scores and manifest in [bold]{result.run_dir}[/bold]"
                  + (f"; open {result.run_dir / 'report.html'}" if report else ""))


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Scenario files or folders.")],
) -> None:
    """Check scenarios; print `file:line:col: problem (fix)` for every mistake."""
    from memeval.scenario import validate_paths

    try:
        files, problems = validate_paths(paths)
    except ScenarioError as exc:
        raise _fail(exc) from None
    for problem in problems:
        print(problem)
    if problems:
        err.print(f"{len(problems)} problem(s) in {files} file(s)")
        raise typer.Exit(1)
    err.print(f"{files} scenario file(s) OK")


@app.command()
def score(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    prices: Annotated[Path | None, typer.Option(
        help="Price table (YAML/JSON); kept in the run directory for later re-scoring.")] = None,
    parity: Annotated[list[str] | None, typer.Option(
        help="Benchmark-parity scorers (default: those the run was given).")] = None,
) -> None:
    """Recompute scores.json from records.jsonl alone (no model is called)."""
    from memeval.results import (
        PRICES,
        SCORES,
        read_judge_checks,
        read_manifest,
        read_prices,
        read_records,
        write_json_atomic,
    )
    from memeval.scoring.prices import load_prices
    from memeval.scoring.scores import compute_scores

    try:
        manifest = read_manifest(run_dir)
        records = read_records(run_dir)
        if not records:
            raise MemevalError(f"{run_dir}: no records to score")
        table = load_prices(prices) if prices else read_prices(run_dir)
    except MemevalError as exc:
        raise _fail(exc) from None
    if prices and table is not None:
        write_json_atomic(run_dir / PRICES, table.model_dump())
    from memeval.scoring.parity import PARITY

    unknown = [name for name in parity or [] if name not in PARITY]
    if unknown:
        raise _fail(MemevalError(f"unknown parity scorer '{unknown[0]}' (known: "
                                 f"{', '.join(PARITY)})"))
    scores = compute_scores(records, manifest.backends, table, read_judge_checks(run_dir),
                            parity if parity is not None else manifest.parity)
    write_json_atomic(run_dir / SCORES, scores)
    console.print(results_table(scores, f"memeval score · {run_dir}"))
    print_notes(scores)


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file to write "
                                             "(default RUN_DIR/report.html).")] = None,
) -> None:
    """Write one self-contained HTML report of a run (opens offline, from file://)."""
    from memeval.report import write_report

    try:
        path = write_report(run_dir, out)
    except (MemevalError, FileNotFoundError) as exc:
        raise _fail(exc if isinstance(exc, MemevalError) else
                    MemevalError(f"{run_dir}: no scores.json; run `memeval score {run_dir}` "
                                 "first")) from None
    console.print(f"report written to [bold]{path}[/bold]")


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="The first run directory (A).")],
    run_b: Annotated[Path, typer.Argument(help="The second run directory (B).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the comparison "
                                             "as HTML here.")] = None,
) -> None:
    """Paired per-probe comparison of two runs, with McNemar's exact test."""
    from memeval.report import compare_runs, render_comparison

    try:
        result = compare_runs(run_a, run_b)
    except MemevalError as exc:
        raise _fail(exc) from None
    table = Table(title=f"memeval compare · A {run_a} · B {run_b}", title_justify="left",
                  caption="paired by scenario and probe; McNemar exact p on discordant pairs",
                  caption_justify="left")
    for name in ("backend A", "backend B", "retention", "pairs", "A", "B", "B − A",
                 "only A", "only B", "p"):
        table.add_column(name, justify="left" if name.startswith("backend") else "right")
    for row in result["rows"]:
        for what in ("answer", "evidence"):
            m = row[what]
            if m["pairs"]:
                table.add_row(row["backend_a"], row["backend_b"], what, str(m["pairs"]),
                              f"{m['a']:.3f}", f"{m['b']:.3f}", f"{m['difference']:+.3f}",
                              str(m["only_a"]), str(m["only_b"]), f"{m['p_value']:.4f}")
    console.print(table)
    if out:
        out.write_text(render_comparison(result), encoding="utf-8")
        console.print(f"comparison written to [bold]{out}[/bold]")


@app.command("check-backend")
def check_backend(
    spec: Annotated[str, typer.Argument(help="NAME[:opt=value,...] or module.path:Class[:opt=...]")],
) -> None:
    """Drive a backend through the conformance kit and say what breaks the contract."""
    from memeval.registry import build_backend
    from memeval.testing import check_backend as check

    try:
        build_backend(spec)  # fails early, in one line, on a bad name or option
    except MemevalError as exc:
        raise _fail(exc) from None
    report = check(lambda: build_backend(spec)[1])
    report.backend = spec
    print(report)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def generate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Scenario file to write.")],
    facts: Annotated[int, typer.Option(help="Facts to plant.")] = 20,
    sessions: Annotated[int, typer.Option(help="Sessions in all, filler included.")] = 10,
    users: Annotated[int, typer.Option(help="Users (more than one adds isolation probes).")] = 1,
    tokens: Annotated[int, typer.Option(help="About this many conversation tokens.")] = 20_000,
    updates: Annotated[float, typer.Option(help="Share of facts updated later.")] = 0.2,
    sensitive: Annotated[float, typer.Option(help="Share of facts that are secrets.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Same seed, same file.")] = 0,
) -> None:
    """Write a seeded scenario of any size: fictional facts, updates, secrets and filler."""
    from memeval.scenario.generate import write_generated

    try:
        made = write_generated(out, facts=facts, sessions=sessions, users=users, tokens=tokens,
                               updates=updates, sensitive=sensitive, seed=seed)
    except MemevalError as exc:
        raise _fail(exc) from None
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(made["kinds"].items()))
    console.print(f"wrote {out}: {made['facts']} facts, {made['probes']} probes ({kinds})")


import_app = typer.Typer(help="Convert public benchmark files into scenarios.",
                        no_args_is_help=True)
app.add_typer(import_app, name="import")


def _imported(scenarios: Any, out: Path) -> None:
    from memeval.scenario.importers import write_scenarios

    made = write_scenarios(scenarios, out)
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(made["kinds"].items()))
    console.print(f"wrote {made['scenarios']} scenario(s) with {made['probes']} probes "
                  f"({kinds}) to {out}")


@import_app.command("longmemeval")
def import_longmemeval(
    file: Annotated[Path, typer.Argument(help="longmemeval_s.json, _m or _oracle.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the scenarios.")],
) -> None:
    """One scenario per LongMemEval question; `has_answer` turns are its evidence."""
    from memeval.scenario.importers import longmemeval

    try:
        _imported(longmemeval(file), out)
    except (MemevalError, ScenarioError) as exc:
        raise _fail(exc) from None


@import_app.command("locomo")
def import_locomo(
    file: Annotated[Path, typer.Argument(help="locomo10.json.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the scenarios.")],
    adversarial: Annotated[bool, typer.Option(
        help="Include category 5 (adversarial) questions as abstention probes.")] = False,
) -> None:
    """One scenario per LoCoMo conversation; `dia_id` turns are the evidence."""
    from memeval.scenario.importers import locomo

    try:
        _imported(locomo(file, adversarial), out)
    except (MemevalError, ScenarioError) as exc:
        raise _fail(exc) from None


@app.command()
def schema() -> None:
    """Print the JSON Schema of the scenario format (for editors)."""
    from memeval.scenario import json_schema

    print(json.dumps(json_schema(), indent=2))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
