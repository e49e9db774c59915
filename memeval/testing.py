"""Conformance kit: tells a backend's author, in plain sentences, what breaks the contract.

From pytest::

    from memeval.testing import assert_conforms

    def test_my_backend_conforms():
        assert_conforms(MyBackend)          # a class or a zero-argument factory

From the shell: ``memeval check-backend my_package.memory:MyBackend``.
"""

from __future__ import annotations

import hashlib
import math
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from memeval.match import contains_any
from memeval.protocols import CellContext, Footprint, MemoryBackend, Query, Recall, Usage
from memeval.scenario.schema import Scenario
from memeval.scenario.timeline import TimelineSession, build_timeline
from memeval.scenario.validate import parse_scenario
from memeval.tokens import count_tokens

RULES = {
    "construct": "The backend is built by the class or factory with no arguments.",
    "types": "recall returns a memeval.Recall and footprint a memeval.Footprint.",
    "fresh-start": "After reset, recall before any observe returns no stored text.",
    "isolation": "One user's turns never surface in another user's recall.",
    "reset": "reset(user) forgets that user's turns, and only that user's.",
    "footprint": "footprint reports the items and bytes a backend holds.",
    "exceptions": "No contract method raises on ordinary input.",
    "rebind": "A second bind on the same instance (its next cell) starts afresh and works: "
              "the runner reuses an instance you pass in, one cell at a time.",
    "usage": "model_usage returns a memeval.Usage.",
    "memories": "memories(user), where the backend lists them, returns a list of str holding "
                "that user's memories only.",
    "close": "close() releases the backend without raising; a second close() is harmless.",
}

_SCENARIO = """
memeval: 1
id: conformance
title: Two users, one secret each
users: [alice, bob]
facts:
  - id: alice_code
    text: Alice's locker code is Vellamorn-58.
    answers: [Vellamorn-58]
  - id: bob_pet
    text: Bob's parrot is called Quintessa.
    answers: [Quintessa]
sessions:
  - id: a1
    user: alice
    time: 2025-01-05T10:00:00
    turns:
      - user: Please remember my locker code, it is Vellamorn-58.
        plants: [alice_code]
      - assistant: Got it, your locker code is Vellamorn-58.
  - id: b1
    user: bob
    time: 2025-01-05T11:00:00
    turns:
      - user: My parrot Quintessa learned a new word today!
        plants: [bob_pet]
      - assistant: Quintessa sounds clever.
probes:
  - id: alice_asks
    user: alice
    question: What is my locker code?
    expects: [alice_code]
  - id: bob_asks_code
    user: bob
    question: What is the locker code?
    kind: isolation
    forbids: [alice_code]
  - id: bob_asks
    user: bob
    question: What is my parrot called?
    expects: [bob_pet]
  - id: alice_asks_pet
    user: alice
    question: What is the parrot called?
    kind: isolation
    forbids: [bob_pet]
"""


@dataclass(frozen=True)
class Violation:
    """A broken rule of the MemoryBackend contract."""

    rule: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.message} Rule: {RULES[self.rule]}"


@dataclass
class ConformanceReport:
    """What the kit found: violations break the contract; notes are advice."""

    backend: str
    violations: list[Violation] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def __str__(self) -> str:
        lines = [f"{self.backend}: {'conforms' if self.ok else 'does NOT conform'}"]
        lines += [f"  - {v}" for v in self.violations]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


class _Stop(Exception):
    pass


class _Driver:
    def __init__(self, backend: MemoryBackend, report: ConformanceReport):
        self.backend, self.report = backend, report

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:
            self.report.violations.append(Violation(
                "exceptions", f"{what} raised {type(exc).__name__}: {exc}."))
            raise _Stop from None

    def recall(self, probe_id: str, user: str, question: str) -> str:
        query = Query(text=question, user=user, probe_id=probe_id)
        recall = self.call(f"recall({user!r})", lambda: self.backend.recall(query))
        if not isinstance(recall, Recall):
            self.report.violations.append(Violation(
                "types", f"recall returned {type(recall).__name__}, not a Recall."))
            raise _Stop
        return recall.text + "\n" + "\n".join(item.text for item in recall.items)


