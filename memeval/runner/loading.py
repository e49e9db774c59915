"""Scenarios as a run holds them: loaded once, unrolled into a timeline, named by hash."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memeval.errors import MemevalError
from memeval.runner.memory import few_collections
from memeval.scenario.schema import FillerSpec, Probe, Scenario
from memeval.scenario.timeline import Event, build_timeline, iter_timeline, probe_order
from memeval.scenario.validate import load_scenario, scenario_files


@dataclass
class LoadedScenario:
    scenario: Scenario
    path: str | None
    sha256: str

    @property
    def probes(self) -> list[Probe]:
        """In the order they are asked (no filler is generated to find it)."""
        return probe_order(self.scenario)

    @property
    def timeline(self) -> Iterable[Event]:
        """Sessions (filler generated) and probes in order. Made once for the cells that
        replay this scenario in this process, unless it is long: then generated afresh for
        each, so that memory stays flat however long the history."""
        if sum(e.filler.tokens for e in self.scenario.sessions
               if isinstance(e, FillerSpec)) > SHARED_FILLER_TOKENS:
            return iter_timeline(self.scenario)
        return _timeline(self.sha256, self.scenario)


def scenario_sha256(scenario: Scenario) -> str:
    """The hash a scenario is known by in records, manifests and cells."""
    return hashlib.sha256(scenario.model_dump_json().encode()).hexdigest()


def load_scenarios(scenarios: Iterable[str | Path | Scenario]) -> list[LoadedScenario]:
    """Accept paths (files or folders) and Scenario objects; ids must be unique."""
    loaded: list[LoadedScenario] = []
    with few_collections():  # a long scenario is a million small objects
        for item in scenarios:
            if isinstance(item, Scenario):
                loaded.append(LoadedScenario(item, None, scenario_sha256(item)))
                continue
            for file in scenario_files([item]):
                s = load_scenario(file)
                loaded.append(LoadedScenario(s, str(file), scenario_sha256(s)))
    if not loaded:
        raise MemevalError("no scenarios given (pass .yaml files or folders that hold them)")
    seen: dict[str, str | None] = {}
    for ls in loaded:
        if ls.scenario.id in seen:
            raise MemevalError(f"scenario id '{ls.scenario.id}' is used twice "
                               f"({seen[ls.scenario.id]} and {ls.path}); ids must be unique")
        seen[ls.scenario.id] = ls.path
    return loaded


def from_content(content: dict[str, Any], sha256: str, path: str | None) -> LoadedScenario:
    """A scenario sent by content (in a cell), checked against the hash it was sent with."""
    scenario = Scenario.model_validate(content)
    found = scenario_sha256(scenario)
    if found != sha256:
        raise MemevalError(f"scenario '{scenario.id}' does not match its hash "
                           f"({found[:12]} ≠ {sha256[:12]}); the cell was altered in transit")
    return LoadedScenario(scenario, path, sha256)


#: Filler beyond this many tokens is generated anew for each cell rather than kept (a
#: million tokens of timeline hold ~110 MB).
SHARED_FILLER_TOKENS = 1_000_000
_TIMELINES: dict[str, list[Event]] = {}
_KEEP = 4  # cells run scenario by scenario: the few most recent are enough


def _timeline(sha256: str, scenario: Scenario) -> list[Event]:
    # filler generation is the costly part of a timeline: the cells of one scenario share it
    if sha256 not in _TIMELINES:
        if len(_TIMELINES) >= _KEEP:
            _TIMELINES.pop(next(iter(_TIMELINES)))
        _TIMELINES[sha256] = build_timeline(scenario)
    return _TIMELINES[sha256]
