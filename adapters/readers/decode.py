"""Greedy decoding in a loop of our own, for the transformers reader's full-cache default.

`generate` grows a dynamic cache by concatenation and launches every kernel from Python at
every step; on a GPU that keeps decode at a few percent of what the memory bandwidth allows.
This loop instead

- writes keys and values into preallocated tensors (`SlotCache`): one slot per token, rows
  aligned so that every row writes its next token into the same slot;
- runs one decode step as a replayed CUDA graph on CUDA (eager elsewhere), with the stop
  test on the device, so the host synchronises only every few steps;
- computes a prompt prefix shared by several prompts once: the common prefix of the batch
  (the few-shot block, and the notes the prompts share) at batch 1, then a prefix shared
  by a group of prompts (the same recalled history asked several questions), then each
  prompt's own rest. Every row gets a full copy of its prefix, so the cache each probe
  decodes from, and the KV bytes it reports, are what it would hold alone.

Rows may hold unused slots (left padding, and the gap between a group's prefix and a row's
own rest). Each slot carries the position of its token, so rotary positions and the
sliding-window masks count tokens, not slots, and an unused slot is never attended to.

Greedy answers are those of `generate(do_sample=False, stop_strings=["\\n"])`: the same
argmax over float32 logits, the same stop rule (the token that completes a newline, or
end of sequence, is the row's last; later tokens are padding), up to floating-point
differences of the attention kernels.
One file on purpose: the cache layout, the attention over it, the captured step and the
prefix tree share one slot convention (positions, padding, gaps); split, each part would
have to restate it.
"""

from __future__ import annotations

import inspect
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from memeval.protocols import Answer, Usage

#: Name under which the attention function below is registered with transformers.
ATTENTION = "memeval_slots"

#: A shared prefix is computed once when it is at least this many tokens.
MIN_SHARED = 32

#: CUDA graphs are captured for cache lengths rounded up to this many slots, so that
#: batches of nearby widths replay the same graph.
SLOT_BUCKET = 256

#: Prompt columns computed per forward pass of a prefill.
PREFILL_CHUNK = 512
#: The host looks at the device's "all rows stopped" flag after this many steps.
CHECK_EVERY = 8


def _attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
               dropout: float = 0.0, scaling: float | None = None, softcap: float | None = None,
               **kwargs: Any) -> tuple[Any, None]:
    """Attention over a slot cache with a boolean mask (True: attend) of the written slots."""
    import torch
    import torch.nn.functional as F

    mask = attention_mask
    used = mask.shape[-1]  # slots past the mask are not written yet: never read them
    key, value = key[:, :, :used], value[:, :, :used]
    batch, heads, q_len, dim = query.shape
    groups = heads // key.shape[1]
    if softcap is not None:  # Gemma 2 caps the scores: written out, as eager attention does
        if groups > 1:
            key = key.repeat_interleave(groups, dim=1)
            value = value.repeat_interleave(groups, dim=1)
        scores = torch.matmul(query, key.transpose(2, 3)) * (scaling or dim ** -0.5)
        scores = torch.tanh(scores / softcap) * softcap
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores.float(), dim=-1).to(query.dtype)
        return torch.matmul(weights, value).transpose(1, 2).contiguous(), None
    if q_len == 1 and groups > 1:
        # one query per row: the query heads of a key head become its "query positions",
        # so each key and value is read once, not once per query head
        packed = query.reshape(batch, heads // groups, groups, dim)
        out = F.scaled_dot_product_attention(packed, key, value, attn_mask=mask, scale=scaling)
        return out.reshape(batch, heads, 1, dim).transpose(1, 2).contiguous(), None
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scaling)
    return out.transpose(1, 2).contiguous(), None


def _register_attention() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(ATTENTION, _attention)


