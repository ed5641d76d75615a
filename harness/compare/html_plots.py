"""The HTML report's plots: quality against cost on the primary metric, latency, the delta forest plot and
forgetting flips, each rendered with matplotlib's Agg canvas to PNG bytes and embedded as a base64 data URI.

Every plot gives a variant the same colour (a fixed palette indexed by the suite's declared variant order),
so a reader who found "rag" in orange in one plot finds it in orange in the next. The latency, forest and
flips plots live in html_plot_panels, what every plot shares in html_plot_base; here: the quality-vs-cost
plot, one quality-vs-prompt-tokens plot per few-shot sweep, and their label placement."""

from __future__ import annotations

from typing import Any

from harness.compare.html_format import number
from harness.compare.html_plot_base import Plot, colours, label, new_figure, render
from harness.compare.html_plot_panels import delta_forest, flips, latency_plot
from harness.compare.render import heading
from harness.compare.scorecard import ordered_rows
from harness.config.sweep import SWEPT_KIND, expansion_name, parse_expansion

LABEL_GAP_PX = 2.0  # the least vertical space between two point labels
LABEL_OFFSET_PX = 7.0  # a label's distance from its point
LEADER_PX = 16.0  # how much further out a moved label sits, clear of its neighbours' error bars


def make_plots(comparison: dict, samples: dict[str, list[dict]]) -> list[Plot]:
    palette = colours(comparison, list(samples))
    made = [
        quality_vs_cost(comparison, palette),
        *sweep_plots(comparison, samples, palette),
        latency_plot(comparison, samples, palette),
        delta_forest(comparison, palette),
        flips(comparison, palette),
    ]
    return [p for p in made if p is not None]


Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in display pixels, y up


def spread_labels(boxes: list[Box], gap: float = LABEL_GAP_PX) -> list[float]:
    """Vertical shifts (pixels) that leave no two label boxes overlapping: labels are placed from the top
    down, and one that would overlap a label already placed moves just below it. Deterministic (ties by
    index) and free of any layout library: a handful of labels needs no optimiser."""
    shifts = [0.0] * len(boxes)
    placed: list[Box] = []
    for i in sorted(range(len(boxes)), key=lambda i: (-boxes[i][3], i)):
        x0, y0, x1, y1 = boxes[i]
        dy, moved = 0.0, True
        while moved:  # each move goes strictly lower, below one placed box: at most len(placed) moves
            moved = False
            for a0, b0, a1, b1 in placed:
                if x0 < a1 and a0 < x1 and y0 + dy < b1 + gap and b0 < y1 + dy + gap:
                    dy, moved = b0 - gap - y1, True
        shifts[i] = dy
        placed.append((x0, y0 + dy, x1, y1 + dy))
    return shifts


def place_labels(ax: Any, points: list[tuple[str, float, float, str]]) -> list[Any]:
    """Label each (name, x, y, colour) point beside it, on its left where the right would leave the axes,
    moved down out of each other's way, with a leader line where a label had to move from its point."""
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    right_edge = ax.get_window_extent(renderer).x1
    texts, sides = [], []
    for name, x, y, colour in points:
        text = ax.annotate(
            label(name), (x, y), xytext=(LABEL_OFFSET_PX, 0), textcoords="offset pixels", va="center", color=colour
        )
        if text.get_window_extent(renderer).x1 > right_edge:
            text.set_position((-LABEL_OFFSET_PX, 0))
            text.set_horizontalalignment("right")
        texts.append(text)
        sides.append(text.get_position()[0])
    boxes = []
    for text, dx in zip(texts, sides):
        # Each box covers both places its label may take (beside the point, or LEADER_PX further out
        # once moved), so no placement can overlap another.
        x0, y0, x1, y1 = text.get_window_extent(renderer).extents
        boxes.append((x0, y0, x1 + LEADER_PX, y1) if dx > 0 else (x0 - LEADER_PX, y0, x1, y1))
    shifts = spread_labels(boxes)
    placed = []
    for (name, x, y, colour), text, dx, dy in zip(points, texts, sides, shifts):
        if abs(dy) < 0.5:
            placed.append(text)
            continue
        text.remove()  # a leader line needs arrowprops at creation: draw the moved label anew
        dx += LEADER_PX if dx > 0 else -LEADER_PX
        placed.append(
            ax.annotate(
                label(name),
                (x, y),
                xytext=(dx, dy),
                textcoords="offset pixels",
                va="center",
                ha="right" if dx < 0 else "left",
                color=colour,
                arrowprops={"arrowstyle": "-", "color": colour, "linewidth": 0.6, "shrinkA": 1, "shrinkB": 4},
            )
        )
    return placed


def quality_figure(comparison: dict, palette: dict[str, str]) -> tuple[Any, list[Any], list[str]] | None:
    """The quality-vs-cost figure, its point labels (the tests check they do not overlap) and the variants
    left out for lack of a number; None when no variant has both."""
    key = comparison.get("primary_metric")
    points, skipped = [], []
    for row in ordered_rows(comparison) if comparison.get("rows") else []:
        m = (row.get("metrics") or {}).get(key) or {}
        value, cost = number(m.get("value")), number((row.get("cost") or {}).get("per_1k_queries"))
        name = str(row.get("variant"))
        if value is None or cost is None:
            skipped.append(name)
            continue
        low, high = number(m.get("ci_low")), number(m.get("ci_high"))
        down = value - low if low is not None else 0.0
        points.append((name, cost, value, max(down, 0.0), max(high - value, 0.0) if high is not None else 0.0))
    if not points:
        return None
    metric = heading(comparison, key)
    fig = new_figure(6.5, 4.5)
    ax = fig.add_subplot()
    for name, cost, value, down, up in points:
        ax.errorbar([cost], [value], yerr=[[down], [up]], fmt="o", capsize=4, color=palette.get(name, "0.3"))
    ax.margins(x=0.2, y=0.12)  # room for the labels beside the outermost points
    ax.set_xlabel("Cost per 1k queries")
    ax.set_ylabel(label(metric))
    ax.set_title(label(f"{metric} (primary metric) vs cost"))
    ax.grid(alpha=0.3)
    ax.set_xlim(ax.get_xlim())  # frozen before the labels are measured, so their boxes stay where measured
    ax.set_ylim(ax.get_ylim())
    fig.tight_layout()
    texts = place_labels(ax, [(n, c, v, palette.get(n, "0.3")) for n, c, v, _, _ in points])
    return fig, texts, skipped


