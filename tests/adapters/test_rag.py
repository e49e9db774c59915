"""The RAG backend with real chromadb and the packaged MiniLM, network off."""

from __future__ import annotations

import ipaddress
import socket
import time
from pathlib import Path
from typing import Any

import pytest

import memeval
from memeval.adapters.backends.rag import Rag
from memeval.adapters.embedders.minilm import MiniLMEmbedder
from memeval.protocols import CellContext, Query, SessionInfo, Turn
from memeval.records import read_records
from memeval.testing import HashEmbedder, assert_conforms
from memeval.tokens import count_tokens

from ..conftest import SCENARIOS


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket connection to a non-loopback address fails."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]  # type: ignore[index]
            try:
                loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                loopback = host == "localhost"
            if not loopback:
                raise OSError(f"network is off in this test: connect to {host}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, a: guarded(self, a) or 0)


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


def test_network_guard_blocks_outside_addresses(no_network: None) -> None:
    with pytest.raises(OSError, match="network is off"):
        socket.create_connection(("93.184.216.34", 80), timeout=1)


def test_rag_runs_a_full_scenario_with_the_network_off(no_network: None, tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS, backends=["rag", "oracle", "no_memory"], reader="extractive",
                         out=tmp_path / "run")
    cells = {c["backend"]: c for c in result.scores_json["cells"]}
    rag = cells["rag"]
    assert rag["errors"] == 0
    assert 0 < rag["evidence_retention"]["value"] <= cells["oracle"]["evidence_retention"]["value"]
    assert cells["no_memory"]["evidence_retention"]["value"] == 0
    assert rag["tokens"]["backend_input"] > 0  # the embedding tokens are the backend's own cost
    records = [r for r in read_records(result.run_dir) if r.backend == "rag"]
    assert all(r.footprint and r.footprint.detail["disk_bytes"] > 0 for r in records)
    assert (tmp_path / "run" / "work").rglob("chroma.sqlite3")
    bob = next(r for r in records if r.probe == "bob_dog")
    assert "Zorblat" not in bob.recall_text  # scoped by user


def _ctx(tmp_path: Path) -> CellContext:
    return CellContext(count_tokens=count_tokens, context_tokens=4000, workdir=tmp_path)


def _feed(rag: Rag, sessions: int = 3, turns: int = 4) -> None:
    for s in range(sessions):
        for t in range(turns):
            rag.observe(Turn(id=f"s{s}.t{t}", session_id=f"s{s}", user="ann", role="user",
                             text=f"Session {s} turn {t}: my lucky number is {s * 10 + t}."))
        rag.end_session(SessionInfo(id=f"s{s}", user="ann", turn_count=turns))


@pytest.mark.parametrize(("chunk", "items"), [("turn", 12), ("session", 3), ("window", 4)])
def test_chunking(chunk: str, items: int, embedder: MiniLMEmbedder, tmp_path: Path) -> None:
    # 14 tokens a turn: a 30-token window closes every 3 turns, across session ends
    rag = Rag(chunk=chunk, window_tokens=30, persist=False, embedder=embedder)
    rag.bind(_ctx(tmp_path))
    _feed(rag)
    footprint = rag.footprint()
    assert footprint.items == items
    assert footprint.detail["vector_bytes"] == items * 384 * 4
    assert "disk_bytes" not in footprint.detail


def test_top_k_and_budget(embedder: MiniLMEmbedder, tmp_path: Path) -> None:
    rag = Rag(top_k=3, persist=False, embedder=embedder)
    rag.bind(_ctx(tmp_path))
    _feed(rag)
    recall = rag.recall(Query(text="lucky number in session 2", user="ann"))
    assert len(recall.items) == 3
    budgeted = Rag(budget=60, persist=False, embedder=embedder)
    budgeted.bind(_ctx(tmp_path))
    _feed(budgeted)
    recall = budgeted.recall(Query(text="lucky number in session 2", user="ann"))
    assert 0 < len(recall.items) < 12 and count_tokens(recall.text) <= 60
    assert rag.recall(Query(text="anything", user="nobody")).text == ""


def test_embeddings_are_batched_across_turns(tmp_path: Path) -> None:
    class Counting(MiniLMEmbedder):
        calls = 0

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            Counting.calls += 1
            return super().embed_documents(texts)

    rag = Rag(batch_size=64, persist=False, embedder=Counting())
    rag.bind(_ctx(tmp_path))
    _feed(rag, sessions=4, turns=10)  # four short sessions, still one batch of 40
    assert Counting.calls == 0  # nothing embedded until a batch fills or memory is read
    assert rag.footprint().items == 40 and Counting.calls == 1


@pytest.mark.parametrize("spec", ["rag", "rag:chunk=session", "rag:chunk=window,persist=false",
                                  "rag:budget=100"])
def test_rag_conforms(spec: str) -> None:
    from memeval.registry import build_backend

    assert_conforms(lambda: build_backend(spec)[1])


def test_bad_chunk_option_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="chunk must be one of turn, session, window"):
        Rag(chunk="sentence")


