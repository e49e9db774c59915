"""KV-cache policies of the transformers reader (`adapters/readers/kv.py`): on tiny random
tensors, on a config-built tiny model, and on the packaged Gemma (marker `model`)."""

from __future__ import annotations

from pathlib import Path

import pytest

import memeval
from memeval.adapters.readers.kv import (
    GROUP,
    KvPolicy,
    _dequantize,
    _quantize,
    formula_bytes,
    new_cache,
)
from memeval.adapters.readers.kv_read import ess_view, read_prompt
from memeval.adapters.readers.transformers import TransformersReader
from memeval.errors import MemevalError
from memeval.registry import build_reader

from ..conftest import SCENARIOS
from .tiny_model import build_tiny_model

torch = pytest.importorskip("torch")

POLICIES = [dict(kv="window", sink=4, window=64), dict(kv="snapkv", ratio=0.5), dict(kv="tova"),
            dict(kv="knorm", ratio=0.5), dict(kv="quant", bits=8), dict(kv="quant", bits=4)]
NOTES = " ".join(f"user: note {i} says the locker code is {1000 + i}." for i in range(40))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def test_options_parse_into_a_policy_and_wrong_ones_are_refused() -> None:
    assert KvPolicy.parse() == KvPolicy() and KvPolicy().identity() == {}
    assert KvPolicy.parse("snapkv").ratio == 0.5
    assert KvPolicy.parse("window").label == "kv=window,sink=4,window=256"
    assert KvPolicy.parse("quant", bits=4).identity() == {"kv": "quant", "bits": 4}
    for kwargs, message in [({"kv": "lru"}, "choose one of"), ({"kv": "quant", "bits": 2}, "4 or 8"),
                            ({"kv": "snapkv", "ratio": 1.0}, "0 <= ratio < 1"),
                            ({"kv": "window", "ratio": 0.5}, "ratio does not apply"),
                            ({"kv": "full", "bits": 8}, "bits does not apply")]:
        with pytest.raises(ValueError, match=message):
            KvPolicy.parse(**kwargs)


def test_the_policy_is_in_the_label_and_the_identity(tiny: Path) -> None:
    label, reader = build_reader(f"transformers:model={tiny},kv=snapkv,ratio=0.25")
    assert label.endswith("kv=snapkv,ratio=0.25")
    assert reader.identity()["kv"] == "snapkv" and reader.identity()["ratio"] == 0.25
    assert "kv" not in TransformersReader(model=str(tiny)).identity()  # cached answers stay valid
    assert TransformersReader(model=str(tiny), kv="quant").name == "TransformersReader:kv=quant,bits=8"
    with pytest.raises(MemevalError, match="bits does not apply"):
        build_reader(f"transformers:model={tiny},kv=snapkv,bits=4")


def test_quantization_round_trips_within_its_step() -> None:
    torch.manual_seed(0)
    keys, values = torch.randn(2, 3, GROUP, 16), torch.randn(2, 3, GROUP, 16)
    errors = {}
    for bits in (8, 4):
        group = _quantize(keys, values, bits)
        back_k, back_v = _dequantize(group, bits, keys.dtype)
        assert group[0].dtype == torch.uint8 and group[0].shape[-1] == 16 * bits // 8
        step = (keys.amax(-2) - keys.amin(-2)).max() / (2 ** bits - 1)
        assert (back_k - keys).abs().max() <= step / 2 + 1e-5
        errors[bits] = float((back_v - values).abs().mean())
    assert errors[8] < errors[4] / 8


