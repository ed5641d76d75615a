"""Paired statistics and token F1 on cases whose answers are worked out by hand, each chosen so that a
near miss of the right formula gives a different number: token F1 over sets instead of multisets, the
McNemar exact/chi-square switch one count off, a z quantile where the t one belongs, Holm left out of the
compare/diff tables (or significance read from the raw p), a paired interval that disagrees with its test."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.config.settings import MetricSpec
from harness.scoring.answers import Extractor
from harness.scoring.metrics.builtin import token_f1
from harness.scoring.paired import compare_paired, mcnemar_p
from harness.scoring.scores import ScoringSample, score

# --- token F1 counts shared tokens as a multiset (SQuAD's Counter intersection) ---


@pytest.mark.parametrize(
    ("answer", "reference", "expected"),
    [
        # common = min(2, 2) + min(0, 1) = 2 of 2 and 3 tokens: P = 1, R = 2/3, F1 = 2*(2/3)/(5/3) = 4/5.
        # As a set, common would be 1: P = 1/2, R = 1/3, F1 = 2/5.
        ("red red", "red red blue", 4 / 5),
        ("red red", "red red", 1.0),  # a set would count 1 of 2: F1 = 1/2
        # common = min(2, 2) + min(1, 0) + min(0, 1) = 2 of 3 and 3: F1 = 2/3 (a set: 1/3)
        ("x x y", "x x z", 2 / 3),
        # common = min(3, 1) = 1: P = 1/3, R = 1, F1 = 1/2 (a repeated token counts once against the reference)
        ("go go go", "go", 1 / 2),
    ],
)
def test_token_f1_counts_repeated_tokens(answer: str, reference: str, expected: float) -> None:
    assert token_f1(answer, reference) == pytest.approx(expected, abs=1e-12)
    scores, _ = score([ScoringSample(answer, reference)], [MetricSpec("token_f1")], Extractor("text"), bootstrap=0)
    assert scores.per_sample["token_f1"] == pytest.approx([expected], abs=1e-12)


# --- McNemar: exact below 25 discordant items, chi-square (no continuity correction) from 25 ---


def _flips(right_to_wrong: int, wrong_to_right: int, both_right: int = 10) -> tuple[list[float], list[float]]:
    before = [1.0] * right_to_wrong + [0.0] * wrong_to_right + [1.0] * both_right
    after = [0.0] * right_to_wrong + [1.0] * wrong_to_right + [1.0] * both_right
    return before, after


def test_mcnemar_is_exact_at_24_discordant_items() -> None:
    result = compare_paired(*_flips(7, 17))
    # two-sided binomial: 2 * P(X <= 7), X ~ Bin(24, 1/2)
    expected = 2 * sum(math.comb(24, k) for k in range(8)) / 2**24
    assert result.test == "mcnemar exact" and result.p_value == pytest.approx(expected, rel=1e-9)
    assert (result.right_to_wrong, result.wrong_to_right) == (7, 17)


def test_mcnemar_is_chi_square_from_25_discordant_items() -> None:
    result = compare_paired(*_flips(8, 17))
    chi2 = (8 - 17) ** 2 / 25  # 3.24; one degree of freedom: P(chi2_1 > x) = erfc(sqrt(x / 2))
    assert result.test == "mcnemar chi2" and result.p_value == pytest.approx(math.erfc(math.sqrt(chi2 / 2)), rel=1e-9)
    exact = 2 * sum(math.comb(25, k) for k in range(9)) / 2**25
    assert result.mcnemar_p == pytest.approx(exact, rel=1e-9)  # the exact p is still reported beside it
    assert mcnemar_p(17, 8) == mcnemar_p(8, 17)


# --- continuous scores: the paired t-test and its interval ---


def test_continuous_scores_take_the_paired_t_test_worked_by_hand() -> None:
    # differences 1, 2, 3, 4, 5, 5, 4, 3, 2, 1 (ten items): mean 3, sample sd sqrt(20/9), t = 3 / (sd / sqrt(10))
    before = np.zeros(10)
    after = np.array([1, 2, 3, 4, 5, 5, 4, 3, 2, 1], dtype=float) / 10
    result = compare_paired(before, after)
    sd = math.sqrt(20 / 9) / 10
    from scipy.stats import t

    statistic = 0.3 / (sd / math.sqrt(10))
    assert result.test == "paired t" and result.interval == "t"
    assert result.p_value == pytest.approx(2 * t.sf(statistic, 9), rel=1e-9)
    half = t.ppf(0.975, 9) * sd / math.sqrt(10)  # 2.262 standard errors (a normal z would give 1.96)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.3 - half, 0.3 + half), abs=1e-12)


# --- the paired delta's interval: from the same test as its p-value ---


def test_paired_interval_of_a_constant_shift_has_no_width() -> None:
    """Every item gains exactly 0.25: no spread, no doubt. Resampling the two systems independently would
    give an interval of about +-0.16 here."""
    before = np.random.default_rng(3).random(50)
    result = compare_paired(before, before + 0.25)
    assert result.ci_low == pytest.approx(0.25, abs=1e-9) and result.ci_high == pytest.approx(0.25, abs=1e-9)
    assert result.p_value == 0.0


def test_three_fixes_and_no_breaks_are_not_significant_and_the_interval_says_so() -> None:
    """3 of 40 items fixed, none broken: McNemar's exact p is 2/8 = 0.25. A percentile bootstrap called this
    [+0.000, +0.175] (excluding nothing below 0 and read as a gain); the interval of the test reaches below 0."""
    before = [0.0] * 3 + [1.0] * 17 + [0.0] * 20
    after = [1.0] * 3 + [1.0] * 17 + [0.0] * 20
    result = compare_paired(before, after)
    assert (
        result.test == "mcnemar exact"
        and result.p_value == pytest.approx(0.25)
        and result.delta == pytest.approx(3 / 40)
    )
    assert result.ci_low < 0 < result.ci_high


def test_paired_interval_is_the_central_95_percent() -> None:
    """With 400 items and about 120 discordant ones Tango's interval is close to the normal one: about 1.96
    standard errors either side (a 90% one would be 1.64, a 99% one 2.58)."""
    rng = np.random.default_rng(21)
    before = (rng.random(400) < 0.6).astype(float)
    after = np.where(rng.random(400) < 0.3, 1.0 - before, before)  # 30% of items flip either way
    result = compare_paired(before, after)
    assert result.interval == "tango score"
    diff = after - before
    standard_error = diff.std() / math.sqrt(len(diff))
    half_width = (result.ci_high - result.ci_low) / 2 / standard_error
    assert 1.90 < half_width < 2.02, half_width
    assert abs((result.ci_low + result.ci_high) / 2 - result.delta) < 0.05 * standard_error


# --- Holm across the compare and diff tables ---

ITEMS = 14
RIGHT_AT_START = 4  # the baseline answers q00..q03 right


def _write_suite(root: Path, right: dict[str, int]) -> Path:
    """A suite whose fake variants answer the first `right[variant]` items right and the rest wrong."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "eval.jsonl").write_text(
        "".join(
            json.dumps({"id": f"q{i:02d}", "input": f"question {i}", "output": f"answer{i}"}) + "\n"
            for i in range(ITEMS)
        )
    )
    lines = [
        'name = "holm"',
        'metrics = ["exact_match", "token_f1"]',
        "[data]",
        'eval = "eval.jsonl"',
        "[run]",
        "bootstrap = 50",
    ]
    for variant, n in right.items():
        responses = ", ".join(f'q{i:02d} = "answer{i}"' for i in range(n))
        lines += [f"[variants.{variant}]", 'kind = "fake"', 'default = "wrong"', f"responses = {{ {responses} }}"]
    (root / "suite.toml").write_text("\n".join(lines) + "\n")
    return root


