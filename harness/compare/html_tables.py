"""The HTML report's tables: the run line, the scorecard (one row per variant on the primary metric), one
small folded table per metric, the latency/tokens/cost table, forgetting, and the cost and break-even
section. Rows follow the suite's declared variant order (scorecard.ordered_rows) in every table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.compare.html_format import esc, fmt, number, p_cell, signed, with_ci
from harness.compare.render import NOT_AFTER_HOLM, heading, marker
from harness.compare.scorecard import ScoreRow, fmt_cost, ordered_rows, scorecard

LATENCY_WORDS = {"probe": "one at a time", "batch": "batch wall time"}


def header_html(comparison: dict) -> str:
    """The title and one line of run facts: the decision and the scorecard, not these, fill the first screen."""
    run = comparison.get("run") or {}
    facts = [
        ("run", run.get("run_id")),
        ("created", run.get("created_at")),
        ("items", fmt(run.get("items"))),
        ("baseline", comparison.get("baseline")),
        ("alpha", comparison.get("alpha")),
        ("directory", run.get("dir")),
    ]
    line = " \u00b7 ".join(f'{esc(k)} <span class="fact">{esc(v)}</span>' for k, v in facts if v is not None)
    return f'<h1>Variant comparison: {esc(run.get("suite", ""))}</h1><p id="run" class="facts">{line}</p>'


def _delta_classes(m: Mapping[str, Any]) -> list[str]:
    delta, hib = number(m.get("delta")), m.get("higher_is_better")
    if not m.get("significant") or delta is None:
        return []
    if hib is None or delta == 0:
        return ["sig"]
    return ["sig", "better" if (delta > 0) == bool(hib) else "worse"]


def delta_td(m: Mapping[str, Any], baseline_row: bool = False) -> str:
    """A delta with its CI: bold when significant after Holm (green better, red worse), † where only the
    interval excludes 0; the test, raw p and MDE in the hover title."""
    if m.get("delta") is None:
        return '<td class="note">baseline</td>' if baseline_row else "<td>-</td>"
    title = f"test={m.get('test')}, p={p_cell(m.get('p_value'))}, MDE={fmt(m.get('mde'))}"
    text = with_ci(m.get("delta"), m.get("delta_ci_low"), m.get("delta_ci_high"), sign=True) + esc(marker(m))
    if m.get("significant"):
        text = f"<strong>{text}</strong>"
    return f'<td class="{" ".join(_delta_classes(m))}" title="{esc(title)}">{text}</td>'


def _latency_td(row: ScoreRow) -> str:
    words = LATENCY_WORDS.get(row.latency_source, row.latency_source)
    if row.latency_p95_s is None:
        return "<td>-</td>"
    return f'<td>{fmt(row.latency_p95_s)}<span class="src">{esc(words)}</span></td>'


def scorecard_html(comparison: dict) -> str:
    """The headline table: per variant the primary metric with its CI, the paired delta against the baseline,
    Holm's p, cost per 1k queries, p95 latency (and what measured it) and the forgetting status."""
    if not comparison.get("rows"):
        return '<p class="note">No variants to compare.</p>'
    cards = scorecard(comparison)
    key = comparison.get("primary_metric")
    cells = {r.get("variant"): (r.get("metrics") or {}).get(key) or {} for r in comparison.get("rows") or []}
    baseline = comparison.get("baseline")
    head = [
        "Variant",
        "Kind",
        heading(comparison, key),
        f"\u0394 vs {baseline}",
        "p (Holm)",
        "Cost / 1k queries",
        "Latency p95 (s)",
        "Forgetting",
    ]
    body = []
    for card in cards:
        m = cells.get(card.variant) or {}
        tds = [
            f'<th scope="row">{esc(card.variant)}</th>',
            f'<td class="text">{esc(card.kind)}</td>',
            f'<td title="n={fmt(m.get("n"))}">{with_ci(card.value, card.ci_low, card.ci_high)}</td>',
            delta_td(m, baseline_row=card.is_baseline),
            f"<td>{p_cell(card.p_holm)}</td>",
            f"<td>{esc(fmt_cost(number(card.cost_per_1k)))}</td>",
            _latency_td(card),
            f'<td class="text">{esc(card.forgetting)}</td>',
        ]
        body.append(f'<tr data-variant="{esc(card.variant)}">{"".join(tds)}</tr>')
    text_columns = {"Kind", "Forgetting"}
    thead = "".join(f'<th class="text">{esc(h)}</th>' if h in text_columns else f"<th>{esc(h)}</th>" for h in head)
    note = (
        f'<p class="note">Primary metric <code>{esc(heading(comparison, key))}</code> with its 95% CI (Wilson for '
        f"0/1 metrics, percentile bootstrap otherwise); \u0394: paired difference against {esc(baseline)} with the "
        "95% CI of the test that gives p (McNemar for 0/1 metrics, paired t otherwise); p Holm-adjusted across "
        f"every test in the report. Bold: significant after Holm (green better, red worse); {NOT_AFTER_HOLM}: the "
        "interval alone excludes 0, Holm's correction does not. Latency: one request at a time where the run "
        "probed it (--latency-probe), else the batched run's wall time per item. Every metric below.</p>"
    )
    return (
        '<section id="scorecard-section"><h2>Scorecard</h2>'
        f'<table id="scorecard"><thead><tr>{thead}</tr></thead><tbody>{"".join(body)}</tbody></table>{note}</section>'
    )


