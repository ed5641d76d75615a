"""The comparison as markdown (stdout and report.md) and as a long-format CSV (pandas)."""

from __future__ import annotations

from typing import Any

from harness.core.escaping import escape_controls


def fmt(value: float | None, signed: bool = False, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def with_ci(value: float | None, low: float | None, high: float | None, signed: bool = False) -> str:
    text = fmt(value, signed)
    if value is not None and low is not None and high is not None:
        text += f" [{fmt(low, signed)}, {fmt(high, signed)}]"
    return text


def heading(c: dict[str, Any], metric: str | None) -> str:
    """A metric's column name: accuracy(label) or accuracy(reference), as compare_run found it."""
    return str((c.get("metric_headings") or {}).get(metric, metric))


NOT_AFTER_HOLM = "†"


def marker(m: dict[str, Any]) -> str:
    """† on a delta whose own interval excludes 0 (p < alpha alone) but which Holm's correction leaves not
    significant: one verdict per delta (the corrected one), and the reason the interval seems to disagree."""
    low, high, p = m.get("delta_ci_low"), m.get("delta_ci_high"), m.get("p_value")
    excludes_zero = low is not None and high is not None and (low > 0 or high < 0)
    return f" {NOT_AFTER_HOLM}" if excludes_zero and not m.get("significant") and p is not None else ""


def p_text(p: float | None) -> str:
    return "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def comparison_markdown(c: dict[str, Any], decision: dict[str, Any] | None = None) -> str:
    """The report; `decision` (table.run_decision's) adds the recommendation at the top and its evidence
    at the end."""
    run, baseline = c["run"], c["baseline"]
    lines = [
        f"# {run['suite']}: {run['run_id']}",
        "",
        *decision_head_lines(decision),
        f"{run['items']} items. Each metric: value [95% CI: Wilson for 0/1 metrics, percentile bootstrap for the others]; "
        f"Δ: the paired difference against `{baseline}` [95% CI from the test that gives its p: McNemar (exact "
        f"below 25 changed items, else asymptotic with Tango's interval) for 0/1 metrics, the paired t-test otherwise]; "
        f"p Holm-corrected across the table; **bold** where significant at alpha {c['alpha']:g}; "
        f"{NOT_AFTER_HOLM} where the interval alone excludes 0 but Holm's correction for the table's many tests does not.",
        "",
    ]
    header = ["variant"]
    for metric in c["metrics"]:
        header += [heading(c, metric), f"Δ {heading(c, metric)} (p)"]
    benchmarks = list(dict.fromkeys(b for row in c["rows"] for b in row["forgetting"]))
    header += [f"forgetting {b} Δ" for b in benchmarks]
    header += ["TTFT p50 s", "latency p50 / p95 s", "prompt tok", "completion tok", "cost / 1k queries"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in c["rows"]:
        cells = [row["variant"]]
        for metric in c["metrics"]:
            m = row["metrics"][metric]
            cells.append(with_ci(m["value"], m["ci_low"], m["ci_high"]))
            if m["delta"] is None:
                cells.append("-")
            else:
                delta = (
                    f"{with_ci(m['delta'], m['delta_ci_low'], m['delta_ci_high'], signed=True)} ({p_text(m['p_holm'])})"
                )
                cells.append(f"**{delta}**" if m["significant"] else delta + marker(m))
        for bench in benchmarks:
            f = row["forgetting"].get(bench)
            cells.append(
                "-"
                if not f or f["delta"] is None
                else with_ci(f["delta"], f["delta_ci_low"], f["delta_ci_high"], signed=True)
            )
        lat, tok = row["latency"], row["tokens"]
        cells += [
            fmt(lat["ttft_s_p50"], digits=2),
            f"{fmt(lat['latency_s_p50'], digits=2)} / {fmt(lat['latency_s_p95'], digits=2)}",
            fmt(tok["prompt_mean"], digits=1),
            fmt(tok["completion_mean"], digits=1),
            fmt(row["cost"]["per_1k_queries"], digits=4),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    sources = sorted({row["latency"]["source"] for row in c["rows"]})
    lines += [
        "",
        f"Latency measured {' / '.join(sources)}. Cost basis: {', '.join(sorted({r['cost']['basis'] for r in c['rows']}))}.",
    ]
    lines += _mde_lines(c) + _break_even_lines(c) + _decision_evidence_lines(decision)
    return escape_controls("\n".join(lines) + "\n")  # ids and names are user data: printed, and a PR comment


def decision_head_lines(decision: dict[str, Any] | None) -> list[str]:
    """What to ship, first: the recommendation, its rule and the targets (the evidence is at the end)."""
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
        f"Rule: `{found['rule']}`; {ship}; targets {targets}. Evidence at the end of this report; all of it in "
        "decision.json (`harness decide`, docs/decide.md).",
        "",
    ]


def _decision_evidence_lines(decision: dict[str, Any] | None) -> list[str]:
    found = decision and decision["decision"]
    if not found:
        return []
    lines = ["", "## Decision evidence", "", *(f"- {line}" for line in found["evidence"]), ""]
    lines += ["| before fine-tuning | status | evidence |", "|---|---|---|"]
    lines += [f"| {c['title']} | {c['status']} | {_cell(c['evidence'])} |" for c in found["conditions"]]
    return lines


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|")  # a pipe in a value would end the table cell


def _mde_lines(c: dict[str, Any]) -> list[str]:
    rows = [r for r in c["rows"] if r["variant"] != c["baseline"]]
    if not rows:
        return []
    lines = [
        "",
        f"Minimum detectable effect against `{c['baseline']}` (paired, 80% power, alpha {c['alpha']:g}, this many items):",
        "",
    ]
    lines += [
        "| variant | " + " | ".join(heading(c, m) for m in c["metrics"]) + " |",
        "|" + "---|" * (len(c["metrics"]) + 1),
    ]
    for row in rows:
        lines.append(f"| {row['variant']} | " + " | ".join(fmt(row["metrics"][m]["mde"]) for m in c["metrics"]) + " |")
    return lines


def _break_even_lines(c: dict[str, Any]) -> list[str]:
    section = c["cost"]
    lines = ["", "## Cost and break-even", ""] + [f"- {a}" for a in section["assumptions"]]
    if section["break_even"]:
        lines += [
            "",
            "| fine-tuned | against | queries to pay back | how | quality Δ ("
            + heading(c, c["primary_metric"])
            + ") |",
            "|---|---|---|---|---|",
        ]
        for e in section["break_even"]:
            queries = "-" if e["queries"] is None else f"{e['queries']:,.0f}"
            lines.append(
                f"| {e['finetuned']} | {e['against']} | {queries} | {e['note']} | {fmt(e['quality_delta'], signed=True)} |"
            )
    return lines


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
                    **{
                        k: m.get(k)
                        for k in (
                            "value",
                            "ci_low",
                            "ci_high",
                            "interval",
                            "n",
                            "delta",
                            "delta_ci_low",
                            "delta_ci_high",
                            "p_value",
                            "p_holm",
                            "test",
                            "significant",
                            "mde",
                        )
                    },
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
    for r in d["metrics"]:
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
