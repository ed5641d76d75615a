"""Paired statistics for two systems scored on the same items: the delta with a paired bootstrap CI and,
for right/wrong scores, the flips each way and McNemar's exact test.

Paired means item i of `before` and item i of `after` are the same question; resampling draws items,
keeping both scores of an item together, which is far tighter than comparing two independent CIs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedComparison:
    n: int
    before: float  # mean score of the reference
    after: float
    delta: float  # after - before
    ci_low: float | None  # paired bootstrap CI of the delta
    ci_high: float | None
    right_to_wrong: int | None = None  # binary scores only
    wrong_to_right: int | None = None
    mcnemar_p: float | None = None
    p_value: float | None = None  # McNemar's test for 0/1 scores (mcnemar_p), Wilcoxon signed-rank otherwise
    test: str | None = None
    sd_diff: float | None = None  # standard deviation of the per-item differences (for the MDE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "before": self.before,
            "after": self.after,
            "delta": self.delta,
            "delta_ci_low": self.ci_low,
            "delta_ci_high": self.ci_high,
            "right_to_wrong": self.right_to_wrong,
            "wrong_to_right": self.wrong_to_right,
            "mcnemar_p": self.mcnemar_p,
            "p_value": self.p_value,
            "test": self.test,
        }


def compare_paired(before: Sequence[float], after: Sequence[float], resamples: int = 2000, seed: int = 0) -> PairedComparison:
    """Compare two score lists over the same items (same order, same length)."""
    a, b = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same items: {a.size} vs {b.size}")  # a caller's bug
    n = int(a.size)
    if n == 0:
        return PairedComparison(0, float("nan"), float("nan"), float("nan"), None, None)
    diff = b - a
    low = high = None
    if n > 1 and resamples > 0:
        rows = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
        means = diff[rows].mean(axis=1)
        tail = (1 - CONFIDENCE) / 2 * 100
        low, high = (float(x) for x in np.percentile(means, [tail, 100 - tail]))
    found: dict[str, Any] = {"sd_diff": float(diff.std(ddof=1)) if n > 1 else None}
    if np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all():
        down, up = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
        p, test = mcnemar_p(down, up)
        found.update(right_to_wrong=down, wrong_to_right=up, mcnemar_p=mcnemar_exact(down, up), p_value=p, test=test)
    else:
        found.update(p_value=wilcoxon_p(diff), test="wilcoxon")
    return PairedComparison(n, float(a.mean()), float(b.mean()), float(diff.mean()), low, high, **found)


def mcnemar_p(right_to_wrong: int, wrong_to_right: int) -> tuple[float, str]:
    """McNemar's test as statsmodels recommends: exact below 25 discordant items, else the chi-square
    without continuity correction (the exact test is conservative there: ~3% false positives at 5%)."""
    discordant = right_to_wrong + wrong_to_right
    if discordant < 25:
        return mcnemar_exact(right_to_wrong, wrong_to_right), "mcnemar exact"
    from statsmodels.stats.contingency_tables import mcnemar

    result = mcnemar([[0, right_to_wrong], [wrong_to_right, 0]], exact=False, correction=False)
    return float(result.pvalue), "mcnemar chi2"


def wilcoxon_p(diff: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank test on paired differences (1.0 when nothing changed)."""
    if not np.any(diff != 0):
        return 1.0
    from scipy.stats import wilcoxon

    return float(wilcoxon(diff, zero_method="wilcox").pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (statsmodels), for many comparisons in one table."""
    if not p_values:
        return []
    from statsmodels.stats.multitest import multipletests

    return [float(p) for p in multipletests(list(p_values), method="holm")[1]]


def minimum_detectable_effect(sd_diff: float | None, n: int, alpha: float = 0.05, power: float = 0.8) -> float | None:
    """The smallest true mean difference a paired comparison of n items detects with this power
    (normal approximation: (z_{1-alpha/2} + z_power) * sd / sqrt(n))."""
    if sd_diff is None or n < 2 or not np.isfinite(sd_diff) or sd_diff == 0:
        return None  # no item moved: the normal approximation says nothing
    from scipy.stats import norm

    return float((norm.ppf(1 - alpha / 2) + norm.ppf(power)) * sd_diff / np.sqrt(n))


def mcnemar_exact(right_to_wrong: int, wrong_to_right: int) -> float:
    """Two-sided exact McNemar test: only discordant items carry information; under no change each flip
    goes either way with probability 1/2."""
    discordant = right_to_wrong + wrong_to_right
    if discordant == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(right_to_wrong, discordant, 0.5).pvalue)
