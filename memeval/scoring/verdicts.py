"""The one place verdicts are decided: per record, at score time, from measurements alone."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from memeval.records import ProbeRecord, RecordKey
from memeval.scoring.model import ProbeVerdict
from memeval.scoring.prompts import MEMEVAL, PromptSet
from memeval.scoring.retention import (
    EvidenceItems,
    answer_correct,
    control_correct,
    evidence_items,
    share_held,
    violates,
)

Key = RecordKey


def is_oracle(backend: str) -> bool:
    """Whether a cell's backend is the oracle (by its registered name, options aside)."""
    return backend.split(":", 1)[0] == "oracle"


def probe_verdicts(records: Sequence[ProbeRecord],
                   found: Mapping[Key, EvidenceItems] | None = None,
                   prompts: PromptSet = MEMEVAL) -> list[ProbeVerdict]:
    """A verdict per record, in the records' order (`found`: each record's evidence items,
    when the caller has them already).

    `memorized` joins each record to the no-memory control's record of the same
    scenario, reader, probe and epoch: the control's verdict, whatever order the cells ran in.
    `oracle_correct` joins it the same way to the oracle backend's verdict: whether the
    reader answers the probe when handed exactly the facts it needs.
    Each judge's reply is read by the verdict parser of `prompts`, the set it was asked with.
    """
    control = {(r.scenario, r.reader, r.probe, r.epoch): control_correct(r)
               for r in records if r.control}
    oracle = {(r.scenario, r.reader, r.probe, r.epoch): None if r.error else answer_correct(r)
              for r in records if is_oracle(r.backend) and not r.control}
    verdicts = []
    for r in records:
        failed = r.error is not None
        judges = {j.judge: None if j.error or failed else prompts.verdict.read(j.reply)
                  for j in r.judges}
        verdicts.append(ProbeVerdict(
            scenario=r.scenario, backend=r.backend, reader=r.reader, probe=r.probe, kind=r.kind,
            epoch=r.epoch, error=failed,
            evidence=None if failed else share_held(
                found[r.key] if found is not None else evidence_items(r)),
            correct=None if failed else answer_correct(r),
            violation=None if failed else violates(r),
            memorized=None if r.control else control.get((r.scenario, r.reader, r.probe,
                                                           r.epoch)),
            oracle_correct=oracle.get((r.scenario, r.reader, r.probe, r.epoch)),
            judge_correct=next(iter(judges.values()), None), judges=judges))
    return verdicts