def _run(suite: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    return out


# 6 fixes, none broken: exact McNemar p = 2 / 2^6 = 1/32; 10 fixes: 2 / 2^10 = 1/512. Each for two 0/1
# metrics: four tests. Holm: sorted [1/512, 1/512, 1/32, 1/32] times [4, 3, 2, 1], running maximum:
# [1/128, 1/128, 1/16, 1/16]. So "all" is significant at 0.05 and "some" is not, though its raw p is.
EXPECTED = {"some": (1 / 32, 1 / 16, False), "all": (1 / 512, 1 / 128, True)}


def test_compare_table_is_holm_corrected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suite = _write_suite(tmp_path / "suite", {"base": RIGHT_AT_START, "some": RIGHT_AT_START + 6, "all": ITEMS})
    run = _run(suite, tmp_path / "run", capsys)
    assert main(["compare", str(run), "--baseline", "base"]) == 0
    capsys.readouterr()
    rows = {r["variant"]: r for r in json.loads((run / "comparison.json").read_text())["rows"]}
    for variant, (raw, adjusted, significant) in EXPECTED.items():
        for metric in ("exact_match", "token_f1"):
            cell = rows[variant]["metrics"][metric]
            assert cell["test"] == "mcnemar exact", (variant, metric)
            assert cell["p_value"] == pytest.approx(raw, abs=1e-6) and cell["p_holm"] == pytest.approx(
                adjusted, abs=1e-6
            ), (variant, metric)
            assert cell["significant"] is significant, (variant, metric)
    assert rows["base"]["metrics"]["exact_match"]["p_holm"] is None  # the baseline is not tested against itself


def test_diff_table_is_holm_corrected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = _run(
        _write_suite(tmp_path / "suite", {"some": RIGHT_AT_START, "all": RIGHT_AT_START}), tmp_path / "old", capsys
    )
    new = _run(_write_suite(tmp_path / "suite", {"some": RIGHT_AT_START + 6, "all": ITEMS}), tmp_path / "new", capsys)
    assert main(["diff", str(old), str(new), "--out", str(tmp_path / "d")]) == 0
    capsys.readouterr()
    rows = {(r["variant"], r["metric"]): r for r in json.loads((tmp_path / "d" / "diff.json").read_text())["metrics"]}
    assert len(rows) == 4
    for (variant, metric), row in rows.items():
        raw, adjusted, significant = EXPECTED[variant]
        assert row["p_value"] == pytest.approx(raw, abs=1e-6) and row["p_holm"] == pytest.approx(adjusted, abs=1e-6), (
            variant,
            metric,
        )
        assert row["significant"] is significant, (variant, metric)
    markdown = (tmp_path / "d" / "diff.md").read_text()
    bold = {line.split("|")[1].strip() for line in markdown.splitlines() if line.startswith("| ") and "**" in line}
    assert bold == {"all"}  # bold marks significance after Holm only


# --- the edges: no items, one item, nothing changed (found surviving `make mutate`) ---


def test_paired_comparison_of_nothing_and_of_one_item() -> None:
    empty = compare_paired([], [])
    assert empty.n == 0 and all(math.isnan(x) for x in (empty.before, empty.after, empty.delta))
    assert (empty.ci_low, empty.ci_high, empty.p_value, empty.test) == (None, None, None, None)
    one = compare_paired([0.0], [1.0])
    assert (one.n, one.before, one.after, one.delta) == (1, 0.0, 1.0, 1.0)
    assert (one.right_to_wrong, one.wrong_to_right, one.p_value) == (0, 1, 1.0)  # binomial: 1 flip of 1
    assert one.ci_low < 0 < one.ci_high == 1.0  # one flip proves nothing; it could be all the way up
    assert compare_paired([0.5], [0.75]).ci_low is None  # one continuous difference: no spread to test
    assert one.sd_diff is None  # no spread from one difference
    # two differences, 0 and 1: sample standard deviation sqrt(((0 - 1/2)^2 + (1 - 1/2)^2) / (2 - 1)) = sqrt(1/2)
    assert compare_paired([0.0, 0.0], [0.0, 1.0]).sd_diff == pytest.approx(math.sqrt(0.5), abs=1e-12)
    with pytest.raises(ValueError, match="same items: 2 vs 3"):
        compare_paired([1.0, 0.0], [1.0, 0.0, 1.0])


def test_unchanged_continuous_scores_have_p_one() -> None:
    same = compare_paired([0.5, 0.25, 0.75], [0.5, 0.25, 0.75])
    assert (
        same.test == "paired t"
        and same.p_value == 1.0
        and same.delta == 0.0
        and (same.ci_low, same.ci_high) == (0.0, 0.0)
    )
    shifted = compare_paired([0.0, 0.5, 0.25, 0.75, 0.0, 0.5], [0.1, 0.6, 0.35, 0.85, 0.1, 0.6])
    # every difference is +0.1 (up to rounding): a change beyond doubt, not "no change"
    assert shifted.p_value < 1e-6 and shifted.ci_low > 0.09


def test_minimum_detectable_effect_is_undefined_without_spread_or_items() -> None:
    from harness.scoring.paired import minimum_detectable_effect

    for sd, n in ((None, 10), (0.5, 1), (float("inf"), 10), (float("nan"), 10), (0.0, 10)):
        assert minimum_detectable_effect(sd, n) is None, (sd, n)
    assert minimum_detectable_effect(0.5, 2) == pytest.approx(2.8016 * 0.5 / math.sqrt(2), rel=1e-3)