def test_knorm_keeps_the_lowest_norm_keys_and_window_the_sinks_and_recent(tiny: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny)
    ids = list(range(10, 110))
    for policy, check in [
        (KvPolicy.parse("knorm", ratio=0.5), "norms"),
        (KvPolicy.parse("window", sink=4, window=20), "window"),
    ]:
        cache = new_cache(model, policy, track=True)
        with torch.inference_mode():
            read_prompt(model, cache, ids, 90)
        layer = cache.layers[0]
        kept = layer.positions[0]
        if check == "window":
            assert kept[0].tolist() == [0, 1, 2, 3, *range(80, 100)]
        else:  # 45 of the 90 notes' positions (the lowest key norms), then the 10 question ones
            assert kept.shape[-1] == 55 and (kept[:, -10:] == torch.arange(90, 100)).all()
    # the kept keys of a knorm layer have lower norms than any it dropped
    full = new_cache(model, KvPolicy(), track=True)
    with torch.inference_mode():
        read_prompt(model, full, ids[:90], 89)
    norms = full.layers[0].keys[0, :, :89].norm(dim=-1)
    knorm = new_cache(model, KvPolicy.parse("knorm", ratio=0.5), track=True)
    with torch.inference_mode():
        read_prompt(model, knorm, ids[:90], 89)
    for head in range(norms.shape[0]):
        held = set(knorm.layers[0].positions[0, head, :-1].tolist())
        dropped = [p for p in range(89) if p not in held]
        assert max(norms[head, sorted(held)]) <= min(norms[head, dropped]) + 1e-6


def test_every_policy_answers_and_its_bytes_equal_the_formula(tiny: Path) -> None:
    full = TransformersReader(model=str(tiny), device="cpu", max_new_tokens=6)
    reference = full.answer("What is the locker code?", NOTES)
    held = {}
    for options in POLICIES:
        reader = TransformersReader(model=str(tiny), device="cpu", max_new_tokens=6, **options)
        answer = reader.answer("What is the locker code?", NOTES)
        s = answer.stats
        assert "\n" not in answer.text and 0 < answer.usage.output_tokens <= 6
        assert s["kv_cache_bytes"] == s["kv_cache_bytes_formula"] > 0
        assert s["kv_compression_ratio"] == pytest.approx(s["kv_full_cache_bytes"] / s["kv_cache_bytes"],
                                                          rel=1e-3)
        held[reader.kv_policy.label] = s["kv_cache_bytes"] / reference.stats["kv_cache_bytes"]
    assert held["kv=snapkv,ratio=0.5"] == pytest.approx(0.5, abs=0.05)
    assert held["kv=quant,bits=4"] < held["kv=quant,bits=8"] < 0.5
    # StreamingLLM: sink + window positions in each of the 2 layers, keys and values, fp32
    window = TransformersReader(model=str(tiny), device="cpu", max_new_tokens=6, **POLICIES[0])
    assert window.answer("Q?", NOTES).stats["kv_cache_bytes"] == 2 * 2 * 2 * 16 * 4 * (4 + 64)


def test_evicting_nothing_answers_as_the_full_cache(tiny: Path) -> None:
    """The policy loop's positions and masks are right: ratio 0 is the full cache."""
    requests = [("What is the locker code?", NOTES), ("Where?", "user: We moved to Porto.")]
    full = TransformersReader(model=str(tiny), device="cpu", max_new_tokens=6).answer_many(requests)
    same = TransformersReader(model=str(tiny), device="cpu", max_new_tokens=6, kv="snapkv",
                              ratio=0.0).answer_many(requests)
    for a, b in zip(full, same, strict=True):
        assert a.text == b.text
        assert a.logprobs == pytest.approx(b.logprobs, abs=2e-3)


def test_formula_caps_sliding_window_layers() -> None:
    class Config:
        num_hidden_layers, num_key_value_heads, head_dim, num_attention_heads = 2, 1, 8, 2
        hidden_size, sliding_window = 16, 33
        layer_types = ("sliding_attention", "full_attention")

        def get_text_config(self) -> Config:
            return self

    class Model:
        config, dtype = Config(), torch.float32

    row = 2 * 8 * 4
    assert formula_bytes(Model(), KvPolicy(), 100, 10) == (row * (32 + 110), row * (32 + 110))
    held, _ = formula_bytes(Model(), KvPolicy.parse("snapkv", ratio=0.5), 100, 10)
    assert held == row * (min(16 + 10, 32) + 50 + 10)


