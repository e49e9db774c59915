"""scores.json: one entry per (backend, reader), and a verdict per record, from the records alone."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from memeval.records import JudgeCheck, ProbeRecord, RecordKey
from memeval.scenario.schema import ProbeKind
from memeval.scoring.audit import store_audit_scores, trim_audit
from memeval.scoring.curve import retention_curve
from memeval.scoring.epochs import epoch_scores
from memeval.scoring.judge import judge_scores, judges_agreement
from memeval.scoring.model import CellScores, ProbeVerdict, Scores
from memeval.scoring.parity import RETRIEVAL_K, parity_scores
from memeval.scoring.prices import PriceTable
from memeval.scoring.prompts import MEMEVAL, PromptSet
from memeval.scoring.retention import EvidenceItems, control_correct, evidence_items
from memeval.scoring.retrieval import DEFAULT_K, retrieval_scores, scoring_items
from memeval.scoring.stats import DIGITS, pearson, rate, summary
from memeval.scoring.verbatim import VERBATIM_WORDS
from memeval.scoring.verdicts import probe_verdicts

_GPU_STATS = ("gpu_peak_allocated_bytes", "gpu_peak_reserved_bytes", "kv_cache_bytes")


def per_probe(values: Iterable[tuple[ProbeVerdict, float | bool | None]]) -> list[float]:
    """Each probe's mean over the epochs it has a value in, in the order probes first come.

    The probe is the unit of a rate, not the (probe, epoch): repeating a run narrows no
    interval. With one epoch this is the list of values itself.
    """
    groups: dict[tuple[str, str, str, str], list[float]] = {}
    for v, value in values:
        if value is not None:
            groups.setdefault((v.scenario, v.backend, v.reader, v.probe), []).append(float(value))
    return [vs[0] if len(vs) == 1 else sum(vs) / len(vs) for vs in groups.values()]


def _retention(verdicts: list[ProbeVerdict]) -> dict[str, Any]:
    evidence = per_probe((v, v.evidence) for v in verdicts)
    answers = per_probe((v, v.correct) for v in verdicts)
    return {"evidence_retention": rate(evidence), "answer_retention": rate(answers)}


def _by_scenario(records: list[ProbeRecord]) -> dict[tuple[str, int], list[ProbeRecord]]:
    """Records by timeline: each scenario's replay in each epoch is its own."""
    groups: dict[tuple[str, int], list[ProbeRecord]] = defaultdict(list)
    for r in records:
        groups[(r.scenario, r.epoch)].append(r)
    return groups


def _memory(ok: list[ProbeRecord]) -> dict[str, Any]:
    """Memory usage M = max over the timeline of each kind of memory held, and efficiency =
    processed tokens / M, summed over scenarios (each is its own timeline)."""
    kinds: dict[str, Any] = {
        "footprint": lambda r: r.footprint.bytes if r.footprint else 0,
        "peak_rss": lambda r: r.peak_rss_bytes,
        **{k.removesuffix("_bytes"): (lambda r, k=k: int(r.reader_stats.get(k, 0)))
           for k in _GPU_STATS},
    }
    usage: dict[str, int] = {}
    efficiency: dict[str, float | None] = {}
    groups = _by_scenario(ok).values()
    first = min((r.epoch for r in ok), default=0)
    processed = sum(max(r.tokens_observed for r in rs) for rs in groups)
    for name, held in kinds.items():
        per_scenario = [max(held(r) for r in rs) for rs in groups]
        usage[name] = max(per_scenario, default=0)
        total = sum(per_scenario)
        efficiency[name] = round(processed / total, DIGITS) if total else None
    return {"usage_bytes": usage, "processed_tokens": processed,
            "efficiency_tokens_per_byte": efficiency,
            # one timeline per scenario: the first epoch's (epochs replay the same turns)
            "footprint_series": [[r.scenario, r.probe, r.tokens_observed, r.footprint.bytes]
                                 for r in ok if r.footprint is not None and r.epoch == first]}


