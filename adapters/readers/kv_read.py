"""Reading a prompt and answering under a KV-cache policy (`kv.py`): one prompt at a time,
the notes first, then eviction, then the question and a greedy answer; and the cache's view
for the effective state size."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

from memeval.adapters.readers import answer_ended, answer_lines
from memeval.adapters.readers.kv import (
    EVICTION,
    OBSERVED,
    KvPolicy,
    fake_quantize,
    formula_bytes,
    held_bytes,
    new_cache,
)
from memeval.protocols import Answer, Usage

IMPLEMENTATION = "memeval_kv"

_SCORES: ContextVar[dict[Any, Any] | None] = ContextVar("memeval_kv_scores", default=None)


def _observed(query: Any, key: Any, scaling: float, window: int | None, rule: str) -> Any:
    """Attention of the last queries over the keys: (batch, KV heads, keys)."""
    import torch

    batch, heads, length, dim = query.shape
    kv_heads, n = key.shape[1], key.shape[2]
    obs = min(OBSERVED if rule == "snapkv" else 1, length)
    group = heads // kv_heads
    q = query[:, :, -obs:].float().reshape(batch, kv_heads, group * obs, dim)
    scores = (q @ key.float().transpose(-1, -2)).view(batch, kv_heads, group, obs, n) * scaling
    rows = torch.arange(n - obs, n, device=key.device)[:, None]
    cols = torch.arange(n, device=key.device)[None]
    allowed = cols <= rows
    if window:
        allowed &= cols > rows - window
    probs = scores.masked_fill(~allowed, float("-inf")).softmax(-1).mean(3)  # over queries
    if rule == "tova":
        return probs.mean((1, 2))[:, None].expand(batch, kv_heads, n)
    pooled = torch.nn.functional.avg_pool1d(probs.mean(2), 5, stride=1, padding=2,
                                            count_include_pad=False)
    pooled[..., -obs:] = float("inf")  # SnapKV keeps its observation window
    return pooled


def _attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
               scaling: float | None = None, **kwargs: Any) -> Any:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    found = _SCORES.get()
    if found is not None:
        found[module.layer_idx] = _observed(
            query, key, scaling if scaling is not None else query.shape[-1] ** -0.5,
            getattr(module, "sliding_window", None), found["rule"])
    return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling, **kwargs)


@contextlib.contextmanager
def _scoring(model: Any, rule: str) -> Iterator[dict[Any, Any]]:
    """Attention scores per layer index during one forward pass (sdpa computes the output)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(IMPLEMENTATION, _attention)
    AttentionMaskInterface.register(IMPLEMENTATION, sdpa_mask)
    found: dict[Any, Any] = {"rule": rule}
    before = model.config._attn_implementation
    model.set_attn_implementation(IMPLEMENTATION)
    token = _SCORES.set(found)
    try:
        yield found
    finally:
        _SCORES.reset(token)
        model.set_attn_implementation(before)


def _forward(model: Any, cache: Any, ids: Sequence[int], start: int) -> Any:
    """Logits of the last of `ids`, read at positions start, start + 1, ..."""
    import torch

    tokens = torch.tensor([list(ids)], device=model.device)
    positions = torch.arange(start, start + len(ids), device=model.device)[None]
    out = model(input_ids=tokens, position_ids=positions, use_cache=True, logits_to_keep=1,
                **{_cache_keyword(model): cache})
    if cache.layers[0].policy.kind == "window":  # StreamingLLM evicts at every step
        policy = cache.layers[0].policy
        for layer in cache.layers:
            if layer.stored() > policy.sink + policy.window:
                layer.keep(_sink_and_window(layer, policy))
    return out.logits[0, -1]


def _cache_keyword(model: Any) -> str:
    """`cache` from transformers 5.2x on (`past_key_values` still works there, with a warning)."""
    import inspect

    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _sink_and_window(layer: Any, policy: KvPolicy) -> Any:
    import torch

    n = layer.stored()
    index = torch.cat([torch.arange(policy.sink), torch.arange(n - policy.window, n)])
    return index.to(layer.keys.device).expand(*layer.keys.shape[:2], -1)