def _cache_class() -> type:
    from transformers.cache_utils import Cache

    class SlotCache(Cache):
        """Preallocated keys and values; each forward writes at the slots in `slots`."""

        def __init__(self, keys: list[Any], values: list[Any], slots: Any):
            super().__init__(layers=[])
            self.keys, self.values, self.slots = keys, values, slots

        def update(self, key_states: Any, value_states: Any, layer_idx: int, *args: Any,
                   **kwargs: Any) -> tuple[Any, Any]:
            keys, values = self.keys[layer_idx], self.values[layer_idx]
            keys.index_copy_(2, self.slots, key_states)
            values.index_copy_(2, self.slots, value_states)
            return keys, values

        def get_seq_length(self, layer_idx: int = 0) -> int:
            return 0  # positions are always passed explicitly

    return SlotCache


def longest_common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def order_for_sharing(prompts: Sequence[Sequence[int]], min_shared: int = MIN_SHARED) -> list[int]:
    """Prompt indices ordered so that prompts sharing a long prefix are neighbours.

    Prompts sorted by their tokens are cut into runs whose common prefix goes at least
    `min_shared` tokens past the prefix all prompts share; runs are ordered by length (as the
    `generate` path orders prompts, to keep padding small), and so are prompts inside a run.
    """
    if not prompts:
        return []
    base = min(longest_common_prefix(prompts[0], p) for p in prompts)
    lexical = sorted(range(len(prompts)), key=lambda i: list(prompts[i]))
    runs: list[list[int]] = [[lexical[0]]]
    shared = len(prompts[lexical[0]])
    for i in lexical[1:]:
        common = min(shared, longest_common_prefix(prompts[runs[-1][-1]], prompts[i]))
        if common >= base + min_shared:
            runs[-1].append(i)
            shared = common
        else:
            runs.append([i])
            shared = len(prompts[i])
    for run in runs:
        run.sort(key=lambda i: len(prompts[i]))
    runs.sort(key=lambda run: (len(prompts[run[-1]]), run[0]))
    return [i for run in runs for i in run]


@dataclass
class Node:
    """A prompt segment shared by several rows, computed once.

    Attributes:
        tokens: The segment.
        start: Its position in each of its rows' prompts.
        parent: Index of the node it continues, in the level above (-1: none).
    """

    tokens: list[int]
    start: int
    parent: int


@dataclass
class Layout:
    """Where each row's tokens go in the cache, and which parts are computed once.

    Shared segments form a tree: level d holds segments that continue a segment of level
    d - 1. Level d's segments occupy the same slots in every row (`offsets[d]` on, as many
    as its longest segment); each row's own rest ends at slot `width` - 1, after every level.

    Attributes:
        levels: The shared segments, level by level.
        offsets: First slot of each level, and (last) of the rows' own rests' region.
        leaf: Per row, (level, node) of the last shared segment it continues, or None.
        rest: Per row, its tokens after that segment.
        width: Slots up to and including every row's last prompt token.
        lengths: Per row, its prompt length.
    """

    levels: list[list[Node]]
    offsets: list[int]
    leaf: list[tuple[int, int] | None]
    rest: list[list[int]]
    width: int
    lengths: list[int]

    @property
    def computed_tokens(self) -> int:
        """Prompt tokens run through the model: each shared segment once."""
        return sum(len(n.tokens) for level in self.levels for n in level) + sum(map(len, self.rest))