def _tokens(ok: list[ProbeRecord], prices: PriceTable | None) -> dict[str, Any]:
    # backend usage is cumulative within a scenario: take each scenario's last value
    last = [max(rs, key=lambda r: r.backend_usage.input_tokens + r.backend_usage.output_tokens)
            for rs in _by_scenario(ok).values()]
    backend_in = sum(r.backend_usage.input_tokens for r in last)
    backend_out = sum(r.backend_usage.output_tokens for r in last)
    tokens: dict[str, Any] = {
        "recalled": summary([r.recall_tokens for r in ok]),
        "reader_input": summary([r.usage.input_tokens for r in ok]),
        "reader_output": summary([r.usage.output_tokens for r in ok]),
        "backend_input": backend_in,
        "backend_output": backend_out,
    }
    if prices is not None and ok:
        # cached answers cost nothing now, but the figure is what the run's answers cost
        fresh_in = sum(r.usage.input_tokens for r in ok)
        fresh_out = sum(r.usage.output_tokens for r in ok)
        reader = prices.cost(ok[0].reader, fresh_in, fresh_out)
        backend = prices.cost(ok[0].backend, backend_in, backend_out, fallback=ok[0].reader)
        if not backend_in and not backend_out:
            backend = 0.0
        total = None if reader is None or backend is None else reader + backend
        tokens["cost"] = {
            "currency": prices.currency,
            "reader": None if reader is None else round(reader, DIGITS),
            "backend": None if backend is None else round(backend, DIGITS),
            "total": None if total is None else round(total, DIGITS),
            "per_probe": None if total is None else round(total / len(ok), DIGITS),
        }
    return tokens


def _canary(ok: list[ProbeRecord]) -> dict[str, Any] | None:
    def exposure(candidates: int, rank: int) -> float:
        return math.log2(candidates) - math.log2(rank)

    rows = [(c, r) for r in ok for c in r.canary]
    if not rows:
        return None
    with_memory = [exposure(c.candidates, c.rank_with_memory) for c, _ in rows]
    without = [exposure(c.candidates, c.rank_without_memory) for c, _ in rows]
    return {"n": len(rows),
            "exposure_with_memory": round(sum(with_memory) / len(rows), DIGITS),
            "exposure_without_memory": round(sum(without) / len(rows), DIGITS),
            "max_exposure_bits": round(max(math.log2(c.candidates) for c, _ in rows), DIGITS)}


def _ess(ok: list[ProbeRecord], verdicts: dict[RecordKey, ProbeVerdict]
         ) -> dict[str, Any] | None:
    """Mean ESS (over layers and heads) by where it was taken, and at the probe against
    whether the probe was answered."""
    points = [(p, r) for r in ok for p in r.ess]
    if not points:
        return None

    def mean(table: list[list[float]]) -> float:
        flat = [v for row in table for v in row]
        return sum(flat) / len(flat)

    out: dict[str, Any] = {}
    for metric in sorted(points[0][0].values):
        by_where: dict[str, list[float]] = defaultdict(list)
        at_probe: list[tuple[float, float]] = []
        for p, r in points:
            where = p.label.split(":")[0]
            by_where[where].append(mean(p.values[metric]))
            correct = verdicts[r.key].correct
            if where == "probe" and correct is not None:
                at_probe.append((mean(p.values[metric]), float(correct)))
        out[metric] = {
            "places": {where: summary(values) for where, values in sorted(by_where.items())},
            "probe_vs_correct_r": pearson(at_probe),
        }
    return out


def _kv(ok: list[ProbeRecord], verdicts: dict[RecordKey, ProbeVerdict]
        ) -> dict[str, Any] | None:
    """Mean KV-cache bytes held at the answer per prompt (a batched call's bytes over its batch
    size) and compression ratio against the full cache (1 for a reader without a KV policy),
    beside answer retention, overall and per probe kind."""
    held = [r for r in ok if r.reader_stats.get("kv_cache_bytes")]
    if not held:
        return None

    def block(rs: list[ProbeRecord]) -> dict[str, Any]:
        def mean(key: str, default: float = 0.0, per_prompt: bool = True) -> float:
            values = [r.reader_stats.get(key, default)
                      / (r.reader_stats.get("batch_size", 1) or 1 if per_prompt else 1) for r in rs]
            return round(sum(values) / len(values), DIGITS)

        correct = [float(c) for r in rs if (c := verdicts[r.key].correct) is not None]
        return {"n": len(rs), "bytes": mean("kv_cache_bytes"),
                "formula_bytes": mean("kv_cache_bytes_formula"),
                "compression_ratio": mean("kv_compression_ratio", 1.0, per_prompt=False),
                "answer_retention": rate(correct)}

    kinds: dict[str, list[ProbeRecord]] = defaultdict(list)
    for r in held:
        kinds[verdicts[r.key].kind].append(r)
    return {**block(held), "by_kind": {kind: block(rs) for kind, rs in sorted(kinds.items())}}


