"""Which rule fires, from what harness.compare.decision measured: the four conditions before fine-tuning,
the ladder (prompts, retrieval, fine-tuning; the cheapest variant that meets the target), the pay-back,
the latency and forgetting budgets. Every number in an evidence line comes from the run's files.

Rule ids (stable, for decision.json and gates): RULES.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.compare.decision_render import evidence_lines, fmt, fmt_ci
from harness.compare.decision_types import (
    RECALL_LINE,
    Assessment,
    Condition,
    Decision,
    Payback,
    Recall,
    Step,
)
from harness.config.settings import DecisionSettings, Target

RULES = (
    "no-target",
    "base-meets-target",
    "prompting-meets-target",
    "rag-meets-target",
    "finetune-pays-back",
    "finetune-does-not-pay-back",
    "finetune-payback-unknown",
    "finetune-conditions-not-met",
    "fix-retrieval-first",
    "forgetting-over-budget",
    "latency-over-budget",
    "undecided",
    "nothing-meets-target",
)
LADDER = ("base", "prompted", "rag", "finetuned", "hybrid")
MEETS_RULE = {"base": "base-meets-target", "prompted": "prompting-meets-target", "rag": "rag-meets-target"}
# Not from the guides: "prompts were iterated" needs a number. Three distinct prompted configurations is
# the least that is an iteration (a first prompt, a change, a change of the change) rather than one try.
PROMPT_ITERATIONS_MIN = 3
TOOL_METRIC_PREFIX = "tool_"  # tool_name, tool_args_exact, tool_args_valid, tool_args_f1


def best_on(group: Sequence[Assessment], index: int, target: Target) -> Assessment | None:
    """The variant with the best point value on targets[index] (ties: the first, the declared order)."""
    scored = [a for a in group if a.verdicts[index].value is not None]
    if not scored:
        return None
    sign = 1.0 if target.op == ">=" else -1.0
    return max(scored, key=lambda a: sign * a.verdicts[index].value)  # type: ignore[operator]


def is_tool_task(targets: Sequence[Target]) -> bool:
    """Whether every target is a tool-calling metric: then retrieval is not a rung of the ladder."""
    return bool(targets) and all(t.metric.startswith(TOOL_METRIC_PREFIX) for t in targets)


def _cost_key(a: Assessment) -> tuple[float, int]:
    return (math.inf if a.cost_per_1k is None else a.cost_per_1k, LADDER.index(a.kind))


def conditions(
    assessments: Sequence[Assessment],
    targets: Sequence[Target],
    recall: Sequence[Recall],
    prompts: tuple[int, float | None, int, bool],
    task: tuple[str | None, str],
) -> tuple[Condition, ...]:
    """The four that must all hold before fine-tuning, each with its status and the evidence for it."""
    count, days, runs, with_history = prompts
    if not with_history:
        # this run alone can show iteration, never its absence: earlier runs may have tried more
        status = "met" if count >= PROMPT_ITERATIONS_MIN else "unknown"
        first = Condition(
            "prompts-iterated",
            "prompts were iterated",
            status,
            f"{count} distinct prompted configurations in this run (no history given: --history RESULTS_DIR "
            f"adds earlier runs); at least {PROMPT_ITERATIONS_MIN} count",
        )
    else:
        span = "-" if days is None else f"{days:.1f}"
        text = f"{count} distinct prompted configurations run and scored over {span} days ({runs} runs)"
        status = "met" if count >= PROMPT_ITERATIONS_MIN else "not met"
        first = Condition(
            "prompts-iterated", "prompts were iterated", status, f"{text}; at least {PROMPT_ITERATIONS_MIN} count"
        )
    measured = [r for r in recall if r.value is not None]
    if not recall and is_tool_task(targets):
        second = Condition(
            "rag-recall",
            "RAG tried, recall measured",
            "met",
            "does not apply: every target is a tool-calling metric, and retrieved documents do not choose a "
            "function (a rag variant, if declared, is measured like any other)",
        )
    elif not recall:
        second = Condition(
            "rag-recall", "RAG tried, recall measured", "not met", "no rag or hybrid variant in this run"
        )
    elif not measured:
        second = Condition(
            "rag-recall",
            "RAG tried, recall measured",
            "not met",
            "recall@k not measured: give the eval items gold doc_ids and score recall@k",
        )
    else:
        top = max(measured, key=lambda r: r.value)  # type: ignore[arg-type, return-value]
        text = f"{top.variant} recall@k {fmt(top.value)} {fmt_ci(top.ci_low, top.ci_high)} n={top.n} vs {RECALL_LINE}"
        assert top.value is not None
        status = "met" if top.status == "meets" else "not met" if top.value < RECALL_LINE else "unknown"
        second = Condition("rag-recall", "RAG tried, recall measured", status, text)  # type: ignore[arg-type]
    third = _gap(assessments, targets)
    kind, evidence = task
    status = "met" if kind == "narrow" else "not met" if kind == "open" else "unknown"
    title = "the remaining gap is on a narrow task"
    fourth = Condition("narrow-task", title, status, evidence)  # type: ignore[arg-type]
    return first, second, third, fourth


def _gap(assessments: Sequence[Assessment], targets: Sequence[Target]) -> Condition:
    title = "the gap to acceptable quality is measured"
    if not targets:
        return Condition("gap-measured", title, "not met", "no target: set [decision] target")
    untuned = [a for a in assessments if not a.tuned]
    parts, status = [], "met"
    for i, target in enumerate(targets):
        best = best_on(untuned, i, target)
        if best is None:
            return Condition("gap-measured", title, "not met", "no variant without fine-tuning scored it")
        v = best.verdicts[i]
        assert v.value is not None
        parts.append(
            f"best without fine-tuning {best.variant} {target.metric} {fmt(v.value)} {fmt_ci(v.ci_low, v.ci_high)} "
            f"vs {target.text}: gap {fmt(target.shortfall(v.value))}"
        )
        if v.status == "undecided":
            status = "unknown"
            parts[-1] += f", undecided (~{v.items_needed or '?'} items would decide it)"
    return Condition("gap-measured", title, status, "; ".join(parts))  # type: ignore[arg-type]


def choose(
    *,
    settings: DecisionSettings,
    targets: tuple[Target, ...],
    assessments: tuple[Assessment, ...],
    steps: tuple[Step, ...],
    recall: tuple[Recall, ...],
    payback: tuple[Payback, ...],
    prompts: tuple[int | None, float | None, int],
    task: tuple[str | None, str],
    **run: Any,
) -> Decision:
    """The Decision: the measured facts, the conditions, and the one rule that fired."""
    found = conditions(assessments, targets, recall, prompts, task)
    ship, rule, sentence, notes = _rule(settings, targets, assessments, recall, payback, found)
    evidence = evidence_lines(run["currency"], assessments, run["excluded"], steps, recall, payback) + notes
    return Decision(
        settings=settings,
        targets=targets,
        variants=assessments,
        steps=steps,
        recall=recall,
        payback=payback,
        conditions=found,
        ship=ship,
        rule=rule,
        recommendation=sentence,
        evidence=tuple(evidence),
        **run,
    )


def _rule(
    settings: DecisionSettings,
    targets: tuple[Target, ...],
    assessments: tuple[Assessment, ...],
    recall: tuple[Recall, ...],
    payback: tuple[Payback, ...],
    found: tuple[Condition, ...],
) -> tuple[str | None, str, str, list[str]]:
    """(variant to ship, rule id, one sentence, extra evidence lines)."""
    if not targets:
        return (
            None,
            "no-target",
            'Set a target ([decision] target = ["metric >= value"]): without one no variant can be called good enough.',
            [],
        )
    wanted = " and ".join(t.text for t in targets)
    notes: list[str] = []

    def usable(a: Assessment) -> bool:
        return a.latency_status != "over" and a.forgetting_status != "fail"

    meets = [a for a in assessments if a.status == "meets"]
    untuned = sorted(
        (a for a in meets if not a.tuned and usable(a)), key=lambda a: (LADDER.index(a.kind), *_cost_key(a))
    )
    for a in assessments:  # a cheaper rung that more items could still show to suffice
        if a.status == "undecided" and untuned and LADDER.index(a.kind) < LADDER.index(untuned[0].kind):
            notes.append(f"note: {a.variant} ({a.kind}) is undecided: {_items(a)} would tell whether it suffices")
    if untuned:
        pick = untuned[0]
        cost = "" if pick.cost_per_1k is None else f" at {pick.cost_per_1k:.4f} per 1k queries"
        return (
            pick.variant,
            MEETS_RULE[pick.kind],
            f"Ship {pick.variant} ({pick.kind}): its interval meets {wanted}{cost}, "
            "the cheapest rung that does, so fine-tuning is not needed.",
            notes,
        )
    tuned = sorted((a for a in meets if a.tuned), key=_cost_key)
    shippable = [a for a in tuned if usable(a)]
    for a in (a for a in meets if not usable(a)):
        why = "forgets beyond the budget" if a.forgetting_status == "fail" else "is over the p95 latency budget"
        notes.append(f"note: {a.variant} meets {wanted} but {why}: not shipped")
    if meets and not shippable:
        forgot = next((a for a in tuned if a.forgetting_status == "fail"), None)
        if forgot is not None:
            rows = ", ".join(
                f"{f.benchmark} {fmt(f.delta)} {fmt_ci(f.delta_ci_low, f.delta_ci_high)}"
                for f in forgot.forgetting
                if f.status == "fail"
            )
            return (
                None,
                "forgetting-over-budget",
                f"Do not ship the adapter of {forgot.variant}: it meets {wanted} but forgets beyond the budget "
                f"({rows}); retrain with a lower rank or learning rate, fewer epochs or mixed-in general data, "
                "and check again.",
                notes,
            )
        slow = meets[0]
        return (
            None,
            "latency-over-budget",
            f"Ship none yet: {slow.variant} meets {wanted} but its p95 latency {fmt(slow.latency_p95_ms, 0)} ms "
            f"is over the {settings.latency_p95_ms:g} ms budget; serve it faster or relax the budget.",
            notes,
        )
    if shippable:
        return _finetune(shippable[0], wanted, found, payback, recall, settings, notes)
    undecided = sorted((a for a in assessments if a.status == "undecided"), key=lambda a: LADDER.index(a.kind))
    if undecided:
        a = undecided[0]
        return (
            None,
            "undecided",
            f"Undecided: the interval of {a.variant} ({a.kind}) straddles {wanted}; {_items(a)} "
            "would decide it before anything is shipped or trained.",
            notes,
        )
    if _low_recall(recall):
        return None, "fix-retrieval-first", _fix_retrieval(recall, wanted), notes
    return None, "nothing-meets-target", _nothing(assessments, targets, wanted), notes


def _items(a: Assessment) -> str:
    needed = [v.items_needed for v in a.verdicts if v.status == "undecided" and v.items_needed is not None]
    n = next((v.n for v in a.verdicts if v.n is not None), None)
    return (
        f"about {max(needed)} eval items (now {n})" if needed else "no number of items (its point sits on the target)"
    )


def _low_recall(recall: Sequence[Recall]) -> bool:
    measured = [r.value for r in recall if r.value is not None]
    return bool(measured) and max(measured) < RECALL_LINE


def _fix_retrieval(recall: Sequence[Recall], wanted: str, meets: str | None = None) -> str:
    top = max((r for r in recall if r.value is not None), key=lambda r: r.value)  # type: ignore[arg-type, return-value]
    also = f" (even though {meets} meets it)" if meets else ""
    return (
        f"Fix retrieval first{also}: {top.variant} finds the right documents only {fmt(top.value)} of the time "
        f"(recall@k under {RECALL_LINE}), and fine-tuning will not make up for missing documents; improve "
        f"chunking, the retriever or top_k, then rerun against {wanted}."
    )


def _finetune(
    pick: Assessment,
    wanted: str,
    found: tuple[Condition, ...],
    payback: tuple[Payback, ...],
    recall: tuple[Recall, ...],
    settings: DecisionSettings,
    notes: list[str],
) -> tuple[str | None, str, str, list[str]]:
    blocked = [c for c in found if c.status == "not met"]
    if _low_recall(recall):
        return None, "fix-retrieval-first", _fix_retrieval(recall, wanted, pick.variant), notes
    if blocked:
        listed = "; ".join(f"{c.title}: {c.evidence}" for c in blocked)
        return (
            None,
            "finetune-conditions-not-met",
            (f"Do not fine-tune yet: {pick.variant} meets {wanted}, but not every condition holds ({listed})."),
            notes,
        )
    unknown = [f"{c.title}: unknown" for c in found if c.status == "unknown"]
    if pick.forgetting_status in ("not checked", "over"):
        unknown.append(f"forgetting {pick.forgetting_status}")
    if pick.latency_status == "unknown":
        unknown.append("p95 latency not recorded")
    caveat = f" (check first: {'; '.join(unknown)})" if unknown else ""
    pb = next((p for p in payback if p.finetuned == pick.variant), None)
    if pb is None or pb.pays_back is None:
        missing = (
            "set [decision] queries_per_day"
            if pb and pb.break_even_queries is not None
            else "give [cost] prices and the fine-tuning cost"
        )
        return (
            None,
            "finetune-payback-unknown",
            (f"{pick.variant} meets {wanted}, but whether training pays back is unknown: {missing}{caveat}."),
            notes,
        )
    if pb.pays_back:
        return (
            pick.variant,
            "finetune-pays-back",
            f"Fine-tune: ship {pick.variant}; only fine-tuning meets {wanted}, and training pays back in "
            f"{pb.days_to_pay_back:.1f} days against {pb.against} ({pb.horizon_note}){caveat}.",
            notes,
        )
    if pb.queries_per_day_needed is None:
        change = "no volume would change that: it costs as much or more per query"
    else:
        change = f"it would at {pb.queries_per_day_needed:,.0f} queries per day or more"
    at = "" if settings.queries_per_day is None else f" at {settings.queries_per_day:,.0f} queries per day"
    return (
        None,
        "finetune-does-not-pay-back",
        f"Do not fine-tune: {pick.variant} meets {wanted}, but training does not pay back against {pb.against} "
        f"within {pb.horizon_days:g} days{at}; {change}.",
        notes,
    )


def _nothing(assessments: Sequence[Assessment], targets: Sequence[Target], wanted: str) -> str:
    def gap(a: Assessment) -> float:
        return max(math.inf if v.value is None else t.shortfall(v.value) for v, t in zip(a.verdicts, targets))

    closest = min(assessments, key=gap)
    kinds = {a.kind for a in assessments}
    if is_tool_task(targets):
        # a tool-calling task: retrieving documents does not pick a function; what moves the calls is the
        # decoding (constrain = "tools" makes every call well-formed) and training on more calls
        tries = [] if "prompted" in kinds else ['a prompted variant with constrain = "tools" (valid calls only)']
        tries.append(
            "more training for the adapter (epochs, examples of each tool and of rejections)"
            if "finetuned" in kinds
            else "fine-tuning on tool-calling records, once the four conditions hold"
        )
    else:
        tries = [
            text
            for kind, text in (
                ("prompted", "a prompted variant (system prompt, few-shot examples)"),
                ("rag", "retrieval (a rag variant)"),
                ("finetuned", "fine-tuning, once the four conditions hold"),
                ("hybrid", "hybrid: retrieval over the fine-tuned model"),
            )
            if kind not in kinds
        ]
    return (
        f"Nothing meets {wanted}: the closest is {closest.variant} ({closest.kind}, {gap(closest):.3f} short); "
        f"try next {', '.join([*tries, 'a bigger model'])}."
    )
