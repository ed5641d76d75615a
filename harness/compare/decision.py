"""Prompt, retrieve or fine-tune? The fine-tuning guides' rule applied to one run's measured numbers.

Prompts first, then retrieval, then fine-tuning: ship the cheapest variant that meets the target, judged by
its interval. Fine-tune only when prompts were iterated, retrieval was tried and its recall measured, the
gap to the target is measured and the task is narrow, and only when training pays back through cheaper
queries inside the horizon, within the latency budget and with no forgetting beyond its budget.

This module measures (verdicts, paired deltas, recall, cost, latency, forgetting, pay-back) from the result
directory alone; decision_rules picks the rule; decision_render writes decision.json and markdown.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from harness.compare.cost import break_even, cost_model_from, finetune_cost, variant_query_cost
from harness.compare.decision_render import decision_dict, decision_markdown
from harness.compare.decision_rules import best_on, choose
from harness.compare.decision_types import (
    RECALL_LINE,
    Assessment,
    Decision,
    Forgetting,
    Payback,
    Recall,
    Step,
    Verdict,
)
from harness.config.settings import CostModel, DecisionSettings, Target, parse_decision_settings, parse_target
from harness.core.errors import DataError, UnknownNameError, did_you_mean
from harness.results.read import RunJson, RunResult
from harness.scoring.paired import compare_paired, holm

__all__ = [
    "Decision",
    "DecisionSettings",
    "decide",
    "decision_dict",
    "decision_markdown",
    "parse_decision_settings",
    "parse_target",
]

ROLES = ("base", "prompted", "rag", "finetuned", "hybrid")  # the ladder, cheapest effort first
EXCLUDED_KINDS = {
    "fake": "a fake variant (canned outputs): no model to ship",
    "echo": "the echo baseline: a floor, not a candidate",
    "api": "a hosted or served model (kind api): a reference to compare against, not a rung; prompt it to make one",
}
RECALL_METRIC = "recall@k"
STEP_LABELS = {
    "prompting": "what prompting closed",
    "retrieval": "what retrieval closed",
    "fine-tuning": "what fine-tuning adds",
}
# A fine-tuned adapter that holds the facts is retrained when they change: its cost recurs each period.
RETRAIN_DAYS = {"monthly": 30.0, "weekly": 7.0, "daily": 1.0}
NARROW_METRICS = (
    "exact_match",
    "accuracy",
    "macro_f1",
    "json_schema",
    "json_valid",
    "regex_match",
    "tool_name",  # a call to one of a fixed set of functions: the guides' fixed-format home ground
    "tool_args_exact",
    "tool_args_valid",
    "tool_args_f1",
)
OPEN_METRICS = ("bleu", "chrf", "rouge1", "rouge2", "rougeL", "rougeLsum", "token_f1")


def decide(
    result: RunResult,
    settings: DecisionSettings,
    history: Sequence[RunJson] | None = None,
    cost: CostModel | None = None,
) -> Decision:
    """What to ship, and why, from one result directory (and the suite's earlier runs, when given).
    `cost` defaults to the run's own [cost] table, as `harness compare` does without --cost."""
    from harness.review.metrics import judge_gate, with_ratings

    result = with_ratings(result)  # human ratings (harness review import) decide like any metric
    run = result.run_json
    where = str(result.dir / "run.json")
    targets = settings.targets
    cost = cost or cost_model_from(run.suite_config.get("cost"), f"{where} suite.config")
    candidates = [v for v in result.variants if result.kind(v) in ROLES]
    excluded = tuple(
        (v, EXCLUDED_KINDS.get(result.kind(v), f"kind '{result.kind(v)}' has no place on the ladder"))
        for v in result.variants
        if v not in candidates
    )
    if not candidates:
        raise DataError(
            "no variant to decide between (only fake/echo ones)",
            where,
            "run base, prompted, rag, finetuned or hybrid variants",
        )
    _check_targets(result, candidates, targets, where)
    targets, judged = judge_gate(result, targets, settings.judge_min_alpha)
    assessments = tuple(_assess(result, v, targets, cost, settings) for v in candidates)
    task, task_evidence = _task(settings, targets, result, candidates)
    decision = choose(
        run_id=str(run.run_id or result.dir.name),
        run_dir=str(result.dir),
        suite=result.suite_name,
        eval_items=run.data.get("eval_items"),
        settings=settings,
        targets=targets,
        currency=cost.currency,
        assessments=assessments,
        excluded=excluded,
        steps=_steps(result, assessments, targets),
        recall=_recall(result, candidates),
        payback=_payback(result, assessments, targets, cost, settings),
        prompts=_prompt_iterations(run, history),
        task=(task, task_evidence),
    )
    return dataclasses.replace(decision, evidence=(*judged, *decision.evidence)) if judged else decision


def _check_targets(result: RunResult, candidates: list[str], targets: tuple[Target, ...], where: str) -> None:
    known = list(dict.fromkeys(m for v in candidates for m in result.metric_names(v)))
    for target in targets:
        if target.metric not in known:
            raise UnknownNameError(
                f"target metric '{target.metric}' is not in this run", where, did_you_mean(target.metric, known)
            )


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) else None