def score_cell(records: list[ProbeRecord], verdicts: dict[RecordKey, ProbeVerdict],
               found: dict[RecordKey, EvidenceItems],
               prices: PriceTable | None = None, memorization: dict[str, Any] | None = None,
               judge_checks: list[JudgeCheck] | None = None,
               parity: list[str] | None = None,
               retrieval_k: Sequence[int] | None = None,
               judge_prompts: PromptSet | None = None) -> CellScores:
    """Scores of one (backend, reader) cell over all its scenarios (`judge_prompts`: the set
    the judges were asked with, whose parser reads their replies to the known-wrong answers)."""
    ok = [r for r in records if r.error is None]
    judged = [verdicts[r.key] for r in ok]
    by_kind: dict[str, list[ProbeVerdict]] = defaultdict(list)
    for v in judged:
        by_kind[v.kind].append(v)
    violations = per_probe((v, v.violation) for v in judged)
    answered = [r for r in ok if r.answer is not None]
    observe = [s for r in ok for s in r.observe_s]
    # abstention is scored on its own: a reader that refuses everything would otherwise
    # lift every row alike, the no-memory control's included
    answerable = [v for v in judged if v.kind != ProbeKind.abstention]
    memory_only = [v for v in answerable if not v.memorized]
    within_reach = [v for v in answerable if v.oracle_correct]
    return CellScores.model_validate({
        "backend": records[0].backend,
        "reader": records[0].reader,
        "control": records[0].control,
        "probes": len(records),
        "errors": len(records) - len(ok),
        "scenarios": sorted({r.scenario for r in records}),
        **_retention(answerable),
        "answer_retention_memory_only": _retention(memory_only)["answer_retention"],
        "answer_retention_reader_normalized": _retention(within_reach)["answer_retention"],
        "abstention": _retention([v for v in judged if v.kind == ProbeKind.abstention]
                                 )["answer_retention"],
        # probes, not (probe, epoch)s: memorized in any epoch
        "memorized_probes": len({(v.scenario, v.probe) for v in judged if v.memorized}),
        "by_kind": {kind: _retention(vs) for kind, vs in sorted(by_kind.items())},
        "retention_curve": retention_curve(ok, found),
        "leakage": {
            "violation_rate": rate(violations),
            "memorization": memorization,
            "verbatim_words": VERBATIM_WORDS,
            "verbatim_rate": rate([float(r.copied_span >= VERBATIM_WORDS) for r in answered]),
            "canary": _canary(ok),
        },
        "tokens": _tokens(ok, prices),
        "latency_s": {
            "observe": summary(observe),
            "recall": summary([r.recall_s for r in ok if r.recall_s is not None]),
            "answer": summary([r.answer_s for r in ok if r.answer_s is not None and not r.cached]),
            "deferred": summary(deferred := [r.deferred_s for r in ok if r.deferred_s is not None]),
            "observe_per_turn": round((sum(observe) + sum(deferred)) / len(observe), 9)
            if observe else None,
        },
        "memory": _memory(ok),
        "footprint": {
            "peak_bytes": max((r.footprint.bytes for r in ok if r.footprint), default=0),
            "peak_items": max((r.footprint.items for r in ok if r.footprint), default=0),
        },
        "peak_rss_bytes": max((r.peak_rss_bytes for r in ok), default=0),
        "ess": _ess(ok, verdicts),
        "kv": _kv(ok, verdicts),
        **_judges(ok, judged, judge_checks, judge_prompts or MEMEVAL),
        "parity": parity_scores(ok, parity) if parity else None,
        "retrieval": retrieval_scores(ok, retrieval_k),
        "store_audit": store_audit_scores(ok),
    })


