from __future__ import annotations

import pytest

from memeval.match import contains_any
from memeval.scenario.filler import generate_filler
from memeval.scenario.timeline import build_timeline
from memeval.scenario.validate import load_scenario
from memeval.tokens import count_tokens

from ..conftest import SCENARIOS


@pytest.mark.parametrize(("sessions", "tokens"), [(1, 300), (5, 8000), (3, 150), (40, 20000)])
def test_token_target_met_within_ten_percent(sessions: int, tokens: int) -> None:
    out = generate_filler(sessions, tokens, seed=7)
    assert len(out) == sessions and all(out)
    total = sum(count_tokens(text) for session in out for _, text in session)
    assert abs(total - tokens) <= 0.1 * tokens, total


def test_same_seed_same_filler_and_other_seed_differs() -> None:
    assert generate_filler(3, 600, seed=1) == generate_filler(3, 600, seed=1)
    assert generate_filler(3, 600, seed=1) != generate_filler(3, 600, seed=2)


def test_filler_never_contains_forbidden_answers() -> None:
    # Words the templates do use, so without the guard they would appear.
    forbidden = ["pancakes", "Tuesday", "tea", "rainy", "a long walk"]
    out = generate_filler(20, 6000, seed=3, forbidden=forbidden)
    texts = [text for session in out for _, text in session]
    assert texts and not any(contains_any(t, forbidden) for t in texts)
    unguarded = [t for s in generate_filler(20, 6000, seed=3) for _, t in s]
    assert any(contains_any(t, forbidden) for t in unguarded)


def test_timeline_places_filler_and_probes() -> None:
    scenario = load_scenario(SCENARIOS / "quick" / "pets-and-moves.yaml")
    events = build_timeline(scenario)
    sessions = [e for e in events if hasattr(e, "turns")]
    fillers = [s for s in sessions if s.filler]
    assert len(fillers) == 4
    answers = [a for f in scenario.facts for a in f.answers]
    assert not any(contains_any(t.text, answers) for s in fillers for t in s.turns)
    # filler times sit between the sessions around them
    s1 = next(s for s in sessions if s.info.id == "s1")
    s2 = next(s for s in sessions if s.info.id == "s2")
    assert all(s1.info.time < f.info.time < s2.info.time for f in fillers[:2])
    order = [getattr(e, "id", None) or e.info.id for e in events]
    assert order.index("vet_name") == order.index("s2") + 1
    assert order[-5:] == ["dog", "where_now", "cat", "blog_bio", "bob_dog"]


def test_rendering_draws_exactly_what_random_choice_would() -> None:
    """Filler is part of a scenario's replay: a faster draw must not change one line of it."""
    import random

    from memeval.scenario.filler import _POOLS, _USER, _render

    for seed in range(200):
        fast, reference = random.Random(seed), random.Random(seed)
        for template in _USER:
            expected = template.format_map({k: reference.choice(v) for k, v in _POOLS.items()})
            assert _render(fast, template) == expected[0].upper() + expected[1:]
        assert fast.random() == reference.random()  # the streams are still in step
