"""Scoring: per-sample metric values and aggregates with 95% confidence intervals.

A metric whose every defined per-sample value is 0 or 1 is a proportion and gets Wilson's score interval
(it does not collapse at 0 or 1), unless it says it never is one (the judge's 1-5 grades). Corpus-level and continuous metrics get a seeded percentile bootstrap;
all of one variant's share the same resamples (rows drawn with one seed), so their intervals are computed
over the same pseudo-datasets, and re-scoring a run gives identical numbers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.config.settings import MetricSpec
from harness.core.types import Tool
from harness.scoring.answers import Answer, Extractor
from harness.scoring.intervals import binary_wilson, percentile_interval
from harness.scoring.metrics import Metric, MetricContext, MetricInput, metric_class

# Below this many samples, starting worker processes costs more than it saves.
PARALLEL_MIN_SAMPLES = 2000


@dataclass(frozen=True)
class MetricSummary:
    value: float
    ci_low: float | None
    ci_high: float | None
    n: int
    higher_is_better: bool | None
    interval: str | None = None  # how ci_low/ci_high were found: "wilson" or "bootstrap"

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": _finite(self.value),
            "ci_low": _finite(self.ci_low),
            "ci_high": _finite(self.ci_high),
            "interval": self.interval,
            "n": self.n,
            "higher_is_better": self.higher_is_better,
        }


@dataclass(frozen=True)
class Scores:
    """Per-sample values (None where a metric is undefined for one sample) and per-metric summaries."""

    per_sample: dict[str, list[float | None]]
    summary: dict[str, MetricSummary]


@dataclass(frozen=True)
class ScoringSample:
    """What scoring needs from one generated sample."""

    output: str
    reference: str
    label: str | None = None
    retrieved: tuple[str, ...] | None = None  # document ids a retrieving variant put in the prompt
    gold_docs: tuple[str, ...] = ()
    judge: float | None = None  # the judge variant's grade (harness.run.judge); None: none, or unparsed
    tools: tuple[Tool, ...] = ()  # the functions the item offered (harness.scoring.metrics.tools)


def extract_answers(samples: Sequence[ScoringSample], extractor: Extractor) -> list[tuple[Answer, Answer]]:
    """(answer, reference answer) per sample."""
    return [(extractor(s.output), extractor.reference(s.reference)) for s in samples]


def score(
    samples: Sequence[ScoringSample],
    specs: Sequence[MetricSpec],
    extractor: Extractor,
    context: MetricContext = MetricContext(),
    bootstrap: int = 1000,
    seed: int = 0,
) -> tuple[Scores, list[Answer]]:
    """Score one variant's samples with every metric; returns the scores and the extracted answers."""
    answers = extract_answers(samples, extractor)
    n = len(samples)
    indices = bootstrap_indices(n, bootstrap, seed)
    metrics = {spec.key: metric_class(spec.name)(context) for spec in specs}
    inputs = {
        field: [_metric_input(s, a, r, field) for s, (a, r) in zip(samples, answers)]
        for field in dict.fromkeys(spec.field for spec in specs)
    }
    stats = compute_stats(specs, metrics, inputs)
    per_sample: dict[str, list[float | None]] = {}
    summary: dict[str, MetricSummary] = {}
    for spec in specs:
        metric, rows = metrics[spec.key], stats[spec.key]
        values = metric.per_sample(rows)
        per_sample[spec.key] = [None if math.isnan(v) else float(v) for v in values]
        defined = n if metric.corpus_level else int((~np.isnan(values)).sum())
        low, high, interval = _interval(metric, rows, values, indices)
        summary[spec.key] = MetricSummary(metric.aggregate(rows), low, high, defined, metric.higher_is_better, interval)
    return Scores(per_sample, summary), [a for a, _ in answers]


