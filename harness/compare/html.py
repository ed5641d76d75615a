"""A self-contained HTML report of a variant comparison: tables, plots and a side-by-side sample browser.

The file opens from disk with no network: CSS and a few lines of JS are inline and the plots are base64
data URIs (they are also written as PNG files under plots/). Every string that comes from the data, model
output above all, goes through `html.escape(..., quote=True)`; the JS only toggles `hidden` on blocks that
were rendered here, so model output is never turned into markup in the browser.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.compare.render import NOT_AFTER_HOLM, heading, marker
from harness.core.files import make_folder, write_file


@dataclass(frozen=True)
class Plot:
    name: str  # file stem under plots/
    alt: str
    caption: str
    png: bytes


CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}
thead th{background:#f2f2f2}
td.sig{font-weight:bold}
td.better{background:#e3f4e3} td.worse{background:#f8e0e0}
figure{display:inline-block;margin:0 1em 1em 0;max-width:100%}
figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;max-width:60em}
.outputs{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:.75em}
.variant{border:1px solid #ccc;padding:.5em;min-width:0} .variant h4{margin:.2em 0}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f7f7f7;padding:.5em;max-height:30em;overflow:auto;margin:.3em 0}
.note{color:#666;font-size:.85em}
"""

# Only toggles visibility of server-rendered blocks; it reads no data and writes no markup.
JS = """
(function () {
  var select = document.getElementById("item-select");
  function show() {
    var blocks = document.querySelectorAll("#samples .item");
    for (var i = 0; i < blocks.length; i++) {
      blocks[i].hidden = blocks[i].getAttribute("data-item") !== select.value;
    }
  }
  select.addEventListener("change", show);
  show();
})();
"""


def write_html_report(comparison: dict, samples: dict[str, list[dict]], out_dir: Path) -> Path:
    """Write out_dir/report.html (self-contained, opens from disk, no network) and the plots as PNG
    files under out_dir/plots/; return the report path."""
    out_dir = Path(out_dir)
    plot_dir = make_folder(out_dir / "plots")
    plots = make_plots(comparison, samples)
    for plot in plots:
        write_file(plot_dir / f"{plot.name}.png", plot.png)
    run = comparison.get("run") or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Comparison: {esc(run.get('suite', ''))} {esc(run.get('run_id', ''))}</title>",
        f"<style>{CSS}</style></head><body>",
        header_html(comparison),
        "<h2>Comparison</h2>",
        comparison_table(comparison),
        forgetting_table(comparison.get("rows") or []),
        break_even_html(comparison.get("cost") or {}),
        "<h2>Plots</h2>",
        "".join(figure_html(p) for p in plots) or '<p class="note">No data to plot.</p>',
        sample_browser(comparison, samples),
        f"<script>{JS}</script>",
        "</body></html>",
    ]
    path = out_dir / "report.html"
    write_file(path, "\n".join(parts))  # atomic: a full disk keeps the previous report whole
    return path


