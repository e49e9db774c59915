"""The RAG backend with real chromadb and the packaged MiniLM, network off."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest

import memeval
from memeval.adapters.backends.rag import Rag
from memeval.adapters.embedders.minilm import MiniLMEmbedder
from memeval.protocols import CellContext, Query, SessionInfo, Turn
from memeval.records import read_records
from memeval.testing import assert_conforms
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
