"""A real OpenAI-compatible HTTP server on loopback: `transformers serve` with the packaged Gemma."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# Gemma 3 270M is a base model with no chat template; chat requests need one.
CHAT_TEMPLATE = """{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{{ m['content'] }}

{% else %}{{ m['role'] | capitalize }}: {{ m['content'] }}
{% endif %}{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"""


def servable_gemma(folder: Path) -> Path:
    """The packaged Gemma's converted folder, linked into `folder` with a chat template."""
    from memeval.adapters.readers.embedded import model_folder

    source = model_folder()
    folder.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        (folder / item.name).symlink_to(item)
    (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Server:
    url: str
    log: Path

    def requests(self, path: str) -> int:
        """How many requests to `path` the server has logged."""
        return self.log.read_text(errors="replace").count(f'"POST {path} HTTP')


@contextmanager
def transformers_serve(model: Path, port: int | None = None, timeout: float = 180,
                       extra_args: list[str] | None = None) -> Iterator[Server]:
    """Start `transformers serve` on 127.0.0.1, wait until healthy, yield it, stop it."""
    exe = shutil.which("transformers")
    if exe is None:
        raise RuntimeError("`transformers serve` is missing: pip install 'transformers[serving]'")
    port = port or free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    log = model.parent / f"serve-{port}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen([exe, "serve", "--host", "127.0.0.1", "--port", str(port),
                                 *(extra_args or []), str(model)],
                                env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"transformers serve did not start (exit {proc.poll()})")
            time.sleep(0.5)
        yield Server(f"http://127.0.0.1:{port}/v1", log)
    finally:
        proc.kill()  # a graceful stop waits for a generation in flight
        proc.wait()