def check_backend(backend: type[MemoryBackend] | Callable[[], MemoryBackend],
                  workdir: Path | None = None) -> ConformanceReport:
    """Drive a backend through a small two-user scenario and report what breaks the contract.

    Args:
        backend: A MemoryBackend subclass or a zero-argument factory of fresh instances.
        workdir: Folder for the backend's files (default: a temporary folder).
    """
    name = getattr(backend, "__name__", type(backend).__name__)
    report = ConformanceReport(backend=name)
    try:
        instance = backend()
    except Exception as exc:
        report.violations.append(Violation("construct", f"building it raised {exc!r}."))
        return report
    if not isinstance(instance, MemoryBackend):
        report.violations.append(Violation(
            "construct", f"it built a {type(instance).__name__}, not a memeval.MemoryBackend."))
        return report
    scenario = parse_scenario(_SCENARIO, "<conformance>")
    driver = _Driver(instance, report)
    with tempfile.TemporaryDirectory(prefix="memeval-check-") as tmp:
        root = Path(workdir or tmp)
        try:
            first = _drive(driver, scenario, root / "cell-1")
            _usage(driver)
            again = _drive(driver, scenario, root / "cell-2", rebind=True)
            if first and not again:
                report.violations.append(Violation(
                    "rebind", "after a second bind it no longer recalls what it observed."))
        except _Stop:
            pass
        _close(driver)
    # the second cell repeats the first one's checks: say each finding once
    report.violations = list(dict.fromkeys(report.violations))
    report.notes = list(dict.fromkeys(report.notes))
    return report


def _usage(d: _Driver) -> None:
    usage = d.call("model_usage()", d.backend.model_usage)
    if not isinstance(usage, Usage):
        d.report.violations.append(Violation(
            "usage", f"model_usage returned {type(usage).__name__}, not a Usage."))


def _close(d: _Driver) -> None:
    for attempt in ("close()", "a second close()"):
        try:
            d.backend.close()
        except Exception as exc:
            d.report.violations.append(Violation("close", f"{attempt} raised "
                                                 f"{type(exc).__name__}: {exc}."))
            return


def _drive(d: _Driver, scenario: Scenario, workdir: Path, rebind: bool = False) -> bool:
    """One cell's worth of calls; whether the backend recalled what it was told."""
    b, report = d.backend, d.report
    from memeval.adapters.readers.extractive import ExtractiveReader

    # a model-free reader for backends that write with the run's model (summaries)
    workdir.mkdir(parents=True, exist_ok=True)
    context = CellContext(count_tokens=count_tokens, context_tokens=4096, workdir=workdir,
                          ground_truth=scenario if b.needs_ground_truth else None,
                          reader=ExtractiveReader())
    d.call("a second bind" if rebind else "bind", lambda: b.bind(context))
    for user in scenario.users:
        d.call(f"reset({user!r})", partial(b.reset, user))
    alice_code, bob_pet = ["Vellamorn-58"], ["Quintessa"]

    before = d.recall("alice_asks", "alice", "What is my locker code?")
    if before.strip():
        report.violations.append(Violation(
            "rebind" if rebind else "fresh-start",
            f"recall returned text before anything was observed: {before.strip()[:80]!r} "
            + ("(left over from the previous cell)." if rebind else
               "(state left over from another instance or run?).")))
        if rebind:
            raise _Stop

    for event in build_timeline(scenario):
        if isinstance(event, TimelineSession):
            for turn in event.turns:
                d.call(f"observe({turn.id})", partial(b.observe, turn))
            d.call(f"end_session({event.info.id})", partial(b.end_session, event.info))

    _memories(d, {"alice": alice_code, "bob": bob_pet})
    alice = d.recall("alice_asks", "alice", "What is my locker code?")
    bob = d.recall("bob_asks", "bob", "What is my parrot called?")
    if contains_any(d.recall("bob_asks_code", "bob", "What is the locker code?"), alice_code):
        report.violations.append(Violation(
            "isolation", "alice's locker code surfaced in bob's recall: the store is not scoped "
            "by Turn.user / Query.user."))
    if contains_any(d.recall("alice_asks_pet", "alice", "What is the parrot called?"), bob_pet):
        report.violations.append(Violation(
            "isolation", "bob's parrot surfaced in alice's recall: the store is not scoped by user."))
    remembers_alice = contains_any(alice, alice_code)
    remembers_bob = contains_any(bob, bob_pet)
    if not (remembers_alice or remembers_bob):
        report.notes.append("it recalled neither user's fact right after observing it "
                            "(fine for a control such as no_memory; otherwise worth a look).")

    footprint = d.call("footprint()", b.footprint)
    if not isinstance(footprint, Footprint):
        report.violations.append(Violation(
            "types", f"footprint returned {type(footprint).__name__}, not a Footprint."))
    elif (remembers_alice or remembers_bob) and footprint.items <= 0 and footprint.bytes <= 0:
        report.violations.append(Violation(
            "footprint", "it recalls stored turns but its footprint reports 0 items and 0 bytes."))

    d.call("reset('alice')", lambda: b.reset("alice"))
    if contains_any(d.recall("alice_asks", "alice", "What is my locker code?"), alice_code):
        report.violations.append(Violation(
            "reset", "after reset('alice'), alice's locker code is still recalled."))
    if remembers_bob and not contains_any(d.recall("bob_asks", "bob", "What is my parrot called?"),
                                          bob_pet):
        report.violations.append(Violation(
            "reset", "reset('alice') also erased bob's memory: reset must forget one user only."))
    return remembers_alice or remembers_bob


