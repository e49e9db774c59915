"""Property: no mutation of a bundled scenario escapes as anything but a ScenarioError whose
every problem names a line, and none takes more than a few seconds (hypothesis' deadline).

`MEMEVAL_FUZZ_EXAMPLES` sets the number of inputs (150 in the suite);
`benchmarks/fuzz_scenarios.py` runs many more and counts the outcomes.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

pytest.importorskip("hypothesis", reason="a dev dependency: pip install -e '.[dev]'")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memeval.errors import ScenarioError
from memeval.scenario import load_scenario, parse_scenario

from ..conftest import SCENARIOS
from .mutations import mutate

BUNDLED = sorted(SCENARIOS.glob("*.yaml"))
EXAMPLES = int(os.environ.get("MEMEVAL_FUZZ_EXAMPLES", "150"))


def one_line_problems(exc: ScenarioError, lines: int) -> None:
    assert exc.problems
    for p in exc.problems:
        assert 1 <= p.line <= max(lines, 1) + 1 and p.column >= 1, p
        assert "\n" not in p.message and p.fix, p


@settings(max_examples=EXAMPLES, deadline=5000, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(BUNDLED), st.integers(0, 2**32))
def test_a_mutated_scenario_loads_or_fails_in_lines(path: Path, seed: int) -> None:
    text = mutate(random.Random(seed), path.read_text(encoding="utf-8"))
    try:
        parse_scenario(text, "mutated.yaml")
    except ScenarioError as exc:
        one_line_problems(exc, text.count("\n") + 1)


@settings(max_examples=max(EXAMPLES // 5, 10), deadline=5000, derandomize=True)
@given(st.sampled_from(BUNDLED), st.binary(min_size=1, max_size=4), st.integers(0, 10**6))
def test_bytes_that_are_not_utf8_are_placed_on_their_line(path: Path, junk: bytes, at: int) -> None:
    import tempfile

    raw = path.read_bytes()
    at %= len(raw)
    bad = raw[:at] + junk + raw[at:]
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "bytes.yaml"
        file.write_bytes(bad)
        try:
            load_scenario(file)
        except ScenarioError as exc:
            one_line_problems(exc, bad.count(b"\n") + 1)
