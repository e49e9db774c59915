"""Any OpenAI-compatible endpoint: OpenAI, vLLM, llama.cpp, ollama, `transformers serve`."""

from __future__ import annotations

import copy
import itertools
import os
import threading
from typing import Any

from memeval.adapters.readers import PROMPT_ID, answer_lines, build_prompt, stop_strings
from memeval.protocols import Answer, Reader, Usage
from memeval.registry import redact

SYSTEM = ("Answer the user's question in a few words, using only the notes. "
          "If the notes do not say, answer \"I don't know\".")
MODES = ("chat", "completions")


def retry_after(exc: Exception) -> float:
    """The server's Retry-After (seconds), 0 when it gives none."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return max(0.0, float(headers.get("retry-after", 0)))
    except (TypeError, ValueError):
        return 0.0


def openai_retry(exc: Exception) -> float | None:
    """The openai client's errors worth repeating: rate limits, server errors and lost
    connections; the wait the server asked for, if any. A timeout is not repeated: the server
    is most likely still working on the request, and a second one would only queue behind it."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return None
    if isinstance(exc, openai.APIConnectionError):
        return 0.0
    if isinstance(exc, openai.APIStatusError) and (exc.status_code == 429 or exc.status_code >= 500):
        return retry_after(exc)
    return 0.0 if isinstance(exc, (TimeoutError, ConnectionError)) else None


def _choice(response: Any) -> Any:
    """The first choice of a reply, or a clear error for a server that answers another shape."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise ValueError(f"the server's reply has no choices ({str(response)[:120]!r}); is the "
                         "base_url an OpenAI-compatible /v1 endpoint?")
    return choices[0]


class OpenAIReader(Reader):
    """Answers through the `openai` client; token usage is taken from the response.

    Args:
        model: Model name at the endpoint.
        base_url: Endpoint, e.g. http://127.0.0.1:8000/v1 (default: the client's,
            or `$OPENAI_BASE_URL`). Several servers of the same model (one per GPU, say):
            a list, or URLs joined by ";" on the command line; calls take them in turn.
        key_env: Environment variable holding the API key (never recorded).
        mode: "chat" (chat completions) or "completions" (plain completions with
            the few-shot prompt, for base models; the answer ends at a newline).
        max_tokens: Longest answer.
        lines: Lines a completions-mode answer may run to (1: it ends at the first newline).
        temperature: Sampling temperature (0: greedy where the server honours it).
        timeout: Seconds per request (default 600: a local CPU server under load is slow; a
            request that times out is recorded as failed, not sent again).
        context_tokens: Largest prompt the model takes.
    """

    def __init__(self, model: str = "gpt-4o-mini", base_url: str | list[str] | None = None,
                 key_env: str = "OPENAI_API_KEY", mode: str = "chat", max_tokens: int = 64,
                 temperature: float = 0.0, timeout: float = 600.0, context_tokens: int = 8192,
                 lines: int = 1):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        urls = base_url.split(";") if isinstance(base_url, str) else base_url or []
        self.base_urls: list[str | None] = [u.strip() for u in urls if u.strip()] or [None]
        self.model, self.key_env, self.mode = model, key_env, mode
        self.max_tokens, self.temperature, self.timeout = max_tokens, temperature, timeout
        self.context_tokens, self.lines = context_tokens, lines
        self.seed: int | None = None  # set per cell by the runner, when sampling
        self._clients: dict[str | None, Any] = {}
        self._turn = itertools.count()
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """The client of the next server in turn (one client per server, made once)."""
        url = self.base_urls[next(self._turn) % len(self.base_urls)]
        with self._lock:
            if url not in self._clients:
                from openai import OpenAI

                # retries are the runner's job, so the client makes none of its own
                self._clients[url] = OpenAI(base_url=url, timeout=self.timeout, max_retries=0,
                                            api_key=os.environ.get(self.key_env) or "not-needed")
            return self._clients[url]

    def answer(self, question: str, context: str) -> Answer:
        if self.mode == "completions":
            response = self.client.completions.create(
                model=self.model, prompt=build_prompt(question, context),
                stop=stop_strings(self.lines),
                max_tokens=self.max_tokens, temperature=self.temperature, **self._seeded())
            text = answer_lines(_choice(response).text or "", self.lines)
        else:
            notes = context.strip() or "(none)"
            response = self.client.chat.completions.create(
                model=self.model, max_tokens=self.max_tokens, temperature=self.temperature,
                **self._seeded(),
                messages=[{"role": "system", "content": SYSTEM},
                          {"role": "user", "content": f"Notes:\n{notes}\n\nQuestion: {question}"}])
            text = (_choice(response).message.content or "").strip()
        usage = response.usage
        return Answer(text=text, usage=Usage(
            input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            output_tokens=getattr(usage, "completion_tokens", 0) or 0))

    def with_answer_length(self, tokens: int, lines: int) -> OpenAIReader:
        """This reader, sharing its clients, answering in up to `tokens` tokens (never fewer
        than its own `max_tokens`) over `lines` lines."""
        longer = copy.copy(self)
        longer.max_tokens, longer.lines = max(tokens, self.max_tokens), lines
        return longer

    def set_seed(self, seed: int) -> bool:
        """Send `seed` with every request while sampling (temperature above 0): each epoch of
        a run samples under its own seed. Greedy requests go without one."""
        self.seed = seed if self.temperature > 0 else None
        return self.seed is not None

    def _seeded(self) -> dict[str, int]:
        return {} if self.seed is None else {"seed": self.seed}

    def should_retry(self, exc: Exception) -> float | None:
        return openai_retry(exc)

    def identity(self) -> dict[str, object]:
        return {"reader": "openai", "model": self.model,
                # the endpoints by address only: credentials in a URL are never recorded
                "base_url": ";".join(sorted(redact(u or os.environ.get("OPENAI_BASE_URL", "default"))
                                            for u in self.base_urls)),
                "mode": self.mode, "max_tokens": self.max_tokens,
                **({"lines": self.lines} if self.lines != 1 else {}),  # one line: keys as before
                "temperature": self.temperature, "prompt": PROMPT_ID}
