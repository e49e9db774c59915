"""The driver: it runs a plan's cells on an executor and is the one writer of records.jsonl.

Executors: local (one cell after another in this process; each record is
appended as its cell yields it) and Ray (each cell a task; its records are
appended when it is done). Records are made durable in groups (per cell, and
at least every second), so a killed run loses at most the group in flight, and
`--resume` asks only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from memeval.cache import CallCache
from memeval.errors import MemevalError
from memeval.records import (
    MANIFEST,
    PRICES,
    SCORES,
    ProbeRecord,
    RecordWriter,
    RunLock,
    read_manifest,
    read_records,
    rewrite_records,
    write_json_atomic,
)
from memeval.runner.cell import iter_cell
from memeval.runner.cluster import run_on_ray
from memeval.runner.extras import check_judges, judge_service
from memeval.runner.memory import few_collections
from memeval.runner.plan import RunPlan
from memeval.runner.service import CallPolicy, TokenCounter
from memeval.scoring.model import Scores, dump_scores
from memeval.scoring.prices import read_prices
from memeval.scoring.scores import compute_scores, scoring_view

ProgressHook = Callable[[str, int], None]


def execute(plan: RunPlan, command: list[str] | None = None,
            progress: ProgressHook | None = None) -> Scores:
    """Run every cell of `plan`, writing records, manifest and scores; return the scores."""
    with RunLock(plan.out), few_collections():
        return _execute(plan, command, progress)


def _execute(plan: RunPlan, command: list[str] | None, progress: ProgressHook | None) -> Scores:
    config, out = plan.config, plan.out
    manifest = plan.manifest(command or [])
    kept: list[ProbeRecord] = []
    if (out / MANIFEST).exists():
        if not config.resume:
            raise MemevalError(f"{out} already holds a run; pass --resume to continue it "
                               "or choose a new --out")
        old = read_manifest(out)
        if old.fingerprint() != manifest.fingerprint():
            raise MemevalError(f"{out} was made with a different configuration (scenarios, "
                               "backends, reader, seed, limit or epochs); use a new --out")
        ok = [r for r in read_records(out, repair=True) if r.error is None]
        kept = list({r.key: r for r in ok}.values())
        rewrite_records(out, kept)  # failed probes are asked again
        manifest = manifest.model_copy(update={
            "created": old.created,
            "resumed": [*old.resumed, datetime.now(UTC).isoformat(timespec="seconds")]})
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / MANIFEST, manifest.model_dump(mode="json"))
    if plan.prices is not None:
        write_json_atomic(out / PRICES, plan.prices.model_dump())
    prices = plan.prices or read_prices(out)
    cells = plan.cells({r.key for r in kept})
    if progress:
        progress("resuming" if kept else "starting", plan.total - sum(len(c.probes) for c in cells))
    cache = CallCache() if config.cache else None
    policy = CallPolicy(max_concurrency=config.max_concurrency, retries=config.retries)
    checks = (check_judges([(j.label, judge_service(j.reader, plan.judge_prompts, cache, policy))
                            for j in plan.judges], plan.judge_prompts, out)
              if plan.judges else None)
    records = [scoring_view(r, config.parity, config.retrieval_k) for r in kept]  # scored from memory
    writer = RecordWriter(out)
    try:
        if plan.ray is None:  # local: one cell after another, each record written as it comes
            count = TokenCounter(plan.reader.reader)
            for cell in cells:
                if progress:
                    progress(cell.name, 0)
                for record in iter_cell(cell, plan.runtime(cell, cache, count)):
                    writer.write(record)
                    records.append(scoring_view(record, config.parity, config.retrieval_k))
                    if progress:
                        progress("", 1)
                writer.commit()
        else:  # each cell a Ray task: its records written together when it is done
            for cell, done in run_on_ray(cells, plan.ray, cache.path if cache else None):
                writer.write_many(done)
                writer.commit()
                records += [scoring_view(r, config.parity, config.retrieval_k) for r in done]
                if progress:
                    progress(cell.name, len(done))
    finally:
        writer.close()
    scores = compute_scores(records, manifest.backends, prices, checks, config.parity,
                            config.retrieval_k, plan.judge_prompts)
    write_json_atomic(out / SCORES, dump_scores(scores))
    return scores
