"""A persistent cache of model calls, shared by every run on the machine.

Keyed by the reader's identity (model and generation settings) and the
prompt; concurrency, retry and timeout settings are not part of the key.
Only answers are stored: a failed call is never cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Protocol

from memeval.protocols import Answer


def _user_cache() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("memeval"))


def default_cache_dir() -> Path:
    """Where the call cache lives: `$MEMEVAL_CACHE_DIR`, else the user's cache folder."""
    env = os.environ.get("MEMEVAL_CACHE_DIR")
    return Path(env) if env else _user_cache()


def model_cache_dir() -> Path:
    """Where converted local models live: `$MEMEVAL_MODEL_DIR`, else the user's cache folder."""
    env = os.environ.get("MEMEVAL_MODEL_DIR")
    return Path(env) if env else _user_cache() / "models"


def call_key(identity: dict[str, Any], question: str, context: str, **task: Any) -> str:
    """The cache key of a call; `task` names calls other than answering (e.g. scoring
    continuations) and what they were given."""
    payload = json.dumps({"reader": identity, "question": question, "context": context, **task},
                         sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


class AnswerCache(Protocol):
    """What the call service needs of a cache: `CallCache` here, a cache server on a cluster."""

    def get(self, key: str) -> Answer | None: ...

    def put(self, key: str, answer: Answer) -> None: ...


class CallCache:
    """An sqlite file mapping call keys to answers; safe across threads and processes."""

    def __init__(self, path: Path | None = None):
        self.path = path or default_cache_dir() / "calls.sqlite3"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, answer TEXT)")
        self._db.commit()

    def get(self, key: str) -> Answer | None:
        with self._lock:
            row = self._db.execute("SELECT answer FROM calls WHERE key = ?", (key,)).fetchone()
        return Answer.model_validate_json(row[0]) if row else None

    def put(self, key: str, answer: Answer) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO calls VALUES (?, ?)",
                             (key, answer.model_dump_json()))
            self._db.commit()

    def close(self) -> None:
        self._db.close()
