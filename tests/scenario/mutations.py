"""Mutations of scenario files, the kind a hurried author or a hostile one writes: shared by
the fuzz test and `benchmarks/fuzz_scenarios.py`."""

from __future__ import annotations

import random

#: Fragments that broke earlier loaders, or could.
SNIPPETS = [
    "\x00", "\x1b", "\x7f", "\ufeff", "&a [*a]", "*nowhere", "&x 1", "<<: {a: 1}", "!!bool maybe",
    "!!int abc", "!!float x", "!!timestamp nope", "!!python/object:os.system", "!!binary ###",
    "2025-13-01T09:00:00", "2025-02-30", "[" * 300, "]" * 5, "{", "}", ":", ": :", "- ", "? ",
    "\t", "'", '"', "|", ">", "%YAML 1.1", "---", "...", "memeval: true", "memeval: 1.0",
    "1e400", "-5", "id: x", "kind: updte", "plants: [nope]", "after: nowhere", "user: mallory",
    "filler: {sessions: 1, tokens: 100000000000}", "filler: {sessions: 0, tokens: 5}",
    "time: -5", "supersedes: dog_name", "answers: [2025-01-01]", "\n" * 3, "#", "~", "null",
]


def mutate(rng: random.Random, text: str) -> str:
    """One to four random edits: insert a fragment, delete a span, drop, repeat or swap lines."""
    for _ in range(rng.randint(1, 4)):
        lines = text.split("\n")
        op = rng.randrange(6)
        at = rng.randrange(len(text) + 1)
        if op == 0:
            text = text[:at] + rng.choice(SNIPPETS) + text[at:]
        elif op == 1:
            text = text[:at] + text[at + rng.randint(1, 40):]
        elif op == 2 and len(lines) > 1:
            del lines[rng.randrange(len(lines))]
            text = "\n".join(lines)
        elif op == 3:
            i = rng.randrange(len(lines))
            lines.insert(i, lines[i])
            text = "\n".join(lines)
        elif op == 4 and len(lines) > 1:
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        else:
            i = rng.randrange(len(lines))
            lines[i] = " " * rng.randint(0, 6) + lines[i].lstrip()  # indentation off
            text = "\n".join(lines)
    return text
