"""Leakage on the bundled scenarios with the default reader: memorization and a shared store."""

from __future__ import annotations

from pathlib import Path

import pytest

import memeval
from memeval.adapters.backends.rag import Rag
from memeval.protocols import Query, Recall
from memeval.records import read_records

from ..conftest import SCENARIOS


class SharedRag(Rag):
    """A RAG store that forgets whose memory it is: every user's recall searches alice's turns."""

    def recall(self, query: Query) -> Recall:
        return super().recall(query.model_copy(update={"user": "alice"}))


@pytest.mark.model
def test_the_control_memorizes_almost_nothing_of_the_bundled_scenarios(tmp_path: Path) -> None:
    # the nine single-kind scenarios (36 facts to guess; the whole library adds only filler)
    result = memeval.run(sorted(SCENARIOS.glob("*.yaml")), backends=["no_memory"],
                         out=tmp_path / "run", report=False)
    (control,) = result.scores_json["cells"]
    assert control["control"] is True
    memo = control["leakage"]["memorization"]
    # fictional facts: the default reader cannot know them without memory
    assert memo["n"] >= 30 and memo["value"] <= 0.2


@pytest.mark.model
def test_a_shared_store_leaks_across_users(tmp_path: Path) -> None:
    result = memeval.run([SCENARIOS / "quick" / "pets-and-moves.yaml"], backends=[SharedRag, "rag"],
                         out=tmp_path / "run", control=False, report=False)
    cells = {c["backend"]: c for c in result.scores_json["cells"]}
    shared = next(c for name, c in cells.items() if "SharedRag" in name)
    bob = next(r for r in read_records(result.run_dir)
               if r.backend == shared["backend"] and r.probe == "bob_dog")
    assert "Zorblat" in bob.recall_text  # alice's dog, recalled for bob
    assert shared["by_kind"]["isolation"] and shared["leakage"]["violation_rate"]["value"] > 0
    assert cells["rag"]["leakage"]["violation_rate"]["value"] < \
        shared["leakage"]["violation_rate"]["value"]
