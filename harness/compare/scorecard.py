"""The headline of a comparison: one row per variant, in the suite's declared order, on the primary metric,
with its paired delta, cost per 1k queries, p95 latency and forgetting status. report.md, report.html and
the terminal all render these rows, with the one set of formatters below."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# A comparison cell's keys (compare_run writes them, the CSV and the reports read them): the metric's own
# summary, then the paired test against the baseline.
SUMMARY_KEYS = ("value", "ci_low", "ci_high", "interval", "n")
PAIRED_KEYS = ("delta", "delta_ci_low", "delta_ci_high", "p_value", "p_holm", "test", "significant", "mde")


@dataclass(frozen=True)
class ScoreRow:
    variant: str
    kind: str
    is_baseline: bool
    metric: str  # the primary metric
    value: float | None
    ci_low: float | None
    ci_high: float | None
    delta: float | None  # against the baseline, paired
    delta_ci_low: float | None
    delta_ci_high: float | None
    p_holm: float | None
    significant: bool | None
    cost_per_1k: float | None
    latency_p95_s: float | None
    latency_source: str  # "probe" (one request at a time) or "batch" (batch wall time per item)
    forgetting: str  # "pass", "over", "fail", "not checked", "same weights as base"


def fmt3(x: float | None, signed: bool = False) -> str:
    """3 decimals everywhere, "-" where there is no number."""
    if x is None:
        return "-"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def p_text(p: float | None) -> str:
    """A p value as a reader compares it with alpha: "<0.001" below what 3 decimals show."""
    return "-" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def fmt_cost(x: float | None) -> str:
    """Cost per 1k queries: 3 decimals, except where that would print 0.000 for a real (small) cost, as
    token prices per 1k queries often are; there 4 significant digits say how small it is."""
    if x is None:
        return "-"
    if x != 0 and abs(x) < 0.0005:
        return f"{x:.4g}"
    return f"{x:.3f}"


def fmt(value: float | None, signed: bool = False) -> str:
    return fmt3(value, signed)


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


def ordered_rows(comparison: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """comparison["rows"]: the baseline first (every delta is against it), then the others in the suite's
    declared order; comparisons written before "variant_order" existed keep their row order."""
    rows = list(comparison["rows"])
    order = [v for v in comparison.get("variant_order") or [] if any(r["variant"] == v for r in rows)]
    if not order:
        return rows
    rank = {v: i for i, v in enumerate(order)}
    baseline = comparison.get("baseline")
    return sorted(rows, key=lambda r: (r["variant"] != baseline, rank.get(r["variant"], len(rank))))


def latency_source(latency: Mapping[str, Any]) -> str:
    """ "probe" where the run measured one request at a time (--latency-probe), else "batch"."""
    return "probe" if str(latency.get("source", "")).startswith("one at a time") else "batch"


def forgetting_text(row: Mapping[str, Any]) -> str:
    """The forgetting status as `harness decide` words it, from the comparison row's benchmarks."""
    from harness.compare.decision import forgetting_status

    checked = [
        f
        for f in (row.get("forgetting") or {}).values()
        if f.get("weights") not in (None, "base") and (f.get("delta") is not None or f.get("status") is not None)
    ]
    return forgetting_status(str(row.get("kind", "?")), [f.get("status") for f in checked])


def scorecard(comparison: Mapping[str, Any]) -> list[ScoreRow]:
    """One row per variant, declared order, on comparison["primary_metric"]."""
    metric = comparison.get("primary_metric")
    found = []
    for row in ordered_rows(comparison):
        cell = (row.get("metrics") or {}).get(metric) or {}
        latency = row.get("latency") or {}
        found.append(
            ScoreRow(
                variant=row["variant"],
                kind=str(row.get("kind", "?")) + (f" ({row['setup']})" if row.get("setup") else ""),
                is_baseline=row["variant"] == comparison.get("baseline"),
                metric=str(metric or "-"),
                value=cell.get("value"),
                ci_low=cell.get("ci_low"),
                ci_high=cell.get("ci_high"),
                delta=cell.get("delta"),
                delta_ci_low=cell.get("delta_ci_low"),
                delta_ci_high=cell.get("delta_ci_high"),
                p_holm=cell.get("p_holm"),
                significant=cell.get("significant"),
                cost_per_1k=(row.get("cost") or {}).get("per_1k_queries"),
                latency_p95_s=latency.get("latency_s_p95"),
                latency_source=latency_source(latency),
                forgetting=forgetting_text(row),
            )
        )
    return found
