"""The report's latency, delta forest and forgetting-flips plots, in the variant colours html_plots sets.

Latency says what it measured: one request at a time where the run probed it (`--latency-probe`: what a
user waits), else the batched run's per-item latency_s, which is the wall time of the whole batch the item
ran in and so no user's wait; the two are drawn in separate, labelled panels, never on one axis."""

from __future__ import annotations

import math
from typing import Any

from harness.compare.html_format import number
from harness.compare.html_plot_base import Plot, label, new_figure, render, variant_order
from harness.compare.render import heading
from harness.compare.scorecard import latency_source, ordered_rows

GREY = "0.35"


def _rows(comparison: dict) -> list[dict]:
    return list(ordered_rows(comparison)) if comparison.get("rows") else []


def _names_axis(ax: Any, names: list[str], palette: dict[str, str], show: bool = True) -> None:
    """Variant names down the y axis, first on top, each in its colour."""
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels([label(n) for n in names] if show else [])
    if show:
        for tick, name in zip(ax.get_yticklabels(), names):
            tick.set_color(palette.get(name, GREY))
    ax.set_ylim(len(names) - 0.5, -0.5)


def _boxes(ax: Any, data: list[list[float]], names: list[str], palette: dict[str, str]) -> None:
    """Horizontal box plots drawn from boxplot_stats: Axes.boxplot's orientation keyword changed name
    across the matplotlib versions this project supports."""
    from matplotlib.cbook import boxplot_stats
    from matplotlib.patches import Rectangle

    for y, (values, name) in enumerate(zip(data, names)):
        s = boxplot_stats(values)[0]
        colour = palette.get(name, GREY)
        ax.add_patch(Rectangle((s["q1"], y - 0.3), s["q3"] - s["q1"], 0.6, facecolor=colour, alpha=0.35))
        ax.add_patch(Rectangle((s["q1"], y - 0.3), s["q3"] - s["q1"], 0.6, fill=False, edgecolor=colour))
        ax.plot([s["med"], s["med"]], [y - 0.3, y + 0.3], color=colour, linewidth=2)
        ax.plot([s["whislo"], s["q1"]], [y, y], color=colour)
        ax.plot([s["q3"], s["whishi"]], [y, y], color=colour)
        if len(s["fliers"]):
            ax.plot(s["fliers"], [y] * len(s["fliers"]), "o", color=colour, markersize=3, markerfacecolor="none")
    ax.autoscale_view()


def latency_plot(comparison: dict, samples: dict[str, list[dict]], palette: dict[str, str]) -> Plot | None:
    rows = {str(r.get("variant")): r for r in _rows(comparison)}
    order = list(dict.fromkeys([*variant_order(comparison), *samples]))
    probed, batch, skipped = [], [], []  # (name, p50, p95, n text), (name, latency_s values), names
    for name in order:
        latency = (rows.get(name) or {}).get("latency") or {}
        p50, p95 = number(latency.get("latency_s_p50")), number(latency.get("latency_s_p95"))
        if latency_source(latency) == "probe" and (p50 is not None or p95 is not None):
            probed.append((name, p50, p95))
            continue
        values = [x for s in samples.get(name) or [] if (x := number(s.get("latency_s"))) is not None]
        (batch.append((name, values)) if values else skipped.append(name))
    if not probed and not batch:
        return None
    panels = [p for p in (probed, batch) if p]
    heights = [0.4 * len(p) + 1.1 for p in panels]
    fig = new_figure(7.0, sum(heights))
    axes = fig.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights})[:, 0]
    captions = []
    if probed:
        ax = axes[0]
        names = [p[0] for p in probed]
        for y, (name, p50, p95) in enumerate(probed):
            colour = palette.get(name, GREY)
            known = [x for x in (p50, p95) if x is not None]
            ax.plot([min(known), max(known)], [y, y], color=colour, linewidth=2)
            if p50 is not None:
                ax.plot([p50], [y], "o", color=colour)
            if p95 is not None:
                ax.plot([p95], [y], "|", color=colour, markersize=14, markeredgewidth=2)
        _names_axis(ax, names, palette)
        ax.set_xlim(left=0)
        ax.set_xlabel("Seconds per request, one at a time (latency probe): dot p50, bar p95")
        ax.grid(axis="x", alpha=0.3)
        captions.append(f"Latency of one request at a time (--latency-probe), what a user waits: {', '.join(names)}.")
    if batch:
        ax = axes[-1]
        names = [b[0] for b in batch]
        _boxes(ax, [b[1] for b in batch], names, palette)
        _names_axis(ax, names, palette)
        ax.set_xlim(left=0)
        ax.set_xlabel("Batch wall time per item (s): each item's latency_s in the batched run")
        ax.grid(axis="x", alpha=0.3)
        captions.append(
            "Batch wall time per item (latency_s of the samples; for a batched engine each item carries its "
            "batch's wall time, not one user's wait; box = quartiles, whiskers = 1.5 IQR) for: "
            f"{', '.join(names)}. Pass --latency-probe N to `harness run` for one-at-a-time latency."
        )
    fig.tight_layout()
    caption = " ".join(captions)
    if skipped:
        caption += f" No latency recorded for: {', '.join(skipped)}."
    return Plot(
        "latency", "Latency per variant, one request at a time or batch wall time per item", caption, render(fig)
    )


