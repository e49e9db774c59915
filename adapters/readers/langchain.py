"""Any LangChain chat model (`BaseChatModel`) as a reader; tokens from `usage_metadata`."""

from __future__ import annotations

import hashlib
from typing import Any

from memeval.adapters.readers import PROMPT_ID
from memeval.adapters.readers.openai import SYSTEM, openai_retry, retry_after
from memeval.protocols import Answer, Reader, Usage


class LangChainReader(Reader):
    """Asks a LangChain chat model; pass your own model object from Python.

    Args:
        model: A `langchain_core.language_models.BaseChatModel`.
        context_tokens: Largest prompt the model takes.
    """

    def __init__(self, model: Any = None, context_tokens: int = 8192):
        if model is None:
            raise ValueError("give a LangChain chat model object: LangChainReader(model=...)")
        self.model, self.context_tokens = model, context_tokens

    def answer(self, question: str, context: str) -> Answer:
        from langchain_core.messages import HumanMessage, SystemMessage

        notes = context.strip() or "(none)"
        reply = self.model.invoke([SystemMessage(SYSTEM),
                                   HumanMessage(f"Notes:\n{notes}\n\nQuestion: {question}")])
        usage = getattr(reply, "usage_metadata", None) or {}
        text = reply.content if isinstance(reply.content, str) else str(reply.content)
        return Answer(text=text.strip(), usage=Usage(input_tokens=usage.get("input_tokens", 0),
                                                      output_tokens=usage.get("output_tokens", 0)))

    def should_retry(self, exc: Exception) -> float | None:
        """The chat model's vendor errors: openai's by class, others by their HTTP status."""
        if type(exc).__module__.split(".")[0] == "openai":
            return openai_retry(exc)
        status = getattr(exc, "status_code", None)
        if status is None:
            status = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(status, int):
            return retry_after(exc) if status == 429 or status >= 500 else None
        return super().should_retry(exc)

    def identity(self) -> dict[str, object]:
        # the model's own serializable parameters (secrets are not among them in LangChain)
        params = getattr(self.model, "_identifying_params", {}) or {}
        shown = {k: str(v) for k, v in sorted(params.items()) if "key" not in k.lower()}
        digest = hashlib.sha256(repr(shown).encode()).hexdigest()[:16]
        return {"reader": "langchain", "model": type(self.model).__name__, "params": digest,
                "prompt": PROMPT_ID}