def _judges(ok: list[ProbeRecord], verdicts: list[ProbeVerdict], checks: list[JudgeCheck] | None,
            prompts: PromptSet) -> dict[str, Any]:
    judges = judge_scores(ok, verdicts, checks, prompts)
    return {"judge": judges[0] if judges else None, "judges": judges,
            "judge_agreement": judges_agreement(ok, verdicts)}


def memorization_ratio(control: list[ProbeRecord]) -> dict[str, Any] | None:
    """Share of probes with an answer to give that the no-memory control answers correctly."""
    verdicts = [(r, c) for r in control if (c := control_correct(r)) is not None]
    groups: dict[tuple[str, str], list[float]] = {}
    for r, c in verdicts:  # each probe's share over its epochs
        groups.setdefault((r.scenario, r.probe), []).append(float(c))
    found = rate([vs[0] if len(vs) == 1 else sum(vs) / len(vs) for vs in groups.values()])
    if found is None:
        return None
    return {**found, "probes": sorted({f"{r.scenario}/{r.probe}" for r, c in verdicts if c})}


def scoring_view(record: ProbeRecord, parity: list[str] | None = None,
                 retrieval_k: Sequence[int] | None = None) -> ProbeRecord:
    """`record` less what scoring does not read, for a driver that holds a long run's records
    in memory: of the recalled items (thousands of objects a probe for a keep-everything
    backend), the retrieval metrics read only a short ranked prefix, and no text; of a store
    audit's listing, only the memories that hold a planted fact's answer."""
    update: dict[str, Any] = {}
    if record.recall_items:
        k_max = max([*(retrieval_k or DEFAULT_K), *(RETRIEVAL_K if parity else ())])
        update["recall_items"] = scoring_items(record, k_max)
    if record.audits:
        update["audits"] = [trim_audit(a) for a in record.audits]
    return record.model_copy(update=update) if update else record


def compute_scores(records: list[ProbeRecord], backends: list[str] | None = None,
                   prices: PriceTable | None = None,
                   judge_checks: list[JudgeCheck] | None = None,
                   parity: list[str] | None = None,
                   retrieval_k: Sequence[int] | None = None,
                   judge_prompts: PromptSet | None = None) -> Scores:
    """Every score and verdict of a run, independent of the order of the records.

    `judge_prompts` is the prompt set the run's judges were asked with (default memeval's):
    its verdict parser reads their replies.

    Cells follow `backends` (the order the run was given them), then by name.
    """
    rank = {name: i for i, name in enumerate(backends or [])}
    ordered = sorted(records, key=lambda r: (rank.get(r.backend, len(rank)), r.key))
    found = {r.key: evidence_items(r) for r in ordered if r.error is None}  # the costly part
    verdicts = probe_verdicts(ordered, found, judge_prompts or MEMEVAL)
    by_key = {r.key: v for r, v in zip(ordered, verdicts, strict=True)}
    cells: dict[tuple[str, str], list[ProbeRecord]] = {}
    for r in ordered:
        cells.setdefault((r.backend, r.reader), []).append(r)
    controls = {reader: memorization_ratio(rs)
                for (_, reader), rs in cells.items() if rs[0].control}

    def score(rs: list[ProbeRecord], memorization: dict[str, Any] | None) -> CellScores:
        return score_cell(rs, by_key, found, prices, memorization, judge_checks, parity,
                          retrieval_k, judge_prompts)

    scored = []
    for (_, reader), rs in cells.items():
        cell = score(rs, controls.get(reader))
        epochs = _epochs(rs)
        if len(epochs) > 1:  # each epoch scored alone, against its own epoch of the control
            control = [r for (_, other), xs in cells.items() if other == reader and xs[0].control
                       for r in xs]
            cell = cell.model_copy(update={"epochs": epoch_scores({
                e: score(epochs[e], memorization_ratio([r for r in control if r.epoch == e]))
                for e in sorted(epochs)})})
        scored.append(cell)
    return Scores(cells=scored, verdicts=verdicts)


def _epochs(records: list[ProbeRecord]) -> dict[int, list[ProbeRecord]]:
    groups: dict[int, list[ProbeRecord]] = defaultdict(list)
    for r in records:
        groups[r.epoch].append(r)
    return groups
