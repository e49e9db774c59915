"""The openai reader against a real OpenAI-compatible server on loopback (`transformers serve`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import memeval
from memeval.adapters.readers.openai import OpenAIReader
from memeval.records import read_records

from ..conftest import SCENARIOS
from ..servers import Server, servable_gemma, transformers_serve

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    model = servable_gemma(tmp_path_factory.mktemp("served") / "gemma")
    with transformers_serve(model) as served:
        yield served, str(model)


def test_completions_mode_runs_a_scenario(server: tuple[Server, str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    url, model = server[0].url, server[1]
    monkeypatch.setenv("MEMEVAL_TEST_KEY", "sk-never-recorded-42")
    spec = f"openai:model={model},base_url={url},mode=completions,max_tokens=16,key_env=MEMEVAL_TEST_KEY"
    result = memeval.run(SCENARIOS / "quick" / "garden-club.yaml", backends=["oracle", "no_memory"],
                         reader=spec, out=tmp_path / "run", limit=2)
    records = read_records(result.run_dir)
    assert len(records) == 4 and all(r.error is None and r.answer is not None for r in records)
    # usage comes from the server's response
    assert all(r.usage.input_tokens > 100 and 0 < r.usage.output_tokens <= 16 for r in records)
    manifest = (result.run_dir / "manifest.json").read_text()
    assert "sk-never-recorded-42" not in manifest and url in manifest
    assert server[0].requests("/v1/completions") >= 4


def test_chat_mode_answers_with_usage(server: tuple[Server, str]) -> None:
    url, model = server[0].url, server[1]
    reader = OpenAIReader(model=model, base_url=url, max_tokens=8)
    answer = reader.answer("What is my dog's name?", "user: I adopted a beagle named Zorblat.")
    assert answer.text and answer.usage.input_tokens > 0 and answer.usage.output_tokens > 0


def test_a_stopped_server_is_an_error_record(tmp_path: Path) -> None:
    spec = "openai:model=x,base_url=http://127.0.0.1:9/v1,timeout=2"
    result = memeval.run(SCENARIOS / "quick" / "garden-club.yaml", backends=["oracle"], reader=spec,
                         out=tmp_path / "run", limit=2, control=False)
    records = read_records(result.run_dir)
    assert len(records) == 2 and all(r.error_stage == "answer" for r in records)
    assert all("Connection" in (r.error or "") for r in records)


def test_mem0_extraction_mode_calls_the_model(server: tuple[Server, str], tmp_path: Path) -> None:
    """mem0 with infer=true sends each session to the LLM for fact extraction.

    The packaged 270M base model does not write mem0's JSON, so mem0 stores no
    facts from it: this checks the wiring (mem0 -> endpoint -> answer), not the
    quality of extraction, which needs a capable model.
    """
    pytest.importorskip("mem0")
    from memeval.adapters.backends.mem0 import Mem0
    from memeval.protocols import CellContext, SessionInfo, Turn
    from memeval.tokens import count_tokens

    served, model = server
    before = served.requests("/v1/chat/completions")
    backend = Mem0(infer=True, llm_base_url=served.url, llm_model=model, llm_max_tokens=16)
    backend.bind(CellContext(count_tokens=count_tokens, context_tokens=4096, workdir=tmp_path))
    backend.reset("ann")
    backend.observe(Turn(id="t0", session_id="s1", user="ann", role="user",
                         text="I adopted a beagle and named him Zorblat."))
    backend.end_session(SessionInfo(id="s1", user="ann", turn_count=1))
    assert served.requests("/v1/chat/completions") > before
    assert backend.footprint().detail["disk_bytes"] > 0


def test_server_stopped_mid_run_then_resumed_matches_an_undisturbed_run(
        server: tuple[Server, str], tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    from ..conftest import ROOT
    from ..servers import free_port

    model = server[1]
    common = ["-b", "oracle", "-b", "no_memory", "--limit", "3", "--no-cache", "--retries", "0"]
    scenarios = [str(SCENARIOS / "quick" / "garden-club.yaml"), str(SCENARIOS / "quick" / "work-trip.yaml")]

    def reader(url: str) -> list[str]:
        return ["-r", f"openai:model={model},base_url={url},mode=completions,max_tokens=12"]

    def cli(*args: str) -> list[str]:
        return [sys.executable, "-m", "memeval.cli", "run", *scenarios, *common, *args]

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    reference = tmp_path / "reference"
    subprocess.run(cli(*reader(server[0].url), "--out", str(reference)), env=env, check=True,
                   capture_output=True)

    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    out = tmp_path / "faulty"
    with transformers_serve(Path(model), port=port):
        run = subprocess.Popen(cli(*reader(url), "--out", str(out)), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while not (out / "records.jsonl").exists() or \
                (out / "records.jsonl").read_bytes().count(b"\n") < 3:
            assert time.monotonic() < deadline and run.poll() is None
            time.sleep(0.2)
    # the server is gone; the run goes on, records what failed, and says so in its exit code
    assert run.wait(timeout=300) == 1
    failed = [r for r in read_records(out) if r.error]
    assert failed and all(r.error_stage == "answer" for r in failed)
    assert len(read_records(out)) == len(read_records(reference)) == 12

    with transformers_serve(Path(model), port=port):
        subprocess.run(cli(*reader(url), "--out", str(out), "--resume"), env=env, check=True,
                       capture_output=True)

    def stable(run_dir: Path) -> list[tuple]:
        return sorted((r.scenario, r.backend, r.probe, r.answer, r.recall_text, r.usage.input_tokens,
                       r.error) for r in read_records(run_dir))

    assert stable(out) == stable(reference)


def test_langchain_reader_with_a_real_chat_model(server: tuple[Server, str], tmp_path: Path) -> None:
    """A LangChain ChatOpenAI object, talking HTTP to the loopback server, as the reader."""
    from langchain_openai import ChatOpenAI

    from memeval.adapters.readers.langchain import LangChainReader

    served, model = server
    chat = ChatOpenAI(model=model, base_url=served.url, api_key="not-needed", max_tokens=8,
                      temperature=0)
    result = memeval.run(SCENARIOS / "quick" / "garden-club.yaml", backends=["oracle"],
                         reader=LangChainReader(chat), out=tmp_path / "run", limit=2, cache=False,
                         control=False)
    records = read_records(result.run_dir)
    assert len(records) == 2 and all(r.error is None and r.answer for r in records)
    assert all(r.usage.input_tokens > 0 and r.usage.output_tokens > 0 for r in records)
    assert result.manifest.reader_identity["model"] == "ChatOpenAI"


@pytest.mark.parametrize(("status", "headers", "wait"), [
    (429, {"retry-after": "7"}, 7.0), (503, {}, 0.0), (500, {}, 0.0), (400, {}, None),
    (401, {}, None), (404, {}, None),
])
def test_the_reader_classifies_the_openai_clients_errors(status: int, headers: dict[str, str],
                                                         wait: float | None) -> None:
    import httpx
    import openai

    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    response = httpx.Response(status, headers=headers, request=request)
    error_class = {429: openai.RateLimitError, 400: openai.BadRequestError,
                   401: openai.AuthenticationError, 404: openai.NotFoundError}.get(
        status, openai.InternalServerError)
    exc = error_class("boom", response=response, body=None)
    assert OpenAIReader().should_retry(exc) == wait
    # a timed-out request is still being worked on: asking again would pile onto the server
    assert OpenAIReader().should_retry(openai.APITimeoutError(request=request)) is None
    assert OpenAIReader().should_retry(openai.APIConnectionError(request=request)) == 0.0
    assert OpenAIReader().should_retry(ValueError("a bug of ours")) is None


def stub_openai(content: str | None, hits: list[int], index: int) -> Any:
    """A minimal OpenAI-compatible endpoint on loopback: `content` is the reply's text, or
    None for a reply of the wrong shape (no choices)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            hits.append(index)
            reply = {"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                     "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}
            if content is not None:
                reply["choices"] = [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": content}}]
            body = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_calls_are_spread_over_several_servers() -> None:
    """Two loopback endpoints (minimal OpenAI-compatible stubs): calls alternate between them."""
    hits: list[int] = []
    servers = [stub_openai("from 0", hits, 0), stub_openai("from 1", hits, 1)]
    try:
        urls = ";".join(f"http://127.0.0.1:{s.server_address[1]}/v1" for s in servers)
        reader = OpenAIReader(model="m", base_url=urls)
        answers = [reader.answer(f"q{i}", "notes").text for i in range(6)]
        assert sorted(hits) == [0, 0, 0, 1, 1, 1] and set(answers) == {"from 0", "from 1"}
        assert reader.identity()["base_url"] == ";".join(sorted(urls.split(";")))
    finally:
        for s in servers:
            s.shutdown()


def test_a_reply_of_the_wrong_shape_is_a_clear_error_record(tmp_path: Path) -> None:
    hits: list[int] = []
    server = stub_openai(None, hits, 0)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        result = memeval.run(SCENARIOS / "quick" / "garden-club.yaml", backends=["oracle"], limit=1,
                             reader=f"openai:model=m,base_url={url}", out=tmp_path / "r",
                             control=False, report=False)
        (record,) = read_records(result.run_dir)
        assert record.error_stage == "answer" and "reply has no choices" in (record.error or "")
        assert len(hits) == 1  # not an error worth repeating
    finally:
        server.shutdown()
