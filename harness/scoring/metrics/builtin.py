"""The built-in metrics. Each compares the extracted answer with the reference, accuracy and macro_f1
with the item's gold label where it carries one (their columns say which), except the format metrics,
which look at the raw output."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Any

import numpy as np

from harness.scoring.answers import parse_json_output
from harness.scoring.metrics.base import MeanMetric, Metric, MetricInput, register_metric

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_text(text: str) -> str:
    """SQuAD normalization: lowercase, drop punctuation and articles, fold whitespace."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def normalize_label(text: str) -> str:
    return text.strip().casefold()


@register_metric("exact_match")
class ExactMatch(MeanMetric):
    description = "answer equals reference after SQuAD normalization (case, punctuation, articles, spaces)"

    def stats(self, inputs: Sequence[MetricInput], cache: dict[str, Any]) -> np.ndarray:
        return _column(i.answered and normalize_text(i.answer) == normalize_text(i.reference) for i in inputs)


@register_metric("accuracy")
class Accuracy(MeanMetric):
    description = "answer equals the item's gold label, else its reference (case-insensitive): column accuracy(label) or accuracy(reference)"
    scores_label = True

    def stats(self, inputs: Sequence[MetricInput], cache: dict[str, Any]) -> np.ndarray:
        return _column(i.answered and normalize_label(i.answer) == normalize_label(i.label) for i in inputs)


@register_metric("macro_f1")
class MacroF1(Metric):
    """Macro-averaged F1 over the gold label set (scikit-learn's f1_score with labels = gold labels).

    Answers outside the gold label set count as misses; they do not add classes, so free-text garbage
    cannot dilute the average. Rows are (gold class index, predicted class index or -1)."""

    description = "macro-averaged F1 over the gold labels, else the references (corpus-level): column macro_f1(label) or (reference)"
    scores_label = True
    corpus_level = True
    chunkable = False  # class indices are numbered over the whole set

    def stats(self, inputs: Sequence[MetricInput], cache: dict[str, Any]) -> np.ndarray:
        classes = {label: index for index, label in enumerate(sorted({normalize_label(i.label) for i in inputs}))}
        gold = [classes[normalize_label(i.label)] for i in inputs]
        pred = [classes.get(normalize_label(i.answer), -1) if i.answered else -1 for i in inputs]
        return np.array([gold, pred], dtype=float).T.reshape(-1, 2)

    def per_sample(self, stats: np.ndarray) -> np.ndarray:
        return np.full(len(stats), np.nan)  # F1 is defined over a set, not one sample

    def aggregate(self, stats: np.ndarray) -> float:
        return float(self.aggregate_resamples(stats, np.arange(len(stats))[None, :])[0])

    def aggregate_resamples(self, stats: np.ndarray, indices: np.ndarray) -> np.ndarray:
        gold, pred = stats[:, 0].astype(int), stats[:, 1].astype(int)
        n_classes = gold.max() + 1 if gold.size else 0
        # counts[b, i] = how often row i is drawn in resample b
        counts = np.zeros((indices.shape[0], len(stats)))
        np.add.at(counts, (np.arange(indices.shape[0])[:, None], indices), 1)
        f1_sum = np.zeros(indices.shape[0])
        present = np.zeros(indices.shape[0])
        for c in range(n_classes):
            is_gold, is_pred = gold == c, pred == c
            tp = counts @ (is_gold & is_pred)
            fp = counts @ (~is_gold & is_pred)
            fn = counts @ (is_gold & ~is_pred)
            support = tp + fn
            denominator = 2 * tp + fp + fn
            f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
            f1_sum += np.where(support > 0, f1, 0.0)
            present += support > 0
        return np.divide(f1_sum, present, out=np.full_like(f1_sum, np.nan), where=present > 0)


@register_metric("token_f1")
class TokenF1(MeanMetric):
    description = "SQuAD token-overlap F1 between normalized answer and reference"

    def stats(self, inputs: Sequence[MetricInput], cache: dict[str, Any]) -> np.ndarray:
        return _column(token_f1(i.answer, i.reference) if i.answered else 0.0 for i in inputs)


def token_f1(answer: str, reference: str) -> float:
    predicted, gold = normalize_text(answer).split(), normalize_text(reference).split()
    if not predicted or not gold:
        return float(predicted == gold)
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