def _hash_rag(tmp_path: Path, persist: bool = False, **options: Any) -> Rag:
    rag = Rag(persist=persist, embedder=HashEmbedder(), **options)
    rag.bind(_ctx(tmp_path))
    return rag


def _say(rag: Rag, user: str, texts: list[str], session: str = "s") -> None:
    for i, text in enumerate(texts):
        rag.observe(Turn(id=f"{user}.{session}.t{i}", session_id=f"{user}.{session}", user=user,
                         role="user", text=text))
    rag.end_session(SessionInfo(id=f"{user}.{session}", user=user, turn_count=len(texts)))


ANN = [f"Ann's note {i}: the blue kettle is in cupboard {i}." for i in range(7)]
BOB = [f"Bob's note {i}: his bicycle is chained to post {i}." for i in range(5)]


@pytest.mark.parametrize("persist", [False, True])
def test_counts_and_footprint_follow_reset_across_users(persist: bool, tmp_path: Path) -> None:
    rag = _hash_rag(tmp_path / "both", persist=persist, batch_size=3)
    _say(rag, "ann", ANN)
    _say(rag, "bob", BOB)
    only_bob = _hash_rag(tmp_path / "bob", persist=persist, batch_size=3)
    _say(only_bob, "bob", BOB)
    only_ann = _hash_rag(tmp_path / "ann", persist=persist, batch_size=3)
    _say(only_ann, "ann", ANN)
    both, bob, ann = rag.footprint(), only_bob.footprint(), only_ann.footprint()
    assert both.items == 12 and both.bytes == bob.bytes + ann.bytes
    assert both.detail["text_bytes"] == bob.detail["text_bytes"] + ann.detail["text_bytes"]
    rag.reset("ann")
    after = rag.footprint()
    assert (after.items, after.bytes) == (bob.items, bob.bytes) == (5, bob.bytes)
    assert {k: v for k, v in after.detail.items() if k != "disk_bytes"} == \
        {k: v for k, v in bob.detail.items() if k != "disk_bytes"}
    if persist:
        assert after.detail["disk_bytes"] > 0
    assert rag.recall(Query(text="kettle cupboard", user="ann")).text == ""
    assert len(rag.recall(Query(text="bicycle post", user="bob")).items) == 5
    rag.reset("nobody")  # never seen: harmless
    _say(rag, "ann", ANN[:2], session="again")  # a reset user starts a new store
    assert rag.footprint().items == 7
    assert [i.turn_id for i in rag.recall(Query(text="kettle", user="ann")).items] == \
        ["ann.again.t0", "ann.again.t1"]
    for backend in (rag, only_bob, only_ann):
        backend.close()


def test_a_query_never_surfaces_another_users_chunks(tmp_path: Path) -> None:
    # the same words for everyone: only the user scope keeps them apart
    users = ["ann", "bob@example.com", "Zoë Ünal", "x"]  # names a collection name could not hold
    rag = _hash_rag(tmp_path, batch_size=4, top_k=3)
    for turn in range(6):
        for user in users:
            rag.observe(Turn(id=f"{user}/t{turn}", session_id=f"{user}/s", user=user,
                             role="user", text=f"the spare key is under stone {turn}"))
    for user in users:  # some of every user's chunks are still waiting to be embedded
        items = rag.recall(Query(text="where is the spare key", user=user)).items
        assert len(items) == 3 and all(i.turn_id.startswith(f"{user}/") for i in items)
    assert rag.footprint().items == 24
    rag.close()


