"""`harness compare RUN_DIR`: one table, variants as rows, every metric with its CI and its paired delta
against a baseline variant, forgetting, latency, tokens, cost and the break-even of fine-tuning."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.compare import ALPHA
from harness.compare.cost import break_even, finetune_cost, variant_query_cost
from harness.compare.scorecard import PAIRED_KEYS, SUMMARY_KEYS
from harness.config.settings import CostModel, DecisionSettings, check_primary, primary_metric
from harness.core.errors import DataError, HarnessError, UnknownNameError, did_you_mean
from harness.results.read import RunJson, RunResult
from harness.scoring.metrics import metric_headings
from harness.scoring.paired import compare_paired, holm, minimum_detectable_effect

TUNED_KINDS = ("finetuned", "hybrid")
CHEAPER_KINDS = ("prompted", "rag")  # what fine-tuning is weighed against


def _check_metrics(result: RunResult, metrics: list[str]) -> None:
    """A run.json without metrics (hand-made, or cut short) must not compare as an empty table and exit 0."""
    where = str(result.dir / "run.json")
    if not metrics and not result.run_json.forgetting:
        raise DataError(
            "run.json holds no metrics to compare", where, "pass a folder a finished `harness run` wrote, or rerun"
        )
    unscored = [v for v in result.variants if not result.metric_names(v)]
    if metrics and unscored:
        raise DataError(
            f"variant '{unscored[0]}' has no metrics in run.json", where, "the result directory is damaged: rerun"
        )


def compare_run(
    result: RunResult,
    baseline: str = "base",
    cost: CostModel | None = None,
    alpha: float = ALPHA,
    primary: str | None = None,
) -> dict[str, Any]:
    """The comparison as plain data (written as comparison.json; the markdown, CSV and HTML render it).
    `primary` (--primary) overrides the suite's primary metric (config.settings.primary_metric)."""
    if baseline not in result.variants:
        raise UnknownNameError(
            f"baseline variant '{baseline}' is not in this run",
            str(result.dir),
            did_you_mean(baseline, result.variants) or f"one of: {', '.join(result.variants)}",
        )
    from harness.review.metrics import review_summary, with_ratings

    result = with_ratings(result)  # `harness review import`'s ratings: human_* metrics with CIs and deltas
    run = result.run_json
    cost = cost or CostModel()
    metrics = list(dict.fromkeys(m for v in result.variants for m in result.metric_names(v)))
    _check_metrics(result, metrics)
    rows = []
    # The baseline first, then the others as the suite declares them (RunResult.variants).
    for variant in [baseline, *(v for v in result.variants if v != baseline)]:
        described = run.variants[variant]
        row: dict[str, Any] = {
            "variant": variant,
            "kind": result.kind(variant),
            "setup": variant_setup(result.kind(variant), described.get("config") or {}),
            "metrics": {},
        }
        for metric in metrics:
            summary = dict(run.metric(variant, metric))
            cell = {key: summary.get(key) for key in (*SUMMARY_KEYS, "higher_is_better")}
            cell.update(dict.fromkeys((*PAIRED_KEYS, "right_to_wrong", "wrong_to_right")))
            if variant != baseline and summary:
                cell.update(_paired_cell(result, baseline, variant, metric, alpha))
            row["metrics"][metric] = cell
        row["forgetting"] = _forgetting(run.forgetting, variant)
        row["latency"] = _latency(run.variants[variant])
        usage = run.variants[variant].get("usage", {})
        row["tokens"] = {
            "prompt_mean": usage.get("prompt_tokens_mean"),
            "completion_mean": usage.get("completion_tokens_mean"),
        }
        row["cost"] = _cost(cost, run, variant, usage, result)
        rows.append(row)
    _correct(rows, alpha)
    if primary is not None:
        check_primary(primary, metrics, "--primary")
    primary = primary or primary_metric(run.suite_config, metrics)
    return {
        "run": {
            "dir": str(result.dir),
            "run_id": run.run_id,
            "suite": result.suite_name,
            "created_at": run.created_at,
            "items": run.data.get("eval_items"),
        },
        "baseline": baseline,
        "variant_order": result.variants,  # as declared; rows keep the baseline first
        "alpha": alpha,
        "metrics": metrics,
        "metric_headings": _headings(result, metrics),
        "primary_metric": primary,
        "rows": rows,
        "cost": _break_even_section(cost, rows, run, primary),
        "review": review_summary(result, judge_min_alpha(run)),
    }


def judge_min_alpha(run: RunJson) -> float:
    """[decision] judge_min_alpha as the run recorded it (checked when the suite was read), else the default."""
    table = run.suite_config.get("decision")
    found = table.get("judge_min_alpha") if isinstance(table, Mapping) else None
    return float(found) if isinstance(found, int | float) else DecisionSettings().judge_min_alpha