def verdict(summary: Mapping[str, Any], target: Target) -> Verdict:
    """meets when the whole interval reaches the target, fails when none of it does, else undecided."""
    value, low, high = (_number(summary.get(k)) for k in ("value", "ci_low", "ci_high"))
    n = summary.get("n") if isinstance(summary.get("n"), int) else None
    if value is None:
        return Verdict(target.text, None, low, high, n, "undecided", note="not scored")
    if low is None or high is None:
        return Verdict(target.text, value, low, high, n, "undecided", note="no interval (bootstrap = 0?)")
    # as the lower-is-better target sees it: reaching it means a high end at or under the value
    reach, miss = (low, high) if target.op == ">=" else (-high, -low)
    threshold = target.value if target.op == ">=" else -target.value
    if reach >= threshold:
        return Verdict(target.text, value, low, high, n, "meets")
    if miss < threshold:
        return Verdict(target.text, value, low, high, n, "fails")
    return Verdict(target.text, value, low, high, n, "undecided", *_items_needed(value, low, high, n, target))


def _items_needed(value: float, low: float, high: float, n: int | None, target: Target) -> tuple[int | None, str]:
    """The side of the interval that faces the target shrinks as 1/sqrt(n): it stops straddling the target
    at n * (half-width / distance)^2 items, if the point stays where it is."""
    distance = abs(value - target.value)
    if n is None or n < 1:
        return None, "items scored unknown"
    if distance == 0:
        return None, "the point sits on the target: no number of items decides it"
    half = (value - low) if value >= target.value else (high - value)
    return max(n + 1, math.ceil(n * (half / distance) ** 2)), ""


def _assess(
    result: RunResult, variant: str, targets: tuple[Target, ...], cost: CostModel, settings: DecisionSettings
) -> Assessment:
    run = result.run_json
    verdicts = tuple(verdict(run.metric(variant, t.metric), t) for t in targets)
    statuses = {v.status for v in verdicts}
    status = "fails" if "fails" in statuses else "undecided" if "undecided" in statuses or not verdicts else "meets"
    described = run.variants[variant]
    usage = described.get("usage") or {}
    generate_s = (run.timings.get("variants") or {}).get(variant, {}).get("generate_s")
    items = len(result.samples.get(variant, {})) or None
    per_query_s = generate_s / items if isinstance(generate_s, int | float) and items else None
    engine = described.get("engine") or {}
    priced = variant_query_cost(
        cost, engine, usage.get("prompt_tokens_mean"), usage.get("completion_tokens_mean"), per_query_s
    )
    probe = described.get("latency_probe")
    if probe:
        p95, source = probe.get("latency_s_p95"), f"one request at a time ({probe.get('n')} requests)"
    else:
        p95, source = usage.get("latency_s_p95"), "in the batched run"
    p95_ms = None if _number(p95) is None else float(p95) * 1000
    budget = settings.latency_p95_ms
    latency = (
        "no budget" if budget is None else "unknown" if p95_ms is None else "over" if p95_ms > budget else "within"
    )
    forgetting = _forgetting(run.forgetting, variant)
    forgot = forgetting_status(result.kind(variant), [f.status for f in forgetting])
    return Assessment(
        variant,
        result.kind(variant),
        verdicts,
        status,  # type: ignore[arg-type]
        priced.per_1k_queries,
        priced.basis,
        p95_ms,
        source,
        latency,
        forgetting,
        forgot,
    )


