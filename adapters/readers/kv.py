"""KV-cache policies for the transformers reader: what the model keeps of a prompt.

- `full`: every position (the reader's default path, untouched).
- `window`: StreamingLLM — the first `sink` positions and the last `window`.
- `snapkv`, `tova`, `knorm`: score-based eviction after the notes are read; each layer drops
  the share `ratio` of the positions it holds, by attention of the notes' last 32 queries
  (SnapKV, per KV head, pooled), of the last query averaged over heads (TOVA), or by the
  largest key L2 norm (K-norm: low-norm keys draw attention). The question is read after.
- `quant`: keys quantized per channel over groups of 32 positions (KIVI), values per
  position, `bits` 8 or 4 with a scale and a zero point each; the newest positions (fewer
  than a group) stay in full precision.

Positions are evicted, not slots: rotary positions are passed explicitly, while masks run
over the stored positions (a sliding-window layer keeps its window of kept positions).
One prompt at a time: prompts of a batch keep different positions. Reading and answering
under a policy is in `kv_read.py`.

Why not NVIDIA's kvpress: kvpress 0.5.5 requires transformers < 5.3 (and peft, datasets);
this project runs transformers 5.24 (5.17 on the GPU machine) and would have to downgrade
the packaged Gemma reader's stack. Why not transformers' `QuantizedCache`: its quanto
backend (optimum-quanto 0.2.7 installs and runs on torch 2.13 CPU) offers 2 and 4 bits
only, HQQ (0.2.8, a source archive) 4 and 8; neither is installed on the GPU machine, and
their layers are not sliding-window aware: Gemma 3's sliding layers would keep every
position, more than the full cache past 512 tokens. Everything here is built on
transformers' own `Cache` and `DynamicLayer`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

EVICTION = ("snapkv", "tova", "knorm")
KINDS = ("full", "window", *EVICTION, "quant")
OBSERVED = 32  # SnapKV's observation window: the notes' last queries
GROUP = 32  # positions per quantization group of the keys


@dataclass(frozen=True)
class KvPolicy:
    """A KV-cache policy, from the reader options `kv`, `ratio`, `sink`, `window`, `bits`."""

    kind: str = "full"
    ratio: float = 0.0
    sink: int = 0
    window: int = 0
    bits: int = 16

    @classmethod
    def parse(cls, kv: str = "full", ratio: float | None = None, sink: int | None = None,
              window: int | None = None, bits: int | None = None) -> KvPolicy:
        """The policy of the reader options; ValueError names a wrong or stray option."""
        given = {"ratio": ratio, "sink": sink, "window": window, "bits": bits}
        takes = {"full": (), "window": ("sink", "window"), "quant": ("bits",)}.get(kv, ("ratio",))
        if kv not in KINDS:
            raise ValueError(f"kv={kv!r}: choose one of {', '.join(KINDS)}")
        stray = [k for k, v in given.items() if v is not None and k not in takes]
        if stray:
            raise ValueError(f"option {stray[0]} does not apply to kv={kv} (it takes: "
                             f"{', '.join(takes) or 'no option'})")
        if kv == "window":
            policy = cls(kv, sink=4 if sink is None else sink, window=256 if window is None else window)
            if policy.sink < 0 or policy.window < 1:
                raise ValueError("kv=window needs sink >= 0 and window >= 1")
            return policy
        if kv == "quant":
            if (bits := 8 if bits is None else bits) not in (4, 8):
                raise ValueError(f"bits={bits}: kv=quant takes 4 or 8")
            return cls(kv, bits=bits)
        if kv in EVICTION:
            if not 0 <= (ratio := 0.5 if ratio is None else ratio) < 1:
                raise ValueError(f"ratio={ratio}: the share of positions evicted, 0 <= ratio < 1")
            return cls(kv, ratio=float(ratio))
        return cls()

    @property
    def options(self) -> dict[str, float]:
        table: dict[str, dict[str, float]] = {
            "window": {"sink": self.sink, "window": self.window}, "quant": {"bits": self.bits},
            "full": {}}
        return table.get(self.kind, {"ratio": self.ratio})

    @property
    def label(self) -> str:
        """`snapkv,ratio=0.5`: the policy as reader options."""
        return ",".join([f"kv={self.kind}", *(f"{k}={v:g}" for k, v in self.options.items())])

    def identity(self) -> dict[str, object]:
        """Empty for the full cache, so cached answers of the default reader stay valid."""
        return {} if self.kind == "full" else {"kv": self.kind, **self.options}


def _caps(config: Any) -> list[int | None]:
    """Per layer, the most positions it keeps (sliding window − 1, as transformers), or None."""
    cfg = config.get_text_config()
    types = getattr(cfg, "layer_types", None) or (
        ["sliding_attention" if getattr(cfg, "sliding_window", None) else "full_attention"]
        * cfg.num_hidden_layers)
    return [cfg.sliding_window - 1 if t == "sliding_attention" else None for t in types]


class _Layer:
    """One layer's keys and values under a policy (mixed into transformers' DynamicLayer)."""

    keys: Any
    values: Any
    is_initialized: bool

    def setup(self, cap: int | None, policy: KvPolicy, track: bool) -> None:
        self.cap, self.policy, self.track = cap, policy, track
        self.is_sliding = cap is not None
        self.seen = 0
        # quantized groups, each part one tensor (a step dequantizes a layer in one go):
        # keys (b, h, groups, GROUP, d'), their scale and zero (b, h, groups, 1, d),
        # values (b, h, groups·GROUP, d'), their scale and zero (b, h, groups·GROUP, 1)
        self.quant: tuple[Any, ...] | None = None
        self.positions: Any = None  # (batch, heads, stored) prompt positions, when tracked

    def stored(self) -> int:
        groups = 0 if self.quant is None else self.quant[0].shape[2]
        return groups * GROUP + (self.keys.shape[-2] if self.is_initialized else 0)

    def get_seq_length(self) -> int:  # masks and query offsets run over stored positions
        return self.stored()

    def update(self, keys: Any, values: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        import torch

        if not self.is_initialized:
            self.lazy_initialization(keys, values)  # type: ignore[attr-defined]
        old = [] if self.quant is None else [_dequantize(self.quant, self.policy.bits, keys.dtype)]
        full_k = torch.cat([*(k for k, _ in old), self.keys, keys], dim=-2)
        full_v = torch.cat([*(v for _, v in old), self.values, values], dim=-2)
        self.keys = torch.cat([self.keys, keys], dim=-2)
        self.values = torch.cat([self.values, values], dim=-2)
        if self.track:
            new = torch.arange(self.seen, self.seen + keys.shape[-2], device=keys.device)
            new = new.expand(*keys.shape[:2], -1)
            self.positions = new if self.positions is None else torch.cat([self.positions, new], -1)
        self.seen += keys.shape[-2]
        if self.policy.kind == "quant":
            if (whole := self.keys.shape[-2] // GROUP * GROUP) > 0:
                fresh = _quantize(self.keys[..., :whole, :], self.values[..., :whole, :], self.policy.bits)
                self.quant = fresh if self.quant is None else tuple(
                    torch.cat([a, b], dim=2) for a, b in zip(self.quant, fresh, strict=True))
                self.keys, self.values = self.keys[..., whole:, :], self.values[..., whole:, :]
            # a sliding layer drops whole groups while its window stays covered
            if self.cap is not None and self.quant is not None and self.stored() - GROUP >= self.cap:
                drop = min((self.stored() - self.cap) // GROUP, self.quant[0].shape[2])
                k, ks, kz, v, vs, vz = self.quant
                self.quant = (k[:, :, drop:], ks[:, :, drop:], kz[:, :, drop:],
                              *(t[:, :, drop * GROUP:] for t in (v, vs, vz)))
        elif self.cap is not None:
            self.keep(slice(-self.cap, None))
        return full_k, full_v

    def keep(self, which: Any) -> None:
        """Keep stored positions: a slice, or indices (batch, heads, kept) in stored order."""
        if isinstance(which, slice):
            self.keys, self.values = self.keys[..., which, :], self.values[..., which, :]
            if self.positions is not None:
                self.positions = self.positions[..., which]
            return
        pick = which[..., None].expand(-1, -1, -1, self.keys.shape[-1])
        self.keys, self.values = self.keys.gather(2, pick), self.values.gather(2, pick)
        if self.positions is not None:
            self.positions = self.positions.gather(2, which)

    def nbytes(self) -> int:
        tensors = [self.keys, self.values, *(self.quant or ())]
        return sum(t.numel() * t.element_size() for t in tensors)


def _quantize(keys: Any, values: Any, bits: int) -> tuple[Any, ...]:
    """Asymmetric quantization of whole groups: keys per channel over each group of GROUP
    positions, values per position."""
    k, k_scale, k_zero = _quant(keys.unflatten(-2, (-1, GROUP)), bits, dim=-2)
    v, v_scale, v_zero = _quant(values, bits, dim=-1)
    return k, k_scale, k_zero, v, v_scale, v_zero


def _quant(x: Any, bits: int, dim: int) -> tuple[Any, Any, Any]:
    import torch

    top = 2 ** bits - 1
    low, high = x.amin(dim, keepdim=True), x.amax(dim, keepdim=True)
    scale = ((high - low) / top).clamp_min(1e-8)
    q = ((x - low) / scale).round().clamp(0, top).to(torch.uint8)
    if bits == 4:  # two positions' channels to a byte
        q = q[..., 0::2] | (q[..., 1::2] << 4)
    return q, scale.to(x.dtype), low.to(x.dtype)


def _unquant(q: Any, scale: Any, zero: Any, bits: int, dtype: Any) -> Any:
    import torch

    if bits == 4:
        q = torch.stack([q & 15, q >> 4], dim=-1).flatten(-2)
    return (q.to(dtype) * scale + zero).to(dtype)


def _dequantize(group: tuple[Any, ...], bits: int, dtype: Any) -> tuple[Any, Any]:
    k, k_scale, k_zero, v, v_scale, v_zero = group
    return (_unquant(k, k_scale, k_zero, bits, dtype).flatten(2, 3),
            _unquant(v, v_scale, v_zero, bits, dtype))


def fake_quantize(keys: Any, bits: int) -> Any:
    """Keys as the quant policy gives them back (whole groups; the rest in full precision)."""
    import torch

    whole = keys.shape[-2] // GROUP * GROUP
    grouped = keys[..., :whole, :].unflatten(-2, (-1, GROUP))
    back = _unquant(*_quant(grouped, bits, -2), bits, keys.dtype).flatten(-3, -2)
    return torch.cat([back, keys[..., whole:, :]], dim=-2)


def new_cache(model: Any, policy: KvPolicy, track: bool = False) -> Any:
    """A transformers `Cache` whose layers follow `policy`."""
    from transformers.cache_utils import Cache, DynamicLayer

    layer_class = type("PolicyLayer", (_Layer, DynamicLayer), {})
    layers = []
    for cap in _caps(model.config):
        layer = layer_class()
        layer.setup(cap, policy, track)
        layers.append(layer)
    return Cache(layers=layers)


def held_bytes(cache: Any) -> int:
    """Bytes of the key, value, scale and zero-point tensors the cache holds."""
    return sum(layer.nbytes() for layer in cache.layers)


def formula_bytes(model: Any, policy: KvPolicy, notes: int, later: int) -> tuple[int, int]:
    """(bytes under `policy`, bytes of the full cache) after `notes` prompt positions read
    before eviction and `later` positions after it, from the config alone."""
    cfg = model.config.get_text_config()
    heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    size = model.dtype.itemsize
    row = 2 * heads * dim * size  # keys and values of one position, full precision
    held = full = 0
    for cap in _caps(model.config):
        limit = cap if cap is not None else notes + later
        total = min(notes + later, limit)
        full += total * row
        if policy.kind == "window":
            held += min(total, policy.sink + policy.window) * row
        elif policy.kind in EVICTION:
            stored = min(notes, limit)
            held += min(stored - math.floor(policy.ratio * stored) + later, limit) * row
        elif policy.kind == "quant":
            rest = (notes + later) % GROUP
            groups = (notes + later) // GROUP
            if cap is not None and notes + later > cap:
                groups = min(groups, max(math.ceil((cap - rest) / GROUP), 0))
            ints = 2 * heads * groups * GROUP * dim * policy.bits // 8
            scales = 2 * heads * groups * (dim + GROUP) * size  # per channel (keys), per position
            held += ints + scales + rest * row
        else:
            held += total * row
    return held, full
