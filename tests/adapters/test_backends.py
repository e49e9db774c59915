"""The reference backends, driven directly through the contract."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from memeval.adapters.backends.full_context import FullContext
from memeval.adapters.backends.no_memory import NoMemory
from memeval.adapters.backends.oracle import Oracle
from memeval.protocols import CellContext, Footprint, Query, Turn
from memeval.scenario import load_scenario
from memeval.scenario.timeline import build_timeline

from ..conftest import SCENARIOS


def turn(i: int, text: str, user: str = "alice") -> Turn:
    return Turn(id=f"t{i}", session_id=f"s{i}", user=user, role="user", text=text,
                time=datetime(2025, 1, 1, 9, i))


def context(tmp_path: Path, budget: int = 10_000, truth=None) -> CellContext:
    return CellContext(count_tokens=lambda s: len(s.split()), context_tokens=budget,
                       workdir=tmp_path, ground_truth=truth)


def test_full_context_drops_the_oldest_turns_over_budget(tmp_path: Path) -> None:
    backend = FullContext()
    backend.bind(context(tmp_path, budget=25))
    for i in range(5):
        backend.observe(turn(i, f"turn number {i} says five words"))
    recall = backend.recall(Query(text="?", user="alice"))
    # a turn costs its line (7 words), a date header (2) and 2 separators: 11; two fit in 25
    assert [item.turn_id for item in recall.items] == ["t3", "t4"]
    assert recall.text.splitlines() == ["[2025-01-01 09:03]", "user: turn number 3 says five words",
                                        "[2025-01-01 09:04]", "user: turn number 4 says five words"]
    assert backend.footprint().items == 5


def test_full_context_keeps_users_apart_and_reset_forgets(tmp_path: Path) -> None:
    backend = FullContext()
    backend.bind(context(tmp_path))
    backend.observe(turn(0, "alice's secret is Quorble", "alice"))
    backend.observe(turn(1, "bob likes tea", "bob"))
    assert "Quorble" not in backend.recall(Query(text="secret?", user="bob")).text
    assert "Quorble" in backend.recall(Query(text="secret?", user="alice")).text
    assert backend.footprint() == Footprint(items=2, bytes=len("alice's secret is Quorble")
                                            + len("bob likes tea"))
    backend.reset("alice")
    assert backend.recall(Query(text="secret?", user="alice")).text == ""
    assert "tea" in backend.recall(Query(text="?", user="bob")).text
    assert backend.footprint() == Footprint(items=1, bytes=len("bob likes tea"))


def test_no_memory_recalls_nothing(tmp_path: Path) -> None:
    backend = NoMemory()
    backend.observe(turn(0, "remember Quorble"))
    assert backend.recall(Query(text="?", user="alice")).text == ""
    assert backend.footprint().bytes == 0


def test_oracle_recalls_exactly_the_planting_turns(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "quick" / "pets-and-moves.yaml")
    backend = Oracle()
    backend.bind(context(tmp_path, truth=scenario))
    for user in scenario.users:
        backend.reset(user)
    for event in build_timeline(scenario):
        for t in getattr(event, "turns", ()):
            backend.observe(t)
    recall = backend.recall(Query(text="Which city do I live in now?", user="alice",
                                  probe_id="where_now"))
    assert [i.turn_id for i in recall.items] == ["s3.t0"]
    assert "Porto" in recall.text and "Lisbon" not in recall.text
    assert backend.recall(Query(text="cat?", user="alice", probe_id="cat")).text == ""
