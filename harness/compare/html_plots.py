"""The HTML report's plots: quality against cost, latency boxes, the delta forest plot and forgetting flips,
each rendered with matplotlib's Agg canvas to PNG bytes and embedded as a base64 data URI figure."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

from harness.compare.html_format import esc, number
from harness.compare.render import heading


@dataclass(frozen=True)
class Plot:
    name: str  # file stem under plots/
    alt: str
    caption: str
    png: bytes


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
