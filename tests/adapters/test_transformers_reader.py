"""The `transformers` reader on a model built from a config (random weights)."""

from __future__ import annotations

from pathlib import Path

import pytest

import memeval
from memeval.adapters.readers.transformers import TransformersReader
from memeval.records import read_records

from ..conftest import SCENARIOS
from .tiny_model import build_tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_answers_batched_equal_one_by_one_on_cpu(tiny: Path) -> None:
    reader = TransformersReader(model=str(tiny), device="cpu", max_new_tokens=8, batch_size=4)
    requests = [("What is my dog's name?", "user: I adopted a beagle named Zorblat!"),
                ("Where do we live?", "user: We moved to Porto."), ("What day?", "")]
    batched = reader.answer_many(requests)
    assert [a.text for a in batched] == [reader.answer(q, c).text for q, c in requests]
    assert all("\n" not in a.text and 0 < a.usage.output_tokens <= 8 for a in batched)
    assert reader.identity()["device"] == "cpu" and reader.count_tokens("Zorblat") >= 1


def test_long_context_is_cut_from_its_start(tiny: Path) -> None:
    reader = TransformersReader(model=str(tiny), device="cpu", max_new_tokens=4)
    frame = len(reader._prompt("What is new?", ""))
    reader.context_tokens = frame + 60 + 4  # room for about 60 tokens of notes
    context = "user: filler words here. " * 200 + "user: the newest note"
    ids = reader._prompt("What is new?", context)
    assert frame + 40 < len(ids) <= frame + 60
    text = reader.tokenizer.decode(ids)
    assert text.endswith("the newest note\nQuestion: What is new?\nAnswer:")
    assert text.startswith(reader.tokenizer.decode(reader._prompt("x", "")[:20]))


def test_runs_a_scenario_by_name_and_options(tiny: Path, tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS / "quick" / "garden-club.yaml", backends=["oracle"],
                         reader=f"transformers:model={tiny},device=cpu,max_new_tokens=6",
                         out=tmp_path / "run", control=False)
    records = read_records(result.run_dir)
    assert len(records) == 6 and all(r.error is None for r in records)


def test_missing_model_option_is_a_clear_error(tmp_path: Path) -> None:
    result = memeval.run(SCENARIOS / "quick" / "garden-club.yaml", backends=["no_memory"],
                         reader="extractive", out=tmp_path / "ok", limit=1)
    assert result.records().shape[0] == 1
    with pytest.raises(ValueError, match="transformers:model=PATH"):
        TransformersReader().identity()


@pytest.mark.gpu
def test_runs_on_the_gpu(tiny: Path) -> None:
    reader = TransformersReader(model=str(tiny), device="auto", max_new_tokens=8)
    answers = reader.answer_many([("What is my dog's name?", "user: Zorblat!")] * 5)
    assert len(answers) == 5 and len({a.text for a in answers}) == 1
    assert reader._model.device.type == "cuda"
    stats = answers[0].stats
    assert stats["gpu_peak_allocated_bytes"] > 0
    assert stats["gpu_peak_reserved_bytes"] >= stats["gpu_peak_allocated_bytes"]
    assert abs(stats["kv_cache_bytes"] - stats["kv_cache_bytes_formula"]) <= \
        0.05 * stats["kv_cache_bytes_formula"]
    assert reader.identity()["device"] == "cuda" and reader.identity()["dtype"] == "bfloat16"


def test_each_answer_carries_the_readers_measurements(tiny: Path, tmp_path: Path) -> None:
    reader = TransformersReader(model=str(tiny), device="cpu", max_new_tokens=6, batch_size=4)
    answers = reader.answer_many([(f"Question {i}?", "user: note " * (i + 1)) for i in range(3)])
    stats = answers[0].stats
    assert stats["batch_size"] == 3 and stats["tokens_per_s"] > 0
    # a Llama cache keeps every position: measured bytes equal the formula
    assert stats["kv_cache_bytes"] == stats["kv_cache_bytes_formula"] > 0
    assert "gpu_peak_allocated_bytes" not in stats  # CPU: no GPU figures
    result = memeval.run(SCENARIOS / "quick" / "garden-club.yaml", backends=["oracle"], limit=2,
                         reader=f"transformers:model={tiny},device=cpu,max_new_tokens=4",
                         out=tmp_path / "run", cache=False)
    records = read_records(result.run_dir)
    assert all(r.reader_stats["kv_cache_bytes"] > 0 for r in records)
    assert "reader_kv_cache_bytes" in result.records().columns