def _flips(m: Mapping[str, Any]) -> str:
    r2w, w2r = m.get("right_to_wrong"), m.get("wrong_to_right")
    if r2w is None and w2r is None:
        return "-"
    return f"{fmt(r2w)} / {fmt(w2r)}"


def metric_table(comparison: dict, metric: str, index: int) -> str:
    """One metric, variants as rows, folded: its summary says how many deltas are significant, so a reader
    opens the metric that moved."""
    rows = ordered_rows(comparison)
    cells = [(r, (r.get("metrics") or {}).get(metric) or {}) for r in rows]
    has_flips = any(m.get("right_to_wrong") is not None or m.get("wrong_to_right") is not None for _, m in cells)
    baseline = comparison.get("baseline")
    head = ["Variant", "Value [95% CI]", f"\u0394 vs {baseline} [95% CI]", "p (Holm)", "Test", "MDE"]
    head += ["Flips \u2192wrong / \u2192right"] if has_flips else []
    body = []
    for row, m in cells:
        is_base = row.get("variant") == baseline
        tds = [
            f'<th scope="row">{esc(row.get("variant"))}</th>',
            f'<td title="n={fmt(m.get("n"))}">{with_ci(m.get("value"), m.get("ci_low"), m.get("ci_high"))}</td>',
            delta_td(m, baseline_row=is_base),
            f"<td>{p_cell(m.get('p_holm'))}</td>",
            f"<td>{esc(m.get('test') or '-')}</td>",
            f"<td>{fmt(m.get('mde'))}</td>",
        ]
        tds += [f"<td>{_flips(m)}</td>"] if has_flips else []
        body.append(f"<tr>{''.join(tds)}</tr>")
    compared = [m for _, m in cells if m.get("delta") is not None]
    moved = sum(1 for m in compared if m.get("significant"))
    primary = " (primary)" if metric == comparison.get("primary_metric") else ""
    summary = f"{esc(heading(comparison, metric))}{primary}: {moved} of {len(compared)} deltas significant"
    thead = "".join(f"<th>{esc(h)}</th>" for h in head)
    return (
        f'<details class="metric" id="metric-{index}" data-metric="{esc(metric)}"><summary>{summary}</summary>'
        f'<table class="metric-table"><thead><tr>{thead}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        "</details>"
    )


def usage_table(comparison: dict) -> str:
    """Latency, tokens and cost per variant, folded: the scorecard carries p95 and cost, this the rest."""
    head = ["Variant", "Latency p50 (s)", "Latency p95 (s)", "TTFT p50 (s)", "Measured", "Prompt tokens"]
    head += ["Completion tokens", "Cost / 1k queries", "Cost basis"]
    body = []
    for row in ordered_rows(comparison):
        lat, tok, cost = row.get("latency") or {}, row.get("tokens") or {}, row.get("cost") or {}
        tds = [f'<th scope="row">{esc(row.get("variant"))}</th>']
        tds += [f"<td>{fmt(lat.get(k))}</td>" for k in ("latency_s_p50", "latency_s_p95", "ttft_s_p50")]
        tds += [f"<td>{esc(lat.get('source') or '-')}</td>"]
        tds += [f"<td>{fmt(tok.get('prompt_mean'))}</td>", f"<td>{fmt(tok.get('completion_mean'))}</td>"]
        tds += [f"<td>{esc(fmt_cost(number(cost.get('per_1k_queries'))))}</td>", f"<td>{esc(cost.get('basis'))}</td>"]
        body.append(f"<tr>{''.join(tds)}</tr>")
    thead = "".join(f"<th>{esc(h)}</th>" for h in head)
    return (
        '<details id="usage"><summary>Latency, tokens and cost per variant</summary>'
        f'<table id="usage-table"><thead><tr>{thead}</tr></thead><tbody>{"".join(body)}</tbody></table></details>'
    )


