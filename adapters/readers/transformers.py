"""A local causal language model from a transformers folder; GPU when present.

Base models are prompted few-shot and answer until the first newline.
Prompts are batched (left padding, shortest first).
"""

from __future__ import annotations

import copy
import functools
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from memeval.adapters import quiet_transformers
from memeval.adapters.readers import PROMPT_ID, answer_lines, build_prompt, stop_strings
from memeval.adapters.readers.decode import answer_fast
from memeval.adapters.readers.kv import KvPolicy, formula_bytes
from memeval.adapters.readers.kv_read import answer_with_policy, ess_view
from memeval.protocols import Answer, Reader, Usage


# Readers of one model folder in one process share its tokenizer and weights (each run, and
# each KV policy or answer length of a run, builds its own reader): loading them again took
# seconds each time and held a second copy. Weights are only read; the attention switches
# of kv_read/ess/decode put the previous implementation back when they finish.
@functools.lru_cache(maxsize=2)
def _shared_tokenizer(folder: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    quiet_transformers()
    tok = AutoTokenizer.from_pretrained(folder)
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


@functools.lru_cache(maxsize=2)
def _shared_model(folder: str, device: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    quiet_transformers()
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).to(device).eval()


def cache_bytes(cache: Any) -> int:
    """Bytes held by the key and value tensors of a transformers KV cache."""
    total = 0
    for layer in getattr(cache, "layers", None) or []:
        for name in ("keys", "values"):
            tensor = getattr(layer, name, None)
            if tensor is not None and hasattr(tensor, "element_size"):
                total += tensor.numel() * tensor.element_size()
    if total == 0 and isinstance(cache, (tuple, list)):  # legacy tuple-of-tuples caches
        total = sum(t.numel() * t.element_size() for layer in cache for t in layer)
    return total


class TransformersReader(Reader):
    """Any local causal LM folder, greedy decoding, few-shot prompt.

    Args:
        model: Path of a transformers model folder (config, weights, tokenizer).
        max_new_tokens: Longest answer, in tokens.
        lines: Lines an answer may run to (1: it ends at the first newline).
        context_tokens: Largest prompt; backends fit their recall to it.
        device: "auto" (CUDA when available), "cpu" or "cuda[:N]".
        batch_size: Prompts generated together by `answer_many`.
        decode: "auto": greedy decoding in memeval's own loop (`decode.py`: static cache,
            shared prompt prefixes computed once, CUDA graphs on CUDA) where it applies,
            else `generate`; "compiled": the same with the step compiled by torch.compile;
            "generate": always transformers' `generate`.
        kv: KV-cache policy (`kv.py`): "full" (default), "window" (attention sinks and a
            recent window), "snapkv", "tova", "knorm" (score-based eviction) or "quant".
        ratio: Share of the notes' positions that eviction drops (default 0.5).
        sink: Attention-sink positions `window` keeps (default 4).
        window: Recent positions `window` keeps (default 256).
        bits: 8 or 4, for `quant` (default 8).
    """

    def __init__(self, model: str = "", max_new_tokens: int = 24, context_tokens: int = 8192,
                 device: str = "auto", batch_size: int = 8, decode: str = "auto",
                 kv: str = "full", ratio: float | None = None, sink: int | None = None,
                 window: int | None = None, bits: int | None = None, lines: int = 1):
        self.model = model
        self.max_new_tokens = max_new_tokens
        self.lines = lines
        self.context_tokens = context_tokens
        self.device = device
        self.batch_size = batch_size
        if decode not in ("auto", "compiled", "generate"):
            raise ValueError(f"decode={decode!r}: choose auto, compiled or generate")
        self.decode = decode
        self._decoder: Any = None  # the fast path's state; False once it does not apply
        self._model: Any = None
        self._tokenizer: Any = None
        self.kv_policy = KvPolicy.parse(kv, ratio=ratio, sink=sink, window=window, bits=bits)

    @property
    def name(self) -> str | None:
        """The label of a reader object under a KV policy (None: its class name)."""
        return None if self.kv_policy.kind == "full" else f"{type(self).__name__}:{self.kv_policy.label}"

    def model_path(self) -> Path:
        if not self.model:
            raise ValueError("give the model folder: transformers:model=PATH")
        return Path(self.model)

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    @property
    def tokenizer(self) -> Any:
        """The tokenizer alone: counting tokens (and a fully cached run) needs no weights."""
        if self._tokenizer is None:
            self._tokenizer = _shared_tokenizer(str(self.model_path()))
        return self._tokenizer

    def _load(self) -> None:
        if self._model is None:
            self._model = _shared_model(str(self.model_path()), self.resolved_device())

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0

    def _prompt(self, question: str, context: str) -> list[int]:
        tok = self.tokenizer
        budget = self.context_tokens - self.max_new_tokens
        ids = tok(build_prompt(question, context))["input_ids"]
        if len(ids) > budget:  # keep the newest notes: cut the context from its start
            ctx_ids = tok(context, add_special_tokens=False)["input_ids"]
            context = tok.decode(ctx_ids[len(ids) - budget:])
            ids = tok(build_prompt(question, context))["input_ids"][-budget:]
        return ids

    def answer(self, question: str, context: str) -> Answer:
        return self.answer_many([(question, context)])[0]

    def with_answer_length(self, tokens: int, lines: int) -> TransformersReader:
        """This reader, sharing its loaded model, answering in up to `tokens` tokens over
        `lines` lines."""
        longer = copy.copy(self)
        longer.max_new_tokens, longer.lines, longer._decoder = tokens, lines, None
        return longer

    def answer_many(self, requests: Sequence[tuple[str, str]]) -> list[Answer]:
        import torch

        self._load()
        tok = self.tokenizer
        prompts = [self._prompt(q, c) for q, c in requests]
        if self.kv_policy.kind != "full":
            return answer_with_policy(self, requests)
        if (fast := answer_fast(self, prompts)) is not None:
            return fast
        answers: list[Answer | None] = [None] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        cuda = self._model.device.type == "cuda"
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            batch = tok.pad({"input_ids": [prompts[i] for i in chunk]},
                            return_tensors="pt").to(self._model.device)
            if cuda:
                torch.cuda.synchronize(self._model.device)
                torch.cuda.reset_peak_memory_stats(self._model.device)
            began = time.perf_counter()
            with torch.inference_mode():
                out = self._model.generate(
                    **batch, max_new_tokens=self.max_new_tokens, do_sample=False,
                    stop_strings=stop_strings(self.lines),
                    tokenizer=tok, pad_token_id=tok.pad_token_id,
                    return_dict_in_generate=True, output_scores=True)
            if cuda:
                torch.cuda.synchronize(self._model.device)
            seconds = time.perf_counter() - began
            width = batch["input_ids"].shape[1]
            generated = out.sequences[:, width:]
            stats = self._stats(out, seconds, int((generated != tok.pad_token_id).sum()), cuda)
            # log-probability of each chosen token, from the scores generate returned
            chosen = torch.stack([torch.log_softmax(step.float(), dim=-1) for step in out.scores],
                                 dim=1).gather(-1, generated[:, :len(out.scores), None])[..., 0]
            for row, i in enumerate(chunk):
                keep = generated[row] != tok.pad_token_id
                new = generated[row][keep]
                text = answer_lines(tok.decode(new, skip_special_tokens=True), self.lines)
                logprobs = tuple(round(float(x), 4) for x in chosen[row][keep[:chosen.shape[1]]])
                answers[i] = Answer(text=text, stats=stats, logprobs=logprobs, usage=Usage(
                    input_tokens=len(prompts[i]), output_tokens=int(new.numel())))
        return [a for a in answers if a is not None]

    def continuation_logprobs(self, question: str, context: str,
                              continuations: Sequence[str]) -> list[float]:
        """Sum of token log-probabilities of " " + each continuation after `Answer:`.

        The prompt is encoded once; its cache is repeated over a batch of continuations.
        """
        import torch

        self._load()
        tok, model = self.tokenizer, self._model
        prompt = torch.tensor([self._prompt(question, context)], device=model.device)
        conts = [tok(" " + c, add_special_tokens=False)["input_ids"] for c in continuations]
        scores: list[float] = []
        with torch.inference_mode():
            head = model(prompt, use_cache=True)
            first = torch.log_softmax(head.logits[0, -1].float(), dim=-1)
            for start in range(0, len(conts), self.batch_size * 2):
                chunk = conts[start:start + self.batch_size * 2]
                width = max(len(c) for c in chunk)
                ids = torch.tensor([c + [tok.pad_token_id] * (width - len(c)) for c in chunk],
                                   device=model.device)
                cache = copy.deepcopy(head.past_key_values)
                cache.batch_repeat_interleave(len(chunk))
                mask = torch.ones(len(chunk), prompt.shape[1] + width, device=model.device,
                                  dtype=torch.long)
                logits = model(ids, past_key_values=cache, attention_mask=mask).logits.float()
                # log p(token) = logit - logsumexp, without a vocabulary-sized copy
                picked = logits[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
                logp = picked - torch.logsumexp(logits[:, :-1], dim=-1)
                for row, c in enumerate(chunk):
                    scores.append(first[c[0]].item() + logp[row, : len(c) - 1].sum().item())
        return scores

    def effective_state_size(self, question: str, context: str, marks: Sequence[tuple[str, int]]
                             ) -> list[dict[str, Any]]:
        """ESS of the prompt's attention at marked places of `context`, and at the question.

        Args:
            question: The probe's question.
            context: The recalled text, as the reader was given it.
            marks: (label, character offset in `context`) of session starts and planted facts.

        Returns:
            One {label, token, values} per place that survives prompt truncation, where
            values maps each metric to a layers × heads table.
        """
        from memeval.adapters.readers.ess import effective_state_size

        self._load()
        tok = self.tokenizer
        notes = context.strip()
        head = build_prompt(question, "\0")
        start = head.index("\0")
        prompt = build_prompt(question, context)
        shift = start - context.index(notes) if notes else start
        places = [(label, shift + offset) for label, offset in marks]
        places.append(("probe", prompt.rindex("\nQuestion:")))
        encoded = tok(prompt, return_offsets_mapping=True)
        ids, spans = encoded["input_ids"], encoded["offset_mapping"]
        cut = max(0, len(ids) - (self.context_tokens - self.max_new_tokens))
        token_of = []
        for label, char in places:
            index = next((k for k, (a, _) in enumerate(spans) if a >= char and k > 0), len(ids))
            token_of.append((label, index - cut))
        import torch

        view = None if self.kv_policy.kind == "full" else ess_view(  # ESS over what the policy keeps
            self._model, self.kv_policy, ids[cut:], token_of[-1][1])
        found = effective_state_size(self._model, torch.tensor([ids[cut:]], device=self._model.device),
                                     [t for _, t in token_of], view=view)
        return [{"label": label, "token": t, "values": found[t]}
                for label, t in token_of if t in found]

    def kv_bytes_formula(self, tokens: int) -> int:
        """2 × layers × KV heads × head dim × bytes per element × tokens (every layer holding
        every token, as the fast decode path's slot cache does)."""
        cfg = self._model.config.get_text_config()
        kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        return 2 * cfg.num_hidden_layers * kv_heads * head_dim * self._model.dtype.itemsize * tokens

    def _stats(self, out: Any, seconds: float, new_tokens: int, cuda: bool) -> dict[str, float]:
        import torch

        batch, length = out.sequences.shape
        # the last generated token is never fed back, so the cache holds one position less;
        # transformers' cache keeps a sliding-window layer's window only
        held = batch * formula_bytes(self._model, self.kv_policy, length - 1, 0)[1]
        stats = {"batch_size": batch, "kv_cache_bytes": cache_bytes(out.past_key_values),
                 "kv_cache_bytes_formula": held,
                 "tokens_per_s": round(new_tokens / seconds, 3) if seconds else 0.0}
        if cuda:
            stats["gpu_peak_allocated_bytes"] = torch.cuda.max_memory_allocated(self._model.device)
            stats["gpu_peak_reserved_bytes"] = torch.cuda.max_memory_reserved(self._model.device)
        return stats

    def identity(self) -> dict[str, object]:
        device = self.resolved_device()
        return {
            "reader": "transformers", "model": str(self.model_path().resolve()),
            "prompt": PROMPT_ID, "max_new_tokens": self.max_new_tokens,
            **({"lines": self.lines} if self.lines != 1 else {}),  # one line: keys as before
            "context_tokens": self.context_tokens, "decoding": "greedy", "logprobs": True,
            "dtype": "bfloat16" if device.startswith("cuda") else "float32",
            "device": device.split(":")[0], **self.kv_policy.identity(),
            # the loops agree on greedy tokens in the tests, but their attention kernels differ
            # in rounding: a near tie could fall the other way, so answers are not shared
            "decode_path": self.decode,
        }
