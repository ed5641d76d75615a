"""The comparer's statistics on synthetic data with known answers, and `harness compare` / `harness diff`
on result directories of the fake variants."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest, norm, ttest_rel
from statsmodels.stats.contingency_tables import mcnemar

from harness.cli import main
from harness.scoring.paired import compare_paired, holm, minimum_detectable_effect

ALPHA = 0.05


def test_aa_comparisons_are_significant_at_about_alpha() -> None:
    """1,000 A/A comparisons (two runs of one system): about 5% come out significant, binary and continuous."""
    rng = np.random.default_rng(11)
    binary = continuous = 0
    for _ in range(1000):
        truth = rng.random(300) < 0.6  # each item's chance of being right, shared by A and B
        p_item = np.where(truth, 0.8, 0.3)
        a, b = (rng.random(300) < p_item).astype(float), (rng.random(300) < p_item).astype(float)
        binary += compare_paired(a, b).p_value < ALPHA
        base = rng.normal(0.5, 0.2, 200)
        continuous += compare_paired(base + rng.normal(0, 0.1, 200), base + rng.normal(0, 0.1, 200)).p_value < ALPHA
    assert abs(binary / 1000 - ALPHA) <= 0.02, binary
    assert abs(continuous / 1000 - ALPHA) <= 0.02, continuous


def test_a_known_effect_is_detected() -> None:
    rng = np.random.default_rng(5)
    a = (rng.random(400) < 0.60).astype(float)
    b = np.where(rng.random(400) < 0.25, 1.0, a)  # B fixes a quarter of items: +10 points expected
    result = compare_paired(a, b)
    assert result.p_value < 1e-6 and result.ci_low > 0.05 and result.right_to_wrong == 0
    mde = minimum_detectable_effect(result.sd_diff, result.n)
    assert mde < result.delta  # the effect is larger than what this sample size can detect


def test_statistics_match_scipy_and_statsmodels() -> None:
    a = np.array([1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 1, 1], dtype=float)
    b = np.array([1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 1], dtype=float)
    result = compare_paired(a, b)
    table = [
        [((a == 1) & (b == 1)).sum(), ((a == 1) & (b == 0)).sum()],
        [((a == 0) & (b == 1)).sum(), ((a == 0) & (b == 0)).sum()],
    ]
    assert result.test == "mcnemar exact" and result.p_value == pytest.approx(
        mcnemar(table, exact=True).pvalue, abs=1e-6
    )
    assert result.p_value == pytest.approx(binomtest(3, 9, 0.5).pvalue, abs=1e-6)
    big_a, big_b = np.tile(a, 5), np.tile(b, 5)  # 45 discordant items: the chi-square test
    big = compare_paired(big_a, big_b)
    table = [[((big_a == 1) & (big_b == 1)).sum(), 15], [30, ((big_a == 0) & (big_b == 0)).sum()]]
    assert big.test == "mcnemar chi2" and big.p_value == pytest.approx(
        mcnemar(table, exact=False, correction=False).pvalue, abs=1e-6
    )
    x = np.array([0.31, 0.52, 0.18, 0.77, 0.64, 0.45, 0.29, 0.93, 0.11, 0.58])
    y = np.array([0.35, 0.49, 0.30, 0.80, 0.71, 0.44, 0.41, 0.95, 0.20, 0.66])
    continuous = compare_paired(x, y)
    reference = ttest_rel(y, x)
    assert continuous.test == "paired t" and continuous.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert (continuous.ci_low, continuous.ci_high) == pytest.approx(
        tuple(reference.confidence_interval(0.95)), rel=1e-9
    )
    assert continuous.delta == pytest.approx((y - x).mean(), abs=1e-12)
    ps = [0.01, 0.04, 0.03, 0.2]
    # Holm by hand: sorted p * (m - rank), running max, capped at 1
    assert holm(ps) == pytest.approx([0.04, 0.09, 0.09, 0.2], abs=1e-9)
    sd = float(np.std(y - x, ddof=1))
    assert minimum_detectable_effect(sd, 10) == pytest.approx(
        (norm.ppf(0.975) + norm.ppf(0.8)) * sd / np.sqrt(10), abs=1e-9
    )
    assert minimum_detectable_effect(0.0, 10) is None


# --- the commands, on fake-variant runs ---


def fake_run(suite: Path, out: Path, capsys, *extra: str) -> Path:
    assert main(["run", str(suite), "--out", str(out), "--quiet", *extra]) == 0
    capsys.readouterr()
    return out


def test_compare_writes_tables_and_report(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    run = fake_run(tiny_suite, tmp_path / "run", capsys)
    cost = tmp_path / "cost.toml"
    cost.write_text("[cost]\ninput_per_mtok = 1.0\noutput_per_mtok = 2.0\n")
    assert main(["compare", str(run), "--baseline", "echo", "--cost", str(cost)]) == 0
    out = capsys.readouterr().out
    report = (run / "report.md").read_text()
    assert "| canned |" in out and "## Scorecard: exact_match" in out and "Minimum detectable effect" not in out
    assert out.rstrip("\n") in report and "<summary>Minimum detectable effect</summary>" in report
    comparison = json.loads((run / "comparison.json").read_text())
    canned = next(r for r in comparison["rows"] if r["variant"] == "canned")
    assert canned["metrics"]["exact_match"]["delta"] == pytest.approx(0.5)  # echo 0/6, canned 3/6
    assert (
        canned["metrics"]["exact_match"]["test"] == "mcnemar exact"
        and canned["metrics"]["exact_match"]["p_holm"] is not None
    )
    prompt, completion = canned["tokens"]["prompt_mean"], canned["tokens"]["completion_mean"]
    # 6 decimals in JSON
    assert canned["cost"]["per_1k_queries"] == pytest.approx((prompt * 1.0 + completion * 2.0) / 1e6 * 1000, rel=1e-4)
    import pandas as pd

    table = pd.read_csv(run / "comparison.csv")
    assert set(table["variant"]) == {"echo", "canned"} and "exact_match" in set(table["metric"])
    assert main(["compare", str(run), "--baseline", "echo", "--cost", str(cost), "--full"]) == 0
    assert capsys.readouterr().out == report + "\n"  # --full: all of report.md
    assert (run / "report.html").is_file()


def test_compare_bad_input_is_one_line(tmp_path: Path, tiny_suite: Path, capsys) -> None:
    assert main(["compare", str(tmp_path)]) == 2
    assert "not a result directory" in capsys.readouterr().err
    run = fake_run(tiny_suite, tmp_path / "run", capsys)
    assert main(["compare", str(run), "--baseline", "bsae"]) == 2
    err = capsys.readouterr().err
    assert "baseline variant 'bsae'" in err and len(err.strip().splitlines()) == 1
    (run / "samples" / "echo.jsonl").write_text('{"id": "fr"}\n{not json\n')
    assert main(["compare", str(run)]) == 2
    assert "echo.jsonl:2" in capsys.readouterr().err


def test_diff_gates_and_exit_codes(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    old = fake_run(tiny_suite, tmp_path / "old", capsys)
    canned = tiny_suite / "canned.jsonl"
    lines = [json.loads(line) for line in canned.read_text().splitlines()]
    for line in lines:  # the new "model" gets France wrong
        if line["id"] == "fr":
            line["output"] = '{"capital": "Lyon"}'
    canned.write_text("".join(json.dumps(line) + "\n" for line in lines))
    new = fake_run(tiny_suite, tmp_path / "new", capsys)
    gates = tmp_path / "gates.toml"
    gates.write_text('[[gate]]\nmetric = "exact_match"\nvariants = ["canned"]\nmin = 0.3\n')
    assert main(["diff", str(old), str(new), "--gate", str(gates), "--out", str(tmp_path / "d")]) == 0
    out = capsys.readouterr().out
    assert "All gates hold." in out and "`fr` lost" in out and "Lyon" in out
    found = json.loads((tmp_path / "d" / "diff.json").read_text())
    row = next(r for r in found["metrics"] if r["variant"] == "canned" and r["metric"] == "exact_match")
    assert row["delta"] == pytest.approx(-1 / 6, abs=1e-6) and row["right_to_wrong"] == 1
    gates.write_text('[[gate]]\nmetric = "exact_match"\nmax_drop = 0.1\n')
    assert main(["diff", str(old), str(new), "--gate", str(gates)]) == 1
    assert "FAIL: dropped 0.167 > 0.1" in capsys.readouterr().out
    gates.write_text('[[gate]]\nmetric = "exact_match"\nmax_drop = 0.1\nsignificant = true\n')
    assert main(["diff", str(old), str(new), "--gate", str(gates)]) == 0  # one flip in 6 items is not significant
    capsys.readouterr()
    gates.write_text('[[gate]]\nmetric = "exact_mtach"\nmin = 0.1\n')
    assert main(["diff", str(old), str(new), "--gate", str(gates)]) == 2
    assert "did you mean 'exact_match'" in capsys.readouterr().err
    gates.write_text('[[gate]]\nmetric = "exact_match"\nminimum = 0.1\n')
    assert main(["diff", str(old), str(new), "--gate", str(gates)]) == 2
    assert "unknown key 'minimum'" in capsys.readouterr().err


# --- row order and metric names ---

ORDERED_VARIANTS = """
[variants.zulu]
kind = "fake"
outputs = "canned.jsonl"
default = "I do not know."

