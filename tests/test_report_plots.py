"""The report's plots and tables without a browser: labels that do not overlap, one colour per variant in
every plot, the primary metric on the quality axis, latency labelled by what measured it, the forest plot
grouped by metric without the baseline, and the scorecard and per-metric tables in declared order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.compare.html import write_html_report
from harness.compare.html_plot_base import PALETTE, colours
from harness.compare.html_plot_panels import delta_forest, latency_plot
from harness.compare.html_plots import make_plots, quality_figure, spread_labels
from harness.compare.html_tables import detail_html, scorecard_html

DECLARED = ["prompted", "base", "rag", "finetuned", "hybrid", "echo"]  # the baseline is not first
SHOWN = ["base", "prompted", "rag", "finetuned", "hybrid", "echo"]  # the baseline first, then as declared
METRICS = [f"m{i}" for i in range(9)] + ["accuracy[category]"]


def cell(value: float, delta: float | None, significant: bool = False) -> dict:
    return {
        "value": value,
        "ci_low": value - 0.05,
        "ci_high": value + 0.05,
        "n": 200,
        "higher_is_better": True,
        "delta": delta,
        "delta_ci_low": None if delta is None else delta - 0.04,
        "delta_ci_high": None if delta is None else delta + 0.04,
        "p_value": None if delta is None else 0.0001,
        "p_holm": None if delta is None else (0.00001 if significant else 0.4),
        "test": None if delta is None else "mcnemar",
        "significant": None if delta is None else significant,
        "mde": 0.05,
        "right_to_wrong": None if delta is None else 3,
        "wrong_to_right": None if delta is None else 11,
    }


def wide_comparison(probe: set[str] = frozenset()) -> dict:
    """6 variants x 10 metrics, every tuned variant at nearly the same quality and cost: the labels'
    worst case. The rows put the baseline first, as compare_run does; variant_order is the suite's."""
    rows = []
    for i, name in enumerate(["base", *(v for v in DECLARED if v != "base")]):
        base = name == "base"
        source = "one at a time (20 requests)" if name in probe else "in the batched run"
        rows.append(
            {
                "variant": name,
                "kind": "base" if base else name,
                "metrics": {
                    m: cell(
                        0.5 + 0.01 * i + (0.3 if m == "accuracy[category]" and not base else 0),
                        None if base else 0.01 * i,
                        i % 2 == 0,
                    )
                    for m in METRICS
                },
                "forgetting": {},
                "latency": {"latency_s_p50": 0.2 * (i + 1), "latency_s_p95": 0.4 * (i + 1), "source": source},
                "tokens": {"prompt_mean": 100.0, "completion_mean": 20.0},
                "cost": {"per_1k_queries": 0.5 if base else 0.3 + 0.001 * i, "basis": "GPU-hour price"},
            }
        )
    return {
        "run": {"dir": "results/x", "run_id": "run-9", "suite": "wide", "created_at": "2024-01-01", "items": 200},
        "baseline": "base",
        "variant_order": DECLARED,
        "alpha": 0.05,
        "metrics": METRICS,
        "metric_headings": {},
        "primary_metric": "accuracy[category]",
        "rows": rows,
        "cost": {"assumptions": [], "break_even": []},
    }