def read_prompt(model: Any, cache: Any, ids: Sequence[int], split: int) -> Any:
    """Read the notes (`ids[:split]`), evict, then read the question: its last logits."""
    policy: KvPolicy = cache.layers[0].policy
    scoring = policy.kind in ("snapkv", "tova")
    scores: dict[Any, Any] = {}
    with contextlib.ExitStack() as stack:
        if scoring:
            scores = stack.enter_context(_scoring(model, policy.kind))
        _forward(model, cache, ids[:split], 0)
    if policy.kind in EVICTION and policy.ratio > 0:
        for index, layer in enumerate(cache.layers):
            n = layer.stored()
            if (kept := n - math.floor(policy.ratio * n)) >= n:
                continue
            rank = scores[index][..., -n:] if scoring else -layer.keys.float().norm(dim=-1)
            layer.keep(rank.topk(kept, dim=-1).indices.sort(dim=-1).values)
    return _forward(model, cache, ids[split:], split)


def question_start(tokenizer: Any, ids: Sequence[int], question: str) -> int:
    """Index of the first token of the prompt's question block (the notes end before it)."""
    tail = tokenizer(f"\nQuestion: {question.strip()}\nAnswer:", add_special_tokens=False)
    return max(1, len(ids) - len(tail["input_ids"]))


def answer_with_policy(reader: Any, requests: Sequence[tuple[str, str]]) -> list[Answer]:
    """Greedy answers under `reader.kv_policy`, one prompt at a time, with its KV figures."""
    import torch

    reader._load()
    model, tok, policy = reader._model, reader.tokenizer, reader.kv_policy
    stops = {tok.eos_token_id, *_as_list(model.generation_config.eos_token_id)} - {None}
    cuda = model.device.type == "cuda"
    answers = []
    for question, context in requests:
        ids = reader._prompt(question, context)
        split = question_start(tok, ids, question)
        if cuda:
            torch.cuda.synchronize(model.device)
            torch.cuda.reset_peak_memory_stats(model.device)
        began = time.perf_counter()
        cache = new_cache(model, policy)
        new: list[int] = []
        logprobs: list[float] = []
        with torch.inference_mode():
            logits = read_prompt(model, cache, ids, split)
            while True:
                logp = torch.log_softmax(logits.float(), dim=-1)
                token = int(logp.argmax())
                new.append(token)
                logprobs.append(round(float(logp[token]), 4))
                if (token in stops or answer_ended(tok.decode(new), reader.lines)
                        or len(new) >= reader.max_new_tokens):
                    break
                logits = _forward(model, cache, [token], len(ids) + len(new) - 1)
        if cuda:
            torch.cuda.synchronize(model.device)
        seconds = time.perf_counter() - began
        answers.append(Answer(
            text=answer_lines(tok.decode(new, skip_special_tokens=True), reader.lines),
            logprobs=tuple(logprobs),
            stats=policy_stats(model, policy, cache, split, len(ids) - split + len(new) - 1,
                               len(new) / seconds if seconds else 0.0),
            usage=Usage(input_tokens=len(ids), output_tokens=len(new))))
    return answers


def policy_stats(model: Any, policy: KvPolicy, cache: Any, notes: int, later: int,
                 tokens_per_s: float) -> dict[str, float]:
    """A record's figures: bytes held (measured and by formula), full-cache bytes, ratio."""
    import torch

    held = held_bytes(cache)
    formula, full = formula_bytes(model, policy, notes, later)
    stats: dict[str, float] = {
        "batch_size": 1, "kv_cache_bytes": held, "kv_cache_bytes_formula": formula,
        "kv_full_cache_bytes": full, "kv_compression_ratio": round(full / held, 4) if held else 0.0,
        "tokens_per_s": round(tokens_per_s, 3)}
    if model.device.type == "cuda":
        stats["gpu_peak_allocated_bytes"] = torch.cuda.max_memory_allocated(model.device)
        stats["gpu_peak_reserved_bytes"] = torch.cuda.max_memory_reserved(model.device)
    return stats


def ess_view(model: Any, policy: KvPolicy, ids: Sequence[int], split: int
             ) -> Callable[[int, Any], tuple[Any, Any]]:
    """For ESS under `policy`: per layer, the keys as the cache gives them back and which
    prompt positions it still holds once the question is read (KV heads × positions)."""
    import torch

    if policy.kind == "quant":
        return lambda layer, key: (fake_quantize(key, policy.bits), None)
    cache = new_cache(model, policy, track=True)
    with torch.inference_mode():
        read_prompt(model, cache, ids, split)
    kept = []
    for layer in cache.layers:
        mask = torch.zeros(layer.positions.shape[1], len(ids), dtype=torch.bool,
                           device=layer.positions.device)
        kept.append(mask.scatter_(1, layer.positions[0], True))
    return lambda layer, key: (key, kept[layer])


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