[variants.echo]
kind = "echo"

[variants.alpha]
kind = "fake"
responses = { fr = '{"capital": "Paris"}' }
default = "no idea"
"""


def _table_rows(markdown: str) -> list[str]:
    """The first cell of each body row of the first markdown table."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| variant |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(line.split("|")[1].strip())
    return rows


def test_rows_in_declared_order_with_the_baseline_first(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    """Declared zulu, echo, alpha (alphabetically alpha, echo, zulu); --variants names them in a third order.
    Everywhere (comparison.json/.csv, the scorecard, report.md's and report.html's tables): the baseline
    first, since every delta is against it, then the others as declared."""
    toml = tiny_suite / "suite.toml"
    toml.write_text(toml.read_text().split("[variants.echo]")[0] + ORDERED_VARIANTS)
    run = fake_run(tiny_suite, tmp_path / "run", capsys, "--variants", "alpha,echo,zulu")
    declared = ["zulu", "echo", "alpha"]
    assert json.loads((run / "run.json").read_text())["variant_order"] == declared
    assert _table_rows((run / "summary.md").read_text()) == declared
    assert main(["compare", str(run), "--baseline", "echo"]) == 0
    out = capsys.readouterr().out
    assert _table_rows(out) == ["echo", "zulu", "alpha"]  # the scorecard
    report = (run / "report.md").read_text()
    assert _table_rows(report.split("<summary>exact_match</summary>")[1]) == ["echo", "zulu", "alpha"]
    assert _table_rows(report.split("<summary>Minimum detectable effect</summary>")[1]) == ["zulu", "alpha"]
    comparison = json.loads((run / "comparison.json").read_text())
    assert [r["variant"] for r in comparison["rows"]] == ["echo", "zulu", "alpha"]
    import pandas as pd

    assert list(dict.fromkeys(pd.read_csv(run / "comparison.csv")["variant"])) == ["echo", "zulu", "alpha"]
    html = (run / "report.html").read_text()
    table = html.split('<table id="scorecard">')[1].split("</table>")[0]
    order = ["echo", "zulu", "alpha"]
    assert [table.index(f'data-variant="{v}"') for v in order] == sorted(
        table.index(f'data-variant="{v}"') for v in order
    )
    new = fake_run(tiny_suite, tmp_path / "new", capsys)
    assert main(["diff", str(run), str(new), "--out", str(tmp_path / "d")]) == 0
    capsys.readouterr()
    found = json.loads((tmp_path / "d" / "diff.json").read_text())
    assert list(dict.fromkeys(r["variant"] for r in found["metrics"])) == declared
    diff_md = (tmp_path / "d" / "diff.md").read_text()
    assert diff_md.index("| zulu |") < diff_md.index("| echo |") < diff_md.index("| alpha |")
    # A run written before variant_order was recorded: its sorted keys are all there is.
    record = json.loads((run / "run.json").read_text())
    del record["variant_order"]
    (run / "run.json").write_text(json.dumps(record))
    assert main(["compare", str(run), "--baseline", "zulu"]) == 0
    assert _table_rows(capsys.readouterr().out) == ["zulu", "alpha", "echo"]


CLASSIFY_SUITE = """
name = "classify"
metrics = ["accuracy", "macro_f1", "exact_match"]
[data]
eval = "eval.jsonl"
{label_line}
[run]
bootstrap = 50
[variants.echo]
kind = "echo"
[variants.model]
kind = "fake"
responses = {{ a = "billing", b = "technical", c = "billing", d = "Card declined" }}
"""
CLASSIFY_ITEMS = [  # the model names a's, b's and c's category and echoes d's reference
    {"id": "a", "input": "I was charged twice", "output": "Refund please", "category": "billing"},
    {"id": "b", "input": "The router will not boot", "output": "Reset it", "category": "technical"},
    {"id": "c", "input": "My parcel is late", "output": "Where is it", "category": "shipping"},
    {"id": "d", "input": "My card is declined", "output": "Card declined", "category": "billing"},
]


@pytest.mark.parametrize(
    ("label_line", "heading", "accuracy"),
    [("", "reference", 1 / 4), ('label_field = "category"', "category", 2 / 4)],  # d alone / a and b
)
def test_accuracy_column_says_what_it_scored_against(
    tmp_path: Path, capsys, label_line: str, heading: str, accuracy: float
) -> None:
    suite = tmp_path / "classify"
    suite.mkdir()
    (suite / "suite.toml").write_text(CLASSIFY_SUITE.format(label_line=label_line))
    (suite / "eval.jsonl").write_text("".join(json.dumps(item) + "\n" for item in CLASSIFY_ITEMS))
    run = fake_run(suite, tmp_path / "run", capsys)
    record = json.loads((run / "run.json").read_text())
    # the key stays "accuracy" (gates, history)
    assert record["metrics"]["model"]["accuracy"]["value"] == pytest.approx(accuracy)
    summary = (run / "summary.md").read_text()
    assert f"| variant | accuracy({heading}) | macro_f1({heading}) | exact_match |" in summary
    assert main(["compare", str(run), "--baseline", "echo"]) == 0
    out = capsys.readouterr().out
    assert f"| accuracy({heading}) [95% CI] | Δ vs echo [95% CI] (p Holm) |" in out
    report = (run / "report.md").read_text()
    assert f"<summary>accuracy({heading})</summary>" in report and f"| macro_f1({heading}) |" in report
    comparison = json.loads((run / "comparison.json").read_text())
    assert comparison["metric_headings"] == {
        "accuracy": f"accuracy({heading})",
        "macro_f1": f"macro_f1({heading})",
        "exact_match": "exact_match",
    }
    assert f"<th>accuracy({heading})</th>" in (run / "report.html").read_text()
    import pandas as pd

    table = pd.read_csv(run / "comparison.csv")
    assert set(table.loc[table["metric"] == "accuracy", "metric_heading"]) == {f"accuracy({heading})"}


def test_metric_headings_name_the_mixed_case_and_leave_field_metrics_alone() -> None:
    from harness.scoring.metrics import metric_headings

    keys = ["accuracy", "accuracy[category]", "macro_f1", "exact_match"]
    mixed = metric_headings(keys, ["billing", None, "technical"], "label")
    assert mixed == {
        "accuracy": "accuracy(label or reference)",
        "accuracy[category]": "accuracy[category]",
        "macro_f1": "macro_f1(label or reference)",
        "exact_match": "exact_match",
    }
    assert metric_headings(["accuracy"], ["x", "y"], "label") == {"accuracy": "accuracy(label)"}
    assert metric_headings(["accuracy"], [None], "category") == {"accuracy": "accuracy(reference)"}
    assert metric_headings(["accuracy"], [], "label") == {"accuracy": "accuracy(reference)"}
