"""Agreement beyond chance between raters of yes/no verdicts: Cohen's and Fleiss' kappa.

Our own few lines rather than a dependency: no maintained statistics library is among
memeval's dependencies, and scikit-learn or statsmodels would be a heavy install for two
formulas. tests/scoring/test_agreement.py checks them against values computed by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

from memeval.scoring.stats import DIGITS


def cohen_kappa(pairs: Sequence[tuple[bool, bool]]) -> float | None:
    """Cohen's kappa of two raters: (p_o - p_e) / (1 - p_e), where p_o is the share of items
    they agree on and p_e the agreement expected from each rater's own share of yes.

    Returns None with no items, or when chance agreement is certain (p_e = 1: both raters
    gave one and the same verdict to every item), where kappa is undefined.
    """
    n = len(pairs)
    if n == 0:
        return None
    observed = sum(a == b for a, b in pairs) / n
    yes_a = sum(a for a, _ in pairs) / n
    yes_b = sum(b for _, b in pairs) / n
    expected = yes_a * yes_b + (1 - yes_a) * (1 - yes_b)
    if expected >= 1:
        return None
    return round((observed - expected) / (1 - expected), DIGITS)


def fleiss_kappa(items: Sequence[Sequence[bool]]) -> float | None:
    """Fleiss' kappa of m >= 2 raters who each rated every item: (P - P_e) / (1 - P_e), where
    P is the mean over items of the share of agreeing rater pairs,
    (n_yes(n_yes - 1) + n_no(n_no - 1)) / (m(m - 1)), and P_e = p_yes² + p_no² from the
    pooled shares of yes and no.

    Returns None with no items, fewer than two raters, raters missing on some item, or when
    chance agreement is certain (every verdict the same).
    """
    if not items:
        return None
    m = len(items[0])
    if m < 2 or any(len(row) != m for row in items):
        return None
    n = len(items)
    agree = 0.0
    yes_total = 0
    for row in items:
        yes = sum(row)
        no = m - yes
        yes_total += yes
        agree += (yes * (yes - 1) + no * (no - 1)) / (m * (m - 1))
    observed = agree / n
    p_yes = yes_total / (n * m)
    expected = p_yes ** 2 + (1 - p_yes) ** 2
    if expected >= 1:
        return None
    return round((observed - expected) / (1 - expected), DIGITS)
