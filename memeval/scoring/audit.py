"""The store audit: which planted facts a backend held at each session end, from its listing.

For a backend that lists its memories (`MemoryBackend.memories`), each record carries the
listings of the session ends since the previous probe (`ProbeRecord.audits`). Every fact
planted for the audited user so far is checked once per session end:

- stored: one of its accepted answers occurs in a stored memory (the matcher of evidence
  retention, on normalized text);
- stale: a fact planted later updates it (`supersedes`), the latest value of that chain of
  updates is not stored, and this, the superseded value, is;
- missing: otherwise.

Extraction recall is the share of checks of current facts (no fact planted so far updates
them) that are stored: a backend that rightly drops a superseded value is not marked down
for it. Stale rate is the share of checks of superseded facts that are stale.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from memeval.match import contains_any, normalize
from memeval.records import ProbeRecord, StoreAudit
from memeval.scoring.stats import rate

Status = Literal["stored", "missing", "stale"]


@dataclass(frozen=True)
class FactCheck:
    """One planted fact at one session end.

    Attributes:
        fact: The fact's id.
        status: stored, missing or stale.
        current: No fact planted so far supersedes it.
    """

    fact: str
    status: Status
    current: bool


def audit_checks(audit: StoreAudit) -> list[FactCheck]:
    """Every fact of `audit` as stored, missing or stale, in the audit's order of facts."""
    held = [normalize(m) for m in audit.memories]  # once: a listing can be long
    stored = {f.id: any(contains_any(m, f.answers, normalized=True) for m in held)
              for f in audit.facts}
    newer: dict[str, list[str]] = defaultdict(list)
    for f in audit.facts:
        if f.supersedes in stored:
            newer[f.supersedes].append(f.id)
    return [FactCheck(f.id, _status(f.id, stored, newer), current=not newer.get(f.id))
            for f in audit.facts]


def _latest(fid: str, newer: dict[str, list[str]]) -> set[str]:
    """The facts that end the chains of updates of `fid` planted so far."""
    ends: set[str] = set()
    todo, seen = list(newer.get(fid, ())), {fid}
    while todo:
        x = todo.pop()
        if x in seen:  # validation rejects cycles; a hand-edited record should not hang
            continue
        seen.add(x)
        if newer.get(x):
            todo.extend(newer[x])
        else:
            ends.add(x)
    return ends


def _status(fid: str, stored: dict[str, bool], newer: dict[str, list[str]]) -> Status:
    if newer.get(fid) and stored[fid] and not any(stored[x] for x in _latest(fid, newer)):
        return "stale"
    return "stored" if stored[fid] else "missing"


def trim_audit(audit: StoreAudit) -> StoreAudit:
    """`audit` with only the memories that hold some fact's answer: the checks are the same
    (each looks for its answers memory by memory), for a driver that keeps records in memory."""
    answers = [a for f in audit.facts for a in f.answers]
    kept = [m for m in audit.memories if contains_any(m, answers)]
    return audit if len(kept) == len(audit.memories) else audit.model_copy(update={"memories": kept})


#: A check's identity across epochs: (scenario, user, session, fact).
_CheckKey = tuple[str, str, str, str]


def _figures(checks: list[tuple[_CheckKey, FactCheck]]) -> dict[str, Any]:
    """Counts over every check; rates with each (fact, session end) the unit, its value the
    mean over the epochs it was checked in (repeating a run narrows no interval)."""
    recall: dict[_CheckKey, list[float]] = defaultdict(list)
    stale: dict[_CheckKey, list[float]] = defaultdict(list)
    for key, c in checks:
        if c.current:
            recall[key].append(float(c.status == "stored"))
        else:
            stale[key].append(float(c.status == "stale"))
    return {"checks": len(checks),
            **{s: sum(c.status == s for _, c in checks) for s in ("stored", "missing", "stale")},
            "extraction_recall": rate([sum(v) / len(v) for v in recall.values()]),
            "stale_rate": rate([sum(v) / len(v) for v in stale.values()])}


def _keyed(found: Iterable[tuple[ProbeRecord, StoreAudit]]) -> list[tuple[_CheckKey, FactCheck]]:
    return [((r.scenario, a.user, a.session, c.fact), c) for r, a in found for c in audit_checks(a)]


def store_audit_scores(records: list[ProbeRecord]) -> dict[str, Any] | None:
    """The `store_audit` block of a cell from its records without errors; None when no session
    end was audited (the backend does not list its memories, or no fact was planted).

    `final` is the same figures at the last session end audited of each user (per scenario
    and epoch): what the backend held when the conversation was over.
    """
    found = [(r, a) for r in records for a in r.audits]
    if not found:
        return None
    last: dict[tuple[str, int, str], tuple[ProbeRecord, StoreAudit]] = {}
    for r, a in found:
        where = (r.scenario, r.epoch, a.user)
        if where not in last or a.session_index > last[where][1].session_index:
            last[where] = (r, a)
    return {"audits": len(found), **_figures(_keyed(found)),
            "final": _figures(_keyed(last.values()))}
