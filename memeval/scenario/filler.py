"""Seeded distractor chit-chat: no model, no download.

Filler pads a timeline with plausible everyday conversation so that planted
facts sit at a distance from their probes. It never contains a planted
fact's answers, so it cannot answer a probe by accident.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Iterable
from functools import lru_cache

from memeval.match import NeedleSet
from memeval.protocols import Role
from memeval.tokens import count_tokens

_POOLS: dict[str, list[str]] = {
    "dish": ["a mushroom risotto", "banana bread", "a lentil curry", "homemade pizza",
             "a vegetable stir-fry", "pancakes", "a tomato soup", "a quiche", "dumplings",
             "a chickpea salad", "roast vegetables", "a lemon tart"],
    "activity": ["a long walk", "some gardening", "a bike ride", "a board game night",
                 "a yoga class", "a pottery workshop", "a museum visit", "a movie marathon",
                 "a swim", "a picnic", "a puzzle", "some painting"],
    "weather": ["rainy", "sunny", "windy", "foggy", "grey", "surprisingly warm", "chilly",
                "humid", "crisp", "stormy"],
    "thing": ["the washing machine", "my phone charger", "the kitchen light", "the printer",
              "the garden hose", "my umbrella", "the coffee grinder", "the car radio",
              "my headphones", "the toaster"],
    "show": ["a documentary about octopuses", "a cooking competition", "an old detective series",
             "a nature programme", "a comedy special", "a show about tiny houses",
             "a baking contest", "a series about architecture"],
    "feeling": ["tired", "relaxed", "a bit restless", "pretty good", "busy", "cheerful",
                "distracted", "calm", "sleepy", "energetic"],
    "day": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "the weekend"],
    "adj": ["lovely", "fun", "relaxing", "nice", "great", "pleasant", "interesting"],
    "topic": ["houseplants", "bread baking", "birdwatching", "knitting", "jigsaw puzzles",
              "podcasts", "home workouts", "tea", "crosswords", "photography"],
}

_USER = [
    "The weather has been {weather} all week, so I mostly stayed in.",
    "I tried making {dish} yesterday and it turned out better than expected.",
    "I'm feeling {feeling} today, not sure why.",
    "We did {activity} on {day} and it was {adj}.",
    "{thing} stopped working again this morning.",
    "Last night I watched {show}. It was oddly gripping.",
    "I've been getting into {topic} lately.",
    "Any tips for keeping {topic} from becoming a chore?",
    "I keep meaning to plan {activity} but never find the time.",
    "It's {weather} outside, perfect for {activity}, I suppose.",
    "Do you think {dish} would work for a small dinner with friends?",
    "I finally fixed {thing}; it only needed a good clean.",
    "Honestly {day} went by so fast I barely noticed it.",
    "Can you suggest something easy to cook when I'm {feeling}?",
    "I read a short article about {topic} on the bus.",
    "My plan for {day} is {activity} and an early night.",
]

_ASSISTANT = [
    "That sounds {adj}. What did you enjoy most about it?",
    "A {weather} week can be a good excuse to slow down for a bit.",
    "{dish} is a nice choice; it is forgiving and easy to share.",
    "If you are {feeling}, something simple like {dish} could be just right.",
    "Glad to hear it. Small wins like that make a day feel better.",
    "{topic} can be very absorbing. Keeping sessions short helps it stay fun.",
    "It might help to pick one evening for {activity} and treat it as fixed.",
    "Sorry to hear about {thing}. Checking the cable and settings is a good first step.",
    "{show} sounds like a good pick for a quiet evening.",
    "Days like that happen. Is there anything you are looking forward to?",
    "That's a {adj} plan. Don't forget to rest as well.",
    "Reading a little about {topic} each day adds up quickly.",
]


#: Per pool: its name, its values, their count and the bits one draw takes.
_DRAWS = [(key, pool, len(pool), len(pool).bit_length()) for key, pool in _POOLS.items()]


def _render(rng: random.Random, template: str) -> str:
    # `rng.choice(pool)` for every pool, inlined as CPython's Random draws it (getrandbits
    # with rejection): the same stream, so the same filler, at half the cost; a test checks
    # it against `choice` itself
    bits = rng.getrandbits
    fields = {}
    for key, pool, n, k in _DRAWS:
        r = bits(k)
        while r >= n:
            r = bits(k)
        fields[key] = pool[r]
    text = template.format_map(fields)
    return text[0].upper() + text[1:]


class FillerScreen:
    """Which filler lines hold a planted answer, each distinct line checked once: the
    templates say the same few thousand lines again and again, across every filler
    entry of a scenario."""

    def __init__(self, forbidden: Iterable[str] = ()):
        self._needles = NeedleSet(forbidden)
        self._allowed: dict[str, bool] = {}

    def allows(self, text: str) -> bool:
        if text not in self._allowed:
            self._allowed[text] = not self._needles.found_in(text)
        return self._allowed[text]


@lru_cache(maxsize=1 << 16)
def _tokens(text: str) -> int:
    return count_tokens(text)


def generate_filler(
    sessions: int, tokens: int, seed: int, forbidden: Iterable[str] | FillerScreen = ()
) -> list[list[tuple[Role, str]]]:
    """Generate `sessions` sessions of (role, text) turns totalling about `tokens` tokens.

    Sessions alternate user and assistant turns. The running total is kept
    on target across sessions, so the whole overshoots by at most one turn.
    No turn contains any string in `forbidden` (matched as answers are); a scenario's
    filler entries share one `FillerScreen` of its answers.
    """
    rng = random.Random(seed)
    screen = forbidden if isinstance(forbidden, FillerScreen) else FillerScreen(forbidden)
    out: list[list[tuple[Role, str]]] = []
    total = 0
    for index in range(sessions):
        goal = tokens * (index + 1) / sessions
        turns: list[tuple[Role, str]] = []
        while not turns or total < goal:
            role: Role = "user" if len(turns) % 2 == 0 else "assistant"
            templates = _USER if role == "user" else _ASSISTANT
            for _ in range(50):
                text = _render(rng, rng.choice(templates))
                if screen.allows(text):
                    break
            else:  # every draw collided with an answer: say something neutral
                text = "Okay." if role == "user" else "I see."
            turns.append((role, sys.intern(text)))  # one copy of each line a long history repeats
            total += _tokens(text)
        out.append(turns)
    return out
