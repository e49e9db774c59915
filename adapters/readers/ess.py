"""Effective state size of a transformers model's attention, one layer at a time.

At position i the causal operator's block T[i:, :i] (outputs from i on, inputs
before i) is summarised by its singular values σ: tolerance-ESS counts σ above
τ·σ₁, entropy-ESS is exp(−Σ p log p) with p = σ / Σσ. Only a window of output
rows from i on is formed, from the layer's own queries and keys inside the
attention call, so no layer's full attention matrix is kept (and
`output_attentions` is never asked of the whole model).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

TOLERANCES = (1e-2, 1e-3)
IMPLEMENTATION = "memeval_ess"
#: Output rows formed per position: T[i : i + ROWS, :i].
ROWS = 64


def _tol_name(tol: float) -> str:
    return f"tol_{tol:.0e}".replace("e-0", "e-")  # tol_1e-2


def metric_names() -> list[str]:
    base = [_tol_name(t) for t in TOLERANCES] + ["entropy"]
    return base + [f"{name}_nosink" for name in base]


def _from_gram(gram: Any) -> dict[str, Any]:
    """Tolerance- and entropy-ESS from Gram matrices B·Bᵀ (any leading batch dimensions).

    Zero padding of a Gram matrix adds zero singular values, which change neither count.
    """
    import torch

    sigma = torch.linalg.eigvalsh(gram).clamp_min(0).sqrt()  # ascending
    top = sigma[..., -1:]
    out: dict[str, Any] = {}
    for tol in TOLERANCES:
        counts = (sigma > tol * top).sum(-1).to(sigma.dtype)
        out[_tol_name(tol)] = counts.where(top[..., 0] > 0, 0.0)
    total = sigma.sum(-1, keepdim=True)
    p = sigma / total.clamp_min(1e-300)
    entropy = torch.exp(-(p * torch.log(p.clamp_min(1e-300))).sum(-1))
    out["entropy"] = entropy.where(total[..., 0] > 0, 0.0)
    return out


def _grams(rows: Any, i: int, size: int) -> Any:
    """Gram matrices of rows[..., :i] and rows[..., 1:i] (without the sink), padded to `size`."""
    import torch

    blocks = torch.stack([rows[..., :i], torch.nn.functional.pad(rows[..., 1:i], (1, 0))])
    blocks = blocks.to(torch.float64)
    gram = blocks @ blocks.transpose(-1, -2)
    pad = size - gram.shape[-1]
    return torch.nn.functional.pad(gram, (0, pad, 0, pad)) if pad else gram


def _named(found: dict[str, Any]) -> dict[str, Any]:
    """Metrics of (with sink, without sink) as one dict of the six names."""
    out = {}
    for name, values in found.items():
        out[name], out[f"{name}_nosink"] = values[0], values[1]
    return {name: out[name] for name in metric_names()}


def block_ess(rows: Any, i: int) -> dict[str, list[float]]:
    """ESS per head of the block rows[..., :i], with and without its first column.

    Args:
        rows: Attention probabilities, heads × output rows × inputs (rows from position i on).
        i: The position: columns before it are the inputs of the block.
    """
    found = _named(_from_gram(_grams(rows, i, rows.shape[-2])))
    return {name: values.tolist() for name, values in found.items()}


#: Per layer index and keys: the keys a KV policy gives back, and which positions it holds.
View = Callable[[int, Any], tuple[Any, Any]]


class _Collector:
    def __init__(self, positions: Sequence[int], view: View | None = None):
        self.positions = list(positions)
        self.view = view
        self.layers: list[dict[str, Any]] = []  # metric -> positions × heads, on the device

    def collect(self, query: Any, key: Any, mask: Any, scaling: float) -> None:
        import torch

        heads, kv_heads = query.shape[1], key.shape[1]
        held = None
        if self.view is not None:
            key, held = self.view(len(self.layers), key)
            held = None if held is None else held.repeat_interleave(heads // kv_heads, dim=0)
        key = key[0].repeat_interleave(heads // kv_heads, dim=0).float().transpose(-1, -2)
        length = key.shape[-1]
        grams = []
        for i in self.positions:
            end = min(i + ROWS, query.shape[2])
            scores = (query[0, :, i:end].float() @ key) * scaling
            if mask is not None:
                scores = scores + mask[0, :, i:end, :length].float()
            if held is not None:  # inputs before i that the policy evicted carry no attention
                scores[..., :i] = scores[..., :i].masked_fill(~held[:, None, :i], float("-inf"))
            grams.append(_grams(torch.softmax(scores, dim=-1), i, ROWS))
        # one batched eigen-decomposition per layer: positions × (sink, no sink) × heads
        found = _from_gram(torch.stack(grams))
        self.layers.append({name: v.transpose(0, 1) for name, v in found.items()})

    def tables(self) -> dict[int, dict[str, list[list[float]]]]:
        """position -> metric -> layers × heads, copied from the device once."""
        import torch

        stacked = _named({name: torch.stack([layer[name] for layer in self.layers], dim=2)
                          for name in self.layers[0]})  # (sink) × positions × layers × heads
        lists = {name: values.tolist() for name, values in stacked.items()}
        return {p: {name: lists[name][k] for name in lists} for k, p in enumerate(self.positions)}


_ACTIVE: ContextVar[_Collector | None] = ContextVar("memeval_ess", default=None)


def _attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
               scaling: float | None = None, **kwargs: Any) -> Any:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    collector = _ACTIVE.get()
    if collector is not None:
        collector.collect(query, key, attention_mask,
                          scaling if scaling is not None else query.shape[-1] ** -0.5)
    return sdpa_attention_forward(module, query, key, value, attention_mask, scaling=scaling,
                                  **kwargs)


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask

    AttentionInterface.register(IMPLEMENTATION, _attention)
    AttentionMaskInterface.register(IMPLEMENTATION, eager_mask)  # additive, sliding windows kept


@contextlib.contextmanager
def _implementation(model: Any) -> Iterator[None]:
    _register()
    before = model.config._attn_implementation
    model.set_attn_implementation(IMPLEMENTATION)
    try:
        yield
    finally:
        model.set_attn_implementation(before)


def effective_state_size(model: Any, input_ids: Any, positions: Sequence[int],
                         view: View | None = None) -> dict[int, dict[str, list[list[float]]]]:
    """ESS at each position: metric → layers × heads, from one forward pass over `input_ids`;
    with a KV policy's `view`, over the keys and positions the policy holds."""
    import torch

    length = input_ids.shape[-1]
    wanted = sorted({p for p in positions if 2 <= p < length})
    collector = _Collector(wanted, view)
    token = _ACTIVE.set(collector)
    try:
        with _implementation(model), torch.inference_mode():
            model(input_ids, use_cache=False)
    finally:
        _ACTIVE.reset(token)
    return collector.tables() if wanted else {}