def _headings(result: RunResult, metrics: list[str]) -> dict[str, str]:
    """Column names: accuracy and macro_f1 say whether they compared with gold labels or references."""
    labels = [sample.get("label") for found in result.samples.values() for sample in found.values()]
    label_field = result.run_json.suite_config.get("data", {}).get("label_field") or "label"
    return metric_headings(metrics, labels, str(label_field))


def _paired_cell(result: RunResult, baseline: str, variant: str, metric: str, alpha: float) -> dict[str, Any]:
    before, after = result.scores(baseline, metric), result.scores(variant, metric)
    ids = sorted(i for i in before.keys() & after.keys() if before[i] is not None and after[i] is not None)
    if len(ids) < 2:
        return {}
    paired = compare_paired([before[i] for i in ids], [after[i] for i in ids], result.paired_binary(metric))  # type: ignore[misc]
    return {
        "delta": paired.delta,
        "delta_ci_low": paired.ci_low,
        "delta_ci_high": paired.ci_high,
        "p_value": paired.p_value,
        "test": paired.test,
        "interval": paired.interval,
        "mde": minimum_detectable_effect(paired.sd_diff, paired.n, alpha),
        "right_to_wrong": paired.right_to_wrong,  # 0/1 metrics only: the per-metric tables' flips
        "wrong_to_right": paired.wrong_to_right,
    }


def _correct(rows: list[dict[str, Any]], alpha: float) -> None:
    """Holm across every test in the table: with 6 variants x 10 metrics, some p < 0.05 by chance alone."""
    cells = [cell for row in rows for cell in row["metrics"].values() if cell["p_value"] is not None]
    for cell, adjusted in zip(cells, holm([c["p_value"] for c in cells])):
        cell["p_holm"] = adjusted
        cell["significant"] = adjusted < alpha


def _forgetting(section: Mapping[str, Any], variant: str) -> dict[str, Any]:
    """The forgetting check of the weights that answer for this variant, per benchmark."""
    if not section:
        return {}
    label = next((name for name, w in section.get("weights", {}).items() if variant in w.get("variants", [])), None)
    found = {}
    for name, bench in section.get("benchmarks", {}).items():
        weights = bench.get("weights", {}).get(label or "")
        if weights is None:
            continue
        metric = bench.get("primary_metric", "acc")
        versus = weights.get("vs_base") or {}
        found[name] = {
            "metric": metric,
            "value": weights.get("metrics", {}).get(metric, {}).get("value"),
            "weights": label,
            **{
                key: versus.get(key)
                for key in (
                    "delta",
                    "delta_ci_low",
                    "delta_ci_high",
                    "right_to_wrong",
                    "wrong_to_right",
                    "mcnemar_p",
                    "p_value",
                    "test",
                    "status",
                )
            },
        }
    return found


def _latency(described: Mapping[str, Any]) -> dict[str, Any]:
    """One request at a time when the run probed it (what a user waits); else the batched run's numbers."""
    probe = described.get("latency_probe")
    if probe:
        return {
            "ttft_s_p50": probe.get("ttft_s_p50"),
            "latency_s_p50": probe.get("latency_s_p50"),
            "latency_s_p95": probe.get("latency_s_p95"),
            "source": f"one at a time ({probe.get('n')} requests)",
        }
    usage = described.get("usage", {})
    return {
        "ttft_s_p50": usage.get("ttft_s_p50"),
        "latency_s_p50": usage.get("latency_s_p50"),
        "latency_s_p95": usage.get("latency_s_p95"),
        "source": "in the batched run",
    }


def _cost(cost: CostModel, run: RunJson, variant: str, usage: Mapping[str, Any], result: RunResult) -> dict[str, Any]:
    generate_s = run.timings.get("variants", {}).get(variant, {}).get("generate_s")
    items = len(result.samples.get(variant, {})) or None
    per_query_s = generate_s / items if generate_s is not None and items else None
    engine = run.variants[variant].get("engine") or {}
    found = variant_query_cost(
        cost, engine, usage.get("prompt_tokens_mean"), usage.get("completion_tokens_mean"), per_query_s
    )
    return {"per_1k_queries": found.per_1k_queries, "basis": found.basis}


