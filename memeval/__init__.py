"""memeval: evaluate an AI agent's memory — retention, token cost, memory cost and leakage.

`import memeval` stays light: models, vector stores and pandas load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memeval.errors import MemevalError, ScenarioError
from memeval.protocols import (
    Answer,
    CellContext,
    Embedder,
    Footprint,
    GivesLogprobs,
    MemoryBackend,
    Query,
    Reader,
    ReadsAttention,
    Recall,
    RecallItem,
    SessionInfo,
    Turn,
    Usage,
)

if TYPE_CHECKING:
    from memeval.api import run
    from memeval.records import RunConfig
    from memeval.results import RunResult
    from memeval.scenario import Scenario, load_scenario

__all__ = [
    "Answer",
    "CellContext",
    "Embedder",
    "Footprint",
    "GivesLogprobs",
    "MemevalError",
    "MemoryBackend",
    "Query",
    "Reader",
    "ReadsAttention",
    "Recall",
    "RecallItem",
    "RunConfig",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "SessionInfo",
    "Turn",
    "Usage",
    "load_scenario",
    "run",
]

_LAZY = {
    "run": "memeval.api",
    "RunConfig": "memeval.records",
    "RunResult": "memeval.results",
    "Scenario": "memeval.scenario",
    "load_scenario": "memeval.scenario",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'memeval' has no attribute {name!r}")