def forgetting_status(kind: str, statuses: Sequence[str | None]) -> str:
    """One word for a variant's forgetting checks (the decision and the scorecard say it alike): the worst
    benchmark's status; with no check, tuned weights are "not checked" and the others answer with base's."""
    if statuses:
        return "fail" if "fail" in statuses else "over" if "over" in statuses else "pass"
    if kind == "api":
        return "no weights here"  # a hosted or served model: nothing local to check
    return "not checked" if kind in ("finetuned", "hybrid") else "same weights as base"


def _forgetting(section: Mapping[str, Any], variant: str) -> tuple[Forgetting, ...]:
    """The forgetting rows of the weights that answer for this variant (as `harness compare` finds them)."""
    weights = section.get("weights") or {}
    label = next((name for name, w in weights.items() if variant in (w.get("variants") or [])), None)
    if label is None or label == "base":
        return ()
    rows = []
    for name, bench in (section.get("benchmarks") or {}).items():
        versus = ((bench.get("weights") or {}).get(label) or {}).get("vs_base")
        if versus:
            rows.append(
                Forgetting(
                    name,
                    label,
                    _number(versus.get("delta")),
                    _number(versus.get("delta_ci_low")),
                    _number(versus.get("delta_ci_high")),
                    versus.get("status"),
                )
            )
    return tuple(rows)


def _steps(result: RunResult, assessments: tuple[Assessment, ...], targets: tuple[Target, ...]) -> tuple[Step, ...]:
    """Per target metric, the paired delta of each rung of the ladder against the one below it."""
    found: list[dict[str, Any]] = []
    for i, target in enumerate(targets):
        kinds = {
            k: [a for a in assessments if a.kind in kinds]
            for k, kinds in {
                "base": ("base",),
                "prompted": ("prompted",),
                "rag": ("rag",),
                "tuned": ("finetuned", "hybrid"),
                "untuned": ("base", "prompted", "rag"),
            }.items()
        }
        pick = {k: best_on(group, i, target) for k, group in kinds.items()}
        pairs = [
            ("prompting", pick["base"], pick["prompted"]),
            ("retrieval", pick["prompted"] or pick["base"], pick["rag"]),
            ("fine-tuning", pick["untuned"], pick["tuned"]),
        ]
        for step, before, after in pairs:
            if before is not None and after is not None:
                found.append(_paired(result, step, target.metric, before.variant, after.variant))
    adjusted = iter(holm([s["p_value"] for s in found if s["p_value"] is not None]))
    return tuple(Step(**s, p_holm=next(adjusted) if s["p_value"] is not None else None) for s in found)


def _paired(result: RunResult, step: str, metric: str, before: str, after: str) -> dict[str, Any]:
    """compare_paired on the per-sample scores both variants have, as compare/table.py pairs them."""
    a, b = result.scores(before, metric), result.scores(after, metric)
    ids = sorted(i for i in a.keys() & b.keys() if a[i] is not None and b[i] is not None)
    cell: dict[str, Any] = {"step": step, "label": STEP_LABELS[step], "metric": metric, "before": before}
    cell.update(after=after, n=len(ids))
    if len(ids) < 2:
        note = "no per-sample scores (a corpus-level metric)" if not ids else "fewer than 2 items scored by both"
        return cell | dict.fromkeys(("delta", "ci_low", "ci_high", "p_value", "test", "interval")) | {"note": note}
    paired = compare_paired([a[i] for i in ids], [b[i] for i in ids], result.paired_binary(metric))  # type: ignore[misc]
    return cell | {
        "delta": paired.delta,
        "ci_low": paired.ci_low,
        "ci_high": paired.ci_high,
        "p_value": paired.p_value,
        "test": paired.test,
        "interval": paired.interval,
    }


def _recall(result: RunResult, candidates: list[str]) -> tuple[Recall, ...]:
    """recall@k of every retrieving variant against the 0.7 line, by its interval."""
    line = Target(RECALL_METRIC, ">=", RECALL_LINE)
    found = []
    for variant in candidates:
        if result.kind(variant) not in ("rag", "hybrid"):
            continue
        judged = verdict(result.run_json.metric(variant, RECALL_METRIC), line)
        found.append(
            Recall(variant, RECALL_METRIC, judged.value, judged.ci_low, judged.ci_high, judged.n, judged.status)
        )
    return tuple(found)


