"""Retrieval metrics, for variants that retrieve and items that carry gold `doc_ids`. Rankings are over
documents: the retrieved chunks' document ids in rank order, duplicates dropped; k is the number of
chunks retrieved. A sample without retrieval or without gold ids is undefined (NaN), never a zero."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.scoring.metrics.base import MeanMetric, MetricInput, register_metric

# [doc-id] citations: an id-like token in square brackets (no spaces or quotes, so JSON arrays don't count)
CITATION = re.compile(r"\[([A-Za-z0-9][\w.\-/#:]*)\]")
RETRIEVAL_METRICS = ("recall@k", "mrr", "ndcg@k", "citation_accuracy")


def ranked_documents(retrieved: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(retrieved))


class _RetrievalMetric(MeanMetric):
    def stats(self, inputs: Sequence[MetricInput], cache: dict[str, Any]) -> np.ndarray:
        values = [self.value(i) if i.retrieved is not None and i.gold_docs else math.nan for i in inputs]
        return np.array(values, dtype=float).reshape(-1, 1)

    def value(self, sample: MetricInput) -> float:
        raise NotImplementedError


@register_metric("recall@k")
class RecallAtK(_RetrievalMetric):
    description = "share of gold documents among the retrieved ones (k = chunks retrieved)"

    def value(self, sample: MetricInput) -> float:
        gold = set(sample.gold_docs)
        return len(gold & set(sample.retrieved or ())) / len(gold)


@register_metric("mrr")
class MeanReciprocalRank(_RetrievalMetric):
    description = "1 / rank of the first gold document among the retrieved documents (0 if none)"

    def value(self, sample: MetricInput) -> float:
        gold = set(sample.gold_docs)
        ranking = ranked_documents(sample.retrieved or ())
        return next((1.0 / rank for rank, doc in enumerate(ranking, start=1) if doc in gold), 0.0)


@register_metric("ndcg@k")
class NdcgAtK(_RetrievalMetric):
    description = "nDCG of the retrieved documents with binary gold relevance"

    def value(self, sample: MetricInput) -> float:
        gold = set(sample.gold_docs)
        ranking = ranked_documents(sample.retrieved or ())
        dcg = sum(1.0 / math.log2(rank + 1) for rank, doc in enumerate(ranking, start=1) if doc in gold)
        ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(len(gold), len(sample.retrieved or ())) + 1))
        return dcg / ideal if ideal else 0.0


@register_metric("citation_accuracy")
class CitationAccuracy(MeanMetric):
    description = "share of [doc-id] citations in the output that name a gold document"

    def stats(self, inputs: Sequence[MetricInput], cache: dict[str, Any]) -> np.ndarray:
        values = []
        for sample in inputs:
            cited = CITATION.findall(sample.output)
            values.append(
                sum(c in sample.gold_docs for c in cited) / len(cited) if cited and sample.gold_docs else math.nan
            )
        return np.array(values, dtype=float).reshape(-1, 1)
