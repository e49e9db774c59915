"""RAG ingest throughput against raw `encode` throughput of the same embedder, same texts.

    python benchmarks/rag_ingest.py [--turns 2000] [--batch 64]

Prints turns per second for both and their ratio (target: >= 0.8). The texts
are generated filler turns; the RAG backend embeds them in batches through
chromadb with its persistent store, as in a run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from memeval.adapters.backends.rag import Rag
from memeval.adapters.embedders.minilm import MiniLMEmbedder
from memeval.protocols import CellContext, SessionInfo, Turn
from memeval.scenario.filler import generate_filler
from memeval.tokens import count_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    sessions = generate_filler(args.turns // 10, args.turns * 16, seed=1)
    turns = [Turn(id=f"s{i}.t{j}", session_id=f"s{i}", user="user", role=role, text=text)
             for i, session in enumerate(sessions) for j, (role, text) in enumerate(session)]
    turns = turns[: args.turns]
    texts = [t.text for t in turns]
    embedder = MiniLMEmbedder(batch_size=args.batch)
    embedder.embed_documents(texts[:32])  # load the model and warm up outside the clock

    start = time.perf_counter()
    for i in range(0, len(texts), args.batch):
        embedder.embed_documents(texts[i:i + args.batch])
    encode_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory() as tmp:
        rag = Rag(batch_size=args.batch, embedder=embedder)
        rag.bind(CellContext(count_tokens=count_tokens, context_tokens=8192, workdir=Path(tmp)))
        start = time.perf_counter()
        session = None
        for turn in turns:
            if session is not None and turn.session_id != session:
                rag.end_session(SessionInfo(id=session, user="user", turn_count=0))
            session = turn.session_id
            rag.observe(turn)
        rag.end_session(SessionInfo(id=session or "", user="user", turn_count=0))
        items = rag.footprint().items  # embeds and stores what is still queued
        ingest_s = time.perf_counter() - start

    encode_tps, ingest_tps = len(texts) / encode_s, len(texts) / ingest_s
    print(f"turns: {len(texts)} (stored items: {items}), batch size {args.batch}")
    print(f"raw encode : {encode_tps:8.1f} turns/s ({encode_s:.2f} s)")
    print(f"RAG ingest : {ingest_tps:8.1f} turns/s ({ingest_s:.2f} s)")
    print(f"ratio      : {ingest_tps / encode_tps:.2f} (target >= 0.80)")


if __name__ == "__main__":
    main()
