"""A scenario unrolled into the order the runner replays it: sessions and probes."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from memeval.protocols import SessionInfo, Turn
from memeval.scenario.filler import FillerScreen, generate_filler
from memeval.scenario.schema import FillerSpec, Probe, Scenario, SessionSpec


@dataclass(frozen=True)
class TimelineSession:
    """A session ready to replay; `plants` maps turn ids to the facts they plant."""

    info: SessionInfo
    turns: tuple[Turn, ...]
    plants: dict[str, tuple[str, ...]]
    filler: bool = False


Event = TimelineSession | Probe


def turn_id(session_id: str, index: int, explicit: str | None) -> str:
    """A turn's id: its own `id:`, else `<session id>.t<index>`."""
    return explicit or f"{session_id}.t{index}"


_AUTO_TURN_ID = re.compile(r"(.+)\.t\d+")


def turn_sessions(scenario: Scenario) -> Callable[[str], str | None]:
    """The session of a turn id of this scenario's timeline (None for an id it never uses).

    Explicit ids are looked up; the others are `<session id>.t<index>` (filler included),
    so a long history needs no table of its turns.
    """
    explicit = {t.id: entry.id for entry in scenario.sessions if isinstance(entry, SessionSpec)
                for t in entry.turns if t.id is not None}

    def session_of(tid: str) -> str | None:
        if tid in explicit:
            return explicit[tid]
        auto = _AUTO_TURN_ID.fullmatch(tid)
        return auto.group(1) if auto else None

    return session_of


def planting_turns(scenario: Scenario) -> dict[str, list[str]]:
    """Ids of the turns that plant each fact, in timeline order."""
    out: dict[str, list[str]] = {}
    for entry in scenario.sessions:
        if isinstance(entry, SessionSpec):
            for j, t in enumerate(entry.turns):
                for fid in t.plants:
                    out.setdefault(fid, []).append(turn_id(entry.id, j, t.id))
    return out


def _filler_times(start: datetime | None, end: datetime | None, count: int) -> list[datetime | None]:
    if start is None and end is None:
        return [None] * count
    step = (end - start) / (count + 1) if start is not None and end is not None else timedelta(hours=1)
    if start is None:
        assert end is not None
        return [end - step * (count - k) for k in range(count)]
    return [start + step * (k + 1) for k in range(count)]


def _probes_after(scenario: Scenario) -> dict[int, list[Probe]]:
    """The probes asked after each session entry (by index), in the file's order."""
    entries = scenario.sessions
    index_of = {e.id: i for i, e in enumerate(entries) if isinstance(e, SessionSpec)}
    probes_after: dict[int, list[Probe]] = {}
    for probe in scenario.probes:
        at = index_of[probe.after] if probe.after is not None else len(entries) - 1
        probes_after.setdefault(at, []).append(probe)
    return probes_after


def probe_order(scenario: Scenario) -> list[Probe]:
    """The probes in the order the timeline asks them, without generating any filler."""
    return [p for _, probes in sorted(_probes_after(scenario).items()) for p in probes]


def build_timeline(scenario: Scenario) -> list[Event]:
    """Unroll sessions (filler generated) and place each probe after its session."""
    return list(iter_timeline(scenario))


def iter_timeline(scenario: Scenario) -> Iterator[Event]:
    """`build_timeline` one event at a time: a long history is never held whole."""
    screen = FillerScreen(a for fact in scenario.facts for a in fact.answers)
    default_user = scenario.users[0]
    entries = scenario.sessions
    explicit_times = [e.time if isinstance(e, SessionSpec) else None for e in entries]
    probes_after = _probes_after(scenario)
    for i, entry in enumerate(entries):
        if isinstance(entry, SessionSpec):
            user = entry.user or default_user
            turns = tuple(
                Turn(id=turn_id(entry.id, j, t.id), session_id=entry.id, user=user,
                     role=t.role, text=t.text, time=entry.time)
                for j, t in enumerate(entry.turns)
            )
            plants = {turn.id: tuple(t.plants) for turn, t in zip(turns, entry.turns, strict=True)
                      if t.plants}
            yield TimelineSession(
                SessionInfo(id=entry.id, user=user, time=entry.time, turn_count=len(turns)),
                turns, plants)
        else:
            yield from _filler_sessions(i, entry, explicit_times, screen,
                                        entry.filler.user or default_user)
        yield from probes_after.get(i, [])


def _filler_sessions(index: int, entry: FillerSpec, times: list[datetime | None],
                     screen: FillerScreen, user: str) -> Iterator[TimelineSession]:
    params = entry.filler
    before = next((t for t in reversed(times[:index]) if t is not None), None)
    after = next((t for t in times[index + 1:] if t is not None), None)
    stamps = _filler_times(before, after, params.sessions)
    for k, (turn_texts, stamp) in enumerate(
            zip(generate_filler(params.sessions, params.tokens, params.seed, screen), stamps,
                strict=True)):
        sid = f"filler{index}.{k}"
        turns = tuple(
            Turn(id=f"{sid}.t{j}", session_id=sid, user=user, role=role, text=text, time=stamp)
            for j, (role, text) in enumerate(turn_texts)
        )
        info = SessionInfo(id=sid, user=user, time=stamp, turn_count=len(turns))
        yield TimelineSession(info, turns, {}, filler=True)
