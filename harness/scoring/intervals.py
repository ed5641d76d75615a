"""Confidence intervals that do not collapse at 0 or 1, and paired intervals that agree with their test.

- A proportion (a 0/1 score per item) gets Wilson's score interval: 0 right of 60 is [0, 0.060], not the
  percentile bootstrap's [0, 0]. Corpus-level and continuous metrics keep the bootstrap (harness.scoring.scores).
- The paired delta of 0/1 scores gets an interval built from the same test that gives its p-value, so the
  interval excludes 0 exactly when p < alpha:
  * 25 or more discordant items: McNemar's asymptotic (score) test and Tango's score interval, which is that
    test inverted (at delta = 0 Tango's statistic is McNemar's (b - c) / sqrt(b + c)). Fagerland, Lydersen
    and Laake (2014, Stat Med 33:2850) recommend both.
  * fewer: McNemar's exact conditional test, and an interval whose sign comes from the Clopper-Pearson
    interval of the share of discordant items that went up (which excludes 1/2 exactly when that test
    rejects) and whose size from a Wilson interval of the discordance rate (so that 0 discordant items of 60
    still leave room for a change of up to 0.06 either way). It is conservative: tests/test_intervals.py
    measures its coverage.
- The paired delta of continuous scores: the paired t-test and its interval.
- One metric's mean: `binary_wilson` for 0/1 values, else `percentile_interval` over bootstrap resamples,
  for the suite's metrics (harness.scoring.scores) and the forgetting benchmarks (harness.forgetting.check).
"""

from __future__ import annotations

import math

import numpy as np

CONFIDENCE = 0.95
# The discordance rate's Wilson bounds in the small-sample interval. The sign (and so the verdict) never
# depends on them; the coverage does: at 95% it measured 97-100% on 60-400 items (tests/test_intervals.py).
RATE_CONFIDENCE = 0.95
EXACT_BELOW = 25  # discordant items under which McNemar's exact test is used (statsmodels' advice)


def wilson(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Wilson's score interval of successes / n; None without items."""
    if n <= 0:
        return None
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
    # Exactly 0 (1) at no (every) success; rounding leaves 1e-16 off.
    return (0.0 if successes == 0 else float(low)), (1.0 if successes == n else float(high))


def binary_wilson(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """Wilson's interval of the mean of per-item values when every defined (non-NaN) one is 0 or 1 (a
    proportion); None when none is defined or any other value occurs (then: the bootstrap)."""
    defined = values[~np.isnan(values)]
    if not (defined.size and np.isin(defined, (0.0, 1.0)).all()):
        return None
    return wilson(int(defined.sum()), int(defined.size), confidence)


def percentile_interval(resampled: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The percentile bootstrap interval from a statistic's resampled values, the undefined (NaN) ones
    left out; None when none is left."""
    kept = resampled[~np.isnan(resampled)]
    if not kept.size:
        return None
    tail = (1 - confidence) / 2 * 100
    low, high = (float(x) for x in np.percentile(kept, [tail, 100 - tail]))
    return low, high


def tango(up: int, down: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Tango's score interval for P(up) - P(down) over n pairs: every delta0 that the score test of
    `delta = delta0` does not reject."""
    from scipy.optimize import brentq
    from scipy.stats import norm

    z = float(norm.ppf(1 - (1 - confidence) / 2))
    estimate = (up - down) / n
    edge = 1e-12

    def statistic(delta0: float) -> float:
        # The restricted maximum-likelihood P(down) under delta = delta0: the positive root of a quadratic.
        b = -up - down + (2 * n - up + down) * delta0
        c = -down * delta0 * (1 - delta0)
        p_down = (math.sqrt(max(b * b - 8 * n * c, 0.0)) - b) / (4 * n)
        variance = n * (2 * p_down + delta0 * (1 - delta0))
        numerator = up - down - n * delta0
        if numerator == 0 or variance <= 0:
            return 0.0 if numerator == 0 else math.copysign(math.inf, numerator)
        return numerator / math.sqrt(variance)

    def bound(target: float, start: float, end: float) -> float:
        if (statistic(start) - target) * (statistic(end) - target) > 0:
            return end  # no crossing inside (-1, 1): the limit is the edge itself
        return float(brentq(lambda d: statistic(d) - target, min(start, end), max(start, end), xtol=1e-12))

    low = -1.0 if estimate <= -1 else bound(z, estimate, -1 + edge)
    high = 1.0 if estimate >= 1 else bound(-z, estimate, 1 - edge)
    return low, high


def exact_conditional(up: int, down: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The small-sample interval of (up - down) / n that agrees with McNemar's exact test (module doc)."""
    from statsmodels.stats.proportion import proportion_confint

    discordant = up + down
    if discordant:
        share_low, share_high = (
            float(x) for x in proportion_confint(up, discordant, alpha=1 - confidence, method="beta")
        )
    else:
        share_low, share_high = 0.0, 1.0
    rate = wilson(discordant, n, RATE_CONFIDENCE)
    assert rate is not None  # n >= 1 here
    rate_low, rate_high = rate
    # delta = rate * (2 * share - 1): the extremes over the box of both intervals.
    lower, upper = 2 * share_low - 1, 2 * share_high - 1
    low = lower * (rate_high if lower < 0 else rate_low)
    high = upper * (rate_high if upper > 0 else rate_low)
    return low, high


def t_interval(mean: float, sd: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student's t interval of a mean from n values with sample standard deviation sd."""
    from scipy.stats import t

    half = float(t.ppf(1 - (1 - confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return mean - half, mean + half