def plan_layout(prompts: Sequence[Sequence[int]], min_shared: int = MIN_SHARED,
                max_widen: float = 1.25) -> Layout:
    """Find the segments several prompts share (at least `min_shared` tokens) and lay them out.

    Every row keeps at least its last token as its own (its logits start the answer). When
    the gaps the tree leaves would widen the batch by more than `max_widen` over its longest
    prompt (more reads in every decode step than the prefill saves), only the prefix all
    rows share is kept.
    """
    rows = [list(p) for p in prompts]
    lengths = [len(r) for r in rows]
    levels: list[list[Node]] = []
    leaf: list[tuple[int, int] | None] = [None] * len(rows)
    starts = [0] * len(rows)

    def by_token(members: list[int], at: int) -> list[list[int]]:
        parts: dict[int, list[int]] = {}
        for i in members:
            parts.setdefault(rows[i][at], []).append(i)
        return list(parts.values())

    def split(members: list[int], start: int, depth: int, parent: int) -> None:
        # every member is longer than `start`: each keeps its last token
        pending = by_token(members, start)
        while pending:
            group = pending.pop()
            if len(group) == 1:
                continue
            cap = min(lengths[i] for i in group) - 1
            end = min(cap, start + min(longest_common_prefix(rows[group[0]][start:], rows[i][start:])
                                       for i in group))
            if end - start >= min_shared:
                while len(levels) <= depth:
                    levels.append([])
                levels[depth].append(Node(rows[group[0]][start:end], start, parent))
                node = (depth, len(levels[depth]) - 1)
                for i in group:
                    leaf[i], starts[i] = node, end
                split(group, end, depth + 1, node[1])
            elif end < cap:  # they part soon: some of them may still share a long stretch
                pending.extend(by_token(group, end))

    split(list(range(len(rows))), 0, 0, -1)
    offsets = [0]
    for level in levels:
        offsets.append(offsets[-1] + max(len(n.tokens) for n in level))
    rest = [r[s:] for r, s in zip(rows, starts, strict=True)]
    width = offsets[-1] + max(map(len, rest))
    if levels and width > max_widen * max(lengths):
        whole = levels[0][0] if len(levels[0]) == 1 and all(leaf) else None
        if whole is None or len(levels) == 1:
            return plan_layout(prompts, min_shared=1 << 30)
        # keep the prefix every row shares
        n = len(whole.tokens)
        return Layout([[whole]], [0, n], [(0, 0)] * len(rows), [r[n:] for r in rows],
                      n + max(lengths) - n, lengths)
    return Layout(levels, offsets, leaf, rest, width, lengths)


@dataclass
class Decoded:
    """One batch's greedy decode, laid out as `generate` returns it."""

    tokens: Any  # (batch, steps): generated ids, pad after a row's stop
    logprobs: Any  # (batch, steps): log-probability of each token in `tokens`
    prefill_s: float
    decode_s: float
    slots: int  # cache slots holding tokens at the end (width + steps - 1)
    allocated_bytes: int  # bytes of the key and value tensors allocated for the batch
    computed_tokens: int  # prompt tokens run through the model (shared parts once)
    shared_tokens: int  # prompt tokens that came from a shared prefix instead