def test_ess_under_eviction_counts_only_the_kept_positions(tiny: Path) -> None:
    from memeval.adapters.readers.ess import effective_state_size

    model = TransformersReader(model=str(tiny), device="cpu")
    model._load()
    ids = list(range(10, 210))
    tensor = torch.tensor([ids])
    full = effective_state_size(model._model, tensor, [150])
    view = ess_view(model._model, KvPolicy.parse("window", sink=2, window=20), ids, 190)
    windowed = effective_state_size(model._model, tensor, [150], view=view)
    mean = {name: sum(map(sum, table)) for name, table in windowed[150].items()}
    before = {name: sum(map(sum, table)) for name, table in full[150].items()}
    # at position 150 only the 2 sinks are held before it: at most 2 singular values per head
    assert all(v <= 2 for row in windowed[150]["tol_1e-3"] for v in row)
    assert mean["tol_1e-3"] < before["tol_1e-3"]


def test_a_run_under_a_policy_scores_kv_bytes_and_plots_the_pareto_chart(tiny: Path,
                                                                          tmp_path: Path) -> None:
    from memeval.report.memory_points import pareto_points

    runs = [memeval.run(SCENARIOS / "quick" / "garden-club.yaml", backends=["full_context", "oracle"],
                        reader=f"transformers:model={tiny},device=cpu,max_new_tokens=4{kv}",
                        out=tmp_path / name, control=False, limit=2)
            for name, kv in [("full", ""), ("snap", ",kv=snapkv,ratio=0.5")]]
    full, snap = (r.cell("oracle").kv for r in runs)
    assert full is not None and snap is not None
    assert full.compression_ratio == 1.0 and snap.compression_ratio > 1.5
    assert snap.bytes < 0.6 * full.bytes and snap.bytes == snap.formula_bytes
    assert set(snap.by_kind) and all(b.n > 0 for b in snap.by_kind.values())
    points = pareto_points([r.scored for r in runs])
    kinds = {(kind, name) for kind, name, _, _ in points}
    assert ("agent", "oracle") in kinds and ("kv", "full_context · snapkv,ratio=0.5") in kinds
    assert ("agent", "full_context") in kinds and ("kv", "oracle · full cache") in kinds
    assert not any("snapkv" in name for kind, name in kinds if kind == "agent")
    assert len(runs[0].plot_pareto(runs[1]).axes[0].collections) == 2
    assert "Retention against memory held" in runs[1].report().read_text()


# --- the packaged Gemma 3 270M --------------------------------------------------------------


@pytest.mark.model
def test_gemma_runs_a_scenario_under_every_policy_with_bytes_as_the_formula_says(
        tmp_path: Path) -> None:
    """Each policy answers two probes of a bundled scenario over the oracle's notes (the
    prompt is mostly the few-shot block, long enough for every policy to drop or shrink)."""
    def run(kv: dict[str, object]) -> memeval.RunResult:
        options = "".join(f",{key}={value}" for key, value in kv.items())
        return memeval.run(SCENARIOS / "quick" / "garden-club.yaml", backends=["oracle"],
                           reader=f"embedded:device=cpu{options}", out=tmp_path / str(len(kv)) /
                           "-".join(map(str, kv.values())), control=False, limit=2, report=False)

    # the reference is transformers' own cache, prompt by prompt, as the policies use it (the
    # fast decode path holds every slot of every layer and pads batches: more bytes)
    full = run({"decode": "generate", "batch_size": 1}).cell("oracle").kv
    assert full is not None and full.compression_ratio == 1.0 and full.n == 2
    assert abs(full.bytes - full.formula_bytes) <= 0.05 * full.formula_bytes
    for options in POLICIES:
        result = run(options)
        records = result.records()
        assert len(records) == 2 and records["answer"].str.len().gt(0).all(), options
        assert not records["error"].notna().any(), options
        kv = result.cell("oracle").kv
        assert kv is not None and kv.n == 2, options
        assert abs(kv.bytes - kv.formula_bytes) <= 0.05 * kv.formula_bytes, options
        assert kv.bytes < full.bytes and kv.compression_ratio > 1.0, options
        # the ratio each record gives against its own full cache agrees with the full run's
        assert abs(full.bytes / kv.bytes - kv.compression_ratio) <= 0.05 * kv.compression_ratio
        if options == {"kv": "snapkv", "ratio": 0.5}:  # about half of the full cache
            assert 0.4 <= kv.bytes / full.bytes <= 0.6