def wide_samples() -> dict[str, list[dict]]:
    return {v: [{"id": f"q{i}", "latency_s": 10.0 + i + j} for i in range(8)] for j, v in enumerate(DECLARED)}


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_spread_labels_separates_boxes_deterministically() -> None:
    boxes = [(0, 0, 50, 10), (5, 2, 60, 12), (100, 0, 150, 10), (10, 1, 40, 11)]
    shifts = spread_labels(boxes)
    assert shifts == spread_labels(boxes)  # deterministic
    moved = [(x0, y0 + d, x1, y1 + d) for (x0, y0, x1, y1), d in zip(boxes, shifts)]
    for i, a in enumerate(moved):
        for b in moved[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    assert shifts[1] == 0.0  # the top box stays where it is
    assert shifts[2] == 0.0  # a box beside the others, not above or below them, does not move


def test_quality_plot_uses_primary_metric_and_labels_do_not_overlap() -> None:
    comparison = wide_comparison()
    fig, texts, skipped = quality_figure(comparison, colours(comparison))
    assert skipped == []
    assert "accuracy[category]" in fig.axes[0].get_ylabel()
    from matplotlib.text import Text

    renderer = fig.canvas.get_renderer()
    for t in texts:
        t.update_positions(renderer)
    boxes = [Text.get_window_extent(t, renderer) for t in texts]  # the label, not its leader line
    assert sorted(t.get_text() for t in texts) == sorted(DECLARED)
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not overlaps(a, b)
    ys = [line.get_ydata()[0] for line in fig.axes[0].lines if len(line.get_ydata()) == 1]
    assert max(ys) > 0.8  # the primary metric (tuned variants +0.3), not m0


def test_one_colour_per_variant_in_declared_order() -> None:
    comparison = wide_comparison()
    palette = colours(comparison, ["extra"])
    assert list(palette) == [*SHOWN, "extra"]
    assert palette["base"] == PALETTE[0] and palette["prompted"] == PALETTE[1]
    fig, texts, _ = quality_figure(comparison, palette)
    for text in texts:
        assert text.get_color() == palette[text.get_text()]


def test_forest_plot_one_panel_per_metric_without_baseline() -> None:
    comparison = wide_comparison()
    plot = delta_forest(comparison, colours(comparison))
    assert plot is not None and plot.png.startswith(b"\x89PNG")
    assert "one panel per metric" in plot.caption


def test_latency_from_probe_else_labelled_batch_wall_time() -> None:
    comparison = wide_comparison(probe={"rag", "hybrid"})
    plot = latency_plot(comparison, wide_samples(), colours(comparison))
    assert "one request at a time" in plot.caption and "rag, hybrid" in plot.caption
    assert "Batch wall time per item" in plot.caption and "base, prompted, finetuned, echo" in plot.caption
    batch_only = latency_plot(wide_comparison(), wide_samples(), colours(wide_comparison()))
    assert "one request at a time" not in batch_only.caption and "Batch wall time" in batch_only.caption


def test_plots_readable_at_six_variants_by_ten_metrics() -> None:
    plots = {p.name: p for p in make_plots(wide_comparison(), wide_samples())}
    assert set(plots) == {"quality_vs_cost", "latency", "deltas"}
    width, height = (int.from_bytes(plots["deltas"].png[16 + 4 * k : 20 + 4 * k], "big") for k in range(2))
    assert width <= 1280 and height <= 1600  # two panels a row: fits a laptop screen's width


def test_scorecard_and_metric_tables_in_declared_order() -> None:
    comparison = wide_comparison()
    card = scorecard_html(comparison)
    assert re.findall(r'<tr data-variant="([^"]+)">', card) == SHOWN
    assert "<th>accuracy[category]</th>" in card and "<0.001" not in card  # escaped
    assert "&lt;0.001" in card and "0.830 [0.780, 0.880]" in card  # 3 decimals
    assert '<td class="note">baseline</td>' in card
    detail = detail_html(comparison)
    assert detail.count('<details class="metric"') == len(METRICS)
    assert "accuracy[category] (primary)" in detail
    assert "Flips \u2192wrong / \u2192right" in detail and "3 / 11" in detail


def test_report_orders_decision_then_scorecard(tmp_path: Path) -> None:
    decision = {
        "decision": {"recommendation": "Ship rag.", "rule": "r", "ship": "rag", "targets": [], "evidence": ["e1"]},
        "error": None,
    }
    text = write_html_report(wide_comparison(), wide_samples(), tmp_path, decision).read_text()
    assert text.index('id="decision"') < text.index('id="scorecard"') < text.index('id="comparison"')
    assert '<details id="decision-evidence"><summary>Evidence (1)</summary>' in text  # folded


@pytest.mark.parametrize("name", ["a$b$", "<x>"])
def test_awkward_variant_names(name: str, tmp_path: Path) -> None:
    comparison = wide_comparison()
    comparison["rows"][1]["variant"] = name
    comparison["variant_order"] = [name if v == "prompted" else v for v in DECLARED]
    text = write_html_report(comparison, {}, tmp_path).read_text()
    assert "<x>" not in text.split("<body>")[1]