def detail_html(comparison: dict) -> str:
    """Every metric's table, then latency/tokens/cost, each folded under its summary."""
    if not comparison.get("rows"):
        return ""
    tables = "".join(metric_table(comparison, m, i) for i, m in enumerate(comparison.get("metrics") or []))
    return f'<section id="comparison"><h2>Detail by metric</h2>{tables}{usage_table(comparison)}</section>'


def forgetting_table(rows: list[dict]) -> str:
    body = []
    for row in rows:
        for bench, f in (row.get("forgetting") or {}).items():
            cells = [
                esc(row.get("variant")),
                esc(bench),
                esc(f.get("metric")),
                fmt(f.get("value")),
                with_ci(f.get("delta"), f.get("delta_ci_low"), f.get("delta_ci_high"), sign=True),
                fmt(f.get("right_to_wrong")),
                fmt(f.get("wrong_to_right")),
                p_cell(f.get("p_value")),
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
    return (
        '<details id="forgetting-section"><summary>Forgetting: general benchmarks against the base model</summary>'
        f'<table id="forgetting"><thead><tr>{thead}</tr></thead><tbody>{"".join(body)}</tbody></table></details>'
    )


def _queries(x: Any) -> str:
    value = number(x)
    return fmt(x) if value is None else f"{round(value):,}"  # a count of queries: no decimals


def break_even_html(cost: dict) -> str:
    assumptions = "".join(f"<li>{esc(a)}</li>" for a in cost.get("assumptions") or [])
    rows = "".join(
        f"<tr><td>{esc(b.get('finetuned'))}</td><td>{esc(b.get('against'))}</td>"
        f"<td>{_queries(b.get('queries'))}</td><td>{signed(b.get('quality_delta'))}</td>"
        f"<td>{esc(b.get('note'))}</td></tr>"
        for b in cost.get("break_even") or []
    )
    table = (
        (
            '<table id="break-even"><thead><tr><th>Fine-tuned</th><th>Against</th><th>Break-even queries</th>'
            f"<th>\u0394 primary metric</th><th>Note</th></tr></thead><tbody>{rows}</tbody></table>"
        )
        if rows
        else '<p class="note">No break-even rows.</p>'
    )
    listed = f"<ul>{assumptions}</ul>" if assumptions else '<p class="note">No assumptions recorded.</p>'
    return (
        '<details id="break-even-section"><summary>Cost and break-even of fine-tuning</summary>'
        f"<h3>Assumptions</h3>{listed}{table}</details>"
    )


def decision_html(decision: dict | None) -> str:
    """What to ship, first on the page: the recommendation, its rule and targets and its evidence lines
    (open); the conditions before fine-tuning folded under it. Nothing without a [decision] target."""
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
        f'<section id="decision"><h2>Decision</h2><p class="recommendation"><strong>'
        f"{esc(found.get('recommendation'))}</strong></p>"
        f"<p>Rule: <code>{esc(found.get('rule'))}</code>; ship: {ship}; targets: {targets}. "
        "All of it in decision.json (<code>harness decide</code>).</p>"
        # Folded: a real decision has ~30 evidence lines, which would push the scorecard off the first screen.
        f'<details id="decision-evidence"><summary>Evidence ({len(found.get("evidence") or [])})</summary>'
        f'<ul class="evidence">{evidence}</ul></details>'
        '<details><summary>Before fine-tuning</summary><table id="decision-conditions"><thead><tr>'
        f"<th>Condition</th><th>Status</th><th>Evidence</th></tr></thead><tbody>{conditions}</tbody></table>"
        "</details></section>"
    )
