"""The `memeval` command line: run, validate, score, schema.

One module on purpose: every command, the results table and the two progress displays
(a live bar in a terminal, plain lines elsewhere) are the presentation layer, the top
floor, and share one console; what they show is computed below them.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from memeval.errors import MemevalError, Problem, ScenarioError
from memeval.records import RunConfig
from memeval.report.html import fmt_bytes
from memeval.scoring.epochs import HEADLINE_FIGURES
from memeval.scoring.model import Rate, Scores, rate_text

if TYPE_CHECKING:
    from rich.progress import Progress

    from memeval.runner.execute import ProgressHook

app = typer.Typer(
    help="Evaluate an AI agent's memory: retention, token cost, memory cost and leakage.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(width=None if sys.stdout.isatty() else 132)
err = Console(stderr=True)


# A file in the wrong format (an import gone astray) has a problem per turn, tens of
# thousands; the first few say what is wrong, and the rest would bury them.
PROBLEMS_PER_FILE = 50


def problem_lines(problems: Iterable[Problem], limit: int | None, see_all: str) -> Iterator[str]:
    """Each file's problems, the first `limit` of them (all for None), then how many more.

    `see_all` says how to see them all; `{file}` in it is the file.
    """
    by_file: dict[str, list[Problem]] = {}
    for problem in problems:
        by_file.setdefault(problem.file, []).append(problem)
    for file, found in by_file.items():
        yield from map(str, found[:limit])
        if limit is not None and len(found) > limit:
            yield (f"... and {len(found) - limit:,} more problems in {file} (fix these first, "
                   f"or see them all with {see_all.format(file=file)})")


def _fail(exc: MemevalError) -> typer.Exit:
    if isinstance(exc, ScenarioError) and exc.problems:
        lines: Iterable[str] = problem_lines(exc.problems, PROBLEMS_PER_FILE,
                                             "`memeval validate --all {file}`")
    else:
        lines = str(exc).splitlines() or ["error"]
    for line in lines:  # escaped: a problem may quote `[tomato]`, which is no markup
        err.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
    return typer.Exit(2)


def _help(option: str) -> str:
    """An option's help, from its one definition in RunConfig."""
    return RunConfig.model_fields[option].description or option


def results_table(scores: Scores, title: str) -> Table:
    """One row per backend (and reader): the figures that separate memory strategies."""
    readers = sorted({c.reader for c in scores.cells})
    if len(readers) == 1:  # the reader goes in the title, leaving room for the figures
        title += f" · reader {readers[0]}"
    table = Table(title=title, title_justify="left", caption_justify="left", caption=(
        "rates: value over its 95% Wilson interval. memory score: answer retention on the probes the "
        "oracle answers with this reader. abstain: says \"I don't know\" when it should. "
        "The control is the reader with no memory."))
    columns = ["backend", *(["reader"] if len(readers) > 1 else []), "probes", "evidence\nret.",
               "answer\nret.", "memory\nscore", "abstain", "tok/\nprobe", "recall\np50",
               "footprint", "leaks", "errors"]
    for name in columns:
        text = name in {"backend", "reader"}
        table.add_column(name, justify="left" if text else "right", overflow="fold",
                         no_wrap=not text, min_width=12 if text else None)

    def two_lines(stat: Rate | None) -> str:  # value over interval: narrow columns
        return "–" if stat is None else f"{stat.value:.2f}\n{stat.ci95[0]:.2f}–{stat.ci95[1]:.2f}"

    for cell in scores.cells:
        recall_p50 = cell.latency_s.recall.p50
        peak = cell.footprint.peak_bytes
        table.add_row(
            cell.backend + (" (control)" if cell.control else ""),
            *([cell.reader] if len(readers) > 1 else []), str(cell.probes),
            two_lines(cell.evidence_retention), two_lines(cell.answer_retention),
            two_lines(cell.answer_retention_reader_normalized), two_lines(cell.abstention),
            f"{cell.tokens.recalled.mean or 0:.0f}",
            "–" if recall_p50 is None else f"{recall_p50 * 1000:.1f} ms",
            fmt_bytes(peak) if peak else "0 B",
            two_lines(cell.leakage.violation_rate), str(cell.errors),
        )
    return table


PROGRESS_EVERY = "MEMEVAL_PROGRESS_EVERY"


