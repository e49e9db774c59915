"""memeval's own greedy decode loop (slot cache, shared prefixes, CUDA graphs) against
transformers' `generate`, on a model built from a config (random weights)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from memeval.adapters.readers import build_prompt  # noqa: E402
from memeval.adapters.readers.decode import (  # noqa: E402
    Decoder,
    longest_common_prefix,
    order_for_sharing,
    plan_layout,
    stop_token_ids,
    supports,
)
from memeval.adapters.readers.transformers import TransformersReader  # noqa: E402

from .tiny_model import build_tiny_model  # noqa: E402

HISTORY = ("[2025-03-01 09:00]\nuser: I adopted a beagle and named him Zorblat!\n"
           "assistant: Congratulations, Zorblat is a great name.\n") * 4
LATER = HISTORY + "[2025-04-02 18:30]\nuser: Big news, we moved to Porto last weekend.\n" * 3
REQUESTS = [
    ("What is my dog's name?", "user: I adopted a beagle named Zorblat!"),
    ("Where do we live?", "user: We moved to Porto."),
    ("What day?", ""),
    ("What is my dog's name?", HISTORY), ("Where do I live?", HISTORY),
    ("What is the name of the dog?", HISTORY), ("Which city?", HISTORY),
    ("What is my dog's name?", LATER), ("Where do I live now?", LATER),
    ("Answer: Question: Notes?", "user: " + "filler words. " * 30),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def _reader(tiny: Path, decode: str, device: str = "cpu", eos: int | None = None,
            batch_size: int = 4, max_new_tokens: int = 10) -> TransformersReader:
    reader = TransformersReader(model=str(tiny), device=device, max_new_tokens=max_new_tokens,
                                batch_size=batch_size, decode=decode)
    reader._load()
    if eos is not None:  # a token the random model does write, so that rows stop early
        reader._model.generation_config.eos_token_id = eos
    return reader


def _generate_ids(reader: TransformersReader, prompts: list[list[int]]) -> list[list[int]]:
    """Each prompt's answer tokens from `generate`, batched as the reader batches them."""
    tok = reader.tokenizer
    batch = tok.pad({"input_ids": prompts}, return_tensors="pt").to(reader._model.device)
    with torch.inference_mode():
        out = reader._model.generate(**batch, max_new_tokens=reader.max_new_tokens,
                                     do_sample=False, stop_strings=["\n"], tokenizer=tok,
                                     pad_token_id=tok.pad_token_id)
    new = out[:, batch["input_ids"].shape[1]:].cpu()
    return [row[row != tok.pad_token_id].tolist() for row in new]


def _fast_ids(reader: TransformersReader, prompts: list[list[int]], **options: Any
              ) -> list[list[int]]:
    tok, model = reader.tokenizer, reader._model
    decoder = Decoder(model, stop_token_ids(tok, model), tok.pad_token_id,
                      reader.max_new_tokens, **options)
    with torch.inference_mode():
        out = decoder.decode(prompts)
    new = out.tokens.cpu()
    return [row[row != tok.pad_token_id].tolist() for row in new]


def _eos_that_stops_some_rows(reader: TransformersReader, prompts: list[list[int]]) -> int:
    """A token that ends some answers after a few tokens and not others."""
    free = _generate_ids(reader, prompts)
    counts: dict[int, int] = {}
    for row in free:
        for t in set(row[2:]):
            counts[t] = counts.get(t, 0) + 1
    return min(counts, key=lambda t: abs(counts[t] - len(free) / 2))


def _prompts(reader: TransformersReader) -> list[list[int]]:
    return [reader._prompt(q, c) for q, c in REQUESTS]


def test_few_shot_prompt_shares_the_notes_and_differs_at_the_question(tiny: Path) -> None:
    reader = _reader(tiny, "auto")
    a, b = reader._prompt("Where do I live?", HISTORY), reader._prompt("Which city?", HISTORY)
    notes_end = len(reader.tokenizer(build_prompt("x", HISTORY).rsplit("\nQuestion:", 1)[0])
                    ["input_ids"])
    assert longest_common_prefix(a, b) >= notes_end - 1  # few-shot block and notes shared


