"""A Decision as plain data (decision.json: stable keys, floats as measured; the writer rounds them) and
as markdown: the recommendation first, then the evidence lines, then the conditions table."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from harness.compare.decision_types import RECALL_LINE, Assessment, Decision, Payback, Recall, Step
from harness.core.escaping import escape_controls

DECISION_SCHEMA = 1  # of decision.json


def decision_dict(decision: Decision) -> dict[str, Any]:
    """Every field of the Decision, nested records as dicts, tuples as lists; keys do not depend on the run."""
    plain = _plain(dataclasses.asdict(decision))
    plain["targets"] = [{"metric": t.metric, "op": t.op, "value": t.value, "text": t.text} for t in decision.targets]
    plain["excluded"] = [{"variant": v, "why": why} for v, why in decision.excluded]
    plain["schema_version"] = DECISION_SCHEMA
    return plain


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def decision_markdown(decision: Decision) -> str:
    lines = [
        f"# Decision: {decision.suite} ({decision.run_id})",
        "",
        f"**{decision.recommendation}**",
        "",
        f"Rule: `{decision.rule}`" + (f"; ship: `{decision.ship}`" if decision.ship else "; ship: nothing yet"),
        "",
        "## Evidence",
        "",
        *(f"- {line}" for line in decision.evidence),
        "",
        "## Before fine-tuning",
        "",
        "| condition | status | evidence |",
        "|---|---|---|",
        *(f"| {c.title} | {c.status} | {_cell(c.evidence)} |" for c in decision.conditions),
    ]
    return escape_controls("\n".join(lines) + "\n")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a pipe in a value would end the table cell


def fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def fmt_ci(low: float | None, high: float | None) -> str:
    return f"[{fmt(low)}, {fmt(high)}]"


def fmt_p(p: float | None, name: str = "p") -> str:
    return f"{name} -" if p is None else f"{name} < 0.0001" if p < 0.0001 else f"{name} = {p:.4f}"


def fmt_latency(a: Assessment) -> str:
    if a.latency_p95_ms is None:
        return f"p95 latency not recorded: {a.latency_status}"
    return f"p95 latency {a.latency_p95_ms:.0f} ms ({a.latency_source}): {a.latency_status}"


def evidence_lines(
    currency: str,
    assessments: Sequence[Assessment],
    excluded: Sequence[tuple[str, str]],
    steps: Sequence[Step],
    recall: Sequence[Recall],
    payback: Sequence[Payback],
) -> list[str]:
    """One line per measured fact, each number as run.json, the samples or the cost model give it."""
    lines = []
    for a in assessments:
        for v in a.verdicts:
            more = f"; ~{v.items_needed} items would decide it" if v.items_needed else f"; {v.note}" if v.note else ""
            shown = f"{fmt(v.value)} {fmt_ci(v.ci_low, v.ci_high)} n={v.n}"
            lines.append(f"{a.variant} ({a.kind}): {v.target}: {shown}: {v.status}{more}")
        cost = "-" if a.cost_per_1k is None else f"{a.cost_per_1k:.4f} {currency}"
        lines.append(
            f"{a.variant}: cost per 1k queries {cost} ({a.cost_basis}); {fmt_latency(a)}; "
            f"forgetting: {a.forgetting_status}"
        )
        for f in a.forgetting:
            shown = f"{fmt(f.delta)} {fmt_ci(f.delta_ci_low, f.delta_ci_high)}"
            lines.append(
                f"{a.variant}: forgetting {f.benchmark} ({f.weights}) {shown} vs base: {f.status or 'no budget'}"
            )
    lines += [f"{name}: left out, {why}" for name, why in excluded]
    for s in steps:
        head = f"{s.label} ({s.metric}, {s.before} -> {s.after})"
        if s.delta is None:
            lines.append(f"{head}: {s.note}")
        else:
            lines.append(
                f"{head}: {s.delta:+.3f} {fmt_ci(s.ci_low, s.ci_high)}, "
                f"{fmt_p(s.p_value)} ({s.test}; {fmt_p(s.p_holm, 'Holm p')}), n={s.n}"
            )
    for r in recall:
        shown = f"{fmt(r.value)} {fmt_ci(r.ci_low, r.ci_high)} n={r.n}"
        lines.append(f"retrieval {r.variant}: recall@k {shown} vs {RECALL_LINE}: {r.status}")
    for p in payback:
        one_time = "-" if p.training_cost is None else f"{p.training_cost:.2f} {currency}"
        queries = "-" if p.break_even_queries is None else f"{p.break_even_queries:,.0f}"
        days = "-" if p.days_to_pay_back is None else f"{p.days_to_pay_back:.1f}"
        lines.append(
            f"pay-back {p.finetuned} vs {p.against}: training {one_time} ({p.training_cost_source}); "
            f"break-even {queries} queries ({p.note}); {days} days to pay back ({p.horizon_note})"
        )
    return lines
