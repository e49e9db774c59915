"""Every shipped backend on the quick bundled scenarios, side by side, as a user would compare them."""

from __future__ import annotations

from pathlib import Path

import memeval
from memeval.records import DEFAULT_BACKENDS
from memeval.registry import known_adapters

from .conftest import SCENARIOS

BACKENDS = ["full_context", "no_memory", "oracle", "window", "rag", "bm25", "summary", "hybrid",
            "langchain", "langchain:store=langgraph", "mem0"]


def test_every_backend_is_compared_and_oracle_is_the_upper_bound(tmp_path: Path) -> None:
    shipped = {name for name, target in known_adapters().items() if ".backends." in target}
    assert shipped == {b.split(":")[0] for b in BACKENDS}
    assert set(DEFAULT_BACKENDS) < shipped

    result = memeval.run(SCENARIOS / "quick", backends=BACKENDS, reader="extractive", out=tmp_path / "run")
    cells = {c["backend"]: c for c in result.scores_json["cells"]}
    assert list(cells) == BACKENDS  # the table keeps the order they were given
    evidence = {name: cell["evidence_retention"]["value"] for name, cell in cells.items()}
    assert all(cell["errors"] == 0 for cell in cells.values())
    assert evidence["no_memory"] == 0.0 and evidence["oracle"] == 1.0
    assert all(value <= evidence["oracle"] for value in evidence.values())
    assert all(evidence[name] > 0 for name in BACKENDS if name != "no_memory")
