"""Metrics: a registry by name, and the small base class every metric implements.

A metric turns each sample into a row of sufficient statistics (`stats`), shows one number per sample
(`per_sample`, NaN where undefined) and reduces any subset of rows to one value (`aggregate`). Mean
metrics aggregate by averaging; corpus metrics (BLEU, chrF, macro-F1) by summing statistics. Because
every aggregate is a function of rows, the bootstrap resamples rows the same way for every metric.

Register a new metric with `@register_metric`; it is then usable by name from suite.toml.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from harness.core.errors import ConfigError, UnknownNameError, did_you_mean

if TYPE_CHECKING:
    from harness.suite.load import MetricSpec, SuiteConfig


@dataclass(frozen=True)
class MetricInput:
    """One sample as metrics see it. `label` is the gold label (the reference when items carry none)."""

    output: str
    answer: str
    reference: str
    label: str
    retrieved: tuple[str, ...] | None = None  # document ids of the retrieved chunks, in rank order
    gold_docs: tuple[str, ...] = ()
    # False when nothing was extracted (no JSON, no regex match, no such JSON key, an empty output): such an
    # answer reads as "" and must never match, not even a reference that normalizes to "" too.
    answered: bool = True


@dataclass(frozen=True)
class MetricContext:
    """Suite settings some metrics need: the output JSON schema and the output regex."""

    schema: dict[str, Any] | None = None
    pattern: str | None = None


class Metric:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    higher_is_better: ClassVar[bool | None] = True  # None: informational, never gated
    needs: ClassVar[str | None] = None  # "schema" or "pattern": a suite setting the metric requires
    corpus_level: ClassVar[bool] = False  # the aggregate is not the mean of per-sample values
    chunkable: ClassVar[bool] = True  # a sample's stats row depends on that sample alone
    # Without a field, compares with the item's gold label where it has one, else its reference: the
    # column then says which (metric_headings), since "accuracy" alone would not.
    scores_label: ClassVar[bool] = False

    def __init__(self, context: MetricContext = MetricContext()) -> None:
        self.context = context

    def stats(self, inputs: Sequence[MetricInput], cache: dict[str, Any]) -> np.ndarray:
        """Per-sample sufficient statistics, shape (n, k). `cache` is shared by the metrics of one pass."""
        raise NotImplementedError

    def per_sample(self, stats: np.ndarray) -> np.ndarray:
        return stats[:, 0]

    def aggregate(self, stats: np.ndarray) -> float:
        column = stats[:, 0]
        column = column[~np.isnan(column)]
        return float(column.mean()) if column.size else float("nan")

    def aggregate_resamples(self, stats: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """The aggregate over each row of `indices` (shape (B, n)); override when vectorizable."""
        return np.array([self.aggregate(stats[row]) for row in indices])


class MeanMetric(Metric):
    """A metric whose aggregate is the mean of one per-sample value."""

    def aggregate_resamples(self, stats: np.ndarray, indices: np.ndarray) -> np.ndarray:
        values = stats[:, 0][indices]
        if not np.isnan(values).any():
            return values.mean(axis=1)
        defined = ~np.isnan(values)
        counts = defined.sum(axis=1)
        sums = np.where(defined, values, 0.0).sum(axis=1)
        return np.divide(sums, counts, out=np.full(len(values), np.nan), where=counts > 0)


METRICS: dict[str, type[Metric]] = {}


def register_metric(name: str) -> Callable[[type[Metric]], type[Metric]]:
    def decorate(cls: type[Metric]) -> type[Metric]:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is registered twice")
        cls.name = name
        METRICS[name] = cls
        return cls

    return decorate


def _load_builtins() -> None:
    from harness.scoring.metrics import builtin, retrieval  # noqa: F401  (registers on import)


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
        if spec.field and config.answer.extract != "json":
            raise ConfigError(f"metric '{spec.key}' scores a JSON field", f"{where} [answer]", "set extract = 'json'")