class _Graph:
    """A captured decode step for one (batch, slots) shape, with its static tensors."""

    def __init__(self, decoder: Decoder, batch: int, slots: int, steps: int):
        import torch

        self.batch, self.slots_len = batch, slots
        d = decoder
        dev = d.device
        self.keys = [torch.zeros(batch, d.kv_heads, slots, d.head_dim, dtype=d.dtype, device=dev)
                     for _ in range(d.layers)]
        self.values = [torch.zeros_like(k) for k in self.keys]
        self.slot_pos = torch.full((batch, slots), -1, dtype=torch.long, device=dev)
        self.tok = torch.zeros(batch, 1, dtype=torch.long, device=dev)
        self.pos = torch.zeros(batch, dtype=torch.long, device=dev)
        self.slot = torch.zeros(1, dtype=torch.long, device=dev)
        self.step = torch.zeros(1, dtype=torch.long, device=dev)
        self.done = torch.zeros(batch, dtype=torch.bool, device=dev)
        self.out_tok = torch.zeros(batch, steps, dtype=torch.long, device=dev)
        self.out_lp = torch.zeros(batch, steps, dtype=torch.float32, device=dev)
        self.all_done = torch.zeros(steps, dtype=torch.bool, device=dev)
        self.cache = d.cache_class(self.keys, self.values, self.slot)
        self.graph: Any = None

    def run(self, decoder: Decoder) -> None:
        """One decode step on the static tensors (what the graph replays)."""
        decoder.step_fn(self)

    def capture(self, decoder: Decoder) -> None:
        import torch

        stream = torch.cuda.Stream(device=decoder.device)
        stream.wait_stream(torch.cuda.current_stream(decoder.device))
        with torch.cuda.stream(stream):
            for _ in range(2):  # warm-up outside the graph (cuBLAS handles, lazy inits)
                self.run(decoder)
        torch.cuda.current_stream(decoder.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.run(decoder)
        self.graph = graph


class Decoder:
    """Greedy decoding with a slot cache, shared prefixes and (on CUDA) a graphed step.

    Args:
        model: A transformers causal LM in eval mode.
        stop_ids: Token ids after which a row stops (it is kept, later tokens are padding).
        pad_id: The padding id written after a row's stop.
        max_new_tokens: Longest answer, in tokens.
        graphs: Replay the decode step as a CUDA graph (CUDA only).
        share: Compute prefixes shared by several prompts once.
        compile: Compile the decode step with torch.compile (fused kernels) before it is
            captured; the first batch of each shape then waits for the compiler.
    """

    def __init__(self, model: Any, stop_ids: Sequence[int], pad_id: int, max_new_tokens: int,
                 graphs: bool = True, share: bool = True, compile: bool = False):
        import torch

        _register_attention()
        self.model = model
        self.device = model.device
        self.dtype = model.dtype
        cfg = model.config.get_text_config()
        self.layers = cfg.num_hidden_layers
        self.kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        types = list(getattr(cfg, "layer_types", None) or [])
        self.window = getattr(cfg, "sliding_window", None) if "sliding_attention" in types else None
        self.mask_dict = "sliding_attention" in types
        self.pad_id = pad_id
        self.max_new_tokens = max_new_tokens
        self.graphs = graphs and self.device.type == "cuda"
        self.share = share
        vocab = model.get_output_embeddings().weight.shape[0]
        table = torch.zeros(max(vocab, max(stop_ids, default=0) + 1), dtype=torch.bool)
        table[list(stop_ids)] = True
        self.stop_table = table.to(self.device)
        self.cache_class = _cache_class()
        params = inspect.signature(model.forward).parameters
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        self._graphs: dict[tuple[int, int], _Graph] = {}
        self.step_fn: Any = torch.compile(self.step, dynamic=False) if compile else self.step

    # ---- the model call -------------------------------------------------------------------

    def _masks(self, valid_pos: Any, qpos: Any, qslots: Any, used: int, self_slots: bool) -> Any:
        """Boolean masks (rows, 1, queries, used slots) for full and sliding attention."""
        import torch

        kpos = valid_pos[:, None, :used]  # (rows, 1, used); -1 where no token
        q = qpos[:, :, None]  # (rows, queries, 1)
        full = (kpos >= 0) & (kpos <= q)
        sliding = full & (kpos > q - self.window) if self.window else full
        if self_slots:  # a padding query sees itself, so its (unused) outputs stay finite
            eye = torch.arange(used, device=qpos.device)[None, None, :] == qslots[None, :, None]
            full, sliding = full | eye, sliding | eye
        full, sliding = full[:, None], sliding[:, None]
        return {"full_attention": full, "sliding_attention": sliding} if self.mask_dict else full

    def _forward(self, cache: Any, ids: Any, qpos: Any, mask: Any) -> Any:
        """float32 logits of each row's last query."""
        out = self.model(input_ids=ids, position_ids=qpos, attention_mask=mask, use_cache=True,
                         logits_to_keep=1, **{self.cache_kw: cache})
        return out.logits[:, -1].float()

    def _prefill_part(self, keys: list[Any], values: list[Any], slot_pos: Any, ids: Any,
                      pos: Any, start: int) -> Any:
        """Run `ids` (rows, n) into slots start..start+n-1; pos -1 marks padding."""
        import torch

        n = ids.shape[1]
        slot_pos[:, start:start + n] = pos
        logits = None
        # PREFILL_CHUNK columns at a time: attention over a chunk holds rows × heads × chunk ×
        # slots scores, not rows × heads × n × slots (gigabytes for a batch of long notes)
        for a in range(0, n, PREFILL_CHUNK):
            b = min(n, a + PREFILL_CHUNK)
            slots = torch.arange(start + a, start + b, device=self.device)
            qpos = pos[:, a:b].clamp(min=0)
            mask = self._masks(slot_pos, qpos, slots, start + b, self_slots=True)
            logits = self._forward(self.cache_class(keys, values, slots), ids[:, a:b], qpos, mask)
        return logits

    # ---- one step -------------------------------------------------------------------------

    def step(self, g: Any) -> None:
        """Feed `g.tok` at slot `g.slot`; record the next token, its log-probability, stops."""

        g.slot_pos.index_copy_(1, g.slot, g.pos[:, None])
        mask = self._masks(g.slot_pos, g.pos[:, None], g.slot, g.slot_pos.shape[1],
                           self_slots=False)
        logits = self._forward(g.cache, g.tok, g.pos[:, None], mask)
        self._choose(g, logits)
        g.pos.add_(1)
        g.slot.add_(1)

    def _choose(self, g: Any, logits: Any) -> None:
        import torch

        logp = torch.log_softmax(logits, dim=-1)
        nxt = torch.where(g.done, self.pad_id, logits.argmax(dim=-1))
        g.out_tok.index_copy_(1, g.step, nxt[:, None])
        g.out_lp.index_copy_(1, g.step, logp.gather(-1, nxt[:, None]))
        g.done |= self.stop_table[nxt]
        g.all_done.index_copy_(0, g.step, g.done.all()[None])
        g.tok.copy_(nxt[:, None])
        g.step.add_(1)

    # ---- a batch --------------------------------------------------------------------------

    def _state(self, batch: int, slots: int) -> _Graph:
        """The static tensors (and graph) for this shape; captured on first use on CUDA."""
        if not self.graphs:
            return _Graph(self, batch, slots, self.max_new_tokens)
        key = (batch, -(-slots // SLOT_BUCKET) * SLOT_BUCKET)
        g = self._graphs.get(key)
        if g is None:
            while len(self._graphs) >= 2:  # each shape holds a full cache: keep few
                self._graphs.pop(next(iter(self._graphs)))
            g = _Graph(self, key[0], key[1], self.max_new_tokens)
            g.capture(self)
            self._graphs[key] = g
        return g

    @contextmanager
    def _own_attention(self) -> Iterator[None]:
        """The model's attention layers call `_attention` (masks over slots) meanwhile."""
        config = self.model.config
        before = config._attn_implementation
        config._attn_implementation = ATTENTION
        try:
            yield
        finally:
            config._attn_implementation = before

    def decode(self, prompts: Sequence[Sequence[int]],
               ended: Callable[[Any], bool] | None = None) -> Decoded:
        """Greedy answers to one batch of token prompts.

        `ended`, given the tokens generated so far (batch, steps), says whether every row
        already holds its whole answer: a stop rule no single token decides (a blank line), so
        the host asks it each time it looks at the stop flags.
        """
        with self._own_attention():
            return self._decode(prompts, ended)

    def _decode(self, prompts: Sequence[Sequence[int]],
                ended: Callable[[Any], bool] | None) -> Decoded:
        import torch

        layout = plan_layout(prompts) if self.share else plan_layout(prompts, min_shared=1 << 30)
        batch = len(prompts)
        needed = layout.width + self.max_new_tokens - 1
        cuda = self.device.type == "cuda"
        g = self._state(batch, needed)
        began = time.perf_counter()
        g.slot_pos.fill_(-1)
        g.done.fill_(False)
        g.step.zero_()
        g.all_done.fill_(False)
        self._prefill(g, layout)
        if cuda:
            torch.cuda.synchronize(self.device)
        prefill_s = time.perf_counter() - began
        began = time.perf_counter()
        steps = 1
        while steps < self.max_new_tokens:
            run = min(CHECK_EVERY, self.max_new_tokens - steps)
            for _ in range(run):
                if g.graph is not None:
                    g.graph.replay()
                else:
                    self.step(g)
            steps += run
            flags = g.all_done[:steps].tolist()  # one synchronisation per CHECK_EVERY steps
            if True in flags:
                steps = flags.index(True) + 1
                break
            if ended is not None and ended(g.out_tok[:, :steps]):
                break
        tokens = g.out_tok[:, :steps].clone()
        logprobs = g.out_lp[:, :steps].clone()
        if cuda:
            torch.cuda.synchronize(self.device)
        decode_s = time.perf_counter() - began
        allocated = sum(t.numel() * t.element_size() for t in (*g.keys, *g.values))
        return Decoded(tokens, logprobs, prefill_s, decode_s, layout.width + steps - 1, allocated,
                       layout.computed_tokens, sum(layout.lengths) - layout.computed_tokens)

    def _prefill(self, g: _Graph, layout: Layout) -> None:
        """Fill the cache with every row's prompt, shared segments computed once; first token."""
        import torch

        dev = self.device
        batch = len(layout.rest)
        above: tuple[list[Any], list[Any], Any] | None = None
        for depth, level in enumerate(layout.levels):
            # one row per segment of this level, on a copy of its parent's row above
            start, end = layout.offsets[depth], layout.offsets[depth + 1]
            keys = [torch.zeros(len(level), self.kv_heads, end, self.head_dim, dtype=self.dtype,
                                device=dev) for _ in range(self.layers)]
            values = [torch.zeros_like(k) for k in keys]
            spos = torch.full((len(level), end), -1, dtype=torch.long, device=dev)
            if above is not None:
                parents = torch.tensor([n.parent for n in level], device=dev)
                for k, v, ak, av in zip(keys, values, above[0], above[1], strict=True):
                    k[:, :, :start] = ak.index_select(0, parents)
                    v[:, :, :start] = av.index_select(0, parents)
                spos[:, :start] = above[2].index_select(0, parents)
            ids = torch.full((len(level), end - start), self.pad_id, dtype=torch.long, device=dev)
            pos = torch.full((len(level), end - start), -1, dtype=torch.long, device=dev)
            for j, node in enumerate(level):  # right-padded: the gap is never attended to
                n = len(node.tokens)
                ids[j, :n] = torch.tensor(node.tokens, device=dev)
                pos[j, :n] = torch.arange(node.start, node.start + n, device=dev)
            self._prefill_part(keys, values, spos, ids, pos, start)
            # rows whose shared part ends here take a copy of it
            mine = [(i, leaf[1]) for i, leaf in enumerate(layout.leaf)
                    if leaf is not None and leaf[0] == depth]
            if mine:
                rows = torch.tensor([i for i, _ in mine], device=dev)
                nodes = torch.tensor([j for _, j in mine], device=dev)
                for k, v, sk, sv in zip(g.keys, g.values, keys, values, strict=True):
                    k[rows, :, :end] = sk.index_select(0, nodes)
                    v[rows, :, :end] = sv.index_select(0, nodes)
                g.slot_pos[rows, :end] = spos.index_select(0, nodes)
            above = keys, values, spos
        # each row's own rest, right-aligned to `width`
        head = layout.offsets[-1]
        width = layout.width - head
        ids = torch.full((batch, width), self.pad_id, dtype=torch.long, device=dev)
        pos = torch.full((batch, width), -1, dtype=torch.long, device=dev)
        for i, rest in enumerate(layout.rest):
            first = layout.lengths[i] - len(rest)
            ids[i, width - len(rest):] = torch.tensor(rest, device=dev)
            pos[i, width - len(rest):] = torch.arange(first, layout.lengths[i], device=dev)
        logits = self._prefill_part(g.keys, g.values, g.slot_pos, ids, pos, head)
        g.pos.copy_(torch.tensor(layout.lengths, device=dev))
        g.slot.fill_(layout.width)
        self._choose(g, logits)


def stop_token_ids(tokenizer: Any, model: Any, stop_strings: Sequence[str] = ("\n",)) -> list[int]:
    """Ids after which `generate(stop_strings=..., tokenizer=...)` ends a row, and eos.

    The stop strings are one character each here, so whether a token ends a row depends on
    that token alone: transformers' own criterion is asked about each token of the vocabulary.
    """
    import torch
    from transformers import StopStringCriteria

    if any(len(s) != 1 for s in stop_strings):
        raise ValueError("only one-character stop strings are decided token by token")
    # ids past the tokenizer's vocabulary (padding rows of the embedding) decode to nothing
    vocab = min(model.get_output_embeddings().weight.shape[0], len(tokenizer))
    stops: list[int] = []
    if stop_strings:  # none: eos alone ends a row (a longer answer)
        criterion = StopStringCriteria(tokenizer=tokenizer, stop_strings=list(stop_strings))
        for start in range(0, vocab, 32768):
            ids = torch.arange(start, min(vocab, start + 32768))[:, None]
            hit = criterion(ids, torch.empty(0))  # the criterion reads the ids only
            stops += (ids[hit, 0]).tolist()
    eos = model.generation_config.eos_token_id
    stops += [eos] if isinstance(eos, int) else list(eos or [])
    return sorted(set(stops))


def plain_greedy(model: Any) -> bool:
    """Whether `generate`'s greedy decoding applies no logits processor to this model."""
    gc = model.generation_config
    neutral = {"repetition_penalty": 1.0, "encoder_repetition_penalty": 1.0}
    for name, value in neutral.items():
        if getattr(gc, name, None) not in (None, value):
            return False
    for name in ("no_repeat_ngram_size", "bad_words_ids", "suppress_tokens", "begin_suppress_tokens",
                 "forced_bos_token_id", "forced_eos_token_id", "sequence_bias", "min_new_tokens",
                 "exponential_decay_length_penalty", "forced_decoder_ids"):
        if getattr(gc, name, None):
            return False
    return not (getattr(gc, "min_length", 0) or 0) > 0 and not getattr(gc, "renormalize_logits", False)


def supports(model: Any) -> str | None:
    """Why this loop cannot decode `model` (None when it can)."""
    cfg = model.config.get_text_config()
    if model.config.is_encoder_decoder:
        return "encoder-decoder model"
    if not getattr(model, "_supports_attention_backend", False):
        return "the model does not take a custom attention function"
    params = inspect.signature(model.forward).parameters
    if not {"position_ids", "attention_mask"} <= set(params) or not (
            "cache" in params or "past_key_values" in params):
        return "the model's forward takes no positions or cache"
    types = list(getattr(cfg, "layer_types", None) or [])
    if set(types) - {"full_attention", "sliding_attention"}:
        return f"layer types {sorted(set(types))}"
    if types == [] and getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True):
        return "a sliding window without per-layer types"
    if not plain_greedy(model):
        return "the generation config asks for logits processors"
    return None


def warn(message: str) -> None:
    print(f"memeval: {message}", file=sys.stderr)


def answer_fast(reader: Any, prompts: Sequence[list[int]]) -> list[Answer] | None:
    """The transformers reader's answers through `Decoder`; None where it does not apply.

    It applies under the reader's `decode="auto"` (or `"compiled"`) with no KV-cache policy,
    to models `supports` accepts. A failure inside it is reported once and the reader goes
    back to `generate` for good.
    """
    mode = getattr(reader, "decode", "auto")
    policy = getattr(reader, "kv_policy", None)
    if mode == "generate" or getattr(reader, "kv", None) not in (None, "", "full") or (
            policy is not None and getattr(policy, "kind", "full") != "full"):
        return None  # a KV-cache policy lives in generate's caches
    decoder = getattr(reader, "_decoder", None)
    if decoder is False:
        return None
    try:
        if decoder is None or decoder.max_new_tokens != reader.max_new_tokens:
            # a longer answer runs on past newlines: eos or `answer_ended` stops it, `answer_lines` cuts it
            stops = ("\n",) if getattr(reader, "lines", 1) == 1 else ()
            model, tok = reader._model, reader.tokenizer
            why = supports(model)
            if why is not None:
                reader._decoder = False
                return None
            decoder = Decoder(model, stop_token_ids(tok, model, stops), tok.pad_token_id,
                              reader.max_new_tokens, compile=mode == "compiled")
            reader._decoder = decoder
        return _answers(reader, decoder, prompts)
    except Exception as exc:  # the generate path still answers: say why, once
        warn(f"fast decoding failed ({type(exc).__name__}: {exc}); using generate from now on")
        reader._decoder = False
        return None


def _answers(reader: Any, decoder: Decoder, prompts: Sequence[list[int]]) -> list[Answer]:
    import torch

    from memeval.adapters.readers import answer_ended, answer_lines

    tok, device = reader.tokenizer, decoder.device
    lines = getattr(reader, "lines", 1)

    def text_of(row: Any) -> str:
        return str(tok.decode(row[row != tok.pad_token_id], skip_special_tokens=True))

    def all_ended(tokens: Any) -> bool:
        return all(answer_ended(text_of(row), lines) for row in tokens.cpu())

    cuda = device.type == "cuda"
    answers: list[Answer | None] = [None] * len(prompts)
    order = order_for_sharing(prompts) if decoder.share else sorted(
        range(len(prompts)), key=lambda i: len(prompts[i]))
    for start in range(0, len(order), reader.batch_size):
        chunk = order[start:start + reader.batch_size]
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        with torch.inference_mode():
            out = decoder.decode([prompts[i] for i in chunk], all_ended if lines > 1 else None)
        generated, chosen = out.tokens.cpu().clone(), out.logprobs.cpu()  # clone: not an inference tensor
        if lines > 1:  # what generate's stop strings would have kept: pad after each row's end
            for row in generated:
                row[_ended_at(row, lambda r: answer_ended(text_of(r), lines)):] = tok.pad_token_id
        new_tokens = int((generated != tok.pad_token_id).sum())
        seconds = out.prefill_s + out.decode_s
        per_slot = decoder.layers * 2 * decoder.kv_heads * decoder.head_dim * decoder.dtype.itemsize
        stats: dict[str, float] = {
            "batch_size": len(chunk),
            # the slots that hold this batch's tokens (padding included, as generate's cache)
            "kv_cache_bytes": len(chunk) * out.slots * per_slot,
            "kv_cache_bytes_formula": reader.kv_bytes_formula(len(chunk) * out.slots),
            "kv_cache_allocated_bytes": out.allocated_bytes,
            "tokens_per_s": round(new_tokens / seconds, 3) if seconds else 0.0,
            "prefill_s": round(out.prefill_s, 6), "decode_s": round(out.decode_s, 6),
            "prefill_tokens": out.computed_tokens, "shared_prefix_tokens": out.shared_tokens,
        }
        if cuda:
            stats["gpu_peak_allocated_bytes"] = torch.cuda.max_memory_allocated(device)
            stats["gpu_peak_reserved_bytes"] = torch.cuda.max_memory_reserved(device)
        for row, i in enumerate(chunk):
            keep = generated[row] != tok.pad_token_id
            new = generated[row][keep]
            text = answer_lines(tok.decode(new, skip_special_tokens=True), lines)
            logprobs = tuple(round(float(x), 4) for x in chosen[row][keep])
            answers[i] = Answer(text=text, stats=stats, logprobs=logprobs, usage=Usage(
                input_tokens=len(prompts[i]), output_tokens=int(new.numel())))
    return [a for a in answers if a is not None]


def _ended_at(row: Any, ended: Callable[[Any], bool]) -> int:
    """The fewest leading tokens of `row` that hold a whole answer (all of it if none do);
    `ended` only turns true as tokens are added, so a bisection finds it."""
    low, high = 1, len(row)
    if not ended(row):
        return high
    while low < high:
        mid = (low + high) // 2
        if ended(row[:mid]):
            high = mid
        else:
            low = mid + 1
    return low
