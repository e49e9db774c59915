from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"


@pytest.fixture(autouse=True, scope="session")
def _shared_call_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One call cache for the session; the packaged model folder stays where the user keeps it."""
    os.environ.setdefault("MEMEVAL_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """GPU tests run on a CUDA machine (the device tool); elsewhere they are skipped, and say so."""
    if any("gpu" in item.keywords for item in items) and not _has_cuda():
        skip = pytest.mark.skip(reason="needs a CUDA GPU: run on the device tool")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def gemma() -> Any:
    """The packaged Gemma reader, loaded once for the whole session: tests that need the real
    model share it (marker `model`)."""
    from memeval.adapters.readers.embedded import EmbeddedReader

    return EmbeddedReader()
