"""Honest intervals: Wilson for proportions (no collapse at 0 or 1), paired intervals that agree with the
test that gives the p-value (one verdict per delta), their coverage, and the tables' legend of the verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from harness.compare.render import NOT_AFTER_HOLM, marker
from harness.config.settings import MetricSpec
from harness.scoring.answers import Extractor
from harness.scoring.intervals import exact_conditional, tango, wilson
from harness.scoring.paired import compare_paired
from harness.scoring.scores import ScoringSample, score

Z = norm.ppf(0.975)


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n * n))
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(0, 60), (1, 60), (30, 60), (57, 60), (60, 60), (0, 1), (3, 7), (199, 200)])
def test_wilson_bounds_match_the_formula_and_statsmodels(k: int, n: int) -> None:
    low, high = wilson(k, n)
    assert (low, high) == pytest.approx(wilson_by_hand(k, n), abs=1e-12)
    assert (low, high) == pytest.approx(tuple(proportion_confint(k, n, alpha=0.05, method="wilson")), abs=1e-12)
    assert 0.0 <= low <= k / n <= high <= 1.0 and high - low > 0


def test_no_right_answers_of_60_is_not_a_zero_width_interval() -> None:
    assert wilson(0, 60) == pytest.approx((0.0, 0.0602), abs=1e-4)  # the bootstrap said [0.000, 0.000]
    assert wilson(60, 60)[0] == pytest.approx(0.9398, abs=1e-4) and wilson(0, 0) is None


def test_a_proportion_metric_gets_wilson_and_a_continuous_one_the_bootstrap() -> None:
    samples = [ScoringSample("wrong", f"answer {i}") for i in range(60)]
    scores, _ = score(samples, [MetricSpec("exact_match"), MetricSpec("token_f1")], Extractor("text"), bootstrap=500)
    exact, f1 = scores.summary["exact_match"], scores.summary["token_f1"]
    assert (exact.value, exact.interval) == (0.0, "wilson") and (exact.ci_low, exact.ci_high) == pytest.approx(
        (0.0, 0.0602), abs=1e-4
    )
    assert f1.interval == "wilson"  # every token F1 here is 0: a mean of 0/1 values is a proportion
    partial = [ScoringSample("answer one two", "answer one three") for _ in range(30)] + samples[:30]
    scores, _ = score(partial, [MetricSpec("token_f1")], Extractor("text"), bootstrap=500)
    assert scores.summary["token_f1"].interval == "bootstrap"


def tango_by_brute_force(up: int, down: int, n: int) -> tuple[float, float]:
    """Tango's interval without its closed form: the restricted MLE by numeric maximisation and the
    interval's edges by bisection on the score statistic."""

    def statistic(delta0: float) -> float:
        lo, hi = max(0.0, -delta0) + 1e-12, (1 - delta0) / 2 - 1e-12
        rest = n - up - down

        def minus_loglik(p_down: float) -> float:
            return -(
                up * math.log(p_down + delta0)
                + down * math.log(p_down)
                + rest * math.log(max(1 - 2 * p_down - delta0, 1e-300))
            )

        p_down = minimize_scalar(minus_loglik, bounds=(lo, hi), method="bounded", options={"xatol": 1e-13}).x
        return (up - down - n * delta0) / math.sqrt(n * (2 * p_down + delta0 * (1 - delta0)))

    def edge(target: float, inside: float, outside: float) -> float:
        for _ in range(80):
            middle = (inside + outside) / 2
            inside, outside = (middle, outside) if abs(statistic(middle)) < target else (inside, middle)
        return inside

    estimate = (up - down) / n
    return edge(Z, estimate, -1 + 1e-9), edge(Z, estimate, 1 - 1e-9)


@pytest.mark.parametrize(("up", "down", "n"), [(1, 7, 21), (20, 40, 160), (30, 0, 100), (12, 13, 60), (50, 70, 400)])
def test_tango_interval_matches_a_brute_force_inversion(up: int, down: int, n: int) -> None:
    assert tango(up, down, n) == pytest.approx(tango_by_brute_force(up, down, n), abs=1e-5)


def test_the_issue_example_gets_one_verdict() -> None:
    """prompted vs base on 60 items, 4 discordant items all fixed: the bootstrap said [+0.017, +0.133]
    ("significant") while McNemar's exact p was 0.125 ("not")."""
    result = compare_paired([0.0] * 60, [0.0] * 56 + [1.0] * 4)
    assert result.p_value == pytest.approx(0.125) and result.test == "mcnemar exact"
    assert result.ci_low < 0 < result.ci_high and result.ci_high > result.delta


@pytest.mark.parametrize("n", [30, 200])
def test_the_interval_excludes_zero_exactly_when_the_test_rejects(n: int) -> None:
    """Every split of up to 32 discordant items, across the exact (below 25) / asymptotic switch, where
    the p-values straddle 0.05 (5 of 5 flips one way: p = 0.0625; 6 of 6: 0.031; 18 of 25: 0.024)."""
    seen = set()
    for discordant in range(min(32, n) + 1):
        for up in range(discordant + 1):
            down = discordant - up
            before = [1.0] * down + [0.0] * up + [0.0] * (n - discordant)
            after = [0.0] * down + [1.0] * up + [0.0] * (n - discordant)
            result = compare_paired(before, after)
            excludes_zero = result.ci_low > 0 or result.ci_high < 0
            assert excludes_zero == (result.p_value < 0.05), (n, up, down, result)
            assert result.ci_low <= result.delta <= result.ci_high and result.ci_high > result.ci_low
            seen.add(excludes_zero)
    assert seen == {True, False}


def test_no_flips_still_leave_an_interval() -> None:
    same = compare_paired([1.0] * 30 + [0.0] * 30, [1.0] * 30 + [0.0] * 30)
    assert (
        same.p_value == 1.0
        and same.ci_low == pytest.approx(-0.0602, abs=1e-4)
        and same.ci_high == pytest.approx(0.0602, abs=1e-4)
    )


@pytest.mark.parametrize(
    ("n", "p_up", "p_down"), [(60, 0.03, 0.03), (60, 0.1, 0.05), (200, 0.02, 0.01), (40, 0.2, 0.1), (400, 0.02, 0.02)]
)
def test_paired_intervals_cover_the_true_delta(n: int, p_up: float, p_down: float) -> None:
    """Coverage of the true P(up) - P(down) over 400 simulated item sets: at least 95% less Monte-Carlo
    error (one standard error is 1.1 points). Measured with 3,000 sets: 97.3-99.8% for these settings."""
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(400):
        u = rng.random(n)
        up, down = int((u < p_up).sum()), int(((u >= p_up) & (u < p_up + p_down)).sum())
        low, high = exact_conditional(up, down, n) if up + down < 25 else tango(up, down, n)
        covered += low - 1e-12 <= p_up - p_down <= high + 1e-12
    assert covered / 400 >= 0.93, covered


def test_a_delta_significant_only_before_holm_is_marked_not_bold() -> None:
    cell = {
        "delta": 0.1,
        "delta_ci_low": 0.02,
        "delta_ci_high": 0.18,
        "p_value": 0.01,
        "p_holm": 0.08,
        "significant": False,
    }
    assert marker(cell) == f" {NOT_AFTER_HOLM}"
    assert marker({**cell, "p_holm": 0.03, "significant": True}) == ""  # bold instead
    assert marker({**cell, "delta_ci_low": -0.01, "p_value": 0.2, "p_holm": 0.6}) == ""  # nothing to explain
