"""The conformance kit catches broken backends and passes the shipped ones."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from memeval.cli import app
from memeval.protocols import Embedder, Footprint, MemoryBackend, Query, Recall, Turn
from memeval.registry import build_backend
from memeval.testing import HashEmbedder, assert_conforms, check_backend

from .helpers import FlakyBackend


class SharedStore(MemoryBackend):
    """Deliberately leaky: one store for everyone, no user scope."""

    store: list[str] = []  # noqa: RUF012 - shared on purpose: the bug under test

    def reset(self, scope: str) -> None:
        SharedStore.store.clear()

    def observe(self, turn: Turn) -> None:
        SharedStore.store.append(turn.text)

    def recall(self, query: Query) -> Recall:
        return Recall(text="\n".join(SharedStore.store))

    def footprint(self) -> Footprint:
        return Footprint(items=len(SharedStore.store), bytes=0)


class NoFootprint(MemoryBackend):
    def __init__(self) -> None:
        self.turns: dict[str, list[str]] = {}

    def reset(self, scope: str) -> None:
        self.turns.pop(scope, None)

    def observe(self, turn: Turn) -> None:
        self.turns.setdefault(turn.user, []).append(turn.text)

    def recall(self, query: Query) -> Recall:
        return Recall(text="\n".join(self.turns.get(query.user, [])))

    def footprint(self) -> Footprint:
        return Footprint(items=0, bytes=0)


class ForgetsEveryone(NoFootprint):
    def reset(self, scope: str) -> None:
        self.turns.clear()

    def footprint(self) -> Footprint:
        return Footprint(items=1, bytes=1)


class RaisesOnEmpty(NoFootprint):
    def recall(self, query: Query) -> Recall:
        if query.user not in self.turns:
            raise KeyError(query.user)
        return super().recall(query)


def rules(backend) -> list[str]:
    return [v.rule for v in check_backend(backend).violations]


def test_leaky_shared_store_fails_on_isolation() -> None:
    report = check_backend(SharedStore)
    assert "isolation" in [v.rule for v in report.violations]
    assert "alice's locker code surfaced in bob's recall" in str(report)
    assert "Rule: One user's turns never surface" in str(report)
    with pytest.raises(AssertionError, match="does NOT conform"):
        assert_conforms(SharedStore)


def test_each_rule_is_named() -> None:
    assert rules(NoFootprint) == ["footprint"]
    assert "reset" in rules(ForgetsEveryone)
    assert rules(RaisesOnEmpty) == ["exceptions"]
    assert "raised KeyError" in str(check_backend(RaisesOnEmpty))
    flaky = check_backend(FlakyBackend)
    assert "isolation" in [v.rule for v in flaky.violations]


def test_a_broken_constructor_is_reported() -> None:
    def factory() -> MemoryBackend:
        raise RuntimeError("no database")

    assert rules(factory) == ["construct"]
    assert rules(lambda: object()) == ["construct"]


@pytest.mark.parametrize("spec", ["full_context", "no_memory", "oracle", "window:tokens=64"])
def test_every_shipped_backend_conforms(spec: str) -> None:
    report = assert_conforms(lambda: build_backend(spec)[1])
    if spec == "no_memory":
        assert report.notes  # it remembers nothing, and the kit says so without failing it


def test_check_backend_command() -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["check-backend", "full_context"])
    assert ok.exit_code == 0 and "full_context: conforms" in ok.output
    bad = runner.invoke(app, ["check-backend", "tests.test_testing:SharedStore"])
    assert bad.exit_code == 1 and "[isolation]" in bad.output


class Good(ForgetsEveryone):
    def reset(self, scope: str) -> None:
        self.turns.pop(scope, None)


class OneCellOnly(Good):
    """Shuts its store at close-like points: a second bind finds it dead (like a closed pool)."""

    def __init__(self) -> None:
        super().__init__()
        self.bound = False

    def bind(self, context: object) -> None:
        if self.bound:
            raise RuntimeError("cannot schedule new futures after shutdown")
        self.bound = True


class ClosesTwiceBadly(Good):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def close(self) -> None:
        if self.closed:
            raise RuntimeError("already closed")
        self.closed = True


class BadUsage(Good):
    def model_usage(self):  # type: ignore[no-untyped-def, override]
        return {"input_tokens": 3}


class ListsEveryone(Good):
    """Lists every user's turns for whichever user is asked: the audit would credit it."""

    def memories(self, user: str) -> list[str]:
        return [text for turns in self.turns.values() for text in turns]


class ListsAString(Good):
    def memories(self, user: str):  # type: ignore[no-untyped-def, override]
        return "\n".join(self.turns.get(user, []))


class ListsItsOwn(Good):
    def memories(self, user: str) -> list[str]:
        return list(self.turns.get(user, []))


@pytest.mark.parametrize(("backend", "rule", "says"), [
    (OneCellOnly, "exceptions", "a second bind raised RuntimeError"),
    (ClosesTwiceBadly, "close", "a second close() raised RuntimeError"),
    (BadUsage, "usage", "model_usage returned dict"),
    (ListsEveryone, "memories", "memories('alice') lists bob's fact"),
    (ListsAString, "memories", "memories('alice') returned str, not a list of str"),
])
def test_the_kit_checks_the_lifecycle(backend: type[MemoryBackend], rule: str, says: str) -> None:
    report = check_backend(backend)
    assert [v.rule for v in report.violations] == [rule], str(report)
    assert says in str(report)


def test_a_good_backend_is_bound_twice_and_closed_twice_quietly() -> None:
    assert check_backend(Good).ok
    assert check_backend(ListsItsOwn).ok


def test_the_hash_embedder_is_deterministic_unit_length_and_word_based() -> None:
    embedder = HashEmbedder()
    assert isinstance(embedder, Embedder)
    texts = ["My dog Rex barks at night.", "The dog barks loudly at night.",
             "Quarterly tax filing is due.", ""]
    vectors = embedder.embed_documents(texts)
    assert vectors == HashEmbedder().embed_documents(texts)  # same text, same vector
    assert embedder.embed_query(texts[0]) == vectors[0]
    assert all(len(v) == 384 and abs(sum(x * x for x in v) - 1) < 1e-9 for v in vectors)
    assert len({tuple(v) for v in vectors}) == 4  # different texts differ

    def cosine(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])  # shared words count
    # a fixed hash, not hash(): the same coordinates in every process (PYTHONHASHSEED)
    assert [(i, x) for i, x in enumerate(embedder.embed_query("Hello, HELLO hello")) if x] \
        == [(39, -1.0)]
    assert embedder.tokens == 6 + 6 + 5 + 0 + 6 + 3  # words, like a token count
    assert len(HashEmbedder(dimensions=16).embed_query("hi")) == 16
