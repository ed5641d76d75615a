"""Paired statistics for two systems scored on the same items: the delta with a 95% interval and a
p-value from one test, so that the interval excludes 0 exactly when p < alpha (harness.scoring.intervals):

- 0/1 scores: the flips each way, McNemar's test (exact below 25 discordant items, asymptotic from 25) and
  the interval that inverts it (exact conditional, or Tango's score interval);
- continuous scores: the paired t-test on the per-item differences and its t interval. Ordinal grades (the
  judge's 1-5) get it too: it tests the mean grade, which is what the table shows, and with tens of items
  the mean difference of bounded grades is close to normal.

Paired means item i of `before` and item i of `after` are the same question: only the per-item
differences carry information, which is far tighter than comparing two independent intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.scoring.intervals import EXACT_BELOW, exact_conditional, t_interval, tango


@dataclass(frozen=True)
class PairedComparison:
    n: int
    before: float  # mean score of the reference
    after: float
    delta: float  # after - before
    ci_low: float | None  # 95% interval of the delta, from the same test as p_value
    ci_high: float | None
    right_to_wrong: int | None = None  # binary scores only
    wrong_to_right: int | None = None
    mcnemar_p: float | None = None  # McNemar's exact p (binary scores), reported beside the asymptotic one
    p_value: float | None = None  # the test named in `test`
    test: str | None = None  # "mcnemar exact", "mcnemar chi2" or "paired t"
    sd_diff: float | None = None  # standard deviation of the per-item differences (for the MDE)
    interval: str | None = None  # how ci_low/ci_high were found: "exact conditional", "tango score", "t"

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "before": self.before,
            "after": self.after,
            "delta": self.delta,
            "delta_ci_low": self.ci_low,
            "delta_ci_high": self.ci_high,
            "interval": self.interval,
            "right_to_wrong": self.right_to_wrong,
            "wrong_to_right": self.wrong_to_right,
            "mcnemar_p": self.mcnemar_p,
            "p_value": self.p_value,
            "test": self.test,
        }


def compare_paired(before: Sequence[float], after: Sequence[float], binary: bool | None = None) -> PairedComparison:
    """Compare two score lists over the same items (same order, same length). `binary`: None, 0/1 scores
    when every value is 0 or 1; False for a metric that is never a proportion (the judge's 1-5 grades,
    `Metric.proportion`), which gets the paired t-test even when every grade happens to be 1."""
    a, b = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same items: {a.size} vs {b.size}")  # a caller's bug
    n = int(a.size)
    if n == 0:
        return PairedComparison(0, float("nan"), float("nan"), float("nan"), None, None)
    diff = b - a
    means = (n, float(a.mean()), float(b.mean()), float(diff.mean()))
    sd = float(diff.std(ddof=1)) if n > 1 else None
    if binary is not False and np.isin(a, (0.0, 1.0)).all() and np.isin(b, (0.0, 1.0)).all():
        down, up = int(((a == 1) & (b == 0)).sum()), int(((a == 0) & (b == 1)).sum())
        p, test = mcnemar_p(down, up)
        if test == "mcnemar exact":
            (low, high), interval = exact_conditional(up, down, n), "exact conditional"
        else:
            (low, high), interval = tango(up, down, n), "tango score"
        flips = {"right_to_wrong": down, "wrong_to_right": up, "mcnemar_p": mcnemar_exact(down, up)}
        return PairedComparison(*means, low, high, **flips, p_value=p, test=test, sd_diff=sd, interval=interval)
    if sd is None:
        return PairedComparison(*means, None, None, sd_diff=None)  # one difference: no spread to test against
    low, high = t_interval(means[3], sd, n)
    return PairedComparison(
        *means, low, high, p_value=paired_t_p(means[3], sd, n), test="paired t", sd_diff=sd, interval="t"
    )


def paired_t_p(mean: float, sd: float, n: int) -> float:
    """Two-sided paired t-test of a mean difference (the test t_interval inverts). Identical differences
    leave no doubt: p = 1 when they are all 0, else 0."""
    if sd == 0:
        return 1.0 if mean == 0 else 0.0
    from scipy.stats import t

    return float(2 * t.sf(abs(mean) / (sd / np.sqrt(n)), n - 1))


def mcnemar_p(right_to_wrong: int, wrong_to_right: int) -> tuple[float, str]:
    """McNemar's test as statsmodels recommends: exact below 25 discordant items, else the chi-square
    without continuity correction (the exact test is conservative there: ~3% false positives at 5%)."""
    discordant = right_to_wrong + wrong_to_right
    if discordant < EXACT_BELOW:
        return mcnemar_exact(right_to_wrong, wrong_to_right), "mcnemar exact"
    from statsmodels.stats.contingency_tables import mcnemar

    result = mcnemar([[0, right_to_wrong], [wrong_to_right, 0]], exact=False, correction=False)
    return float(result.pvalue), "mcnemar chi2"


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
