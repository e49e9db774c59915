"""scores.json: one entry per (backend, reader), computed from the records alone."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from memeval.results import ProbeRecord
from memeval.scoring.retention import answer_correct, evidence_share, violates
from memeval.scoring.stats import rate, summary

SCORES_FORMAT = 1


def _retention(records: list[ProbeRecord]) -> dict[str, Any]:
    evidence = [s for r in records if (s := evidence_share(r)) is not None]
    answers = [float(c) for r in records if (c := answer_correct(r)) is not None]
    return {"evidence_retention": rate(evidence), "answer_retention": rate(answers)}


def _by_scenario(records: list[ProbeRecord]) -> dict[str, list[ProbeRecord]]:
    groups: dict[str, list[ProbeRecord]] = defaultdict(list)
    for r in records:
        groups[r.scenario].append(r)
    return groups


def score_cell(records: list[ProbeRecord]) -> dict[str, Any]:
    """Scores of one (backend, reader) cell over all its scenarios."""
    ok = [r for r in records if r.error is None]
    by_kind: dict[str, list[ProbeRecord]] = defaultdict(list)
    for r in ok:
        by_kind[r.kind].append(r)
    violations = [float(v) for r in ok if (v := violates(r)) is not None]
    footprints = [r.footprint for r in ok if r.footprint is not None]
    observe = [s for r in ok for s in r.observe_s]
    return {
        "backend": records[0].backend,
        "reader": records[0].reader,
        "probes": len(records),
        "errors": len(records) - len(ok),
        "scenarios": sorted({r.scenario for r in records}),
        **_retention(ok),
        "by_kind": {kind: _retention(rs) for kind, rs in sorted(by_kind.items())},
        "leakage": {"violation_rate": rate(violations)},
        "tokens": {
            "recalled": summary([r.recall_tokens for r in ok]),
            "reader_input": summary([r.usage.input_tokens for r in ok]),
            "reader_output": summary([r.usage.output_tokens for r in ok]),
            # backend usage is cumulative within a scenario: take each scenario's last value
            "backend_input": sum(max(r.backend_usage.input_tokens for r in rs)
                                 for rs in _by_scenario(ok).values()),
            "backend_output": sum(max(r.backend_usage.output_tokens for r in rs)
                                  for rs in _by_scenario(ok).values()),
        },
        "latency_s": {
            "observe": summary(observe),
            "recall": summary([r.recall_s for r in ok if r.recall_s is not None]),
            "answer": summary([r.answer_s for r in ok if r.answer_s is not None and not r.cached]),
        },
        "footprint": {
            "peak_bytes": max((f.bytes for f in footprints), default=0),
            "peak_items": max((f.items for f in footprints), default=0),
        },
        "peak_rss_bytes": max((r.peak_rss_bytes for r in ok), default=0),
    }


def compute_scores(records: list[ProbeRecord], backends: list[str] | None = None) -> dict[str, Any]:
    """The whole scores.json payload, independent of the order of the records.

    Cells follow `backends` (the order the run was given them), then by name.
    """
    rank = {name: i for i, name in enumerate(backends or [])}
    cells: dict[tuple[str, str], list[ProbeRecord]] = {}
    for r in sorted(records, key=lambda r: (rank.get(r.backend, len(rank)), r.key)):
        cells.setdefault((r.backend, r.reader), []).append(r)
    return {"format": SCORES_FORMAT, "cells": [score_cell(rs) for rs in cells.values()]}
