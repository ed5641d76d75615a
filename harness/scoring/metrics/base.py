"""What every metric is built from: the sample a metric sees, its settings, the base classes and the registry.

Built-in metrics (builtin.py, retrieval.py, judge.py, tools.py) and users' metrics register here;
`harness.scoring.metrics` looks names up after loading the built-ins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from harness.core.types import Tool


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
    judge: float | None = None  # the judge variant's 1-5 grade of this output (harness.run.judge), if any
    tools: tuple[Tool, ...] = ()  # the functions the item offered the model (the tool metrics' schemas)
    # The reference as the item holds it, before [answer] extraction (None: `reference`): the tool metrics
    # read the gold calls from it, which extraction (a first line, a regex) would cut apart.
    raw_reference: str | None = None


@dataclass(frozen=True)
class MetricContext:
    """Suite settings some metrics need: the output JSON schema and the output regex."""

    schema: dict[str, Any] | None = None
    pattern: str | None = None


class Metric:
    name: ClassVar[str]
    description: ClassVar[str] = ""
    higher_is_better: ClassVar[bool | None] = True  # None: informational, never gated
    # "schema" or "pattern": a suite setting the metric requires (checked at load); "tools": the items' tools,
    # which the load-time check, seeing only the config, leaves alone
    needs: ClassVar[str | None] = None
    corpus_level: ClassVar[bool] = False  # the aggregate is not the mean of per-sample values
    chunkable: ClassVar[bool] = True  # a sample's stats row depends on that sample alone
    # Without a field, compares with the item's gold label where it has one, else its reference: the
    # column then says which (metric_headings), since "accuracy" alone would not.
    scores_label: ClassVar[bool] = False
    # None: a proportion (Wilson's interval) when every per-sample value is 0 or 1; False: never, as for a
    # 1-5 grade, whose values may all happen to be 1 (harness.scoring.scores)
    proportion: ClassVar[bool | None] = None

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