def test_layout_computes_shared_segments_once_and_keeps_a_token_per_row() -> None:
    head, one, two = list(range(100)), list(range(500, 560)), list(range(700, 740))
    prompts = [[*head, *one, *two, 1], [*head, *one, *two, 2, 2], [*head, *one, 3],
               [*head, 7, 8, 9], [*head, *one, *two]]
    layout = plan_layout(prompts, min_shared=8)
    assert [[(n.start, len(n.tokens), n.parent) for n in level] for level in layout.levels] == \
        [[(0, 100, -1)], [(100, 60, 0)], [(160, 39, 0)]]  # the last row keeps its last token
    assert layout.leaf == [(2, 0), (2, 0), (1, 0), (0, 0), (2, 0)]
    assert [len(r) for r in layout.rest] == [2, 3, 1, 3, 1]
    assert layout.computed_tokens == 100 + 60 + 39 + 2 + 3 + 1 + 3 + 1
    assert layout.width == 199 + 3 <= 1.25 * max(map(len, prompts))
    assert plan_layout(prompts, min_shared=1000).computed_tokens == sum(map(len, prompts))
    # gaps wider than the longest prompt allows: only the prefix every row shares is kept
    wide = [[*head, *one, *one, *one, 1], [*head, *one, *one, *one, 2], [*head, *range(900, 1050)]]
    kept = plan_layout(wide, min_shared=8)
    assert len(kept.levels) == 1 and kept.width == max(map(len, wide))


def test_order_puts_prompts_of_one_history_together() -> None:
    a, b = [1] * 50 + [2] * 40, [1] * 50 + [3] * 40
    prompts = [[*a, 9], [*b, 9], [*a, 8, 8], [*b, 8, 8]]
    order = order_for_sharing(prompts, min_shared=16)
    assert {frozenset(order[:2]), frozenset(order[2:])} == {frozenset({0, 2}), frozenset({1, 3})}


@pytest.mark.parametrize("stops", [False, True])
def test_token_ids_equal_generate_on_cpu(tiny: Path, stops: bool) -> None:
    reader = _reader(tiny, "generate")
    prompts = _prompts(reader)
    if stops:
        reader._model.generation_config.eos_token_id = _eos_that_stops_some_rows(reader, prompts)
    for chunk in (prompts[:4], prompts[3:9], prompts):
        expected = _generate_ids(reader, chunk)
        assert _fast_ids(reader, chunk) == expected  # shared prefixes
        assert _fast_ids(reader, chunk, share=False) == expected
    if stops:
        lengths = {len(r) for r in _generate_ids(reader, prompts)}
        assert len(lengths) > 1 and min(lengths) < reader.max_new_tokens


def test_reader_answers_equal_generate_on_cpu(tiny: Path) -> None:
    slow = _reader(tiny, "generate")
    eos = _eos_that_stops_some_rows(slow, _prompts(slow))
    slow._model.generation_config.eos_token_id = eos
    fast = _reader(tiny, "auto", eos=eos)
    expected, got = slow.answer_many(REQUESTS), fast.answer_many(REQUESTS)
    assert isinstance(fast._decoder, Decoder) and slow._decoder is None
    assert [a.text for a in got] == [a.text for a in expected]
    assert [a.usage for a in got] == [a.usage for a in expected]
    for a, b in zip(got, expected, strict=True):
        assert a.logprobs is not None and b.logprobs is not None
        assert len(a.logprobs) == len(b.logprobs)
        assert max((abs(x - y) for x, y in zip(a.logprobs, b.logprobs, strict=True)),
                   default=0) <= 2e-3
    for a in got:
        s = a.stats
        assert s["kv_cache_bytes"] == s["kv_cache_bytes_formula"] > 0
        assert s["kv_cache_allocated_bytes"] >= s["kv_cache_bytes"]
        assert s["tokens_per_s"] > 0 and s["prefill_s"] > 0 and s["decode_s"] >= 0
        assert "gpu_peak_allocated_bytes" not in s


