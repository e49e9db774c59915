"""The garbage collector, tuned for a run's shape: many objects, made once, kept to the end."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def few_collections() -> Iterator[None]:
    """Run the cyclic garbage collector every 100,000 allocations instead of 700, until the
    block ends. A replay makes millions of small objects that live until its end, and the
    collector would scan them again and again: a fifth of a 1M-token run's CPU, growing
    with the history. Reference counting still frees everything that is not a cycle."""
    before = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)
