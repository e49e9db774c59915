"""The openai reader against a real OpenAI-compatible server on loopback (`transformers serve`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import memeval
from memeval.adapters.readers.openai import OpenAIReader
from memeval.results import read_records

from ..conftest import SCENARIOS
from ..servers import servable_gemma, transformers_serve

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    model = servable_gemma(tmp_path_factory.mktemp("served") / "gemma")
    with transformers_serve(model) as url:
        yield url, str(model)


def test_completions_mode_runs_a_scenario(server: tuple[str, str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    url, model = server
    monkeypatch.setenv("MEMEVAL_TEST_KEY", "sk-never-recorded-42")
    spec = f"openai:model={model},base_url={url},mode=completions,max_tokens=16,key_env=MEMEVAL_TEST_KEY"
    result = memeval.run(SCENARIOS / "garden-club.yaml", backends=["oracle", "no_memory"],
                         reader=spec, out=tmp_path / "run", limit=2)
    records = read_records(result.run_dir)
    assert len(records) == 4 and all(r.error is None and r.answer is not None for r in records)
    # usage comes from the server's response
    assert all(r.usage.input_tokens > 100 and 0 < r.usage.output_tokens <= 16 for r in records)
    manifest = (result.run_dir / "manifest.json").read_text()
    assert "sk-never-recorded-42" not in manifest and url in manifest


def test_chat_mode_answers_with_usage(server: tuple[str, str]) -> None:
    url, model = server
    reader = OpenAIReader(model=model, base_url=url, max_tokens=8)
    answer = reader.answer("What is my dog's name?", "user: I adopted a beagle named Zorblat.")
    assert answer.text and answer.usage.input_tokens > 0 and answer.usage.output_tokens > 0


def test_a_stopped_server_is_an_error_record(tmp_path: Path) -> None:
    spec = "openai:model=x,base_url=http://127.0.0.1:9/v1,timeout=2"
    result = memeval.run(SCENARIOS / "garden-club.yaml", backends=["oracle"], reader=spec,
                         out=tmp_path / "run", limit=2)
    records = read_records(result.run_dir)
    assert len(records) == 2 and all(r.error_stage == "answer" for r in records)
    assert all("Connection" in (r.error or "") for r in records)