def _break_even_section(
    cost: CostModel, rows: list[dict[str, Any]], run: RunJson, primary: str | None
) -> dict[str, Any]:
    assumptions = [f"currency: {cost.currency}"]
    if cost.input_per_mtok is not None or cost.output_per_mtok is not None:
        assumptions.append(
            f"inference at {cost.input_per_mtok or 0:g} per 1M prompt tokens and {cost.output_per_mtok or 0:g} per 1M completion tokens (mean tokens per query from this run)"
        )
    elif cost.gpu_hour is not None:
        assumptions.append(
            f"inference at {cost.gpu_hour:g} per GPU-hour, at the throughput this run measured in its batched generation (this machine, this batch size)"
        )
    else:
        assumptions.append(
            "no prices given: add a [cost] table (input_per_mtok/output_per_mtok or gpu_hour, finetune) or pass --cost FILE"
        )
    rows_by_kind = {kind: [r for r in rows if r["kind"] == kind] for kind in (*TUNED_KINDS, *CHEAPER_KINDS)}
    entries = []
    for tuned in rows_by_kind["finetuned"] + rows_by_kind["hybrid"]:
        adapter = (run.variants[tuned["variant"]].get("engine", {}).get("adapter") or {}).get("path")
        one_time, source = finetune_cost(cost, adapter)
        if tuned["variant"] == (rows_by_kind["finetuned"] + rows_by_kind["hybrid"])[0]["variant"]:
            assumptions.append(f"fine-tuning cost: {'-' if one_time is None else f'{one_time:.2f}'} ({source})")
        for other in rows_by_kind["prompted"] + rows_by_kind["rag"]:
            queries, note = break_even(one_time, tuned["cost"]["per_1k_queries"], other["cost"]["per_1k_queries"])
            quality = None
            if primary:
                a, b = tuned["metrics"][primary]["value"], other["metrics"][primary]["value"]
                quality = None if a is None or b is None else a - b
            entries.append(
                {
                    "finetuned": tuned["variant"],
                    "against": other["variant"],
                    "queries": queries,
                    "note": note,
                    "quality_delta": quality,
                }
            )
    return {
        "assumptions": assumptions,
        "break_even": entries,
        "model": {k: getattr(cost, k) for k in cost.__dataclass_fields__},
    }


def run_decision(result: RunResult, cost: CostModel | None = None) -> dict[str, Any] | None:
    """`harness decide` on the run's own [decision] settings, for the report and the diff gate: None when
    run.json's suite config sets no target (the report stays as it was); else {"decision": decision.json's
    content, or None with "error": the one line that says why it could not be made}."""
    from harness.compare.decision import decide, decision_dict, parse_decision_settings
    from harness.results.write import stable

    table = result.run_json.suite_config.get("decision")
    if not isinstance(table, Mapping) or not table.get("target"):
        return None
    try:
        settings = parse_decision_settings(table, f"{result.dir / 'run.json'} suite.config")
        decision = decide(result, settings, None, cost)
    except HarnessError as exc:  # e.g. only fake/echo variants: the report says so rather than failing
        return {"decision": None, "error": str(exc)}
    return {"decision": stable(decision_dict(decision)), "error": None}


def write_comparison(
    comparison: dict[str, Any], samples: Mapping[str, Any], out_dir: Path, decision: dict[str, Any] | None = None
) -> dict[str, Path]:
    """report.md, comparison.csv, comparison.json and report.html in out_dir; decision.json too when
    `decision` (run_decision's) holds one."""
    import json

    from harness.compare.render import comparison_csv, comparison_markdown
    from harness.core.files import make_folder, write_file
    from harness.results.write import json_text, stable

    make_folder(out_dir)
    paths = {"markdown": out_dir / "report.md", "csv": out_dir / "comparison.csv", "json": out_dir / "comparison.json"}
    write_file(paths["markdown"], comparison_markdown(comparison, decision))
    write_file(paths["csv"], comparison_csv(comparison))
    write_file(paths["json"], json.dumps(stable(comparison), indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    if decision and decision["decision"] is not None:
        paths["decision"] = out_dir / "decision.json"
        write_file(paths["decision"], json_text(decision["decision"]))  # as `harness decide --out` writes it
    from harness.compare.html import write_html_report

    paths["html"] = write_html_report(comparison, samples, out_dir, decision)
    return paths


def variant_setup(kind: str, config: dict[str, Any]) -> str:
    """What sets a variant apart from others of its kind, in a few words for the scorecard's kind column:
    "3 shots, schema", "3 similar shots", "0 shots, reasoning", "bm25 top 3" ("" when nothing does)."""
    parts = []
    if kind == "prompted":
        shots = config.get("few_shot", 3)
        similar = config.get("few_shot_select") == "similar"
        parts.append(f"{shots} {'similar ' if similar else ''}shot{'' if shots == 1 else 's'}")
    if kind in ("rag", "hybrid"):
        parts.append(
            f"{config.get('retriever', 'hybrid')} top {config.get('top_k', 3)} over {config.get('inner', '?')}"
        )
    if config.get("reasoning"):
        parts.append("reasoning")
    if config.get("constrain", "none") != "none":
        parts.append(str(config["constrain"]))
    return ", ".join(parts)
