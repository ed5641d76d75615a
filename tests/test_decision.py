"""The decision core (harness.compare.decision) on constructed result directories: one case per rule, and the
strict parsing of [decision] and its target strings."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from harness.compare.decision import (
    DecisionSettings,
    decide,
    decision_dict,
    decision_markdown,
    parse_decision_settings,
    parse_target,
)
from harness.core.errors import ConfigError, UnknownNameError
from harness.results.read import RunJson, load_run
from harness.scoring.intervals import wilson

N = 100  # items: enough for intervals about +-0.09 wide
METRIC = "accuracy[category]"
COST = {"input_per_mtok": 1.0, "output_per_mtok": 2.0, "finetune": 25.0, "currency": "USD"}
# Mean tokens per query: few-shot prompts and retrieved context cost prompt tokens; the adapter needs neither.
TOKENS = {"base": 100, "prompted": 900, "rag": 1500, "finetuned": 100, "hybrid": 700}


def scores(right: int, n: int = N) -> list[float]:
    return [1.0] * right + [0.0] * (n - right)


def variant(kind: str, right: int, recall: int | None = None, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "right": right, "recall": recall, **extra}


def make_run(
    folder: Path,
    variants: dict[str, dict[str, Any]],
    forgetting: dict[str, Any] | None = None,
    created_at: str = "2026-03-10T12:00:00Z",
    prompt: str = "Classify.",
    scored: str = METRIC,
) -> Path:
    """run.json and samples/ as `harness run` writes them, for variants whose per-item scores are given."""
    (folder / "samples").mkdir(parents=True)
    described, metrics, timings = {}, {}, {}
    for name, spec in variants.items():
        per_item: dict[str, list[float]] = {scored: scores(spec["right"])}
        if spec["recall"] is not None:
            per_item["recall@k"] = scores(spec["recall"])
        lines = [
            {"id": f"q{i:03d}", "scores": {m: values[i] for m, values in per_item.items()}, "output": ""}
            for i in range(N)
        ]
        (folder / "samples" / f"{name}.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        metrics[name] = {}
        for metric, values in per_item.items():
            low, high = wilson(int(sum(values)), N)
            metrics[name][metric] = {
                "value": sum(values) / N,
                "ci_low": low,
                "ci_high": high,
                "interval": "wilson",
                "n": N,
                "higher_is_better": True,
            }
        usage = {
            "prompt_tokens_mean": float(spec.get("tokens", TOKENS.get(spec["kind"], 10))),
            "completion_tokens_mean": 10.0,
            "latency_s_p95": spec.get("p95_s"),
        }
        described[name] = {
            "kind": spec["kind"],
            "config": spec.get("config", {}),
            "engine": {"adapter": {"path": str(folder / "adapter")}} if spec["kind"] in ("finetuned", "hybrid") else {},
            "usage": usage,
            "latency_probe": None,
            "samples": f"samples/{name}.jsonl",
        }
        timings[name] = {"generate_s": 1.0}
    run = {
        "schema_version": 1,
        "run_id": folder.name,
        "created_at": created_at,
        "suite": {"name": "tickets", "config": {"cost": COST, "prompt": {"system": prompt}}},
        "data": {"eval_items": N},
        "variants": described,
        "variant_order": list(variants),
        "metrics": metrics,
        "timings": {"variants": timings},
        "status": "passed",
    }
    if forgetting is not None:
        run["forgetting"] = forgetting
    (folder / "run.json").write_text(json.dumps(run))
    return folder


def settings(**given: Any) -> DecisionSettings:
    return parse_decision_settings({"target": [f"{METRIC} >= 0.7"], **given}, "suite.toml")


def per_1k(kind: str) -> float:
    return (TOKENS[kind] * COST["input_per_mtok"] + 10 * COST["output_per_mtok"]) / 1e6 * 1000


LADDER = {
    "base": variant("base", 40),
    "prompted": variant("prompted", 50, config={"few_shot": 3}),
    "rag": variant("rag", 55, recall=90),
}


def test_prompting_meets_the_target_ship_the_cheapest(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "r",
        {
            "echo": variant("echo", 0),
            "canned": variant("base", 99) | {"kind": "fake"},
            "base": variant("base", 40),
            "prompted": variant("prompted", 90),
            "rag": variant("rag", 92, recall=95),
        },
    )
    decision = decide(load_run(run), settings())
    assert decision.rule == "prompting-meets-target" and decision.ship == "prompted"
    assert [a.variant for a in decision.variants] == ["base", "prompted", "rag"]  # fake and echo left out
    assert dict(decision.excluded).keys() == {"echo", "canned"}
    assert decision.recommendation.startswith("Ship prompted (prompted)") and "fine-tuning is not needed" in (
        decision.recommendation
    )
    closed = next(s for s in decision.steps if s.step == "prompting")
    assert (closed.before, closed.after, closed.n) == ("base", "prompted", N)
    assert closed.delta == pytest.approx(0.5) and closed.ci_low > 0 and closed.p_value < 1e-6
    assert decision.assessment("prompted").cost_per_1k == pytest.approx(per_1k("prompted"))


def test_the_cheapest_of_a_rung_and_no_target(tmp_path: Path) -> None:
    run = make_run(
        tmp_path / "r",
        {
            "base": variant("base", 40),
            "long": variant("prompted", 95, tokens=2000),
            "short": variant("prompted", 85, tokens=300),
            "tuned": variant("finetuned", 99),
        },
    )
    decision = decide(load_run(run), settings())
    assert decision.ship == "short" and "0.3200 per 1k queries" in decision.recommendation  # (300 + 20) / 1000
    closed = next(s for s in decision.steps if s.step == "prompting")
    assert closed.after == "long"  # the paired delta is the best prompt's, not the cheapest one's
    decision = decide(load_run(run), DecisionSettings())
    assert decision.rule == "no-target" and decision.ship is None and decision.steps == ()
    assert next(c for c in decision.conditions if c.id == "gap-measured").status == "not met"


def test_only_rag_meets_it_ship_rag(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", {**LADDER, "rag": variant("rag", 90, recall=92)})
    decision = decide(load_run(run), settings())
    assert decision.rule == "rag-meets-target" and decision.ship == "rag"
    step = next(s for s in decision.steps if s.step == "retrieval")
    assert (step.label, step.before, step.after) == ("what retrieval closed", "prompted", "rag")
    assert step.delta == pytest.approx(0.4)
    assert decision.recall[0].status == "meets"


def test_low_recall_fix_retrieval_first(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", {**LADDER, "rag": variant("rag", 55, recall=50)})
    decision = decide(load_run(run), settings())
    assert decision.rule == "fix-retrieval-first" and decision.ship is None
    assert "0.500" in decision.recommendation and "0.7" in decision.recommendation
    recall = next(c for c in decision.conditions if c.id == "rag-recall")
    assert recall.status == "not met" and "recall@k 0.500" in recall.evidence


def history(tmp_path: Path, configs: int) -> list[RunJson]:
    """Earlier runs of the suite, one prompted configuration each, a day apart."""
    found = []
    for day in range(configs):
        folder = make_run(
            tmp_path / f"old{day}",
            {"prompted": variant("prompted", 50, config={"few_shot": day})},
            created_at=f"2026-03-0{day + 1}T12:00:00Z",
        )
        found.append(load_run(folder).run_json)
    return found


def test_only_finetuning_meets_and_pays_back(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", {**LADDER, "tuned": variant("finetuned", 90)})
    decision = decide(load_run(run), settings(queries_per_day=1000), history(tmp_path, 3))
    assert decision.rule == "finetune-pays-back" and decision.ship == "tuned"
    payback = decision.payback[0]
    saving = (per_1k("rag") - per_1k("finetuned")) / 1000  # against the best without fine-tuning: rag
    assert payback.against == "rag" and payback.break_even_queries == pytest.approx(25.0 / saving)
    assert payback.days_to_pay_back == pytest.approx(25.0 / saving / 1000) and payback.pays_back
    assert f"{payback.days_to_pay_back:.1f} days" in decision.recommendation
    conditions = {c.id: c for c in decision.conditions}
    assert [c.status for c in decision.conditions] == ["met"] * 4
    # history: 3 configurations (few_shot 0, 1, 2; the current run's few_shot 3 makes a fourth) over 9 days
    assert conditions["prompts-iterated"].evidence.startswith("4 distinct prompted configurations")
    assert "over 9.0 days" in conditions["prompts-iterated"].evidence
    assert "inferred from the target metrics: accuracy" in conditions["narrow-task"].evidence
    assert "gap 0.150" in conditions["gap-measured"].evidence  # rag 0.55 vs 0.7
    adds = next(s for s in decision.steps if s.step == "fine-tuning")
    assert (adds.label, adds.before, adds.after) == ("what fine-tuning adds", "rag", "tuned")
    text = decision_markdown(decision)
    assert text.index(decision.recommendation) < text.index("## Evidence") < text.index("| condition | status |")


def test_pay_back_unknown_without_a_volume(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", {**LADDER, "tuned": variant("finetuned", 90)})
    decision = decide(load_run(run), settings(), history(tmp_path, 3))
    assert decision.rule == "finetune-payback-unknown" and "set [decision] queries_per_day" in decision.recommendation
    assert decision.payback[0].queries_per_day_needed == pytest.approx(decision.payback[0].break_even_queries / 90)


def test_finetuning_meets_but_does_not_pay_back(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", {**LADDER, "tuned": variant("finetuned", 90)})
    decision = decide(load_run(run), settings(queries_per_day=100), history(tmp_path, 3))
    assert decision.rule == "finetune-does-not-pay-back" and decision.ship is None
    payback = decision.payback[0]
    assert payback.pays_back is False and payback.days_to_pay_back > 90
    needed = payback.break_even_queries / 90
    assert payback.queries_per_day_needed == pytest.approx(needed)
    assert f"{needed:,.0f} queries per day or more" in decision.recommendation


def test_knowledge_that_changes_shortens_the_horizon_of_an_adapter(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", {**LADDER, "tuned": variant("finetuned", 90)})
    decision = decide(load_run(run), settings(queries_per_day=1000, knowledge_changes="weekly", task="open"))
    assert decision.payback[0].horizon_days == 7.0 and "retrained every 7 days" in decision.payback[0].horizon_note
    assert decision.rule == "finetune-conditions-not-met"  # an open task: the fourth condition fails
    assert next(c for c in decision.conditions if c.id == "narrow-task").evidence == "given: task = open"
    # On a narrow task too: an adapter that holds the facts is retrained when they change.
    narrow = decide(load_run(run), settings(queries_per_day=1000, knowledge_changes="weekly"))
    assert narrow.payback[0].horizon_days == 7.0


def test_forgetting_over_budget_do_not_ship_that_adapter(tmp_path: Path) -> None:
    forgetting = {
        "status": "failed",
        "weights": {"base": {"variants": ["base", "prompted", "rag"]}, "adapter": {"variants": ["tuned"]}},
        "benchmarks": {
            "mmlu": {
                "primary_metric": "acc",
                "weights": {
                    "base": {"metrics": {}},
                    "adapter": {
                        "metrics": {},
                        "vs_base": {"delta": -0.09, "delta_ci_low": -0.13, "delta_ci_high": -0.06, "status": "fail"},
                    },
                },
            }
        },
    }
    run = make_run(tmp_path / "r", {**LADDER, "tuned": variant("finetuned", 90)}, forgetting)
    decision = decide(load_run(run), settings(queries_per_day=1000), history(tmp_path, 3))
    assert decision.rule == "forgetting-over-budget" and decision.ship is None
    assert "adapter of tuned" in decision.recommendation and "mmlu -0.090 [-0.130, -0.060]" in (decision.recommendation)
    assert decision.assessment("tuned").forgetting_status == "fail"
    assert decision.assessment("rag").forgetting_status == "same weights as base"


def test_nothing_meets_the_target_names_the_closest(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", {**LADDER, "rag": variant("rag", 60, recall=90), "tuned": variant("finetuned", 55)})
    decision = decide(load_run(run), settings())
    assert decision.rule == "nothing-meets-target" and decision.ship is None
    assert "the closest is rag (rag, 0.100 short)" in decision.recommendation
    assert "hybrid: retrieval over the fine-tuned model" in decision.recommendation
    assert decision.recommendation.endswith("a bigger model.")


def test_nothing_meets_a_tool_calling_target_says_what_moves_calls(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", {"base": variant("base", 20), "tuned": variant("finetuned", 60)}, scored="tool_name")
    decision = decide(load_run(run), settings(target=["tool_name >= 0.9"]))
    assert decision.rule == "nothing-meets-target"
    assert "retrieval" not in decision.recommendation  # documents do not pick a function
    assert 'constrain = "tools"' in decision.recommendation and "more training for the adapter" in (
        decision.recommendation
    )
    rag = next(c for c in decision.conditions if c.id == "rag-recall")
    assert rag.status == "met" and rag.evidence.startswith("does not apply")


def test_undecided_says_how_many_items_would_decide(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", {"base": variant("base", 40), "prompted": variant("prompted", 75)})
    decision = decide(load_run(run), settings())
    assert decision.rule == "undecided"
    verdict = decision.assessment("prompted").verdicts[0]
    low, _ = wilson(75, N)
    assert verdict.status == "undecided" and verdict.ci_low < 0.7 < verdict.ci_high
    assert verdict.items_needed == math.ceil(N * ((0.75 - low) / 0.05) ** 2)
    assert f"about {verdict.items_needed} eval items (now {N})" in decision.recommendation
    prompts = next(c for c in decision.conditions if c.id == "prompts-iterated")
    assert prompts.status == "unknown" and "no history" in prompts.evidence


def test_latency_budget_and_lower_is_better_targets(tmp_path: Path) -> None:
    slow = variant("prompted", 90, p95_s=2.5)
    run = make_run(tmp_path / "r", {"base": variant("base", 40), "prompted": slow})
    decision = decide(load_run(run), settings(latency_p95_ms=800))
    assert decision.rule == "latency-over-budget" and "2500 ms" in decision.recommendation
    lower = parse_target(f"{METRIC} <= 0.95")
    decision = decide(load_run(run), DecisionSettings(target=(lower.text,)))
    assert decision.assessment("base").verdicts[0].status == "meets"  # 0.40, its interval under 0.95


def test_decision_dict_is_plain_and_stable(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", {**LADDER, "tuned": variant("finetuned", 90)})
    found = decision_dict(decide(load_run(run), settings(queries_per_day=1000)))
    assert json.loads(json.dumps(found)) == found
    keys = "schema_version run_id run_dir suite eval_items settings targets currency variants excluded steps"
    assert set(found) == {
        *keys.split(),
        "recall",
        "payback",
        "conditions",
        "ship",
        "rule",
        "recommendation",
        "evidence",
    }
    assert found["targets"] == [{"metric": METRIC, "op": ">=", "value": 0.7, "text": f"{METRIC} >= 0.7"}]


def test_an_unknown_target_metric_is_one_line(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r", dict(LADDER))
    with pytest.raises(UnknownNameError, match=r"'accuracy\[categry\]' is not in this run .* did you mean"):
        decide(load_run(run), DecisionSettings(target=("accuracy[categry] >= 0.7",)))


# --- strict parsing ---


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accu racy >= 0.9", "is no metric name"),
        ("accuracy[category >= 0.9", "is no metric name"),
        ("accuracy > 0.9", "unknown operator '>'"),
        ("accuracy => 0.9", "unknown operator '=>'"),
        ("accuracy == 0.9", "unknown operator '=='"),
        ("accuracy 0.9", "has no operator"),
        ("accuracy >= high", "'high' is not a number"),
        ("accuracy >= nan", "'nan' is not a number"),
        ("accuracy >=", "'' is not a number"),
    ],
)
def test_bad_target_strings_are_one_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_decision_settings({"target": [text]}, "suite.toml")
    line = str(caught.value)
    assert message in line and "\n" not in line and "suite.toml [decision] key 'target'[0]" in line


def test_good_target_strings() -> None:
    assert parse_target("accuracy[category]>=0.9") == parse_target(" accuracy[category] >= 0.90 ")
    assert parse_target("recall@k <= 1").op == "<=" and parse_target("rougeL >= 0.4").metric == "rougeL"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"knowledge_changes": "yearly"}, "invalid value 'yearly' - suite.toml [decision] key 'knowledge_changes'"),
        ({"task": "broad"}, "invalid value 'broad'"),
        ({"horizon_days": 0}, "horizon_days must be"),
        ({"queries_per_day": "many"}, "expected a number"),
        ({"target": "accuracy >= 0.9"}, "write it as an array"),
        ({"targets": ["accuracy >= 0.9"]}, "unknown key 'targets' - suite.toml [decision] - did you mean 'target'?"),
    ],
)
def test_bad_settings_are_one_line(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_decision_settings(table, "suite.toml")
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_settings_defaults() -> None:
    found = parse_decision_settings(None)
    assert found == DecisionSettings() and found.horizon_days == 90.0 and found.targets == ()


def test_harness_decide_prints_writes_and_takes_targets_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli import main

    run = make_run(tmp_path / "r", {"base": variant("base", 40), "prompted": variant("prompted", 90)})
    out = tmp_path / "decision"
    assert main(["decide", str(run), "--target", f"{METRIC} >= 0.7", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# Decision: tickets") and "prompting-meets-target" in printed
    written = json.loads((out / "decision.json").read_text())
    assert written["rule"] == "prompting-meets-target" and written["ship"] == "prompted"
    assert (out / "decision.md").read_text().strip() == printed.strip()
    assert main(["decide", str(run), "--target", f"{METRIC} >= 0.95", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rule"] == "nothing-meets-target"


def test_harness_decide_bad_target_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    run = make_run(tmp_path / "r", {"base": variant("base", 40)})
    assert main(["decide", str(run), "--target", "accuracy > 0.9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: target 'accuracy > 0.9': unknown operator '>'")


@pytest.mark.parametrize(
    "table, message",
    [
        ('target = ["acuracy[capital] >= 0.9"]', "names 'acuracy[capital]', which the suite does not score"),
        ('target = ["accuracy[capital] => 0.9"]', "unknown operator '=>'"),
        ("horizon_days = 0", "horizon_days"),
        ('knowledge_change = "weekly"', "knowledge_change"),
    ],
)
def test_a_suites_decision_table_is_checked_at_load(tiny_suite: Path, table: str, message: str) -> None:
    from harness.variants import load_suite

    toml = tiny_suite / "suite.toml"
    toml.write_text(toml.read_text() + f"\n[decision]\n{table}\n")
    with pytest.raises(ConfigError) as caught:
        load_suite(tiny_suite)
    assert message in str(caught.value) and "[decision]" in str(caught.value)


def test_a_suites_decision_table_reaches_run_json_and_harness_decide(
    tiny_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli import main

    toml = tiny_suite / "suite.toml"
    toml.write_text(toml.read_text() + '\n[decision]\ntarget = ["accuracy[capital] >= 0.5"]\n')
    out = tmp_path / "run"
    assert main(["run", str(tiny_suite), "--variants", "echo,canned", "--out", str(out), "--quiet"]) == 0
    recorded = json.loads((out / "run.json").read_text())["suite"]["config"]["decision"]
    assert recorded["target"] == ["accuracy[capital] >= 0.5"]
    capsys.readouterr()
    # The tiny suite holds only a fake and the echo baseline: nothing to decide between, said in one line.
    assert main(["decide", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no variant to decide between")


def test_one_run_that_tries_three_prompts_has_iterated_without_history(tmp_path: Path) -> None:
    """A sweep, similar examples and a constrained prompt in one run count; fewer stay unknown, never
    'not met', because earlier runs the decision was not shown may have tried more."""
    prompts = {f"p{k}": variant("prompted", 50 + k, config={"few_shot": k}) for k in (0, 1, 3)}
    run = make_run(tmp_path / "three", {"base": variant("base", 40), **prompts})
    found = next(c for c in decide(load_run(run), settings()).conditions if c.id == "prompts-iterated")
    assert found.status == "met" and found.evidence.startswith("3 distinct prompted configurations in this run")
    two = make_run(tmp_path / "two", {"base": variant("base", 40), "p0": prompts["p0"], "p1": prompts["p1"]})
    found = next(c for c in decide(load_run(two), settings()).conditions if c.id == "prompts-iterated")
    assert found.status == "unknown" and "no history given" in found.evidence