# --- formatting ---


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(x: Any) -> str:
    """A number for a table cell; None, NaN and non-numbers are shown safely."""
    if x is None or isinstance(x, bool):
        return "-" if x is None else esc(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "-"
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"
    return esc(x)


def with_ci(value: Any, low: Any, high: Any) -> str:
    if low is None and high is None:
        return fmt(value)
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def number(x: Any) -> float | None:
    """x as a finite float, else None (plots skip what they cannot place)."""
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


# --- tables ---


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


# --- plots ---


def figure_html(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure id="plot-{esc(plot.name)}"><img src="data:image/png;base64,{data}" alt="{esc(plot.alt)}">'
        f"<figcaption>{esc(plot.caption)}</figcaption></figure>"
    )


def label(text: Any) -> str:
    # Matplotlib reads $...$ as mathtext; a variant named "a$b$" must not break (or restyle) a plot.
    return str(text).replace("$", r"\$")


def render(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # Agg explicitly: no display, no pyplot global state
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def make_plots(comparison: dict, samples: dict[str, list[dict]]) -> list[Plot]:
    rows = comparison.get("rows") or []
    made = [quality_vs_cost(comparison), latency_boxes(rows, samples), delta_forest(comparison), flips(rows)]
    return [p for p in made if p is not None]


def quality_vs_cost(comparison: dict) -> Plot | None:
    from matplotlib.figure import Figure

    key = comparison.get("primary_metric")
    metric = heading(comparison, key)
    points, skipped = [], []
    for row in comparison.get("rows") or []:
        m = (row.get("metrics") or {}).get(key) or {}
        value, cost = number(m.get("value")), number((row.get("cost") or {}).get("per_1k_queries"))
        if value is None or cost is None:
            skipped.append(str(row.get("variant")))
            continue
        low, high = number(m.get("ci_low")), number(m.get("ci_high"))
        points.append(
            (
                str(row.get("variant")),
                cost,
                value,
                value - low if low is not None else 0.0,
                high - value if high is not None else 0.0,
            )
        )
    if not points:
        return None
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot()
    for name, cost, value, down, up in points:
        ax.errorbar([cost], [value], yerr=[[down], [up]], fmt="o", capsize=4)
        ax.annotate(label(name), (cost, value), textcoords="offset points", xytext=(6, 6))
    ax.margins(0.15)  # room for the labels beside the outermost points
    ax.set_xlabel("Cost per 1k queries")
    ax.set_ylabel(label(metric))
    ax.set_title(label(f"{metric} vs cost"))
    ax.grid(alpha=0.3)
    caption = f"Quality ({metric}, 95% CI error bars) against cost per 1k queries, one point per variant."
    if skipped:
        caption += f" Left out for lack of a cost or {metric} value (not placed at cost 0): {', '.join(skipped)}."
    return Plot(
        "quality_vs_cost", f"Scatter plot of {metric} against cost per 1k queries per variant", caption, render(fig)
    )


def latency_boxes(rows: list[dict], samples: dict[str, list[dict]]) -> Plot | None:
    from matplotlib.figure import Figure

    order = [str(r.get("variant")) for r in rows] + [
        v for v in samples if v not in {str(r.get("variant")) for r in rows}
    ]
    names, data, skipped = [], [], []
    for name in order:
        values = [x for s in samples.get(name) or [] if (x := number(s.get("latency_s"))) is not None]
        if values:
            names.append(name)
            data.append(values)
        else:
            skipped.append(name)
    if not data:
        return None
    fig = Figure(figsize=(max(5.0, 1.1 * len(names) + 2), 4.5))
    ax = fig.add_subplot()
    ax.boxplot(data)
    # Tick labels set separately: boxplot's labels= keyword was renamed in matplotlib 3.9.
    ax.set_xticks(range(1, len(names) + 1))
    ax.set_xticklabels([label(n) for n in names], rotation=20, ha="right")
    ax.set_ylabel("Latency per item (s)")
    ax.set_title("Latency distribution per variant")
    ax.grid(axis="y", alpha=0.3)
    caption = "Per-item latency (latency_s) of each variant's samples: box = quartiles, whiskers = 1.5 IQR."
    if skipped:
        caption += f" No latency recorded for: {', '.join(skipped)}."
    return Plot("latency", "Box plot of per-item latency per variant", caption, render(fig))


def delta_forest(comparison: dict) -> Plot | None:
    from matplotlib.figure import Figure

    lines = []  # (label, delta, low, high, significant)
    for name in comparison.get("metrics") or []:
        for row in comparison.get("rows") or []:
            m = (row.get("metrics") or {}).get(name) or {}
            delta = number(m.get("delta"))
            if delta is None:
                continue
            low, high = number(m.get("delta_ci_low")), number(m.get("delta_ci_high"))
            lines.append(
                (
                    f"{heading(comparison, name)} \u00b7 {row.get('variant')}",
                    delta,
                    low if low is not None else delta,
                    high if high is not None else delta,
                    bool(m.get("significant")),
                )
            )
    if not lines:
        return None
    fig = Figure(figsize=(7.0, max(2.5, 0.35 * len(lines) + 1.2)))
    ax = fig.add_subplot()
    for y, (_, delta, low, high, sig) in enumerate(lines):
        ax.plot([low, high], [y, y], color="C0" if sig else "0.55", linewidth=2)
        ax.plot([delta], [y], "o", color="C0" if sig else "0.55", markerfacecolor="C0" if sig else "white")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(lines)))
    ax.set_yticklabels([label(line[0]) for line in lines])
    ax.invert_yaxis()  # first metric on top, as in the table
    ax.set_xlabel(label(f"Delta vs {comparison.get('baseline')}"))
    ax.grid(axis="x", alpha=0.3)
    caption = (
        f"Delta of each metric against {comparison.get('baseline')} with its 95% CI. Filled blue: "
        f"significant after Holm correction at alpha={comparison.get('alpha')}; hollow grey: not significant."
    )
    return Plot(
        "deltas",
        "Forest plot of per-metric deltas against the baseline with confidence intervals",
        caption,
        render(fig),
    )