class _SacreMetric(Metric):
    """sacrebleu metrics: per-sentence statistics once, then corpus scores from summed statistics
    (what sacrebleu's own significance tests do), so bootstrap resamples cost one sum each."""

    corpus_level = True

    def _scorers(self) -> tuple[Any, Any]:
        raise NotImplementedError

    def stats(self, inputs: Sequence[MetricInput], cache: dict[str, Any]) -> np.ndarray:
        corpus, _ = self._scorers()
        if not inputs:
            return np.zeros((0, 1))
        rows = corpus._extract_corpus_statistics([i.answer for i in inputs], [[i.reference for i in inputs]])
        return np.array(rows, dtype=float).reshape(len(inputs), -1)

    def per_sample(self, stats: np.ndarray) -> np.ndarray:
        _, sentence = self._scorers()
        return np.array([sentence._compute_score_from_stats(list(row)).score for row in stats.astype(int)])

    def aggregate(self, stats: np.ndarray) -> float:
        if not len(stats):
            return float("nan")
        corpus, _ = self._scorers()
        return float(corpus._compute_score_from_stats(list(stats.sum(axis=0).astype(int))).score)

    def aggregate_resamples(self, stats: np.ndarray, indices: np.ndarray) -> np.ndarray:
        corpus, _ = self._scorers()
        totals = np.stack([stats[row].sum(axis=0) for row in indices]).astype(int)
        return np.array([corpus._compute_score_from_stats(list(t)).score for t in totals])


@register_metric("bleu")
class Bleu(_SacreMetric):
    description = "sacrebleu BLEU (0-100): corpus-level; per sample with effective order"

    def _scorers(self) -> tuple[Any, Any]:
        return _sacre("bleu")


@register_metric("chrf")
class Chrf(_SacreMetric):
    description = "sacrebleu chrF (0-100): corpus-level, and per sample"

    def _scorers(self) -> tuple[Any, Any]:
        return _sacre("chrf")


@cache
def _sacre(kind: str) -> tuple[Any, Any]:
    from sacrebleu.metrics import BLEU, CHRF

    if kind == "bleu":
        return BLEU(), BLEU(effective_order=True)
    return CHRF(), CHRF()


class _Rouge(MeanMetric):
    rouge_type = ""

    def stats(self, inputs: Sequence[MetricInput], cache: dict[str, Any]) -> np.ndarray:
        # One scorer pass computes all three ROUGE types; the other two metrics reuse it from the cache.
        if "rouge" not in cache:
            scorer = _rouge_scorer()
            scores = [scorer.score(i.reference, i.answer) for i in inputs]
            cache["rouge"] = {t: _column(s[t].fmeasure for s in scores) for t in ("rouge1", "rouge2", "rougeL")}
        return cache["rouge"][self.rouge_type]


@register_metric("rouge1")
class Rouge1(_Rouge):
    description = "rouge-score ROUGE-1 F-measure (with stemming)"
    rouge_type = "rouge1"


@register_metric("rouge2")
class Rouge2(_Rouge):
    description = "rouge-score ROUGE-2 F-measure (with stemming)"
    rouge_type = "rouge2"


@register_metric("rougeL")
class RougeL(_Rouge):
    description = "rouge-score ROUGE-L F-measure (with stemming)"
    rouge_type = "rougeL"


class _CachedStemmer:
    """Porter stemming is most of rouge-score's time, and texts repeat words: remember each stem."""

    def __init__(self, stemmer: Any) -> None:
        self.stem = lru_cache(maxsize=200_000)(stemmer.stem)


@cache
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer, tokenizers

    tokenizer = tokenizers.DefaultTokenizer(use_stemmer=True)
    if getattr(tokenizer, "_stemmer", None) is not None:
        tokenizer._stemmer = _CachedStemmer(tokenizer._stemmer)
    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=tokenizer)


@register_metric("json_valid")
class JsonValid(MeanMetric):
    description = "the output (or one markdown code fence around it) parses as JSON"

    def stats(self, inputs: Sequence[MetricInput], cache: dict[str, Any]) -> np.ndarray:
        return _column(parse_json_output(i.output)[0] for i in inputs)


@register_metric("json_schema")
class JsonSchema(MeanMetric):
    description = "the output parses as JSON and validates against the suite's [output] schema"
    needs = "schema"

    def stats(self, inputs: Sequence[MetricInput], cache: dict[str, Any]) -> np.ndarray:
        import jsonschema

        validator = jsonschema.Draft202012Validator(self.context.schema or {})

        def valid(output: str) -> bool:
            ok, value = parse_json_output(output)
            return ok and validator.is_valid(value)

        return _column(valid(i.output) for i in inputs)


@register_metric("regex_match")
class RegexMatch(MeanMetric):
    description = "the whole output (stripped) matches the suite's [output] pattern"
    needs = "pattern"

    def stats(self, inputs: Sequence[MetricInput], cache: dict[str, Any]) -> np.ndarray:
        pattern = re.compile(self.context.pattern or "", re.S)
        return _column(pattern.fullmatch(i.output.strip()) is not None for i in inputs)


@register_metric("output_length")
class OutputLength(MeanMetric):
    description = "output length in whitespace-separated words"
    higher_is_better = None

    def stats(self, inputs: Sequence[MetricInput], cache: dict[str, Any]) -> np.ndarray:
        return _column(len(i.output.split()) for i in inputs)


def _column(values: Any) -> np.ndarray:
    return np.fromiter((float(v) for v in values), dtype=float).reshape(-1, 1)