def duration_text(seconds: float) -> str:
    """45s, 2m13s, 1h05m: a duration as short as a progress line wants it."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def progress_every() -> float:
    """The seconds between plain progress lines, from $MEMEVAL_PROGRESS_EVERY (default 30)."""
    text = os.environ.get(PROGRESS_EVERY, "30")
    try:
        every = float(text)
    except ValueError:
        every = math.nan
    if not every >= 0:  # also refuses nan
        raise MemevalError(f"{PROGRESS_EVERY}={text!r} is not a number of seconds (e.g. 30; "
                           "0 prints every update)")
    return every


class PlainProgress:
    """Progress as plain lines, for a log, a pipe or CI, where a live bar shows nothing until
    the run ends: a line as each cell starts (on Ray, as its records come back), at most one
    every `every` seconds in between, and one when the run is done.

    It is the run's progress hook, and a context manager around the run that writes the last
    line only if the run finished.
    """

    def __init__(self, out: Console, total: int, every: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.out, self.total, self.every, self.clock = out, total, every, clock
        self.cell = ""
        self.done = 0
        self.done_before = 0  # recorded by an earlier run: no part of this run's rate
        self.started = clock()
        self.printed_at = -math.inf

    def __call__(self, cell: str, advance: int) -> None:
        now = self.clock()
        if cell in ("starting", "resuming"):  # the first call, with what is already recorded
            self.done_before = advance
        self.done += advance
        if cell:
            self.cell = cell
        if cell or now - self.printed_at >= self.every:
            self.print(f"{self.cell}: {self.done}/{self.total} probes{self.pace(now)}", now)

    def pace(self, now: float) -> str:
        """`, 2.1 probes/s, ETA 2m13s`, once this run has answered a probe."""
        asked, elapsed = self.done - self.done_before, now - self.started
        if asked <= 0 or elapsed <= 0:
            return ""
        rate = asked / elapsed
        # a large model answers a probe in many seconds: "0.0 probes/s" would say nothing
        speed = f"{rate:.1f} probes/s" if rate >= 1 else f"{1 / rate:.1f} s/probe"
        left = self.total - self.done
        return f", {speed}" + (f", ETA {duration_text(left / rate)}" if left > 0 else "")

    def print(self, text: str, now: float) -> None:
        # no markup: a scenario id or a backend's options may hold [brackets]
        self.out.print(f"[memeval] {text}", markup=False, highlight=False, soft_wrap=True)
        self.printed_at = now

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            now = self.clock()
            self.print(f"done: {self.done}/{self.total} probes in "
                       f"{duration_text(now - self.started)}{self.pace(now)}", now)


def live_bar(total: int) -> tuple[ProgressHook, Progress]:
    """rich's live progress bar, for a terminal, and the hook that moves it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                        transient=False)
    task = progress.add_task("starting", total=total)

    def hook(cell: str, advance: int) -> None:
        if cell:
            progress.update(task, description=cell)
        progress.advance(task, advance)

    return hook, progress


def print_notes(scores: Scores) -> None:
    """What the table cannot say: memorization, a judge that is not to be trusted, the
    spread across epochs, and the store audit."""
    seen: set[str] = set()
    for cell in scores.cells:
        spread = cell.epochs
        if spread:
            shown = [f"{name} {spread.figures[path]}" for name, path in HEADLINE_FIGURES
                     if path in spread.figures]
            console.print(f"{cell.label}, {spread.n} epochs: " + "; ".join(shown), highlight=False)
        audit = cell.store_audit
        if audit:
            console.print(f"store audit of {escape(cell.label)}: extraction recall "
                          f"{rate_text(audit.extraction_recall)}, stale rate "
                          f"{rate_text(audit.stale_rate)} over {audit.audits} session ends "
                          f"({audit.stored} stored, {audit.missing} missing, {audit.stale} "
                          f"stale); at the end {rate_text(audit.final.extraction_recall)}, "
                          f"stale {rate_text(audit.final.stale_rate)}", highlight=False)
        memo = cell.leakage.memorization
        if memo and cell.reader not in seen:
            seen.add(cell.reader)
            console.print(f"memorization ({cell.reader}, no-memory control): "
                          f"{rate_text(memo)} of probes answered with no memory at all")
        for judge in cell.judges:
            kappa = "–" if judge.kappa is None else f"{judge.kappa:.2f}"
            verdict = (f"[green]{escape(judge.note)}[/green]" if judge.trusted
                       else f"[red]{escape(judge.note)}[/red]")
            console.print(f"judge {escape(judge.judge)} on {escape(cell.backend)}: agreement "
                          f"{rate_text(judge.agreement)}, kappa {kappa}, false-accept "
                          f"{rate_text(judge.false_accept_rate)} — {verdict}", highlight=False)
        between = cell.judge_agreement
        if between:
            kappas = ", ".join(f"{name} {value:.2f}" for name, value in (
                ("Cohen's kappa", between.cohen_kappa), ("Fleiss' kappa", between.fleiss_kappa))
                if value is not None) or "kappa undefined"
            console.print(f"judges on {escape(cell.backend)}: {', '.join(map(escape, between.judges))} "
                          f"all agree on {rate_text(between.all_agree)}; {kappas} (n={between.n})",
                          highlight=False)


