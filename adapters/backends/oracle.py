"""The upper bound: recalls exactly the turns that hold what a probe needs."""

from __future__ import annotations

from memeval.adapters.backends import render_turns
from memeval.protocols import CellContext, Footprint, MemoryBackend, Query, Recall, RecallItem, Turn
from memeval.scenario.timeline import planting_turns


class Oracle(MemoryBackend):
    """Reads the scenario's ground truth: the planting turns of a probe's expected
    facts, or its evidence turns. No real memory can recall better."""

    needs_ground_truth = True

    def __init__(self) -> None:
        self._needed: dict[str, list[str]] = {}
        self._turns: dict[str, Turn] = {}

    def bind(self, context: CellContext) -> None:
        scenario = context.ground_truth
        if scenario is None:
            raise ValueError("the oracle needs the scenario's ground truth")
        plants = planting_turns(scenario)
        self._needed = {
            p.id: [tid for fid in p.expects for tid in plants.get(fid, [])] + list(p.evidence)
            for p in scenario.probes
        }

    def reset(self, scope: str) -> None:
        self._turns = {k: t for k, t in self._turns.items() if t.user != scope}

    def observe(self, turn: Turn) -> None:
        self._turns[turn.id] = turn

    def recall(self, query: Query) -> Recall:
        wanted = dict.fromkeys(self._needed.get(query.probe_id, []))
        turns = [self._turns[tid] for tid in wanted if tid in self._turns]
        return Recall(text=render_turns(turns),
                      items=tuple(RecallItem(text=t.text, turn_id=t.id) for t in turns))

    def footprint(self) -> Footprint:
        return Footprint(items=len(self._turns),
                         bytes=sum(len(t.text.encode()) for t in self._turns.values()))
