from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


@pytest.fixture(autouse=True, scope="session")
def _shared_call_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One call cache for the session; the packaged model folder stays where the user keeps it."""
    os.environ.setdefault("MEMEVAL_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