@app.command()
def run(
    paths: Annotated[list[Path], typer.Argument(help="Scenario files or folders.")],
    backend: Annotated[list[str] | None, typer.Option(
        "--backend", "-b", help=_help("backends") + " Repeatable; default: full_context, "
        "no_memory, oracle.")] = None,
    reader: Annotated[str, typer.Option("--reader", "-r", help=_help("reader"))] = "embedded",
    out: Annotated[Path | None, typer.Option("--out", "-o", help=_help("out"))] = None,
    seed: Annotated[int, typer.Option(help=_help("seed"))] = 0,
    epochs: Annotated[int, typer.Option(min=1, help=_help("epochs"))] = 1,
    limit: Annotated[int | None, typer.Option(help=_help("limit"))] = None,
    resume: Annotated[bool, typer.Option(help=_help("resume"))] = False,
    cache: Annotated[bool, typer.Option(help=_help("cache"))] = True,
    max_concurrency: Annotated[int, typer.Option(min=1, help=_help("max_concurrency"))] = 1,
    retries: Annotated[int, typer.Option(min=0, help=_help("retries"))] = 3,
    control: Annotated[bool, typer.Option(help=_help("control"))] = True,
    prices: Annotated[Path | None, typer.Option(help=_help("prices"))] = None,
    ess: Annotated[bool, typer.Option(help=_help("ess"))] = False,
    judge: Annotated[list[str] | None, typer.Option(help=_help("judge") + " Repeatable.")
                     ] = None,
    judge_prompts: Annotated[str | None, typer.Option(
        metavar="NAME|FILE", help=_help("judge_prompts"))] = None,
    report: Annotated[bool, typer.Option(help=_help("report"))] = True,
    parity: Annotated[list[str] | None, typer.Option(help=_help("parity") + " Repeatable.")] = None,
    retrieval_k: Annotated[str, typer.Option(help=_help("retrieval_k"))] = "1,3,5,10",
    executor: Annotated[str, typer.Option(help=_help("executor"))] = "local",
    max_error_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help=_help("max_error_rate"))
                              ] = 0.0,
) -> None:
    """Replay scenarios into each backend, ask every probe, score, and print the table."""
    options = dict(locals())  # first: every parameter is a RunConfig field (checked by a test)
    from memeval.api import execute_plan, make_config
    from memeval.runner import plan_run

    options.pop("paths")
    options["backends"] = options.pop("backend") or list(RunConfig().backends)
    options["parity"] = options["parity"] or []
    plan = None
    try:
        config = make_config(options)
        # read before the scenarios load, so that a bad value fails at once
        every = None if console.is_terminal else progress_every()
        with console.status("loading scenarios and adapters…"):
            plan = plan_run(paths, config)
        shown: AbstractContextManager[object]
        if every is None:
            hook, shown = live_bar(plan.total)
        else:
            hook = shown = PlainProgress(console, plan.total, every)
        with shown:
            result = execute_plan(plan, sys.argv, progress=hook)
    except KeyboardInterrupt:
        where = f" --out {plan.out}" if plan else ""
        err.print(f"interrupted: records so far are kept; continue with "
                  f"`memeval run ...{where} --resume`")
        raise typer.Exit(130) from None
    except MemevalError as exc:
        raise _fail(exc) from None
    console.print(results_table(result.scored, f"memeval run · {result.run_dir}"))
    print_notes(result.scored)
    console.print(f"records, scores and manifest in [bold]{result.run_dir}[/bold]"
                  + (f"; open {result.run_dir / 'report.html'}" if report else ""))
    failed = sum(c.errors for c in result.cells)
    asked = sum(c.probes for c in result.cells)
    if failed and failed > max_error_rate * asked:
        err.print(f"[red]error:[/red] {failed} of {asked} probes failed (see `error` in "
                  f"records.jsonl; --resume asks them again; --max-error-rate {max_error_rate} "
                  "allows this share)", highlight=False)
        raise typer.Exit(1)


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Scenario files or folders.")],
    all_problems: Annotated[bool, typer.Option(
        "--all", help=f"Print every problem, not only the first {PROBLEMS_PER_FILE} of each "
        "file.")] = False,
) -> None:
    """Check scenarios; print `file:line:col: problem (fix)` for each mistake."""
    from memeval.scenario import validate_paths

    try:
        files, problems = validate_paths(paths)
    except ScenarioError as exc:
        raise _fail(exc) from None
    if files == 0:
        raise _fail(MemevalError(f"no scenario files (.yaml, .yml) in {', '.join(map(str, paths))}"))
    for line in problem_lines(problems, None if all_problems else PROBLEMS_PER_FILE, "--all"):
        print(line)
    if problems:
        err.print(f"{len(problems):,} problem(s) in {files} file(s)")
        raise typer.Exit(1)
    err.print(f"{files} scenario file(s) OK")


