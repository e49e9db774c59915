"""The one place verdicts are decided: per record, at score time, from measurements alone."""

from __future__ import annotations

from collections.abc import Sequence

from memeval.records import ProbeRecord
from memeval.scoring.judge import read_verdict
from memeval.scoring.model import ProbeVerdict
from memeval.scoring.retention import answer_correct, control_correct, evidence_share, violates


def probe_verdicts(records: Sequence[ProbeRecord]) -> list[ProbeVerdict]:
    """A verdict per record, in the records' order.

    `memorized` joins each record to the no-memory control's record of the same
    scenario, reader and probe: the control's verdict, whatever order the cells ran in.
    """
    control = {(r.scenario, r.reader, r.probe): control_correct(r) for r in records if r.control}
    verdicts = []
    for r in records:
        failed = r.error is not None
        judged = r.judge is not None and not r.judge.error and not failed
        verdicts.append(ProbeVerdict(
            scenario=r.scenario, backend=r.backend, reader=r.reader, probe=r.probe, kind=r.kind,
            error=failed,
            evidence=None if failed else evidence_share(r),
            correct=None if failed else answer_correct(r),
            violation=None if failed else violates(r),
            memorized=None if r.control else control.get((r.scenario, r.reader, r.probe)),
            judge_correct=read_verdict(r.judge.reply) if judged and r.judge else None))
    return verdicts
