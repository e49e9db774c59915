"""Adapter specs: names, options, module:Class, and third-party entry points."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from memeval.adapters.backends.no_memory import NoMemory
from memeval.errors import MemevalError
from memeval.registry import build_backend, build_reader, known_adapters, parse_options

from .conftest import ROOT


def test_option_values_are_typed() -> None:
    assert parse_options("top_k=8,chunk=session,persist=false,budget=none,t=0.5", "x") == {
        "top_k": 8, "chunk": "session", "persist": False, "budget": None, "t": 0.5}
    with pytest.raises(MemevalError, match="is not key=value"):
        parse_options("top_k", "rag:top_k")


def test_module_class_with_options() -> None:
    label, backend = build_backend("memeval.adapters.backends.window:Window:tokens=64")
    assert label == "memeval.adapters.backends.window:Window:tokens=64"
    assert backend.max_tokens == 64


class TakesAnything(NoMemory):
    def __init__(self, **options: object) -> None:
        self.options = options


def test_secret_options_are_masked_in_labels() -> None:
    # naming the variable that holds a key is fine; a key itself never reaches a label
    assert build_reader("openai:model=m,key_env=MY_KEY")[0] == "openai:model=m,key_env=MY_KEY"
    label, backend = build_backend("tests.test_registry:TakesAnything:api_key=sk-1,max_tokens=5")
    assert label == "tests.test_registry:TakesAnything:api_key=***,max_tokens=5"
    assert backend.options == {"api_key": "sk-1", "max_tokens": 5}


def test_wrong_kind_and_missing_module() -> None:
    with pytest.raises(MemevalError, match="is not a backend"):
        build_backend("extractive")
    with pytest.raises(MemevalError, match="no module named 'nowhere'"):
        build_backend("nowhere:Thing")


def test_a_third_party_entry_point_is_found_by_name(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "thirdparty_memory.py"
    package.write_text("from memeval.adapters.backends.window import Window\n\n"
                       "class Tiny(Window):\n    pass\n")
    dist = tmp_path / "thirdparty_memory-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-memory\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[memeval.adapters]\ntiny = thirdparty_memory:Tiny\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    known_adapters.cache_clear()
    try:
        assert known_adapters()["tiny"] == "thirdparty_memory:Tiny"
        label, backend = build_backend("tiny:tokens=32")
        assert label == "tiny:tokens=32" and type(backend).__name__ == "Tiny"
    finally:
        known_adapters.cache_clear()
        sys.modules.pop("thirdparty_memory", None)


def test_the_built_in_names_are_the_entry_points() -> None:
    """One source of names: the table used without installation metadata is pyproject's."""
    import tomllib

    from memeval.registry import BUILTIN

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]
    assert declared["memeval.adapters"] == BUILTIN