def _retrieval_k(text: str) -> list[int]:
    from pydantic import ValidationError

    try:
        return RunConfig(retrieval_k=text).retrieval_k  # its validator reads the text
    except ValidationError as exc:
        raise MemevalError(f"--retrieval-k {text}: {exc.errors()[0]['msg']}") from None


@app.command()
def score(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    prices: Annotated[Path | None, typer.Option(
        help="Price table (YAML/JSON); kept in the run directory for later re-scoring.")] = None,
    parity: Annotated[list[str] | None, typer.Option(
        help="Benchmark-parity scorers (default: those the run was given).")] = None,
    retrieval_k: Annotated[str | None, typer.Option(
        help="The k of the retrieval metrics, e.g. 1,3,5,10 (default: the run's).")] = None,
    judge_prompts: Annotated[str | None, typer.Option(
        metavar="NAME|FILE", help="Read the judges' replies with this prompt set's verdict "
        "parser; it must ask what the run's set asked (default: the run's set).")] = None,
) -> None:
    """Recompute scores.json from records.jsonl alone (no model is called)."""
    from memeval.records import (
        PRICES,
        SCORES,
        read_judge_checks,
        read_manifest,
        read_records,
        write_json_atomic,
    )
    from memeval.scoring.model import dump_scores
    from memeval.scoring.prices import load_prices, read_prices
    from memeval.scoring.prompts import scoring_prompts
    from memeval.scoring.scores import compute_scores

    try:
        manifest = read_manifest(run_dir)
        records = read_records(run_dir)
        if not records:
            raise MemevalError(f"{run_dir}: no records to score")
        table = load_prices(prices) if prices else read_prices(run_dir)
        ks = manifest.config.retrieval_k if retrieval_k is None else _retrieval_k(retrieval_k)
        if judge_prompts is not None and not manifest.judges:
            raise MemevalError(f"--judge-prompts {judge_prompts}: {run_dir} was run with no "
                               "judge, so there are no replies to read")
        prompts = scoring_prompts(run_dir, judge_prompts)
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
                            parity if parity is not None else manifest.config.parity, ks, prompts)
    write_json_atomic(run_dir / SCORES, dump_scores(scores))
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
    from memeval.report.compare import mde_text

    try:
        result = compare_runs(run_a, run_b)
    except MemevalError as exc:
        raise _fail(exc) from None
    table = Table(title=f"memeval compare · A {run_a} · B {run_b}", title_justify="left",
                  caption="paired by scenario, probe and epoch; McNemar exact p on discordant "
                  "pairs; MDE: the smallest difference these pairs detect at 80% power, "
                  "two-sided 5% (– without discordant pairs)", caption_justify="left")
    for name in ("backend A", "backend B", "retention", "pairs", "A", "B", "B − A",
                 "only A", "only B", "p", "MDE"):
        table.add_column(name, justify="left" if name.startswith("backend") else "right")
    for row in result["rows"]:
        for what in ("answer", "evidence"):
            m = row[what]
            if m["pairs"]:
                table.add_row(row["backend_a"], row["backend_b"], what, str(m["pairs"]),
                              f"{m['a']:.3f}", f"{m['b']:.3f}", f"{m['difference']:+.3f}",
                              str(m["only_a"]), str(m["only_b"]), f"{m['p_value']:.4f}",
                              mde_text(m["mde80"]))
    console.print(table)
    if result["epochs_a"] > 1 or result["epochs_b"] > 1:
        console.print(f"epochs: A {result['epochs_a']}, B {result['epochs_b']}; each pair is one "
                      "probe in one epoch")
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
