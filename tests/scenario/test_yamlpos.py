"""libyaml's fast path reads what the pure-Python parser reads, positions included."""

from __future__ import annotations

from pathlib import Path

import pytest

from memeval.scenario import yamlpos

from ..conftest import SCENARIOS


@pytest.mark.skipif(not yamlpos._CLOADER, reason="PyYAML built without libyaml")
@pytest.mark.parametrize("path", sorted(SCENARIOS.rglob("*.yaml")), ids=lambda p: p.name)
def test_the_c_parser_gives_the_same_data_and_positions(path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    text = path.read_text(encoding="utf-8")
    fast = yamlpos.load_with_positions(text)
    monkeypatch.setattr(yamlpos, "_CLOADER", False)
    slow = yamlpos.load_with_positions(text)
    assert fast[0] == slow[0]
    assert fast[1] == slow[1]