def delta_forest(comparison: dict, palette: dict[str, str]) -> Plot | None:
    """One panel per metric (its own x scale), the non-baseline variants down each in declared order."""
    baseline = comparison.get("baseline")
    rows = [r for r in _rows(comparison) if r.get("variant") != baseline]
    names = [str(r.get("variant")) for r in rows]
    panels = []  # (metric heading, [(y, name, delta, low, high, significant)])
    for metric in comparison.get("metrics") or []:
        lines = []
        for y, row in enumerate(rows):
            m = (row.get("metrics") or {}).get(metric) or {}
            delta = number(m.get("delta"))
            if delta is None:
                continue
            low, high = number(m.get("delta_ci_low")), number(m.get("delta_ci_high"))
            lines.append((y, names[y], delta, delta if low is None else low, delta if high is None else high, m))
        if lines:
            panels.append((heading(comparison, metric), lines))
    if not panels:
        return None
    ncols = 1 if len(panels) <= 2 else 2
    nrows = math.ceil(len(panels) / ncols)
    panel_h = 0.3 * len(names) + 1.0
    fig = new_figure(5.0 * ncols + 1.5, panel_h * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for index, ax in enumerate(axes.flat):
        if index >= len(panels):
            ax.set_visible(False)
            continue
        title, lines = panels[index]
        for y, name, delta, low, high, m in lines:
            colour = palette.get(name, GREY)
            ax.plot([low, high], [y, y], color=colour, linewidth=2)
            ax.plot(
                [delta],
                [y],
                "o",
                color=colour,
                markersize=7,
                markerfacecolor=colour if m.get("significant") else "white",
            )
        ax.axvline(0, color="black", linewidth=0.8)
        _names_axis(ax, names, palette, show=index % ncols == 0)
        ax.set_title(label(title), fontsize=10)
        ax.tick_params(axis="x", labelsize=8)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(label(f"Delta vs {baseline} (95% CI), one panel per metric"), fontsize=11)
    fig.tight_layout()
    caption = (
        f"Delta of each variant against {baseline} with its 95% CI, one panel per metric (each on its own "
        f"scale). Filled dot: significant after Holm correction at alpha={comparison.get('alpha')}; hollow: not."
    )
    return Plot(
        "deltas",
        "Forest plot of per-metric deltas against the baseline with confidence intervals, one panel per metric",
        caption,
        render(fig),
    )


def flips(comparison: dict, palette: dict[str, str]) -> Plot | None:
    from matplotlib.patches import Patch

    bars = []  # (variant, benchmark, right_to_wrong, wrong_to_right)
    for row in _rows(comparison):
        for bench, f in (row.get("forgetting") or {}).items():
            r2w, w2r = number(f.get("right_to_wrong")), number(f.get("wrong_to_right"))
            if r2w is not None or w2r is not None:
                bars.append((str(row.get("variant")), bench, r2w or 0.0, w2r or 0.0))
    if not bars:
        return None
    fig = new_figure(max(5.0, 1.3 * len(bars) + 2), 4.5)
    ax = fig.add_subplot()
    for x, (name, _, r2w, w2r) in enumerate(bars):
        colour = palette.get(name, GREY)
        ax.bar([x - 0.2], [r2w], width=0.4, color=colour)
        ax.bar([x + 0.2], [w2r], width=0.4, facecolor="white", edgecolor=colour, hatch="///")
    ax.set_xticks(range(len(bars)))
    ax.set_xticklabels([label(f"{name}\n{bench}") for name, bench, _, _ in bars])
    for tick, (name, *_) in zip(ax.get_xticklabels(), bars):
        tick.set_color(palette.get(name, GREY))
    ax.set_xlim(-0.8, len(bars) - 0.2)  # a single group would otherwise fill the whole width
    ax.set_ylabel("Items that flipped")
    ax.set_title("Forgetting: answer flips against the base model")
    ax.legend(
        handles=[
            Patch(facecolor=GREY, label="right \u2192 wrong (lost)"),
            Patch(facecolor="white", edgecolor=GREY, hatch="///", label="wrong \u2192 right (gained)"),
        ]
    )
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    caption = (
        "Per benchmark and variant (in its colour), items the base model got right and the variant got wrong "
        "(solid) and the reverse (hatched); a solid bar taller than its hatched one means forgetting."
    )
    return Plot(
        "forgetting_flips",
        "Bar chart of right-to-wrong and wrong-to-right flips per benchmark and variant",
        caption,
        render(fig),
    )
