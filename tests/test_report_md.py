"""report.md as a pull-request comment: it renders in a GitHub-flavoured renderer (tables inside <details>),
its first screen holds the decision and the scorecard, it stays under GitHub's comment limit, numbers
have 3 decimals, and the primary metric (`primary` in the suite, --primary) picks the scorecard's metric."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from harness.cli import main
from harness.compare.report_md import COMMENT_LIMIT
from harness.compare.scorecard import fmt3, fmt_cost, p_text, scorecard

REPO = Path(__file__).resolve().parent.parent
BASELINE = REPO / "results" / "baselines" / "support-triage"  # a real demo run (read-only)
TARGETS = {"target": ["accuracy[category] >= 0.8", "json_schema >= 0.95"], "queries_per_day": 5000}


def demo_like(tmp_path: Path, decision: dict[str, Any] | None = TARGETS) -> Path:
    """A copy of the committed demo run with the given [decision] (None: as if the suite set none)."""
    run = tmp_path / "demo"
    shutil.copytree(BASELINE, run)
    record = json.loads((run / "run.json").read_text())
    record["suite"]["config"].pop("decision", None)
    if decision is not None:
        record["suite"]["config"]["decision"] = decision
    (run / "run.json").write_text(json.dumps(record))
    return run


def report_of(run: Path, primary: str | None = None) -> tuple[dict[str, Any], str]:
    """comparison and report.md as `harness compare` makes them (without writing report.html)."""
    from harness.compare.cost import cost_model_from
    from harness.compare.render import comparison_markdown
    from harness.compare.table import compare_run, run_decision
    from harness.results.read import load_run

    result = load_run(run)
    cost = cost_model_from(result.run_json.suite_config.get("cost"), "run.json")
    comparison = compare_run(result, cost=cost, primary=primary)
    return comparison, comparison_markdown(comparison, run_decision(result, cost))


def render(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(markdown)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    return report_of(demo_like(tmp_path_factory.mktemp("demo")))


def test_the_demo_report_renders_with_tables_inside_details(demo: tuple[dict[str, Any], str]) -> None:
    comparison, markdown = demo
    html = render(markdown)
    tables = html.count("<table>")
    # the scorecard, one per metric, latency/tokens, forgetting, MDE, break-even, the decision's conditions
    assert tables == 1 + len(comparison["metrics"]) + 5, tables
    blocks = re.findall(r"<details><summary>(.*?)</summary>(.*?)</details>", html, re.S)
    summaries = [summary for summary, _ in blocks]
    assert summaries[:2] == ["Decision evidence", "accuracy[category]"]  # the primary metric's table first
    assert set(comparison["metrics"]) <= set(summaries)
    for summary, body in blocks:
        if summary != "Decision evidence":
            assert "<table>" in body and "|---" not in body, summary  # a table, not raw markdown
    scorecard_html = html.split("<h2>Scorecard: accuracy[category]</h2>")[1].split("</table>")[0]
    assert scorecard_html.count("<tr>") == 1 + len(comparison["rows"]) and "<th>p95 latency s</th>" in scorecard_html
    assert len(markdown) < COMMENT_LIMIT


def test_the_first_screen_holds_the_decision_and_the_scorecard(demo: tuple[dict[str, Any], str]) -> None:
    _, markdown = demo
    first = "\n".join(markdown.splitlines()[:40])
    assert "## Decision" in first and "**Ship similar-constrained (prompted)" in first
    assert "Rule: `prompting-meets-target`" in first
    assert "## Scorecard: accuracy[category]" in first
    rows = [line for line in first.splitlines() if line.startswith("| ") and "---" not in line]
    # the baseline first, then as the demo declares them
    shots = [f"shots@k{k}" for k in (0, 1, 3, 5, 8)]
    assert [row.split("|")[1].strip() for row in rows[1:]] == [
        *("base", "echo", "prompted", "constrained", "similar-shots", "similar-constrained", *shots, "reasoning"),
        *("finetuned", "rag", "hybrid", "hybrid-plain"),
    ]
    finetuned = next(row for row in rows if row.startswith("| finetuned |"))
    # value [CI], bold significant delta with Holm p, cost per 1k, probe p95 latency, forgetting status
    assert "| 0.973 [0.933, 0.990] | **+0.967 [+0.918, +0.986] (<0.001)** |" in finetuned
    assert "(probe) | pass |" in finetuned
    assert "Wilson" in first and "bootstrap" in first and "McNemar" in first and "Holm" in first
    assert markdown.index("## Scorecard") < markdown.index("Decision evidence") < markdown.index("Minimum detectable")


def test_numbers_have_three_decimals_and_p_is_floored(demo: tuple[dict[str, Any], str]) -> None:
    _, markdown = demo
    # the scorecard and the per-metric, latency and MDE tables (the break-even's notes are cost.py's wording)
    shown = markdown.split("<summary>Cost and break-even")[0]
    tables = [n for line in shown.splitlines() if line.startswith("|") for n in re.findall(r"\d+\.\d+", line)]
    assert tables and all(len(n.split(".")[1]) in (1, 3) for n in tables), set(tables)  # 1: token means
    assert not re.search(r"\de-\d", markdown)  # no 8.882e-32
    assert (fmt3(0.0066667), fmt3(0.96667, signed=True), fmt3(None)) == ("0.007", "+0.967", "-")
    assert (p_text(8.882e-32), p_text(0.0429), p_text(1.0), p_text(None)) == ("<0.001", "0.043", "1.000", "-")
    # a token price per 1k queries far under a cent keeps 4 significant digits rather than 0.000
    assert (fmt_cost(0.0344), fmt_cost(0.000123456), fmt_cost(0.0), fmt_cost(None)) == (
        "0.034",
        "0.0001235",
        "0.000",
        "-",
    )


def test_flips_against_the_baseline_in_the_metric_tables(demo: tuple[dict[str, Any], str]) -> None:
    comparison, markdown = demo
    block = markdown.split("<summary>accuracy[category]</summary>")[1].split("</details>")[0]
    assert "flips right→wrong / wrong→right" in block
    cell = next(r for r in comparison["rows"] if r["variant"] == "finetuned")["metrics"]["accuracy[category]"]
    assert f"| {cell['right_to_wrong']} / {cell['wrong_to_right']} |" in block and cell["wrong_to_right"] == 145


def test_the_scorecard_data(demo: tuple[dict[str, Any], str]) -> None:
    comparison, _ = demo
    rows = {r.variant: r for r in scorecard(comparison)}
    assert rows["base"].is_baseline and rows["base"].delta is None and rows["finetuned"].metric == "accuracy[category]"
    assert rows["finetuned"].latency_source == "probe" and rows["finetuned"].forgetting == "pass"
    assert rows["prompted"].forgetting == "same weights as base" and rows["finetuned"].significant


MANY_VARIANTS = 90


def test_the_report_stays_under_the_comment_limit(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    """90 fake variants x 10 metrics would be ~100k characters: the last metrics' detail is left out, said so."""
    toml = tiny_suite / "suite.toml"
    extra = "".join(
        f'\n[variants.fake_variant_{i:03d}]\nkind = "fake"\noutputs = "canned.jsonl"\ndefault = "No idea {i}."\n'
        for i in range(MANY_VARIANTS)
    )
    toml.write_text(toml.read_text().replace("bootstrap = 200", "bootstrap = 10") + extra)
    run = tmp_path / "run"
    assert main(["run", str(tiny_suite), "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    from harness.compare.render import comparison_markdown
    from harness.compare.report_md import report_markdown
    from harness.compare.table import compare_run
    from harness.results.read import load_run

    comparison = compare_run(load_run(run), baseline="echo")
    markdown = comparison_markdown(comparison)
    assert len(markdown) < COMMENT_LIMIT
    assert "Left out to stay under GitHub's 65,536-character comment limit" in markdown
    assert "report.html and comparison.json hold them" in markdown
    html = render(markdown)
    kept = re.findall(r"<details><summary>(.*?)</summary>", html)
    assert "exact_match" in kept and "output_length" not in kept  # dropped from the end
    assert "<summary>Minimum detectable effect</summary>" in markdown  # the folded sections after them stay
    assert markdown.count("| fake_variant_") >= MANY_VARIANTS  # the scorecard keeps every variant
    full = report_markdown(comparison, limit=10**9)
    assert len(full) > COMMENT_LIMIT and "Left out" not in full


# --- the primary metric ---


def test_primary_in_the_suite_and_on_the_command_line(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    toml = tiny_suite / "suite.toml"
    toml.write_text('primary = "accuracy[capital]"\n' + toml.read_text())
    run = tmp_path / "run"
    assert main(["run", str(tiny_suite), "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert json.loads((run / "run.json").read_text())["suite"]["config"]["primary"] == "accuracy[capital]"
    assert main(["compare", str(run), "--baseline", "echo"]) == 0
    out = capsys.readouterr().out
    assert "## Scorecard: accuracy[capital]" in out and "<details>" not in out  # the headline only
    assert json.loads((run / "comparison.json").read_text())["primary_metric"] == "accuracy[capital]"
    assert main(["compare", str(run), "--baseline", "echo", "--primary", "token_f1"]) == 0
    assert "## Scorecard: token_f1" in capsys.readouterr().out
    assert json.loads((run / "comparison.json").read_text())["primary_metric"] == "token_f1"
    assert main(["diff", str(run), str(run), "--primary", "json_valid", "--out", str(tmp_path / "d")]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "d" / "diff.json").read_text())["primary_metric"] == "json_valid"
    table = (tmp_path / "d" / "diff.md").read_text().split("| variant | metric |")[1]
    rows = [line.split("|")[2].strip() for line in table.splitlines()[2:] if line.startswith("|")]
    assert rows[:2] == ["json_valid", "json_valid"] and rows[2] != "json_valid"  # its rows lead


@pytest.mark.parametrize("command", ["compare", "diff"])
def test_an_unknown_primary_on_the_command_line_is_one_line(tiny_suite: Path, tmp_path: Path, capsys, command) -> None:
    run = tmp_path / "run"
    assert main(["run", str(tiny_suite), "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    args = [str(run), "--baseline", "echo"] if command == "compare" else [str(run), str(run)]
    assert main([command, *args, "--primary", "exact_mach"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == "error: primary metric 'exact_mach' is not one of the suite's metrics - --primary - did you mean 'exact_match'?"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('primary = "acuracy[capital]"', "primary metric 'acuracy[capital]' is not one of the suite's metrics"),
        ("primary = 3", "primary"),
        ('primary = "rouge1"', "did you mean 'rougeL'?"),
    ],
)
def test_a_bad_primary_in_the_suite_is_one_line(tiny_suite: Path, tmp_path: Path, capsys, line, message) -> None:
    toml = tiny_suite / "suite.toml"
    toml.write_text(line + "\n" + toml.read_text())
    assert main(["run", str(tiny_suite), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    assert str(toml) in err


def test_the_default_primary_is_the_first_target_else_the_first_metric(tmp_path: Path) -> None:
    assert report_of(demo_like(tmp_path / "t"))[0]["primary_metric"] == "accuracy[category]"
    assert report_of(demo_like(tmp_path / "n", decision=None))[0]["primary_metric"] == "json_valid"
