"""Metrics: a registry by name, and the small base class every metric implements.

A metric turns each sample into a row of sufficient statistics (`stats`), shows one number per sample
(`per_sample`, NaN where undefined) and reduces any subset of rows to one value (`aggregate`). Mean
metrics aggregate by averaging; corpus metrics (BLEU, chrF, macro-F1) by summing statistics. Because
every aggregate is a function of rows, the bootstrap resamples rows the same way for every metric.

Register a new metric with `@register_metric`; it is then usable by name from suite.toml.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from harness.core.errors import ConfigError, UnknownNameError, did_you_mean
from harness.scoring.metrics.base import METRICS, MeanMetric, Metric, MetricContext, MetricInput, register_metric

__all__ = [
    "METRICS",
    "MeanMetric",
    "Metric",
    "MetricContext",
    "MetricInput",
    "available_metrics",
    "check_judge_keys",
    "check_metric_specs",
    "metric_class",
    "metric_headings",
    "register_metric",
]

if TYPE_CHECKING:
    from harness.config.settings import MetricSpec, SuiteConfig


def _load_builtins() -> None:
    from harness.scoring.metrics import builtin, judge, retrieval, tools  # noqa: F401  (registers on import)


def metric_class(name: str, where: str = "") -> type[Metric]:
    _load_builtins()
    if name not in METRICS:
        raise UnknownNameError(f"unknown metric '{name}'", where, did_you_mean(name, METRICS))
    return METRICS[name]


def available_metrics() -> dict[str, type[Metric]]:
    _load_builtins()
    return dict(sorted(METRICS.items()))


def metric_headings(keys: Iterable[str], labels: Iterable[str | None], label_field: str = "label") -> dict[str, str]:
    """The column name of each metric key, saying what a label metric compared with: `accuracy(label)`
    when every item carries a gold label (named by the data's label field, e.g. `accuracy(category)`),
    `accuracy(reference)` when none does, `accuracy(label or reference)` when only some do. Field
    metrics (`accuracy[category]`) and the other metrics already say it: their key is their name."""
    _load_builtins()
    labelled = [label is not None for label in labels]
    if labelled and all(labelled):
        against = label_field
    elif any(labelled):
        against = f"{label_field} or reference"
    else:
        against = "reference"
    headings = {}
    for key in keys:
        cls = METRICS.get(key)  # a field metric's key, "name[field]", is no registered name
        headings[key] = f"{key}({against})" if cls is not None and cls.scores_label else key
    return headings


def check_metric_specs(specs: Sequence[MetricSpec], config: SuiteConfig, where: str) -> None:
    """Fail at load time for unknown metrics, missing settings, or duplicate metric columns."""
    seen: set[str] = set()
    for spec in specs:
        cls = metric_class(spec.name, f"{where} metrics")
        if spec.key in seen:
            raise ConfigError(f"metric '{spec.key}' is listed twice", f"{where} metrics", "remove one")
        seen.add(spec.key)
        if cls.needs == "schema" and config.output.schema is None:
            raise ConfigError(f"metric '{spec.name}' needs a JSON schema", f"{where} [output]", "add schema = ...")
        if cls.needs == "pattern" and not config.output.pattern:
            raise ConfigError(f"metric '{spec.name}' needs a pattern", f"{where} [output]", "add pattern = '...'")
        if spec.field and cls.needs == "tools":
            raise ConfigError(
                f"metric '{spec.key}' scores a field, but tool metrics score the whole call",
                f"{where} metrics",
                f'write "{spec.name}" alone',
            )
        if spec.field and config.answer.extract != "json":
            raise ConfigError(f"metric '{spec.key}' scores a JSON field", f"{where} [answer]", "set extract = 'json'")
        check_judge_keys(spec, f"{where} metrics")


def check_judge_keys(spec: MetricSpec, where: str) -> None:
    """`rubric`, `judge` and `judge_self` belong to the judge metric, which needs the first two; whether
    `judge` names a declared variant is checked when a run is planned (a run config may declare it)."""
    from harness.config.settings import JUDGE_METRIC

    example = '{ name = "judge", rubric = "...", judge = "VARIANT" }'
    if spec.name != JUDGE_METRIC:
        extra = [key for key in ("rubric", "judge", "judge_self") if getattr(spec, key) is not None]
        if extra:
            raise ConfigError(
                f"metric '{spec.key}' has key '{extra[0]}', which only the judge metric takes",
                where,
                f"remove it, or grade with {example}",
            )
        return
    if spec.field is not None:
        raise ConfigError("the judge metric grades the whole output, not a field", where, "remove field")
    if not spec.judge or not spec.judge.strip():
        raise ConfigError("the judge metric names no judge variant", where, f"add judge = 'VARIANT': {example}")
    if not spec.rubric or not spec.rubric.strip():
        raise ConfigError("the judge metric has no rubric", where, f"add rubric = 'what a 5 and a 1 mean': {example}")