def test_probes_after_one_session_prefill_their_history_once(tiny: Path) -> None:
    reader = _reader(tiny, "auto", batch_size=8)
    questions = [f"Question number {i}?" for i in range(8)]
    answers = reader.answer_many([(q, LATER) for q in questions])
    prompts = [reader._prompt(q, LATER) for q in questions]
    stats = answers[0].stats
    full = sum(map(len, prompts))
    assert stats["prefill_tokens"] + stats["shared_prefix_tokens"] == full
    assert stats["prefill_tokens"] < 1.5 * len(prompts[0])  # not 8 times the history
    # every probe still reports the tokens and the cache it decodes from
    assert [a.usage.input_tokens for a in answers] == [len(p) for p in prompts]
    width = max(map(len, prompts))
    steps = max(a.usage.output_tokens for a in answers)
    assert stats["kv_cache_bytes"] == reader.kv_bytes_formula(8 * (width + steps - 1))
    alone = TransformersReader(model=str(tiny), device="cpu", max_new_tokens=10, decode="generate")
    assert [a.text for a in answers] == [a.text for a in alone.answer_many(
        [(q, LATER) for q in questions])]


def test_generate_stays_where_the_loop_does_not_apply(tiny: Path) -> None:
    reader = _reader(tiny, "generate")
    answers = reader.answer_many(REQUESTS[:2])
    assert reader._decoder is None and "prefill_s" not in answers[0].stats
    policy = _reader(tiny, "auto")
    policy.kv = "window"  # a KV-cache policy: generate's caches implement it
    assert "prefill_s" not in policy.answer_many(REQUESTS[:2])[0].stats
    assert supports(reader._model) is None
    with pytest.raises(ValueError, match="decode="):
        TransformersReader(model=str(tiny), decode="fast")


@pytest.mark.model
def test_packaged_gemma_answers_equal_generate_on_cpu() -> None:
    """Gemma 3 mixes sliding-window and full layers: prompts longer than its window."""
    from memeval.adapters.readers.embedded import EmbeddedReader

    reader = EmbeddedReader(device="cpu", max_new_tokens=12)
    reader._load()
    long = "user: " + " ".join(f"note {i} says the code is {i * 7}." for i in range(90))
    requests = [("What is the code of note 3?", long), ("What does note 80 say?", long),
                ("What is my dog's name?", HISTORY)]
    prompts = [reader._prompt(q, c) for q, c in requests]
    assert max(map(len, prompts)) > reader._model.config.sliding_window
    assert _fast_ids(reader, prompts) == _generate_ids(reader, prompts)


@pytest.mark.gpu
def test_graphed_decode_equals_generate_on_the_gpu(tiny: Path) -> None:
    reader = _reader(tiny, "generate", device="cuda")
    reader._model.float()  # float32 on both sides: only the kernels differ
    prompts = _prompts(reader)
    reader._model.generation_config.eos_token_id = _eos_that_stops_some_rows(reader, prompts)
    expected = _generate_ids(reader, prompts)
    assert _fast_ids(reader, prompts) == expected
    assert _fast_ids(reader, prompts, graphs=False) == expected
    assert _fast_ids(reader, prompts, share=False) == expected


@pytest.mark.gpu
def test_graphed_reader_on_the_gpu(tiny: Path) -> None:
    reader = _reader(tiny, "auto", device="cuda", batch_size=8)
    answers = reader.answer_many(REQUESTS * 2)
    assert isinstance(reader._decoder, Decoder) and reader._decoder._graphs
    again = reader.answer_many(REQUESTS * 2)  # replays the captured graphs
    assert [a.text for a in again] == [a.text for a in answers]
    stats = answers[0].stats
    assert stats["gpu_peak_reserved_bytes"] >= stats["gpu_peak_allocated_bytes"] > 0
    assert stats["kv_cache_bytes"] == stats["kv_cache_bytes_formula"] > 0
    assert reader.identity()["dtype"] == "bfloat16"
