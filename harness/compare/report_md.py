"""report.md: a pull-request comment a reviewer reads in ten seconds. The decision and the scorecard come
first; every metric's detail, latency, forgetting, the MDE, cost and the decision's conditions are folded
in <details> blocks. It stays under GitHub's comment limit, leaving detail blocks out (and saying so)
where a run has very many variants and metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.compare.scorecard import (
    NOT_AFTER_HOLM,
    fmt3,
    fmt_cost,
    heading,
    marker,
    ordered_rows,
    p_text,
    scorecard,
    with_ci,
)
from harness.core.escaping import escape_controls

# GitHub refuses a comment over 65,536 characters; what posts the report may add a line or two of its own.
COMMENT_LIMIT = 65_536
MARGIN = 536


def report_markdown(c: dict[str, Any], decision: dict[str, Any] | None = None, limit: int = COMMENT_LIMIT) -> str:
    """The report; `decision` (table.run_decision's) adds the recommendation on top and its evidence below
    the scorecard."""
    head = headline_markdown(c, decision)
    tail = [
        _folded("Latency, tokens and cost per variant", _latency_lines(c)),
        _folded("Forgetting", _forgetting_lines(c)),
        _folded("Minimum detectable effect", _mde_lines(c)),
        _folded("Cost and break-even", _break_even_lines(c)),
        _folded("Decision: conditions before fine-tuning", _condition_lines(decision)),
        _folded("Human review: agreement across raters, the judge against people", _review_lines(c)),
    ]
    metrics = [(metric, _folded(heading(c, metric), _metric_lines(c, metric))) for metric in _metric_order(c)]
    return _fit(head + _evidence_block(decision), metrics, [t for t in tail if t], limit - MARGIN)


def headline_markdown(c: dict[str, Any], decision: dict[str, Any] | None = None) -> str:
    """The first screen: title, decision, scorecard and its legend (also what `harness compare` prints)."""
    run = c["run"]
    lines = [f"# {run['suite']}: {run['run_id']}", "", *decision_head_lines(decision)]
    lines += scorecard_lines(c) + ["", _legend(c), ""]
    return escape_controls("\n".join(lines) + "\n")  # ids and names are user data: printed, and a PR comment


def decision_head_lines(decision: dict[str, Any] | None) -> list[str]:
    """What to ship, first: the recommendation, its rule and the targets (the evidence below the scorecard)."""
    if decision is None:
        return []
    found = decision["decision"]
    if found is None:
        return [f"**Decision: not made.** {decision['error']}", ""]
    ship = f"ship: `{found['ship']}`" if found["ship"] else "ship: nothing yet"
    targets = ", ".join(f"`{t['text']}`" for t in found["targets"])
    return [
        "## Decision",
        "",
        f"**{found['recommendation']}**",
        "",
        f"Rule: `{found['rule']}`; {ship}; targets {targets}. Evidence below the scorecard; all of it in "
        "decision.json (`harness decide`, docs/decide.md).",
        "",
    ]


def scorecard_lines(c: dict[str, Any]) -> list[str]:
    primary = heading(c, c.get("primary_metric"))
    lines = [
        f"## Scorecard: {primary}",
        "",
        f"| variant | kind | {primary} [95% CI] | Δ vs {c['baseline']} [95% CI] (p Holm) | cost / 1k queries | "
        "p95 latency s | forgetting |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in scorecard(c):
        if row.is_baseline:
            delta = "baseline"
        elif row.delta is None:
            delta = "-"
        else:
            cell = {"delta_ci_low": row.delta_ci_low, "delta_ci_high": row.delta_ci_high}
            shown = f"{with_ci(row.delta, row.delta_ci_low, row.delta_ci_high, signed=True)} ({p_text(row.p_holm)})"
            p_raw = _cell_of(c, row.variant).get("p_value")
            delta = f"**{shown}**" if row.significant else shown + marker({**cell, "p_value": p_raw})
        latency = "-" if row.latency_p95_s is None else f"{fmt3(row.latency_p95_s)} ({row.latency_source})"
        lines.append(
            f"| {_cell(row.variant)} | {row.kind} | {with_ci(row.value, row.ci_low, row.ci_high)} | {delta} | "
            f"{fmt_cost(row.cost_per_1k)} | {latency} | {row.forgetting} |"
        )
    return lines


def _cell_of(c: dict[str, Any], variant: str) -> dict[str, Any]:
    row = next(r for r in c["rows"] if r["variant"] == variant)
    return row["metrics"].get(c.get("primary_metric")) or {}


def _legend(c: dict[str, Any]) -> str:
    tests = sum(1 for r in c["rows"] for m in r["metrics"].values() if m.get("p_value") is not None)
    return (
        f"{c['run']['items']} items. Value [95% CI: Wilson for 0/1 metrics, percentile bootstrap otherwise]. "
        f"Δ: paired difference against `{c['baseline']}` [95% CI from the test that gives its p: McNemar for 0/1 "
        "metrics (exact below 25 changed items, else asymptotic with Tango's interval), the paired t-test "
        f"otherwise]; p Holm-corrected across the report's {tests} tests; **bold**: significant at alpha "
        f"{c['alpha']:g}; {NOT_AFTER_HOLM}: the interval alone excludes 0, Holm's correction does not. "
        "Latency: probe = one request at a time (`--latency-probe`), batch = the batch's wall time per item."
    )


def _evidence_block(decision: dict[str, Any] | None) -> str:
    found = decision and decision["decision"]
    if not found:
        return ""
    return _folded("Decision evidence", [f"- {line}" for line in found["evidence"]])


def _condition_lines(decision: dict[str, Any] | None) -> list[str]:
    found = decision and decision["decision"]
    if not found:
        return []
    lines = ["| before fine-tuning | status | evidence |", "|---|---|---|"]
    return lines + [f"| {c['title']} | {c['status']} | {_cell(c['evidence'])} |" for c in found["conditions"]]


def _metric_order(c: dict[str, Any]) -> list[str]:
    """The primary metric's table first, then the others as the suite lists them."""
    primary = c.get("primary_metric")
    return sorted(c["metrics"], key=lambda m: m != primary)


def _metric_lines(c: dict[str, Any], metric: str) -> list[str]:
    rows = ordered_rows(c)
    cells = [(r["variant"], r["metrics"][metric]) for r in rows]
    flips = any(m.get("right_to_wrong") is not None for _, m in cells)
    header = ["variant", "value [95% CI]", f"Δ vs {c['baseline']} [95% CI]", "p (Holm)"]
    header += ["flips right→wrong / wrong→right"] if flips else []
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for variant, m in cells:
        if variant == c["baseline"]:
            delta, p = "baseline", "-"
        else:
            shown = with_ci(m["delta"], m["delta_ci_low"], m["delta_ci_high"], signed=True)
            delta = f"**{shown}**" if m["significant"] else shown + (marker(m) if m["delta"] is not None else "")
            p = p_text(m["p_holm"])
        found = [_cell(variant), with_ci(m["value"], m["ci_low"], m["ci_high"]), delta, p]
        if flips:
            r2w, w2r = m.get("right_to_wrong"), m.get("wrong_to_right")
            found.append("-" if r2w is None else f"{r2w} / {w2r}")
        lines.append("| " + " | ".join(found) + " |")
    return lines


def _latency_lines(c: dict[str, Any]) -> list[str]:
    lines = [
        "| variant | TTFT p50 s | latency p50 s | latency p95 s | measured | prompt tok | completion tok | "
        "cost / 1k queries | cost basis |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in ordered_rows(c):
        lat, tok = row["latency"], row["tokens"]
        lines.append(
            f"| {_cell(row['variant'])} | {fmt3(lat['ttft_s_p50'])} | {fmt3(lat['latency_s_p50'])} | "
            f"{fmt3(lat['latency_s_p95'])} | {lat['source']} | {_tokens(tok['prompt_mean'])} | "
            f"{_tokens(tok['completion_mean'])} | {fmt_cost(row['cost']['per_1k_queries'])} | {row['cost']['basis']} |"
        )
    return lines


def _tokens(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"  # a mean of whole tokens: a third decimal is noise


def _forgetting_lines(c: dict[str, Any]) -> list[str]:
    found = [(r["variant"], b, f) for r in ordered_rows(c) for b, f in r["forgetting"].items()]
    if not found:
        return []
    lines = [
        "| variant | benchmark | weights | metric | value | Δ vs base weights [95% CI] | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, bench, f in found:
        delta = with_ci(f["delta"], f["delta_ci_low"], f["delta_ci_high"], signed=True)
        lines.append(
            f"| {_cell(variant)} | {_cell(bench)} | {_cell(f['weights'])} | {f['metric']} | {fmt3(f['value'])} | "
            f"{delta} | {f.get('status') or '-'} |"
        )
    return lines


def _mde_lines(c: dict[str, Any]) -> list[str]:
    rows = [r for r in ordered_rows(c) if r["variant"] != c["baseline"]]
    if not rows:
        return []
    lines = [
        f"The smallest Δ against `{c['baseline']}` these items detect (paired, 80% power, alpha {c['alpha']:g}):",
        "",
        "| variant | " + " | ".join(heading(c, m) for m in c["metrics"]) + " |",
        "|" + "---|" * (len(c["metrics"]) + 1),
    ]
    for row in rows:
        lines.append(
            f"| {_cell(row['variant'])} | " + " | ".join(fmt3(row["metrics"][m]["mde"]) for m in c["metrics"]) + " |"
        )
    return lines


def _break_even_lines(c: dict[str, Any]) -> list[str]:
    section = c["cost"]
    lines = [f"- {a}" for a in section["assumptions"]]
    if section["break_even"]:
        lines += [
            "",
            f"| fine-tuned | against | queries to pay back | how | quality Δ ({heading(c, c['primary_metric'])}) |",
            "|---|---|---|---|---|",
        ]
        for e in section["break_even"]:
            queries = "-" if e["queries"] is None else f"{e['queries']:,.0f}"
            lines.append(
                f"| {e['finetuned']} | {e['against']} | {queries} | {e['note']} | {fmt3(e['quality_delta'], signed=True)} |"
            )
    return lines


def _review_lines(c: dict[str, Any]) -> list[str]:
    from harness.review.metrics import summary_lines

    return [f"- {_cell(line)}" for line in summary_lines(c.get("review"))]


def _folded(summary: str, lines: list[str]) -> str:
    """A <details> block; the blank line after <summary> makes GitHub render the markdown table inside."""
    if not lines:
        return ""
    block = ["<details><summary>" + _html(summary) + "</summary>", "", *lines, "", "</details>", ""]
    return escape_controls("\n".join(block) + "\n")


def _fit(head: str, metrics: Sequence[tuple[str, str]], tail: Sequence[str], budget: int) -> str:
    """head, the metric blocks, the tail; the metric blocks dropped from the end while it is over budget."""
    kept = list(metrics)
    left_out: list[str] = []

    def text() -> str:
        note = ""
        if left_out:
            dropped = left_out[::-1]  # in report order
            names = ", ".join(f"`{m}`" for m in dropped[:20]) + (" ..." if len(dropped) > 20 else "")
            note = escape_controls(
                f"\n_Left out to stay under GitHub's {COMMENT_LIMIT:,}-character comment limit: the detail tables "
                f"of {len(left_out)} metrics ({names}). report.html and comparison.json hold them._\n\n"
            )
        return head + "".join(block for _, block in kept) + note + "".join(tail)

    found = text()
    while len(found) > budget and kept:
        left_out.append(kept.pop()[0])
        found = text()
    if len(found) > budget:  # even the headline is over (thousands of variants): cut it at a line
        cut = found[: budget - 200].rsplit("\n", 1)[0]
        found = (
            cut + "\n\n_Cut here to stay under GitHub's comment limit: report.html and comparison.json hold it all._\n"
        )
    return found


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|")  # a pipe in a value would end the table cell


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
