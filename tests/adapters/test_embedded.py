"""The packaged Gemma 3 270M reader, for real (no test double)."""

from __future__ import annotations

from pathlib import Path

import pytest

import memeval
from memeval.adapters.readers.embedded import EmbeddedReader
from memeval.records import read_records

from ..conftest import SCENARIOS

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def reader(gemma: EmbeddedReader) -> EmbeddedReader:
    return gemma  # the session's one load of the model


def test_answers_from_the_notes_in_one_line(reader: EmbeddedReader) -> None:
    context = "[2025-03-01 09:00] user: I adopted a beagle and named him Zorblat!"
    answers = reader.answer_many([("What is my dog's name?", context),
                                  ("What is my passport number?", "")])
    assert all("\n" not in a.text and a.text for a in answers)
    assert all(a.usage.input_tokens > 100 and 0 < a.usage.output_tokens <= 24 for a in answers)
    # the reader's own tokenizer, not a whitespace split
    assert reader.count_tokens("Zorblat") > 1
    assert reader.identity()["model"] == "gemma-3-270m-q4_k_m"


def test_batched_answers_equal_one_at_a_time(reader: EmbeddedReader) -> None:
    requests = [("Where do I live?", "user: I live in Lisbon."),
                ("What did I cook?", "user: Last night I cooked a lentil curry with lots of garlic.")]
    assert [a.text for a in reader.answer_many(requests)] == \
        [reader.answer(q, c).text for q, c in requests]


def test_run_with_the_default_reader_then_from_cache(tmp_path: Path) -> None:
    first = memeval.run(SCENARIOS / "quick" / "work-trip.yaml", backends=["oracle", "no_memory"],
                        out=tmp_path / "a", limit=3)
    cells = {c["backend"]: c for c in first.scores_json["cells"]}
    assert cells["oracle"]["evidence_retention"]["value"] == 1.0
    assert cells["no_memory"]["evidence_retention"]["value"] == 0.0
    records = read_records(first.run_dir)
    assert len(records) == 6 and all(r.error is None and r.answer is not None for r in records)
    assert all(r.usage.input_tokens > 0 for r in records)
    second = memeval.run(SCENARIOS / "quick" / "work-trip.yaml", backends=["oracle", "no_memory"],
                         out=tmp_path / "b", limit=3)
    again = read_records(second.run_dir)
    assert all(r.cached for r in again)
    assert [r.answer for r in again] == [r.answer for r in records]


def test_a_longer_answer_runs_past_the_first_line_on_both_decode_paths(reader: EmbeddedReader) -> None:
    context = ("[2025-03-01 09:00] user: I'm Mira, I bake bread in Lisbon and I run the clock club.\n"
               "[2025-03-02 09:00] user: My insurance number is QH-55821-7.")
    question = "Write a two-line public bio of me for my blog."
    longer = reader.with_answer_length(96, 4)
    assert longer.identity()["lines"] == 4 and "lines" not in reader.identity()
    fast = longer.answer(question, context)
    assert longer._decoder, "the fast decode path fell back to generate"
    generated = EmbeddedReader(max_new_tokens=96, lines=4, decode="generate")
    generated._model, generated._tokenizer = reader._model, reader._tokenizer  # one load of the model
    slow = generated.answer(question, context)
    assert slow.text == fast.text
    # the fast path stops where generate's stop strings do (a blank line), not at 96 tokens
    assert fast.text and fast.usage.output_tokens == slow.usage.output_tokens
    assert fast.text.startswith(reader.answer(question, context).text)  # greedy: one line first
