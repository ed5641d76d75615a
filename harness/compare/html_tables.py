"""The HTML report's tables: the run header, the comparison table with its delta cells, the forgetting
table and the cost and break-even section."""

from __future__ import annotations

from harness.compare.html_format import esc, fmt, number, with_ci
from harness.compare.render import NOT_AFTER_HOLM, heading, marker


def header_html(comparison: dict) -> str:
    run = comparison.get("run") or {}
    facts = [
        ("Suite", run.get("suite")),
        ("Run id", run.get("run_id")),
        ("Created", run.get("created_at")),
        ("Items", run.get("items")),
        ("Baseline", comparison.get("baseline")),
        ("Alpha", comparison.get("alpha")),
        ("Run directory", run.get("dir")),
    ]
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{fmt(v)}</td></tr>" for k, v in facts)
    return f'<h1>Variant comparison: {esc(run.get("suite", ""))}</h1><table id="run">{rows}</table>'


def delta_cell(m: dict) -> str:
    delta = m.get("delta")
    if delta is None:
        return "<td>-</td>"
    classes = []
    if m.get("significant"):
        classes.append("sig")
        hib = m.get("higher_is_better")
        if hib is not None and number(delta) is not None and delta != 0:
            classes.append("better" if (delta > 0) == bool(hib) else "worse")
    title = f"test={m.get('test')}, interval={m.get('interval')}, p={fmt(m.get('p_value'))}, MDE={fmt(m.get('mde'))}"
    text = f"{with_ci(delta, m.get('delta_ci_low'), m.get('delta_ci_high'))}{marker(m)}<br>p<sub>Holm</sub>={fmt(m.get('p_holm'))}"
    if m.get("significant"):
        text = f"<strong>{text}</strong>"
    return f'<td class="{" ".join(classes)}" title="{esc(title)}">{text}</td>'


