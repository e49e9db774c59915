"""Replay one scenario into one backend: observe each turn, end each session, recall at
each probe. Every call is timed here, never in the backend."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from memeval.protocols import CellContext, MemoryBackend, Query, RecallItem, SessionInfo
from memeval.records import AuditFact, EvidenceTurn, ExpectedFact, ProbeRecord, StoreAudit
from memeval.runner.loading import LoadedScenario
from memeval.runner.service import error_text
from memeval.scenario.schema import Probe
from memeval.scenario.timeline import TimelineSession, turn_sessions
from memeval.scoring.verbatim import Conversation


def peak_rss() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


@dataclass
class PendingProbe:
    """A probe recalled but not yet answered."""

    record: ProbeRecord
    context: str
    said: Conversation
    said_words: int
    canaries: list[tuple[str, list[str]]] = field(default_factory=list)
    marks: list[tuple[str, int]] = field(default_factory=list)


class CellReplay:
    """One scenario replayed into one backend; yields records without answers."""

    def __init__(self, ls: LoadedScenario, label: str, backend: MemoryBackend, reader_label: str,
                 count: Callable[[str], int], context: CellContext, ess: bool = False):
        self.ls, self.label, self.backend = ls, label, backend
        self.reader_label, self.count = reader_label, count
        self.context = context
        self.said = Conversation()
        self.ess = ess
        self.session_starts: list[str] = []
        self.fact_turns: dict[str, str] = {}
        self.session_of = turn_sessions(ls.scenario)
        self.lists = False  # the backend lists its memories: audit the store at session ends
        self.planted: dict[str, dict[str, AuditFact]] = {}  # user -> facts planted so far
        self.audits: list[StoreAudit] = []  # since the previous probe
        self.audit_settle_s = 0.0  # deferred work finished for the audits since then

    def replay(self, wanted: set[str]) -> Iterable[PendingProbe]:
        s = self.ls.scenario
        backend = self.backend
        broken: str | None = None
        stage = "bind"
        observe_s: list[float] = []
        sessions_seen = tokens_seen = 0
        fact_at: dict[str, tuple[int, int]] = {}
        turn_at: dict[str, tuple[int, int, str]] = {}
        try:
            self.context.workdir.mkdir(parents=True, exist_ok=True)
            backend.bind(self.context)
            stage = "reset"
            for user in s.users:
                backend.reset(user)
            stage = "audit"
            self.lists = backend.memories(s.users[0]) is not None
        except Exception as exc:
            broken = f"{stage}: {error_text(exc)}"
        remaining = set(wanted)
        # only the turns a probe names are remembered: a long history holds millions
        named = {tid for probe in self.ls.probes for tid in probe.evidence}
        for event in self.ls.timeline:
            if not remaining:
                return  # nothing left to ask in this cell: skip the rest of the replay
            if isinstance(event, TimelineSession):
                if broken is None:
                    broken = self._observe(event, observe_s)
                if event.turns:
                    self.session_starts.append(event.turns[0].text)
                for turn in event.turns:
                    self.said.add(turn.text)
                    tokens_seen += self.count(turn.text)
                    if turn.id in named:
                        turn_at[turn.id] = (sessions_seen, tokens_seen, turn.text)
                    for fid in event.plants.get(turn.id, ()):
                        fact_at[fid] = (sessions_seen, tokens_seen)
                        self.fact_turns[fid] = turn.text
                        self._planted(event.info.user, fid)
                if broken is None:
                    broken = self._audit(event.info, sessions_seen)
                sessions_seen += 1
                continue
            probe = event
            audits, settled = self.audits, self.audit_settle_s
            self.audits, self.audit_settle_s = [], 0.0
            if probe.id not in remaining:
                observe_s = []
                continue
            remaining.discard(probe.id)
            record = self._record(probe, fact_at, turn_at, sessions_seen, tokens_seen)
            record.observe_s, observe_s = observe_s, []
            record.audits = audits
            record.tokens_observed = tokens_seen
            said_words = len(self.said.words)
            if broken is not None:
                record.error, record.error_stage = broken, broken.split(":")[0]
                yield PendingProbe(record, "", self.said, said_words)
                continue
            try:
                start = time.perf_counter()
                backend.settle(record.user)
                record.deferred_s = round(time.perf_counter() - start + settled, 6)
                start = time.perf_counter()
                recall = backend.recall(Query(text=probe.question, user=record.user,
                                              time=probe.time, probe_id=probe.id))
                record.recall_s = round(time.perf_counter() - start, 6)
                record.recall_text = recall.text
                record.recall_items = [self._with_session(item) for item in recall.items]
                record.recall_tokens = self.count(recall.text)
                record.footprint = backend.footprint()
                record.backend_usage = backend.model_usage()
            except Exception as exc:
                record.error = error_text(exc)
                record.error_stage = "recall" if record.deferred_s is not None else "observe"
            record.peak_rss_bytes = peak_rss()
            canaries = [(f.id, f.canary.candidates_for(f.answers[0], f"{s.id}:{f.id}"))
                        for fid in dict.fromkeys([*probe.expects, *probe.forbids])
                        if (f := s.fact(fid)).canary is not None]
            marks = self._marks(record.recall_text) if self.ess else []
            yield PendingProbe(record, record.recall_text, self.said, said_words, canaries, marks)

    def _with_session(self, item: RecallItem) -> RecallItem:
        """`item` with the sessions of its turns, for session-level retrieval metrics."""
        if item.session_id is not None or not item.turn_id:
            return item
        sessions = [self.session_of(t.strip()) or "" for t in item.turn_id.split(",")]
        if not any(sessions):
            return item
        return item.model_copy(update={"session_id": ",".join(sessions)})

    def _marks(self, recalled: str) -> list[tuple[str, int]]:
        """Where, in the recalled text, sessions start and planted facts end (for ESS)."""
        marks = [("session_boundary", at) for text in self.session_starts
                 if (at := recalled.find(text)) > 0]
        marks += [(f"fact:{fid}", at + len(text)) for fid, text in self.fact_turns.items()
                  if (at := recalled.find(text)) >= 0]
        return sorted(marks, key=lambda m: m[1])

    def _observe(self, session: TimelineSession, observe_s: list[float]) -> str | None:
        try:
            for turn in session.turns:
                start = time.perf_counter()
                self.backend.observe(turn)
                observe_s.append(round(time.perf_counter() - start, 6))
            self.backend.end_session(session.info)
        except Exception as exc:
            return f"observe: {error_text(exc)}"
        return None

    def _planted(self, user: str, fid: str) -> None:
        fact = self.ls.scenario.fact(fid)
        self.planted.setdefault(user, {})[fid] = AuditFact(
            id=fid, answers=list(fact.answers), supersedes=fact.supersedes)

    def _audit(self, session: SessionInfo, index: int) -> str | None:
        """List what the backend holds for the session's user (the store audit), once a fact
        of theirs has been planted; what went wrong, if anything."""
        planted = self.planted.get(session.user)
        if not self.lists or not planted:
            return None
        try:
            start = time.perf_counter()
            self.backend.settle(session.user)
            # finishing deferred writes is observing: charged to the next probe's deferred_s
            self.audit_settle_s += time.perf_counter() - start
            listed = self.backend.memories(session.user)
            if listed is None:
                raise TypeError("memories() returned None after it had returned a list")
            self.audits.append(StoreAudit(session=session.id, session_index=index,
                                          user=session.user, memories=listed,
                                          facts=list(planted.values())))
        except Exception as exc:
            return f"audit: {error_text(exc)}"
        return None

    def _record(self, probe: Probe, fact_at: dict[str, tuple[int, int]],
                turn_at: dict[str, tuple[int, int, str]], sessions: int, tokens: int
                ) -> ProbeRecord:
        s = self.ls.scenario
        expected = [
            ExpectedFact(id=fid, answers=list(s.fact(fid).answers),
                         sessions_ago=sessions - fact_at[fid][0] - 1,
                         tokens_ago=tokens - fact_at[fid][1])
            for fid in probe.expects
        ]
        evidence = [
            EvidenceTurn(id=tid, text=turn_at[tid][2], sessions_ago=sessions - turn_at[tid][0] - 1,
                         tokens_ago=tokens - turn_at[tid][1], session=self.session_of(tid))
            for tid in probe.evidence
        ]
        return ProbeRecord(
            scenario=s.id, scenario_sha256=self.ls.sha256, backend=self.label,
            reader=self.reader_label, probe=probe.id, kind=probe.kind.value,
            user=probe.user or s.users[0], question=probe.question,
            accepted=s.accepted_answers(probe), expected=expected, evidence=evidence,
            rejected=[a for fid in probe.rejects for a in s.fact(fid).answers],
            forbidden=[a for fid in probe.forbids for a in s.fact(fid).answers],
        )
