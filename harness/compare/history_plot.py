"""history.png: each variant's metric over time, a subplot per metric, the 95% CI as a shaded band and
a dotted vertical line, labelled with its markers, at every run where a variant's inputs changed."""

from __future__ import annotations

import io
import math
from datetime import timedelta
from typing import Any

from harness.compare.history_types import MARKERS, History, HistoryRun

WIDTH_IN, HEIGHT_PER_METRIC_IN, HEIGHT_EXTRA_IN, DPI = 11.0, 3.2, 0.8, 100
DENSE_RUNS = 60  # above this many runs, points are drawn without dots
MAX_LABELLED_CHANGES = 40  # above this many change lines, their letters would overlap: lines only


def plot_size(metrics: int) -> tuple[int, int]:
    """(width, height) of history.png in pixels for this many subplots."""
    return round(WIDTH_IN * DPI), round((HEIGHT_EXTRA_IN + HEIGHT_PER_METRIC_IN * max(metrics, 1)) * DPI)


def plot_png(history: History) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = list(history.plot_metrics) or ["(no metric)"]
    width, height = plot_size(len(metrics))
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # Agg explicitly: no display, no pyplot global state
    axes = fig.subplots(len(metrics), 1, sharex=True, squeeze=False)[:, 0]
    for ax, metric in zip(axes, metrics):
        _draw_metric(ax, history, metric)
    axes[-1].set_xlabel("run created (UTC)")
    legend = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels())}
    if legend:  # from every subplot: a variant may have no value for the first metric
        fig.legend(list(legend.values()), list(legend), loc="outside right upper", title="variant")
    fig.suptitle(
        _label(
            f"{history.suite}: {_runs(len(history.runs))} - shaded: 95% CI; dotted lines: "
            "M model, A adapter, D data, C config changed"
        ),
        fontsize=10,
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)  # no bbox_inches="tight": the size stays plot_size()
    return buf.getvalue()


def _draw_metric(ax: Any, history: History, metric: str) -> None:
    import matplotlib.dates as mdates

    times = [run.created_at for run in history.runs]
    dots = "o" if len(history.runs) <= DENSE_RUNS else None
    for number, variant in enumerate(history.variants):
        cells = [run.variants[variant].metrics.get(metric) if variant in run.variants else None for run in history.runs]
        values, lows, highs = (
            [_nan(getattr(c, f) if c else None) for c in cells] for f in ("value", "ci_low", "ci_high")
        )
        if all(math.isnan(v) for v in values):
            continue
        color = f"C{number % 10}"  # a variant keeps its colour in every subplot, whichever have values
        ax.plot(times, values, color=color, marker=dots, markersize=4, linewidth=1.5, label=_label(variant))
        ax.fill_between(times, lows, highs, color=color, alpha=0.15, linewidth=0)
        if len(times) == 1:  # a band needs two runs: one run gets an error bar
            ax.vlines(times, lows, highs, color=color, alpha=0.5, linewidth=6)
    changed = [(run.created_at, letters) for run in history.runs if (letters := _letters(history, run))]
    for when, letters in changed:
        ax.axvline(when, color="0.4", linestyle=":", linewidth=1)
        if len(changed) <= MAX_LABELLED_CHANGES:
            ax.annotate(
                letters,
                (mdates.date2num(when), 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=8,
                color="0.3",
            )
    ax.set_ylabel(_label(metric))
    ax.set_title(_label(metric), loc="left", fontsize=10, pad=12)
    ax.grid(alpha=0.3)
    if len(times) == 1:  # else the date axis spans years around a single point
        ax.set_xlim(times[0] - timedelta(hours=12), times[0] + timedelta(hours=12))
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _letters(history: History, run: HistoryRun) -> str:
    """Every marker of the variants shown, at one run."""
    shown = [p.markers for v, p in run.variants.items() if v in history.variants]
    return "".join(m for m in MARKERS if any(m in markers for markers in shown))


def _runs(count: int) -> str:
    return f"{count} run" + ("" if count == 1 else "s")


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _label(text: Any) -> str:
    # Matplotlib reads $...$ as mathtext; a variant named "a$b$" must not break (or restyle) a plot.
    return str(text).replace("$", r"\$")