def test_pending_chunks_of_other_users_are_kept_and_counted(tmp_path: Path) -> None:
    class Batches(HashEmbedder):
        def __init__(self) -> None:
            super().__init__()
            self.batches: list[list[str]] = []

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            self.batches.append([t.split("'")[0] for t in texts])
            return super().embed_documents(texts)

    embedder = Batches()
    rag = Rag(persist=False, batch_size=4, embedder=embedder)
    rag.bind(_ctx(tmp_path))
    for i in range(4):  # the users' sessions interleave
        _say(rag, "ann", ANN[i:i + 1], session=f"s{i}")
        _say(rag, "bob", BOB[i:i + 1], session=f"s{i}")
    # one full batch each: every embedding call (and add) is one user's
    assert embedder.batches == [["Ann"] * 4, ["Bob"] * 4]
    _say(rag, "bob", BOB[4:], session="late")
    assert len(rag.recall(Query(text="kettle", user="ann")).items) == 4  # bob's chunk waits
    assert embedder.batches[2:] == []
    assert rag.footprint().items == 9 and embedder.batches[2:] == [["Bob"]]
    rag.close()


def test_identical_chunks_tie_in_conversation_order(tmp_path: Path) -> None:
    def recalled() -> list[str | None]:
        rag = _hash_rag(tmp_path, batch_size=5, top_k=3)
        # far more copies than the index is asked for: still the earliest, every time
        _say(rag, "ann", ["Coffee is fine too."] + ["I like tea."] * 60)
        _say(rag, "bob", ["I like tea."] * 12)
        found = [i.turn_id for i in rag.recall(Query(text="I like tea.", user="ann")).items]
        rag.close()
        return found

    assert recalled() == recalled() == recalled() == ["ann.s.t1", "ann.s.t2", "ann.s.t3"]


def test_a_second_bind_starts_empty_and_frees_the_ephemeral_store(tmp_path: Path) -> None:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.EphemeralClient(settings=Settings(anonymized_telemetry=False,
                                                        allow_reset=True))
    before = {c.name for c in client.list_collections()}
    rag = _hash_rag(tmp_path)
    _say(rag, "ann", ANN)
    _say(rag, "bob", BOB)
    assert rag.footprint().items == 12
    assert len({c.name for c in client.list_collections()} - before) == 2  # one per user
    rag.bind(_ctx(tmp_path))
    assert rag.footprint().items == 0 and {c.name for c in client.list_collections()} == before
    assert rag.recall(Query(text="kettle", user="ann")).text == ""
    _say(rag, "ann", ANN[:1])
    assert len(rag.recall(Query(text="kettle", user="ann")).items) == 1
    rag.close()
    rag.close()
    assert {c.name for c in client.list_collections()} == before


def test_rag_with_the_hash_embedder_conforms(tmp_path: Path) -> None:
    assert_conforms(lambda: Rag(persist=False, embedder=HashEmbedder()))
    with Rag(persist=False, embedder=HashEmbedder()) as rag:
        rag.bind(_ctx(tmp_path))
        _say(rag, "ann", ANN)
        assert rag.recall(Query(text="kettle", user="ann")).items
        assert rag.model_usage().input_tokens > 0  # the embedder's word count


def test_embedding_deferred_to_a_recall_is_charged_to_observing(tmp_path: Path) -> None:
    """Turns wait in a batch until a recall needs them: the runner has them embedded before
    the timed recall (deferred_s) and counts that as observe cost, so observing rag does not
    look free and its recall slow."""
    inside: list[str] = []

    class Watched(Rag):
        def recall(self, query: Query) -> Any:
            inside.append("recall")
            try:
                return super().recall(query)
            finally:
                inside.pop()

    class Slow(HashEmbedder):
        batches_in_recall = 0

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            Slow.batches_in_recall += bool(inside)
            time.sleep(0.02)  # a model would take this long for a batch
            return super().embed_documents(texts)

    result = memeval.run([SCENARIOS / "quick" / "pets-and-moves.yaml"],
                         backends=[Watched(embedder=Slow(), persist=False)], reader="extractive",
                         out=tmp_path / "run", cache=False, control=False, report=False)
    assert Slow.batches_in_recall == 0  # every batch was embedded in settle, before recall
    records = result.records()
    assert (records["deferred_s"] >= 0.02).sum() >= 1
    latency = result.cells[0].latency_s
    assert latency.deferred and latency.deferred.mean and latency.observe_per_turn
    assert latency.observe.mean is not None
    assert latency.observe_per_turn > latency.observe.mean
