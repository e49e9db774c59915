"""Cohen's and Fleiss' kappa, each against a value computed by hand."""

from __future__ import annotations

import pytest

from memeval.scoring.agreement import cohen_kappa, fleiss_kappa

T, F = True, False
# rater a says yes 6 times, b 5 times; they agree on 4 yes and 3 no
A = [T, T, T, T, T, T, F, F, F, F]
B = [T, T, T, T, F, F, T, F, F, F]


def test_cohen_kappa_by_hand() -> None:
    # p_o = 7/10; p_e = 0.6·0.5 + 0.4·0.5 = 0.5; kappa = (0.7 - 0.5) / 0.5 = 0.4
    assert cohen_kappa(list(zip(A, B, strict=True))) == pytest.approx(0.4)
    assert cohen_kappa([(T, T), (F, F), (T, T)]) == 1.0
    # always disagreeing, half yes each: p_o = 0, p_e = 0.5, kappa = -1
    assert cohen_kappa([(T, F), (F, T)]) == -1.0
    # one verdict throughout: p_e = 1, kappa undefined
    assert cohen_kappa([(T, T), (T, T)]) is None
    assert cohen_kappa([]) is None


def test_fleiss_kappa_by_hand() -> None:
    # two raters, pooled: p_yes = 11/20, P_e = 0.55² + 0.45² = 0.505; P = 7/10 (an agreeing
    # item counts 1, a split 0); kappa = (0.7 - 0.505) / 0.495 = 0.393939 (Scott's pi)
    assert fleiss_kappa([[a, b] for a, b in zip(A, B, strict=True)]) == pytest.approx(0.393939)
    # three raters, four items: P_i = 1, 1/3, 1, 1/3 -> P = 2/3; p_yes = 6/12, P_e = 0.5;
    # kappa = (2/3 - 1/2) / (1/2) = 1/3
    items = [[T, T, T], [T, T, F], [F, F, F], [T, F, F]]
    assert fleiss_kappa(items) == pytest.approx(1 / 3, abs=1e-6)
    assert fleiss_kappa([[T, T, T], [F, F, F]]) == 1.0
    assert fleiss_kappa([[T, T], [T, T]]) is None  # one verdict throughout
    assert fleiss_kappa([[T]]) is None  # one rater
    assert fleiss_kappa([[T, F], [T]]) is None  # a rater missing on an item
    assert fleiss_kappa([]) is None
