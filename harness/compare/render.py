"""The comparison as markdown (stdout and report.md) and as a long-format CSV (pandas)."""

from __future__ import annotations

from typing import Any

# the formatters live with the scorecard (one set for markdown and HTML); html_tables imports them from here
from harness.compare.scorecard import NOT_AFTER_HOLM, PAIRED_KEYS, SUMMARY_KEYS, fmt, heading, marker, p_text, with_ci
from harness.core.escaping import escape_controls


def comparison_markdown(c: dict[str, Any], decision: dict[str, Any] | None = None) -> str:
    """report.md (harness.compare.report_md): the decision and the scorecard first, the detail folded."""
    from harness.compare.report_md import report_markdown

    return report_markdown(c, decision)


def comparison_csv(c: dict[str, Any]) -> str:
    """One row per variant and metric (forgetting benchmarks as `forgetting:<name>`), with the
    variant's latency, tokens and cost repeated: the shape pandas and spreadsheets pivot easily."""
    import pandas as pd

    records = []
    for row in c["rows"]:
        common = {
            "variant": row["variant"],
            "kind": row["kind"],
            "ttft_s_p50": row["latency"]["ttft_s_p50"],
            "latency_s_p50": row["latency"]["latency_s_p50"],
            "latency_s_p95": row["latency"]["latency_s_p95"],
            "prompt_tokens_mean": row["tokens"]["prompt_mean"],
            "completion_tokens_mean": row["tokens"]["completion_mean"],
            "cost_per_1k_queries": row["cost"]["per_1k_queries"],
        }
        for metric, m in row["metrics"].items():
            records.append(
                {
                    **common,
                    "metric": metric,
                    "metric_heading": heading(c, metric),
                    **{k: m.get(k) for k in (*SUMMARY_KEYS, *PAIRED_KEYS)},
                }
            )
        for bench, f in row["forgetting"].items():
            records.append(
                {
                    **common,
                    "metric": f"forgetting:{bench}",
                    "value": f["value"],
                    "delta": f["delta"],
                    "delta_ci_low": f["delta_ci_low"],
                    "delta_ci_high": f["delta_ci_high"],
                    "p_value": f.get("p_value"),
                    "test": f.get("test"),
                }
            )
    return pd.DataFrame.from_records(records).to_csv(index=False, float_format="%.6g")


def diff_markdown(d: dict[str, Any]) -> str:
    """A PR comment: verdict, changed inputs, metric deltas, flipped items."""
    verdict = "" if not d["gates"] else ("All gates hold." if d["passed"] else "**A gate failed.**")
    lines = [f"# {d['suite']}: {d['old']['run_id']} -> {d['new']['run_id']}", ""]
    if verdict:
        lines += [verdict, "", "| variant | metric | gate | result |", "|---|---|---|---|"]
        lines += [f"| {g['variant']} | {g['metric']} | {g['rule']} | {_gate_result(g)} |" for g in d["gates"]]
        lines.append("")
    if d.get("decision"):
        lines += ["## Decision", ""] + [f"- {side}: {_decision_line(d['decision'][side])}" for side in ("old", "new")]
        lines.append("")
    lines += ["## What changed", ""]
    lines += [
        f"- {c['what']}: {_short(c['old'])}" + ("" if c["new"] is None else f" -> {_short(c['new'])}")
        for c in d["changes"]
    ] or ["- nothing in config, data, weights, prompts or packages"]
    for side in ("only_old", "only_new"):
        if d[side]:
            lines.append(f"- variants only in the {side.split('_')[1]} run: {', '.join(d[side])}")
    lines += [
        "",
        "## Metrics",
        "",
        f"Δ = new - old over the items both runs scored [95% CI from the test that gives its p: McNemar for 0/1 metrics, the paired t-test otherwise]; p Holm-corrected; **bold** where significant at {d['alpha']:g}; {NOT_AFTER_HOLM} where the interval alone excludes 0 but Holm's correction does not.",
        "",
    ]
    lines += ["| variant | metric | old | new | Δ | p | flips -/+ |", "|---|---|---|---|---|---|---|"]
    primary = d.get("primary_metric")  # its rows first: the metric that matters, then the rest as they were
    for r in sorted(d["metrics"], key=lambda r: r["metric"] != primary):
        delta = with_ci(r["delta"], r["delta_ci_low"], r["delta_ci_high"], signed=True)
        flips = "-" if r["right_to_wrong"] is None else f"{r['right_to_wrong']} / {r['wrong_to_right']}"
        lines.append(
            f"| {r['variant']} | {r['metric']} | {fmt(r['old'])} | {fmt(r['new'])} | {f'**{delta}**' if r['significant'] else delta + marker(r)} | {p_text(r['p_holm'])} | {flips} |"
        )
    for variant, flips in d["flips"].items():
        if flips:
            lines += ["", f"### {variant}: items that flipped (worst first)", ""]
            for f in flips:
                lost = f"lost {', '.join(f['lost'])}" if f["lost"] else ""
                gained = f"gained {', '.join(f['gained'])}" if f["gained"] else ""
                lines += [
                    f"- `{f['id']}` {'; '.join(x for x in (lost, gained) if x)}",
                    f"  - old: `{_inline(f['old_output'])}`",
                    f"  - new: `{_inline(f['new_output'])}`",
                ]
    return escape_controls("\n".join(lines) + "\n")  # model outputs and ids: never raw ANSI/OSC on a terminal


def _gate_result(g: dict[str, Any]) -> str:
    if g.get("skipped"):
        return f"skipped: {g['why']}"
    return "pass" if g["passed"] else f"FAIL: {g['why']}"


def _decision_line(side: dict[str, Any]) -> str:
    """One run's recommendation in one line, as diff.json's `decision.old`/`decision.new` hold it."""
    if side["status"] == "no target":
        return side["note"]
    if side["status"] == "not made":
        return f"not made: {side['note']}"
    ship = f"ship `{side['ship']}`" if side["ship"] else "ship nothing yet"
    return f"**{side['recommendation']}** (rule `{side['rule']}`, {ship})"


def _short(value: Any, limit: int = 120) -> str:
    text = str(value)
    return _inline(text if len(text) <= limit else text[: limit - 3] + "...")


def _inline(text: Any, limit: int = 300) -> str:
    """Model output inside a markdown code span: one line, no backticks that could end the span."""
    flat = " ".join(str(text or "").split()).replace("`", "'")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
