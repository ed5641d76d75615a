"""Length, context and size checks: near-empty inputs, length outliers, items over the token budget,
and how many examples fine-tuning and a confidence interval want.

`Limits` are the token budgets (from a suite's config, or the command line); token counts are measured
with a tokenizer, or estimated at four characters a token (`estimate_tokens`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.datacheck.findings import Findings, Severity
from harness.datacheck.pool import Pool

LORA_MIN, LORA_COMFORTABLE, FULL_FINETUNE_MIN = 50, 100, 500
OUTLIER_IQRS = 5.0  # a length beyond median + 5 * IQR is an outlier


@dataclass(frozen=True)
class Limits:
    """How many tokens an eval prompt and a training example may have, and why."""

    eval_tokens: int
    train_tokens: int
    eval_reason: str
    train_reason: str


def estimate_tokens(texts: list[str]) -> np.ndarray:
    return np.fromiter(((len(text) + 3) // 4 for text in texts), dtype=np.int64, count=len(texts))


def length_checks(pool: Pool, limits: Limits, measured: bool, out: Findings) -> None:
    """Near-empty inputs, length outliers (median + 5 IQR) and items beyond the context."""
    for record in pool.records:
        if len(record.input.strip()) < 3:
            out.add(
                "warning",
                "near_empty",
                f"input is only {record.input.strip()!r}",
                record.where,
                "check the record: there is next to nothing to answer",
            )
    unit = "tokens" if measured else "tokens (estimated)"
    for part, counts in (("input", pool.tokens_in), ("output", pool.tokens_out)):
        if len(counts) < 8:
            continue
        low, median, high = np.percentile(counts, [25, 50, 75])
        cutoff = median + OUTLIER_IQRS * max(high - low, 1.0)
        for index in np.flatnonzero(counts > cutoff)[:1000]:
            out.add(
                "warning",
                "length_outlier",
                f"{part} of {counts[index]} {unit}, far above the typical {median:.0f} (cutoff {cutoff:.0f})",
                pool.records[index].where,
                "check for pasted logs, concatenated records or a runaway output",
            )
    context_checks(pool, limits, measured, out)


def context_checks(pool: Pool, limits: Limits, measured: bool, out: Findings) -> None:
    evaluating = pool.role == "eval"
    budget = limits.eval_tokens if evaluating else limits.train_tokens
    totals = pool.tokens_in if evaluating else pool.tokens_in + pool.tokens_out
    severity: Severity = "error" if evaluating and measured else "warning"
    sign = "" if measured else "~"
    over = np.flatnonzero(totals > budget)
    if len(over) > 1000:  # counted, not worded: only the first MAX_PER_KIND are listed anyway
        out.add_unlisted(severity, "too_long", pool.file, len(over) - 1000)
    for index in over[:1000]:
        if evaluating:
            message = f"prompt of {sign}{totals[index]} tokens is over the {budget}-token budget ({limits.eval_reason})"
            fix = "shorten it, or raise [engine] max_model_len (or --max-len)"
        else:
            message = (
                f"example of {sign}{totals[index]} tokens is over {budget} ({limits.train_reason}): it gets truncated"
            )
            fix = "shorten it or drop it: truncation can cut off the answer the model should learn"
        out.add(severity, "too_long", message, pool.records[index].where, fix)


def size_guidance(pool: Pool, out: Findings) -> None:
    """How many examples the fine-tuning guides want; how wide an eval set's confidence intervals are."""
    n = len(pool.records)
    if pool.role == "train":
        if n < LORA_MIN:
            out.add(
                "warning",
                "too_few_for_lora",
                f"{n} training examples: too few for LoRA (the guides want {LORA_MIN}-{LORA_COMFORTABLE}+)",
                pool.file,
                "collect more, or prefer few-shot prompting or RAG",
                pool.file,
            )
        elif n < LORA_COMFORTABLE:
            out.add(
                "info",
                "few_for_lora",
                f"{n} training examples: enough to try LoRA; {LORA_COMFORTABLE}+ is safer",
                pool.file,
                "",
                pool.file,
            )
        if LORA_MIN <= n < FULL_FINETUNE_MIN:
            out.add(
                "info",
                "small_for_full_finetune",
                f"{n} training examples: full fine-tuning usually wants {FULL_FINETUNE_MIN}+",
                pool.file,
                "prefer LoRA at this size",
                pool.file,
            )
    elif pool.role == "eval" and 0 < n < 100:
        half = 100 * 1.96 * math.sqrt(0.25 / n)
        out.add(
            "info",
            "small_eval",
            f"{n} eval items: an accuracy near 50% has a 95% CI of about +/-{half:.0f} points",
            pool.file,
            "add items to tell variants apart",
            pool.file,
        )


def suite_limits(config: Any, max_len: int | None = None) -> Limits:
    """Token budgets from a SuiteConfig: [engine] max_model_len minus [generation] max_tokens for eval
    prompts; for training examples the same context, capped by `harness finetune`'s max_length."""
    from harness.finetune import FinetuneConfig

    context = max_len or config.engine.max_model_len
    source = "--max-len" if max_len else "max_model_len"
    max_tokens = config.generation.max_tokens
    train = FinetuneConfig().max_length
    return Limits(
        context - max_tokens,
        min(context, train),
        f"{source} {context} - max_tokens {max_tokens}",
        f"harness finetune max_length {train}" if train < context else f"{source} {context}",
    )
