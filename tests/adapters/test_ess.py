"""Effective state size: hand-made attention of known rank, then a real model's attention."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import memeval  # noqa: E402
from memeval.adapters.readers.ess import block_ess, effective_state_size, metric_names  # noqa: E402
from memeval.adapters.readers.transformers import TransformersReader  # noqa: E402
from memeval.records import read_records  # noqa: E402

from ..conftest import SCENARIOS  # noqa: E402
from .tiny_model import build_tiny_model  # noqa: E402


def rows_from(matrix: torch.Tensor, i: int) -> torch.Tensor:
    return matrix[None, i:, :]  # one head, the output rows from i on


def test_a_hard_reset_leaves_one_state() -> None:
    # from k on, every output attends to the reset token k-1 and to itself: T[k:, :k] has rank 1
    n, k = 12, 5
    attention = torch.zeros(n, n, dtype=torch.float64)
    for r in range(n):
        if r < k:
            attention[r, : r + 1] = 1 / (r + 1)
        else:
            attention[r, k - 1] = attention[r, r] = 0.5
    ess = block_ess(rows_from(attention, k), k)
    assert ess["tol_1e-2"] == [1.0] and ess["tol_1e-3"] == [1.0]
    assert ess["entropy"][0] == pytest.approx(1.0)


def test_a_full_rank_block_gives_its_rank_and_the_sink_column_counts() -> None:
    # rows k..2k-1 attend to the token k places back: T[k:, :k] = 0.5 I, rank k, equal σ
    k = 6
    attention = torch.zeros(2 * k, 2 * k, dtype=torch.float64)
    for r in range(2 * k):
        attention[r, r] = 1.0 if r < k else 0.5
        if r >= k:
            attention[r, r - k] = 0.5
    ess = block_ess(rows_from(attention, k), k)
    assert ess["tol_1e-2"] == [float(k)] and ess["entropy"][0] == pytest.approx(k)
    # without the first (sink) column one input fewer is left
    assert ess["tol_1e-2_nosink"] == [float(k - 1)]
    assert ess["entropy_nosink"][0] == pytest.approx(k - 1)
    # a lower-triangular block with a strong diagonal is full rank too
    lower = torch.tril(torch.rand(k, k, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    lower += torch.eye(k, dtype=torch.float64)
    assert block_ess(lower[None], k)["tol_1e-3"] == [float(k)]


def test_a_sink_only_block_is_empty_without_the_sink() -> None:
    n, k = 8, 4
    attention = torch.zeros(n, n, dtype=torch.float64)
    attention[:, 0] = 0.5
    attention[torch.arange(n), torch.arange(n)] += 0.5
    ess = block_ess(rows_from(attention, k), k)
    assert ess["tol_1e-2"] == [1.0] and ess["tol_1e-2_nosink"] == [0.0]
    assert ess["entropy_nosink"] == [0.0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), layers=3, heads=4, kv_heads=2)


def test_inside_the_attention_call_equals_the_full_attention_matrix(tiny: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    ids = torch.randint(4, 300, (1, 90), generator=torch.Generator().manual_seed(1))
    positions = [10, 45, 80]
    found = effective_state_size(model, ids, positions)
    with torch.inference_mode():
        full = model(ids, output_attentions=True).attentions
    for i in positions:
        for layer, attention in enumerate(full):
            expected = block_ess(attention[0, :, i:i + 64], i)
            for name in metric_names():
                assert found[i][name][layer] == pytest.approx(expected[name], abs=1e-4), (i, name)
    assert model.config._attn_implementation == "eager"  # put back as it was


def test_a_run_with_ess_records_each_place_and_scores_them(tiny: Path, tmp_path: Path) -> None:
    reader = TransformersReader(model=str(tiny), device="cpu", max_new_tokens=4)
    result = memeval.run(SCENARIOS / "quick" / "pets-and-moves.yaml", backends=["full_context"],
                         reader=reader, out=tmp_path / "run", ess=True)
    records = [r for r in read_records(result.run_dir) if r.backend == "full_context"]
    assert all(r.error is None for r in records)
    dog = next(r for r in records if r.probe == "dog")
    labels = [p.label for p in dog.ess]
    assert labels[-1] == "probe" and "fact:dog_name" in labels and "session_boundary" in labels
    tokens = [p.token for p in dog.ess]
    assert tokens == sorted(tokens)
    table = dog.ess[-1].values["tol_1e-2"]
    assert len(table) == 3 and len(table[0]) == 4  # layers × heads
    assert not any(p.ess for p in read_records(result.run_dir) if p.control)
    ess = result.cells[0].ess
    assert ess is not None
    assert ess["entropy"].places["probe"].n == len(records)
    assert ess["entropy"].places["session_boundary"].n >= len(records)
    assert result.manifest.config.ess
    html = (result.run_dir / "report.html").read_text()
    assert 'id="ess"' in html and "r with a correct answer" in html


def test_ess_needs_a_local_reader(tmp_path: Path) -> None:
    with pytest.raises(memeval.MemevalError, match="--ess needs a local transformers reader"):
        memeval.run(SCENARIOS / "quick" / "pets-and-moves.yaml", reader="extractive", out=tmp_path, ess=True)


@pytest.mark.gpu
def test_ess_at_8k_tokens_on_the_gpu(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    folder = build_tiny_model(tmp_path / "m", layers=4, hidden=512, heads=8, kv_heads=2)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16).to("cuda").eval()
    ids = torch.randint(4, 300, (1, 8192), device="cuda")
    found = effective_state_size(model, ids, [1024, 4096, 8000])
    assert set(found) == {1024, 4096, 8000}
    for values in found.values():
        assert len(values["entropy"]) == 4 and len(values["entropy"][0]) == 8
        assert all(1 <= v <= 64 for row in values["tol_1e-2"] for v in row)