def _memories(d: _Driver, secrets: dict[str, list[str]]) -> None:
    """The store audit's hook, where offered: each user's memories as a list of str, never
    another user's (called after `settle`, as the runner calls it)."""
    for user in secrets:
        d.call(f"settle({user!r})", partial(d.backend.settle, user))
        listed = d.call(f"memories({user!r})", partial(d.backend.memories, user))
        if listed is None:
            return  # the backend does not list its memories
        if not isinstance(listed, list) or not all(isinstance(m, str) for m in listed):
            d.report.violations.append(Violation(
                "memories", f"memories({user!r}) returned {type(listed).__name__}, not a list "
                "of str."))
            return
        leaked = [other for other, answers in secrets.items()
                  if other != user and contains_any("\n".join(listed), answers)]
        if leaked:
            d.report.violations.append(Violation(
                "memories", f"memories({user!r}) lists {leaked[0]}'s fact: list only the "
                "memories of the user asked for."))
            return  # the same finding for the other user says nothing more


def assert_conforms(backend: type[MemoryBackend] | Callable[[], MemoryBackend]) -> ConformanceReport:
    """Fail (AssertionError) with the kit's sentences if the backend breaks the contract."""
    report = check_backend(backend)
    assert report.ok, str(report)
    return report


_WORD = re.compile(r"\w+")


class HashEmbedder:
    """A model-free `Embedder` for tests and scale runs: a hashed bag of words.

    Each lower-cased word adds +1 or -1 (both picked by a hash of the word) to one of
    `dimensions` coordinates; the sum is L2-normalised. Texts that share words are
    similar, the same text always gives the same vector, in any process.

    Args:
        dimensions: Length of each vector.
    """

    def __init__(self, dimensions: int = 384):
        self.dimensions = dimensions
        self.tokens = 0  # words embedded so far, as MiniLMEmbedder counts its tokens

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.dimensions
        words = _WORD.findall(text.lower())
        self.tokens += len(words)
        # blake2b, not hash(): str hashes change with PYTHONHASHSEED, vectors must not
        for word in words or [""]:  # an empty text still gets a unit vector
            code = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
            vector[code % self.dimensions] += 1.0 if code >> 63 else -1.0
        norm = math.sqrt(sum(x * x for x in vector))
        if norm == 0.0:  # the signs cancelled out exactly
            vector[0], norm = 1.0, 1.0
        return [x / norm for x in vector]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)