def _payback(
    result: RunResult,
    assessments: tuple[Assessment, ...],
    targets: tuple[Target, ...],
    cost: CostModel,
    settings: DecisionSettings,
) -> tuple[Payback, ...]:
    """Break-even of each fine-tuned variant against the best variant without fine-tuning on the first target."""
    against = best_on([a for a in assessments if not a.tuned], 0, targets[0]) if targets else None
    if against is None:
        return ()
    found = []
    for tuned in (a for a in assessments if a.tuned):
        adapter = (result.run_json.variants[tuned.variant].get("engine", {}).get("adapter") or {}).get("path")
        one_time, source = finetune_cost(cost, adapter)
        queries, note = break_even(one_time, tuned.cost_per_1k, against.cost_per_1k)
        horizon, horizon_note = settings.horizon_days, f"horizon {settings.horizon_days:g} days"
        period = RETRAIN_DAYS.get(settings.knowledge_changes or "")
        if period is not None and tuned.kind == "finetuned" and period < horizon:
            horizon = period
            horizon_note = (
                f"knowledge changes {settings.knowledge_changes}: an adapter that holds it is retrained every "
                f"{period:g} days, so each training must pay back within {period:g} days"
            )
        days = pays = needed = None
        if queries is not None:
            needed = queries / horizon
            if settings.queries_per_day is not None:
                days = queries / settings.queries_per_day
                pays = days <= horizon
        elif one_time is not None and tuned.cost_per_1k is not None and against.cost_per_1k is not None:
            pays = False  # it never saves anything per query
        found.append(
            Payback(
                tuned.variant,
                against.variant,
                one_time,
                source,
                tuned.cost_per_1k,
                against.cost_per_1k,
                queries,
                days,
                horizon,
                horizon_note,
                pays,
                needed,
                note,
            )
        )
    return tuple(found)


def _prompt_iterations(run: RunJson, history: Sequence[RunJson] | None) -> tuple[int, float | None, int, bool]:
    """(distinct prompted configurations run and scored, days between the first and last, runs read,
    whether history was given). Without history only this run's own variants count (a run that tries a
    few-shot sweep, similar examples and a constrained prompt has iterated within itself). A configuration
    is the suite's [prompt] with the variant's own table, less the model it ran on: a new model with the
    same prompt is no prompt iteration."""
    runs = {str(r.run_id): r for r in [*(history or ()), run] if r.has_metrics}
    seen: dict[str, list[Any]] = {}
    for one in runs.values():
        for name, described in one.variants.items():
            if described.get("kind") != "prompted" or not one.metrics.get(name):
                continue
            config = {k: v for k, v in (described.get("config") or {}).items() if k not in ("model", "backend")}
            key = json.dumps({"prompt": one.suite_config.get("prompt"), "variant": config}, sort_keys=True, default=str)
            try:
                seen.setdefault(key, []).append(one.created)
            except (KeyError, ValueError, TypeError):
                seen.setdefault(key, [])
    moments = [m for found in seen.values() for m in found]
    days = (max(moments) - min(moments)).total_seconds() / 86400 if moments else None
    return len(seen), days, len(runs), history is not None


def _task(
    settings: DecisionSettings, targets: tuple[Target, ...], result: RunResult, candidates: list[str]
) -> tuple[str | None, str]:
    """narrow or open: given, else inferred from the target metrics (or, when they say nothing, all metrics)."""
    if settings.task is not None:
        return settings.task, f"given: task = {settings.task}"
    for what, names in (
        ("the target metrics", [t.metric for t in targets]),
        ("the run's metrics", list(dict.fromkeys(m for v in candidates for m in result.metric_names(v)))),
    ):
        bases = [name.split("[", 1)[0] for name in names]
        narrow = [n for n in bases if n in NARROW_METRICS]
        if narrow:
            return "narrow", f"inferred from {what}: {', '.join(dict.fromkeys(narrow))} score a narrow task"
        opened = [n for n in bases if n in OPEN_METRICS]
        if opened:
            return "open", f"inferred from {what}: only open-ended ones ({', '.join(dict.fromkeys(opened))})"
    return None, "unknown: no metric says; set [decision] task"
