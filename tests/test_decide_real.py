"""`harness decide` on both demo suites through the real engine (the embedded model on vLLM, the committed
adapters): every number the decision states is one the run's files hold, and on policy-qa, whose facts
changed after the train split was written, the decision is not to fine-tune."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITES = ROOT / "suites"
# Twenty support-triage items, as test_diff_real runs: the generation cache of the test session answers the
# prompted variant's requests for whichever of the two files runs second.
RUNS = {
    "support-triage": ("prompted,finetuned,rag", "20"),
    "policy-qa": ("base,prompted,finetuned,rag", "40"),
}


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], cwd=ROOT, capture_output=True, text=True, timeout=1800
    )


@pytest.fixture(scope="module", params=sorted(RUNS))
def decided(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, dict]:
    suite = request.param
    variants, limit = RUNS[suite]
    out = tmp_path_factory.mktemp(suite) / "run"
    done = harness("run", str(SUITES / suite), "--variants", variants, "--limit", limit, "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stderr[-3000:]
    done = harness("decide", str(out), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith(f"# Decision: {suite}"), done.stdout[:500]
    decision = json.loads((out / "decision.json").read_text())
    assert (out / "decision.md").read_text() == done.stdout.removesuffix("\n")  # print() adds one
    return suite, out, decision


def samples(run: Path, variant: str) -> list[dict[str, Any]]:
    lines = (run / "samples" / f"{variant}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_every_verdict_is_the_mean_of_the_samples_scores(decided: tuple[str, Path, dict]) -> None:
    suite, run, decision = decided
    run_json = json.loads((run / "run.json").read_text())
    checked = 0
    for assessed in decision["variants"]:
        rows = samples(run, assessed["variant"])
        for verdict in assessed["verdicts"]:
            metric = next(t["metric"] for t in decision["targets"] if t["text"] == verdict["target"])
            scores = [r["scores"][metric] for r in rows if r["scores"].get(metric) is not None]
            assert verdict["n"] == len(scores) == int(RUNS[suite][1])
            assert verdict["value"] == pytest.approx(sum(scores) / len(scores), abs=1e-6)
            summary = run_json["metrics"][assessed["variant"]][metric]
            assert (verdict["ci_low"], verdict["ci_high"]) == (summary["ci_low"], summary["ci_high"])
            low, high, target = verdict["ci_low"], verdict["ci_high"], verdict_target(decision, verdict)
            expected = "meets" if low >= target else "fails" if high < target else "undecided"
            assert verdict["status"] == expected, verdict
            checked += 1
    assert checked == len(RUNS[suite][0].split(",")) * len(decision["targets"])


def verdict_target(decision: dict, verdict: dict) -> float:
    return next(t["value"] for t in decision["targets"] if t["text"] == verdict["target"])


def test_cost_and_pay_back_come_from_usage_prices_and_training_json(decided: tuple[str, Path, dict]) -> None:
    suite, run, decision = decided
    run_json = json.loads((run / "run.json").read_text())
    suite_toml = (SUITES / suite / "suite.toml").read_text()
    prices = {
        key: float(suite_toml.split(f"\n{key} = ")[1].split()[0]) for key in ("input_per_mtok", "output_per_mtok")
    }
    for assessed in decision["variants"]:
        usage = run_json["variants"][assessed["variant"]]["usage"]
        expected = (
            usage["prompt_tokens_mean"] * prices["input_per_mtok"]
            + usage["completion_tokens_mean"] * prices["output_per_mtok"]
        ) / 1000
        assert assessed["cost_per_1k"] == pytest.approx(expected, rel=1e-4), assessed["variant"]
    (payback,) = [p for p in decision["payback"] if p["finetuned"] == "finetuned"]
    training = json.loads(next((SUITES / suite / "adapters").glob("*/training.json")).read_text())
    gpu_hour = float(suite_toml.split("\ngpu_hour = ")[1].split()[0])
    assert payback["training_cost"] == pytest.approx(training["train_seconds"] / 3600 * gpu_hour, rel=1e-4)
    saved = payback["other_per_1k"] - payback["tuned_per_1k"]
    if saved > 0:
        assert payback["break_even_queries"] == pytest.approx(payback["training_cost"] / saved * 1000, rel=1e-4)
    else:
        assert payback["break_even_queries"] is None


def test_the_printed_numbers_are_decision_json_s(decided: tuple[str, Path, dict]) -> None:
    _, run, decision = decided
    printed = (run / "decision.md").read_text()
    for line in decision["evidence"]:
        assert line in printed
    assert decision["recommendation"] in printed
    for assessed in decision["variants"]:
        for verdict in assessed["verdicts"]:
            assert f"{verdict['value']:.3f} [{verdict['ci_low']:.3f}, {verdict['ci_high']:.3f}]" in printed
    assert not any(math.isnan(v) for v in numbers(decision))


def numbers(value: Any) -> list[float]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers(v)]
    return []


def test_policy_qa_is_not_a_job_for_fine_tuning(decided: tuple[str, Path, dict]) -> None:
    """Its eval asks today's facts, its train split holds last quarter's: whatever the small model scores,
    the decision must not be to train (nor ship) an adapter. support-triage's is what its numbers say."""
    suite, _, decision = decided
    if suite != "policy-qa":
        assert decision["rule"] and decision["recommendation"]
        return
    assert not decision["rule"].startswith("finetune-"), decision["recommendation"]
    assert decision["ship"] not in ("finetuned", "hybrid"), decision["recommendation"]
    (payback,) = [p for p in decision["payback"] if p["finetuned"] == "finetuned"]
    assert payback["horizon_days"] == 30  # monthly knowledge changes: retrained every month