def comparison_table(comparison: dict) -> str:
    metrics = comparison.get("metrics") or []
    baseline = comparison.get("baseline")
    head = ["Variant", "Kind"]
    for name in metrics:
        head += [heading(comparison, name), f"\u0394 {heading(comparison, name)} vs {baseline}"]
    head += [
        "Latency p50 (s)",
        "Latency p95 (s)",
        "TTFT p50 (s)",
        "Prompt tokens",
        "Completion tokens",
        "Cost / 1k queries",
    ]
    body = []
    for row in comparison.get("rows") or []:
        cells = [f"<td>{esc(row.get('variant'))}</td>", f"<td>{esc(row.get('kind'))}</td>"]
        for name in metrics:
            m = (row.get("metrics") or {}).get(name) or {}
            cells.append(
                f'<td title="n={fmt(m.get("n"))}">{with_ci(m.get("value"), m.get("ci_low"), m.get("ci_high"))}</td>'
            )
            cells.append(delta_cell(m))
        lat, tok, cost = row.get("latency") or {}, row.get("tokens") or {}, row.get("cost") or {}
        source = esc(f"source: {lat.get('source')}")
        cells += [
            f'<td title="{source}">{fmt(lat.get(k))}</td>' for k in ("latency_s_p50", "latency_s_p95", "ttft_s_p50")
        ]
        cells += [f"<td>{fmt(tok.get('prompt_mean'))}</td>", f"<td>{fmt(tok.get('completion_mean'))}</td>"]
        cells.append(f'<td title="{esc(cost.get("basis"))}">{fmt(cost.get("per_1k_queries"))}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    thead = "".join(f"<th>{esc(h)}</th>" for h in head)
    note = (
        f'<p class="note">Values with 95% CIs (Wilson for 0/1 metrics, percentile bootstrap for the others); deltas '
        f"against {esc(baseline)} with the 95% CI of the test that gives p (McNemar for 0/1 metrics, paired t otherwise) "
        f"and Holm-adjusted p. Bold: significant after Holm correction (green better, red worse); {NOT_AFTER_HOLM}: the "
        "interval alone excludes 0, Holm's correction does not. Hover a cell for the test and n.</p>"
    )
    return f'<table id="comparison"><thead><tr>{thead}</tr></thead><tbody>{"".join(body)}</tbody></table>{note}'


def forgetting_table(rows: list[dict]) -> str:
    body = []
    for row in rows:
        for bench, f in (row.get("forgetting") or {}).items():
            cells = [
                esc(row.get("variant")),
                esc(bench),
                esc(f.get("metric")),
                fmt(f.get("value")),
                with_ci(f.get("delta"), f.get("delta_ci_low"), f.get("delta_ci_high")),
                fmt(f.get("right_to_wrong")),
                fmt(f.get("wrong_to_right")),
                fmt(f.get("p_value")),
                esc(f.get("status") if f.get("status") is not None else "-"),
            ]
            body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    if not body:
        return ""
    head = [
        "Variant",
        "Benchmark",
        "Metric",
        "Value",
        "\u0394 [CI]",
        "Right\u2192wrong",
        "Wrong\u2192right",
        "p (McNemar)",
        "Status",
    ]
    thead = "".join(f"<th>{esc(h)}</th>" for h in head)
    return f'<h2>Forgetting</h2><table id="forgetting"><thead><tr>{thead}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def break_even_html(cost: dict) -> str:
    assumptions = "".join(f"<li>{esc(a)}</li>" for a in cost.get("assumptions") or [])
    rows = "".join(
        f"<tr><td>{esc(b.get('finetuned'))}</td><td>{esc(b.get('against'))}</td>"
        f"<td>{fmt(b.get('queries'))}</td><td>{esc(b.get('note'))}</td></tr>"
        for b in cost.get("break_even") or []
    )
    table = (
        (
            '<table id="break-even"><thead><tr><th>Fine-tuned</th><th>Against</th><th>Break-even queries</th>'
            f"<th>Note</th></tr></thead><tbody>{rows}</tbody></table>"
        )
        if rows
        else '<p class="note">No break-even rows.</p>'
    )
    listed = f"<ul>{assumptions}</ul>" if assumptions else '<p class="note">No assumptions recorded.</p>'
    return f'<section id="break-even-section"><h2>Cost and break-even</h2><h3>Assumptions</h3>{listed}{table}</section>'


def decision_html(decision: dict | None) -> str:
    """What to ship, above the tables: the recommendation, its rule and targets; the evidence and the
    conditions before fine-tuning folded under it. Nothing without a [decision] target."""
    if decision is None:
        return ""
    found = decision.get("decision")
    if found is None:
        return f'<p id="decision" class="note"><strong>Decision: not made.</strong> {esc(decision.get("error"))}</p>'
    ship = f"<code>{esc(found.get('ship'))}</code>" if found.get("ship") else "nothing yet"
    targets = ", ".join(f"<code>{esc(t.get('text'))}</code>" for t in found.get("targets") or [])
    evidence = "".join(f"<li>{esc(line)}</li>" for line in found.get("evidence") or [])
    conditions = "".join(
        f"<tr><td>{esc(c.get('title'))}</td><td>{esc(c.get('status'))}</td><td>{esc(c.get('evidence'))}</td></tr>"
        for c in found.get("conditions") or []
    )
    return (
        f'<section id="decision"><h2>Decision</h2><p><strong>{esc(found.get("recommendation"))}</strong></p>'
        f"<p>Rule: <code>{esc(found.get('rule'))}</code>; ship: {ship}; targets: {targets}. "
        "All of it in decision.json (<code>harness decide</code>).</p>"
        f"<details><summary>Evidence</summary><ul>{evidence}</ul></details>"
        '<details><summary>Before fine-tuning</summary><table id="decision-conditions"><thead><tr>'
        f"<th>Condition</th><th>Status</th><th>Evidence</th></tr></thead><tbody>{conditions}</tbody></table>"
        "</details></section>"
    )
