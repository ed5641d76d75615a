"""Invariants of the metrics and the paired statistics, checked by hypothesis on generated inputs:
values in range, symmetries, exact_match <= token_f1, intervals around their point estimates, and what
swapping the two systems of a paired comparison must do."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.config.settings import MetricSpec
from harness.scoring.answers import Extractor
from harness.scoring.metrics.builtin import normalize_text, token_f1
from harness.scoring.paired import compare_paired, holm, mcnemar_exact, mcnemar_p, minimum_detectable_effect
from harness.scoring.scores import ScoringSample, score

# deadline=None: the 2 CPU cores are shared with engine experiments, so wall time per example varies.
FAST = settings(max_examples=150, deadline=None)
SLOW = settings(max_examples=40, deadline=None)  # scipy/statsmodels calls: ~50 ms each (statsmodels' Holm)

# Words that overlap often (articles, case, punctuation, repeats), so that F1 takes many values, plus any text.
WORDS = st.sampled_from(
    ["the", "a", "An", "cat", "Cat", "cat.", "sat", "mat", "on", "on,", "42", "café", "x", "x!", "", "--"]
)
PHRASE = st.one_of(st.lists(WORDS, max_size=8).map(" ".join), st.text(max_size=30))
TOL = 1e-9


@FAST
@given(PHRASE, PHRASE)
def test_token_f1_is_a_symmetric_score_in_0_1(answer: str, reference: str) -> None:
    value = token_f1(answer, reference)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(token_f1(reference, answer), abs=1e-12)
    assert token_f1(answer, answer) == 1.0


@FAST
@given(PHRASE, PHRASE)
def test_exact_match_implies_full_token_f1(answer: str, reference: str) -> None:
    scores, _ = score(
        [ScoringSample(answer, reference)],
        [MetricSpec("exact_match"), MetricSpec("token_f1")],
        Extractor("text"),
        bootstrap=0,
    )
    exact, f1 = scores.per_sample["exact_match"][0], scores.per_sample["token_f1"][0]
    assert exact in (0.0, 1.0) and 0.0 <= f1 <= 1.0
    assert exact <= f1 + 1e-12  # a match is a full token overlap; the converse fails on word order
    if exact == 1.0:
        assert f1 == 1.0


@FAST
@given(PHRASE)
def test_normalize_text_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert once == once.strip() and "  " not in once


SAMPLES = st.lists(
    st.tuples(PHRASE, PHRASE, st.sampled_from(["pos", "neg", "neu"]), st.sampled_from(["pos", "neg", "neu", "other"])),
    min_size=2,
    max_size=25,
)


@SLOW
@given(SAMPLES, st.integers(0, 2**16))
def test_scores_are_in_range_and_intervals_hold_the_value(rows: list[tuple[str, str, str, str]], seed: int) -> None:
    samples = [ScoringSample(output, reference) for output, reference, _, _ in rows]
    labeled = [ScoringSample(answer, "", label=gold) for _, _, gold, answer in rows]
    text, _ = score(
        samples, [MetricSpec("exact_match"), MetricSpec("token_f1")], Extractor("text"), bootstrap=200, seed=seed
    )
    labels, _ = score(
        labeled, [MetricSpec("accuracy"), MetricSpec("macro_f1")], Extractor("text"), bootstrap=200, seed=seed
    )
    for name, summary in {**text.summary, **labels.summary}.items():
        assert 0.0 <= summary.value <= 1.0, name
        assert 0.0 <= summary.ci_low and summary.ci_high <= 1.0, name
        assert summary.ci_low - TOL <= summary.value <= summary.ci_high + TOL, name
        assert summary.n == len(rows), name
    for name in ("exact_match", "token_f1"):  # a mean metric's value is the mean of its per-sample values
        assert text.summary[name].value == pytest.approx(np.mean(text.per_sample[name]), abs=1e-12)
    assert text.summary["exact_match"].value <= text.summary["token_f1"].value + 1e-12


BINARY = st.lists(st.tuples(st.sampled_from([0.0, 1.0]), st.sampled_from([0.0, 1.0])), min_size=2, max_size=60)
CONTINUOUS = st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=2, max_size=60)


def _check_swap(pairs: list[tuple[float, float]]) -> None:
    before, after = [a for a, _ in pairs], [b for _, b in pairs]
    forward = compare_paired(before, after)
    backward = compare_paired(after, before)
    assert forward.delta == pytest.approx(np.mean(after) - np.mean(before), abs=1e-12)
    assert backward.delta == pytest.approx(-forward.delta, abs=1e-12)
    # the same test on negated differences: the interval mirrors around zero
    assert backward.ci_low == pytest.approx(-forward.ci_high, abs=1e-9) and backward.ci_high == pytest.approx(
        -forward.ci_low, abs=1e-9
    )
    assert forward.ci_low - TOL <= forward.delta <= forward.ci_high + TOL
    assert 0.0 <= forward.p_value <= 1.0 and backward.p_value == pytest.approx(forward.p_value, rel=1e-9, abs=1e-12)
    assert backward.test == forward.test
    # one verdict: the interval excludes 0 exactly when the test rejects at 5%
    if forward.p_value is not None and forward.ci_low is not None:
        assert (forward.ci_low > 0 or forward.ci_high < 0) == (forward.p_value < 0.05), forward


@SLOW
@given(BINARY)
def test_paired_binary_comparison_is_antisymmetric(pairs: list[tuple[float, float]]) -> None:
    _check_swap(pairs)
    forward = compare_paired([a for a, _ in pairs], [b for _, b in pairs])
    backward = compare_paired([b for _, b in pairs], [a for a, _ in pairs])
    assert (forward.right_to_wrong, forward.wrong_to_right) == (backward.wrong_to_right, backward.right_to_wrong)
    assert forward.delta == pytest.approx((forward.wrong_to_right - forward.right_to_wrong) / len(pairs), abs=1e-12)
    assert forward.test in ("mcnemar exact", "mcnemar chi2")


@SLOW
@given(CONTINUOUS)
def test_paired_continuous_comparison_is_antisymmetric(pairs: list[tuple[float, float]]) -> None:
    if all(a in (0.0, 1.0) and b in (0.0, 1.0) for a, b in pairs):
        return  # 0/1 scores take the McNemar path, covered above
    _check_swap(pairs)


@FAST
@given(st.integers(0, 300), st.integers(0, 300))
def test_mcnemar_p_is_a_symmetric_probability(right_to_wrong: int, wrong_to_right: int) -> None:
    exact = mcnemar_exact(right_to_wrong, wrong_to_right)
    assert 0.0 < exact <= 1.0 and exact == pytest.approx(mcnemar_exact(wrong_to_right, right_to_wrong), rel=1e-9)
    p, test = mcnemar_p(right_to_wrong, wrong_to_right)
    assert 0.0 <= p <= 1.0 and (p, test) == mcnemar_p(wrong_to_right, right_to_wrong)
    assert test == ("mcnemar exact" if right_to_wrong + wrong_to_right < 25 else "mcnemar chi2")
    if right_to_wrong == wrong_to_right:
        assert p == pytest.approx(1.0)  # as many flips each way: no evidence of a change


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=20))
def test_holm_adjusts_up_keeps_order_and_caps_at_one(p_values: list[float]) -> None:
    adjusted = holm(p_values)
    assert len(adjusted) == len(p_values)
    for raw, new in zip(p_values, adjusted):
        assert raw - 1e-12 <= new <= 1.0
        assert new <= min(1.0, raw * len(p_values)) + 1e-12  # never above Bonferroni
    for i in range(len(p_values)):
        for j in range(len(p_values)):
            if p_values[i] < p_values[j]:
                assert adjusted[i] <= adjusted[j] + 1e-12
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    assert [adjusted[i] for i in order] == pytest.approx(holm([p_values[i] for i in order]), abs=1e-12)


@FAST
@given(st.floats(0.01, 10), st.integers(2, 10_000))
def test_minimum_detectable_effect_shrinks_with_more_items(sd: float, n: int) -> None:
    mde = minimum_detectable_effect(sd, n)
    assert mde is not None and mde > 0
    assert minimum_detectable_effect(sd, 4 * n) == pytest.approx(mde / 2, rel=1e-9)  # 1 / sqrt(n)
    assert minimum_detectable_effect(2 * sd, n) == pytest.approx(2 * mde, rel=1e-9)
    assert math.isclose(mde, 2.8016 * sd / math.sqrt(n), rel_tol=1e-3)  # z_0.975 + z_0.8 = 1.95996 + 0.84162