def _interval(
    metric: Metric, rows: np.ndarray, values: np.ndarray, indices: np.ndarray | None
) -> tuple[float | None, float | None, str | None]:
    """Wilson for a proportion (a mean of 0/1 values), else the percentile bootstrap (None without resamples)."""
    bounds = None if metric.corpus_level or metric.proportion is False else binary_wilson(values)
    if bounds is not None:
        return bounds[0], bounds[1], "wilson"
    if indices is None:
        return None, None, None
    bounds = percentile_interval(metric.aggregate_resamples(rows, indices))
    if bounds is None:
        return None, None, None
    return bounds[0], bounds[1], "bootstrap"


def compute_stats(
    specs: Sequence[MetricSpec], metrics: dict[str, Metric], inputs: dict[str | None, list[MetricInput]]
) -> dict[str, np.ndarray]:
    """Every metric's per-sample statistics. Large sets are split into chunks scored in worker
    processes (the text metrics are pure Python); metrics whose rows depend on the whole set stay here."""
    stats: dict[str, np.ndarray] = {}
    for field, field_inputs in inputs.items():
        keys = [spec.key for spec in specs if spec.field == field]
        chunked = [k for k in keys if metrics[k].chunkable]
        workers = _worker_count(len(field_inputs)) if chunked else 1
        if workers > 1:
            stats.update(_stats_in_workers({k: metrics[k] for k in chunked}, field_inputs, workers))
        cache: dict[str, Any] = {}
        for key in keys:
            if key not in stats:
                stats[key] = metrics[key].stats(field_inputs, cache)
    return stats


# What forked workers read: set just before the fork, so metrics and inputs are inherited, never pickled.
_FORK_JOB: tuple[dict[str, Metric], list[MetricInput]] | None = None


def _stats_in_workers(metrics: dict[str, Metric], inputs: list[MetricInput], workers: int) -> dict[str, np.ndarray]:
    import multiprocessing

    global _FORK_JOB
    size = -(-len(inputs) // workers)
    bounds = [(start, min(start + size, len(inputs))) for start in range(0, len(inputs), size)]
    _FORK_JOB = (metrics, inputs)
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_chunk_stats, bounds)
    finally:
        _FORK_JOB = None
    return {key: np.concatenate([part[key] for part in parts]) for key in metrics}


def _chunk_stats(bounds: tuple[int, int]) -> dict[str, np.ndarray]:
    assert _FORK_JOB is not None
    metrics, inputs = _FORK_JOB
    chunk = inputs[bounds[0] : bounds[1]]
    cache: dict[str, Any] = {}
    return {key: metric.stats(chunk, cache) for key, metric in metrics.items()}


def _worker_count(n: int) -> int:
    import multiprocessing
    import os

    if n < PARALLEL_MIN_SAMPLES or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8))


def bootstrap_indices(n: int, resamples: int, seed: int) -> np.ndarray | None:
    """(resamples, n) row indices drawn with replacement; None when there is nothing to resample."""
    if resamples <= 0 or n < 2:
        return None
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _metric_input(sample: ScoringSample, answer: Answer, reference: Answer, field: str | None) -> MetricInput:
    extra = {
        "retrieved": sample.retrieved,
        "gold_docs": sample.gold_docs,
        "judge": sample.judge,
        "tools": sample.tools,
        "raw_reference": sample.reference,
    }
    if field is None:
        label = sample.label if sample.label is not None else reference.text
        return MetricInput(sample.output, answer.text, reference.text, label, answered=bool(answer.text), **extra)
    # A field metric compares one key of the JSON answer with the same key of the JSON reference.
    gold = _field_text(reference.value, field)
    answered = isinstance(answer.value, dict) and field in answer.value
    return MetricInput(sample.output, _field_text(answer.value, field), gold, gold, answered=answered, **extra)


def _field_text(value: Any, field: str) -> str:
    if not isinstance(value, dict) or field not in value:
        return ""
    inner = value[field]
    return inner if isinstance(inner, str) else json.dumps(inner, sort_keys=True, ensure_ascii=False)


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value