def flips(rows: list[dict]) -> Plot | None:
    from matplotlib.figure import Figure

    bars = []  # (label, right_to_wrong, wrong_to_right)
    for row in rows:
        for bench, f in (row.get("forgetting") or {}).items():
            r2w, w2r = number(f.get("right_to_wrong")), number(f.get("wrong_to_right"))
            if r2w is not None or w2r is not None:
                bars.append((f"{row.get('variant')}\n{bench}", r2w or 0.0, w2r or 0.0))
    if not bars:
        return None
    fig = Figure(figsize=(max(5.0, 1.3 * len(bars) + 2), 4.5))
    ax = fig.add_subplot()
    xs = range(len(bars))
    ax.bar([x - 0.2 for x in xs], [b[1] for b in bars], width=0.4, label="right \u2192 wrong", color="C3")
    ax.bar([x + 0.2 for x in xs], [b[2] for b in bars], width=0.4, label="wrong \u2192 right", color="C2")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([label(b[0]) for b in bars])
    ax.set_xlim(-0.8, len(bars) - 0.2)  # a single group would otherwise fill the whole width
    ax.set_ylabel("Items that flipped")
    ax.set_title("Forgetting: answer flips against the base model")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    caption = (
        "Per benchmark and variant, items the base model got right and the variant got wrong (red) and "
        "the reverse (green); more red than green means forgetting."
    )
    return Plot(
        "forgetting_flips",
        "Bar chart of right-to-wrong and wrong-to-right flips per benchmark and variant",
        caption,
        render(fig),
    )


# --- sample browser ---


def item_order(samples: dict[str, list[dict]]) -> list[str]:
    seen: dict[str, None] = {}
    for rows in samples.values():
        for s in rows:
            seen.setdefault(str(s.get("id")), None)
    return list(seen)


def variant_column(name: str, sample: dict | None, metrics: list[str]) -> str:
    if sample is None:
        return f'<div class="variant"><h4>{esc(name)}</h4><p class="note">No sample for this item.</p></div>'
    scores = sample.get("scores") or {}
    names = [m for m in metrics if m in scores] + [m for m in scores if m not in metrics]
    score_rows = "".join(f"<tr><td>{esc(m)}</td><td>{fmt(scores[m])}</td></tr>" for m in names)
    return (
        f'<div class="variant" data-variant="{esc(name)}"><h4>{esc(name)}</h4>'
        f'<table class="scores">{score_rows}<tr><td>latency_s</td><td>{fmt(sample.get("latency_s"))}</td></tr></table>'
        f'<pre class="output">{esc(sample.get("output"))}</pre></div>'
    )


def item_block(index: int, item_id: str, by_variant: dict[str, dict[str, dict]], metrics: list[str]) -> str:
    present = [by_variant[v][item_id] for v in by_variant if item_id in by_variant[v]]
    first = present[0] if present else {}
    messages = next((s.get("messages") for s in present if s.get("messages")), None) or []
    prompt = "".join(
        f"<p><b>{esc(m.get('role'))}</b></p><pre>{esc(m.get('content'))}</pre>" for m in messages if isinstance(m, dict)
    )
    meta = first.get("metadata") or {}
    meta_html = "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in meta.items()) if isinstance(meta, dict) else ""
    columns = "".join(variant_column(v, by_variant[v].get(item_id), metrics) for v in by_variant)
    hidden = "" if index == 0 else " hidden"  # the JS takes over; without it the first item still shows
    return (
        f'<div class="item" data-item="{index}"{hidden}><h3>Item {esc(item_id)}</h3>'
        + (f"<details><summary>Prompt</summary>{prompt}</details>" if prompt else "")
        + (f"<details><summary>Metadata</summary><ul>{meta_html}</ul></details>" if meta_html else "")
        + f'<p><b>Reference</b></p><pre class="reference">{esc(first.get("reference"))}</pre>'
        + f'<div class="outputs">{columns}</div></div>'
    )


def sample_browser(comparison: dict, samples: dict[str, list[dict]]) -> str:
    ids = item_order(samples)
    if not ids:
        return '<section id="samples"><h2>Samples</h2><p class="note">No samples.</p></section>'
    ordered = [str(r.get("variant")) for r in comparison.get("rows") or [] if str(r.get("variant")) in samples]
    ordered += [v for v in samples if v not in ordered]
    by_variant = {v: {str(s.get("id")): s for s in samples[v]} for v in ordered}
    # Option values are indexes, not item ids: the JS compares plain integers, never data.
    options = "".join(f'<option value="{i}">{esc(item_id)}</option>' for i, item_id in enumerate(ids))
    metrics = list(comparison.get("metrics") or [])
    blocks = "".join(item_block(i, item_id, by_variant, metrics) for i, item_id in enumerate(ids))
    return (
        f'<section id="samples"><h2>Samples</h2><label for="item-select">Item ({len(ids)}): </label>'
        f'<select id="item-select">{options}</select>{blocks}</section>'
    )