def quality_vs_cost(comparison: dict, palette: dict[str, str]) -> Plot | None:
    found = quality_figure(comparison, palette)
    if found is None:
        return None
    fig, _, skipped = found
    metric = heading(comparison, comparison.get("primary_metric"))
    caption = (
        f"Quality on the primary metric ({metric}, 95% CI error bars) against cost per 1k queries, one point "
        "per variant."
    )
    if skipped:
        caption += f" Left out for lack of a cost or {metric} value (not placed at cost 0): {', '.join(skipped)}."
    return Plot(
        "quality_vs_cost", f"Scatter plot of {metric} against cost per 1k queries per variant", caption, render(fig)
    )


def sweeps(comparison: dict) -> dict[str, list[tuple[int, dict]]]:
    """Sweep name -> (k, row) of its expansions (prompted variants named NAME@kK), in k order; only sweeps
    of two or more k: one point draws no trade-off."""
    found: dict[str, list[tuple[int, dict]]] = {}
    for row in ordered_rows(comparison) if comparison.get("rows") else []:
        parsed = parse_expansion(str(row.get("variant")))
        if parsed is not None and row.get("kind") == SWEPT_KIND:
            found.setdefault(parsed[0], []).append((parsed[1], dict(row)))
    return {name: sorted(points, key=lambda p: p[0]) for name, points in found.items() if len(points) > 1}


def prompt_tokens(row: dict, samples: list[dict]) -> float | None:
    """Mean prompt tokens per item: the run's usage summary, else the mean of the samples' prompt_tokens."""
    mean = number((row.get("tokens") or {}).get("prompt_mean"))
    if mean is not None:
        return mean
    counts = [x for s in samples if (x := number(s.get("prompt_tokens"))) is not None]
    return sum(counts) / len(counts) if counts else None


def sweep_figure(
    comparison: dict, sweep: str, points: list[tuple[int, dict]], samples: dict[str, list[dict]], palette: dict
) -> tuple[Any, list[Any], list[str]] | None:
    """One sweep's primary metric (95% CI bars) against mean prompt tokens, points labelled kK and joined in
    k order; its labels and the k left out for lack of a number; None when no k has both."""
    key = comparison.get("primary_metric")
    drawn, skipped = [], []
    for k, row in points:
        name = str(row.get("variant"))
        m = (row.get("metrics") or {}).get(key) or {}
        value, tokens = number(m.get("value")), prompt_tokens(row, samples.get(name) or [])
        if value is None or tokens is None:
            skipped.append(f"k{k}")
            continue
        low, high = number(m.get("ci_low")), number(m.get("ci_high"))
        down, up = (
            max(value - low, 0.0) if low is not None else 0.0,
            max(high - value, 0.0) if high is not None else 0.0,
        )
        drawn.append((f"k{k}", tokens, value, down, up, palette.get(name, "0.3")))
    if not drawn:
        return None
    metric = heading(comparison, key)
    fig = new_figure(6.5, 4.5)
    ax = fig.add_subplot()
    ax.plot([d[1] for d in drawn], [d[2] for d in drawn], color="0.6", linewidth=1, zorder=1)  # k order
    for _, tokens, value, down, up, colour in drawn:
        ax.errorbar([tokens], [value], yerr=[[down], [up]], fmt="o", capsize=4, color=colour, zorder=2)
    ax.margins(x=0.2, y=0.12)
    ax.set_xlabel("Mean prompt tokens per item")
    ax.set_ylabel(label(metric))
    ax.set_title(label(f"Few-shot sweep {sweep}: {metric} (primary metric) vs prompt tokens"))
    ax.grid(alpha=0.3)
    ax.set_xlim(ax.get_xlim())  # frozen before the labels are measured, as in quality_figure
    ax.set_ylim(ax.get_ylim())
    fig.tight_layout()
    texts = place_labels(ax, [(k, tokens, value, colour) for k, tokens, value, _, _, colour in drawn])
    return fig, texts, skipped


def sweep_plots(comparison: dict, samples: dict[str, list[dict]], palette: dict[str, str]) -> list[Plot]:
    """One plot per few-shot sweep in the run (harness.config.sweep), in declared order."""
    plots = []
    metric = heading(comparison, comparison.get("primary_metric"))
    for sweep, points in sweeps(comparison).items():
        found = sweep_figure(comparison, sweep, points, samples, palette)
        if found is None:
            continue
        fig, _, skipped = found
        caption = (
            f"Few-shot sweep {sweep}: {metric} (primary metric, 95% CI error bars) against mean prompt tokens per "
            f"item, one point per k ({', '.join(expansion_name(sweep, k) for k, _ in points)}), joined in k order."
        )
        if skipped:
            caption += f" Left out for lack of a prompt-token count or {metric} value: {', '.join(skipped)}."
        alt = f"Line plot of {metric} against mean prompt tokens for each k of the few-shot sweep {sweep}"
        plots.append(Plot(f"sweep_{sweep}", alt, caption, render(fig)))
    return plots
