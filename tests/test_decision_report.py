"""The decision inside `harness compare` (report.md, report.html, decision.json) and the decision gate of
`harness diff`, on constructed result directories (tests/test_decision.py's make_run) and the fake variants."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from test_decision import LADDER, METRIC, make_run, variant

from harness.cli import main

REPO = Path(__file__).resolve().parent.parent
TARGETS = [f"{METRIC} >= 0.7"]


def set_decision(run: Path, table: dict[str, Any] | None) -> Path:
    """The [decision] table run.json records for the suite (None: as a run from before [decision])."""
    record = json.loads((run / "run.json").read_text())
    if table is None:
        record["suite"]["config"].pop("decision", None)
    else:
        record["suite"]["config"]["decision"] = table
    (run / "run.json").write_text(json.dumps(record))
    return run


def ladder_run(folder: Path, prompted_right: int = 90, targets: list[str] | None = TARGETS) -> Path:
    """base 40/100, prompted `prompted_right`/100, rag 92/100: with 90, prompting meets the 0.7 target."""
    run = make_run(folder, LADDER | {"prompted": variant("prompted", prompted_right), "rag": variant("rag", 92, 95)})
    return set_decision(run, None if targets is None else {"target": targets, "queries_per_day": 1000})


def fake_run(suite: Path, out: Path, capsys) -> Path:
    assert main(["run", str(suite), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    return out


# --- harness compare ---


def test_compare_puts_the_decision_on_top_and_writes_decision_json(tmp_path: Path, capsys) -> None:
    run = ladder_run(tmp_path / "r")
    assert main(["compare", str(run)]) == 0
    captured = capsys.readouterr()
    report = (run / "report.md").read_text()
    head = report.split("| variant |")[0]  # everything above the table
    assert head.startswith("# tickets: r\n\n## Decision\n\n**Ship prompted (prompted)")
    assert "Rule: `prompting-meets-target`; ship: `prompted`; targets `accuracy[category] >= 0.7`" in head
    assert "<summary>Decision evidence</summary>" in report and "| before fine-tuning | status | evidence |" in report
    assert "what prompting closed (accuracy[category], base -> prompted): +0.500" in report
    # the evidence right below the scorecard, the conditions folded at the end
    assert report.index("## Scorecard") < report.index("Decision evidence") < report.index("<summary>Minimum")
    assert "**Ship prompted (prompted)" in captured.out and "## Scorecard: accuracy[category]" in captured.out
    html = (run / "report.html").read_text()
    assert html.index('<section id="decision">') < html.index("<h2>Scorecard</h2>")
    assert "<code>prompting-meets-target</code>" in html and "<summary>Evidence (" in html
    assert f"decision: {run / 'decision.json'}" in captured.err
    # the same file `harness decide --out` writes, byte for byte
    assert main(["decide", str(run), "--out", str(tmp_path / "d")]) == 0
    capsys.readouterr()
    assert (run / "decision.json").read_bytes() == (tmp_path / "d" / "decision.json").read_bytes()
    assert json.loads((run / "decision.json").read_text())["rule"] == "prompting-meets-target"
    comparison = json.loads((run / "comparison.json").read_text())
    assert "decision" not in comparison  # comparison.json stays as it was


def test_compare_passes_its_cost_to_the_decision(tmp_path: Path, capsys) -> None:
    run = ladder_run(tmp_path / "r")
    cost = tmp_path / "cost.toml"
    cost.write_text('[cost]\ninput_per_mtok = 10.0\noutput_per_mtok = 0.0\ncurrency = "EUR"\n')
    assert main(["compare", str(run), "--cost", str(cost)]) == 0
    capsys.readouterr()
    found = json.loads((run / "decision.json").read_text())
    prompted = next(v for v in found["variants"] if v["variant"] == "prompted")
    assert found["currency"] == "EUR" and prompted["cost_per_1k"] == pytest.approx(900 * 10.0 / 1e6 * 1000)
    assert main(["decide", str(run), "--cost", str(cost), "--out", str(tmp_path / "d")]) == 0
    capsys.readouterr()
    assert (run / "decision.json").read_bytes() == (tmp_path / "d" / "decision.json").read_bytes()


@pytest.mark.parametrize("table", [None, {"target": []}, {"target": [], "queries_per_day": 10.0}])
def test_without_a_target_the_report_is_as_before(tmp_path: Path, capsys, table: dict[str, Any] | None) -> None:
    from harness.compare.cost import cost_model_from
    from harness.compare.render import comparison_markdown
    from harness.compare.table import compare_run, run_decision
    from harness.results.read import load_run

    run = set_decision(ladder_run(tmp_path / "r", targets=None), table)
    assert main(["compare", str(run)]) == 0
    err = capsys.readouterr().err
    assert run_decision(load_run(run)) is None and "decision:" not in err
    assert not (run / "decision.json").exists()
    report = (run / "report.md").read_text()
    assert "Decision" not in report
    result = load_run(run)
    cost = cost_model_from(result.run_json.suite_config["cost"], "run.json")
    assert report == comparison_markdown(compare_run(result, cost=cost))  # as before: no decision passed
    assert 'id="decision"' not in (run / "report.html").read_text()


def test_fake_variants_only_the_report_says_so_in_one_line(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    run = set_decision(fake_run(tiny_suite, tmp_path / "run", capsys), {"target": ["exact_match >= 0.5"]})
    assert main(["compare", str(run), "--baseline", "echo"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "Decision" in line]
    assert len(lines) == 1 and lines[0].startswith("**Decision: not made.** no variant to decide between")
    assert not (run / "decision.json").exists()
    html = (run / "report.html").read_text()
    assert '<p id="decision" class="note"><strong>Decision: not made.</strong> no variant to decide' in html


def test_the_decision_in_the_report_is_escaped(tmp_path: Path, capsys) -> None:
    run = ladder_run(tmp_path / "r", targets=["accuracy[<script>x</script>] >= 0.7"])
    assert main(["compare", str(run)]) == 0  # a target that is no metric name: not made, and said so
    assert "**Decision: not made.** target 'accuracy[<script>" in capsys.readouterr().out
    html = (run / "report.html").read_text()
    assert "<script>x" not in html and "&lt;script&gt;x" in html


# --- harness diff --gate with decision = true ---

GATE = "[[gate]]\ndecision = true\n"


def diff(old: Path, new: Path, gates: Path, out: Path) -> tuple[int, dict[str, Any], str]:
    code = main(["diff", str(old), str(new), "--gate", str(gates), "--out", str(out)])
    return code, json.loads((out / "diff.json").read_text()), (out / "diff.md").read_text()


def test_the_decision_gate_passes_fails_and_skips(tmp_path: Path, capsys) -> None:
    gates = tmp_path / "gates.toml"
    gates.write_text(GATE)
    old = ladder_run(tmp_path / "old")
    same = ladder_run(tmp_path / "same")
    code, found, markdown = diff(old, same, gates, tmp_path / "d1")
    assert code == 0 and found["passed"]
    assert found["gates"] == [
        {
            "variant": "-",
            "metric": "decision",
            "rule": "same recommendation (ship and rule)",
            "passed": True,
            "skipped": False,
            "why": "",
        }
    ]
    assert found["decision"]["old"]["ship"] == found["decision"]["new"]["ship"] == "prompted"
    assert "| - | decision | same recommendation (ship and rule) | pass |" in markdown
    assert "## Decision\n\n- old: **Ship prompted (prompted)" in markdown and "- new: **Ship prompted" in markdown

    worse = ladder_run(tmp_path / "worse", prompted_right=50)  # prompting no longer meets it: rag does
    code, found, markdown = diff(old, worse, gates, tmp_path / "d2")
    assert code == 1 and not found["passed"]
    assert found["gates"][0]["why"] == "ship prompted -> rag; rule prompting-meets-target -> rag-meets-target"
    assert found["decision"]["new"]["rule"] == "rag-meets-target"
    assert "FAIL: ship prompted -> rag" in markdown and "- new: **Ship rag (rag)" in markdown
    assert "error: a gate failed" in capsys.readouterr().err

    untargeted = ladder_run(tmp_path / "untargeted", targets=None)  # a run from before [decision]
    code, found, markdown = diff(untargeted, worse, gates, tmp_path / "d3")
    assert code == 0 and found["passed"] and found["gates"][0]["skipped"]
    assert "skipped: the old run sets no [decision] target" in markdown
    assert "- old: no [decision] target in its run.json" in markdown
    code, found, _ = diff(untargeted, untargeted, gates, tmp_path / "d4")
    assert code == 0 and found["gates"][0]["why"] == "the old and the new run set no [decision] target"


def test_a_decision_that_cannot_be_made_counts_as_none(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    gates = tmp_path / "gates.toml"
    gates.write_text(GATE)
    fake = set_decision(fake_run(tiny_suite, tmp_path / "fake", capsys), {"target": ["exact_match >= 0.5"]})
    code, found, markdown = diff(fake, fake, gates, tmp_path / "d")
    assert code == 0 and found["decision"]["new"]["status"] == "not made"
    assert "- new: not made: no variant to decide between" in markdown


def test_metric_gates_without_a_decision_gate_are_as_before(tmp_path: Path, capsys) -> None:
    gates = tmp_path / "gates.toml"
    gates.write_text(f'[[gate]]\nmetric = "{METRIC}"\nmin = 0.1\n')
    run = ladder_run(tmp_path / "r")
    code, found, markdown = diff(run, run, gates, tmp_path / "d")
    assert code == 0 and "decision" not in found and "## Decision" not in markdown
    assert all("skipped" not in g for g in found["gates"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GATE + 'metric = "exact_match"\n', "a decision gate takes no metric"),
        (GATE + "min = 0.5\n", "a decision gate takes no metric"),
        ("[[gate]]\nmin = 0.5\n", "missing required key 'metric'"),
        ("[[gate]]\ndecision = 1\n", "decision"),
    ],
)
def test_decision_gate_errors(tmp_path: Path, capsys, text: str, message: str) -> None:
    gates = tmp_path / "gates.toml"
    gates.write_text(text)
    run = ladder_run(tmp_path / "r")
    assert main(["diff", str(run), str(run), "--gate", str(gates)]) == 2
    err = capsys.readouterr().err
    assert message in err and f"{gates} [[gate]] 1" in err and len(err.strip().splitlines()) == 1


def test_the_nightly_gates_skip_the_decision_against_the_old_baseline(tmp_path: Path, capsys) -> None:
    """make regress diffs a baseline in git with the suite's gates; one written before [decision] existed
    (the baseline was, until it was regenerated) sets no targets: the decision gate must be skipped, not
    fail, when only the new run sets them."""
    new = REPO / "results" / "baselines" / "support-triage"
    gates = REPO / "suites" / "support-triage" / "gates.toml"
    assert "decision" in json.loads((new / "run.json").read_text())["suite"]["config"]
    assert "decision = true" in gates.read_text()
    old = tmp_path / "old"
    shutil.copytree(new, old)
    record = json.loads((old / "run.json").read_text())
    del record["suite"]["config"]["decision"]
    (old / "run.json").write_text(json.dumps(record))
    code, found, markdown = diff(old, new, gates, tmp_path / "d")
    assert code == 0, markdown
    gate = next(g for g in found["gates"] if g["metric"] == "decision")
    assert gate["skipped"] and gate["why"] == "the old run sets no [decision] target"
    assert found["decision"]["new"]["status"] == "made"  # the new run's own recommendation is shown
