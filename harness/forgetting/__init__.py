"""Forgetting checks: general benchmarks (MMLU, HellaSwag, any lm-eval task) on the base weights and on
each variant's own weights, item by item, with a paired comparison against base and a budget.

Forgetting is a property of weights: a variant is measured on the weights that answer for it (base,
prompted and rag share the base weights; finetuned and hybrid carry their adapter). lm-eval's prompts are
used as lm-eval writes them, with no system prompt, few-shot block or retrieval of the variant.
This module stays light (no lm-eval import) so suites can be read without it.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.config.parse import ranged


@dataclass(frozen=True)
class ForgettingSettings:
    """[forgetting] in suite.toml; `harness run --forgetting ...` overrides it."""

    tasks: tuple[str, ...] = ()  # benchmark names: mmlu, hellaswag, or any lm-eval task/group
    limit: int | None = ranged(
        None, 1, example="200"
    )  # items per benchmark (stratified by subject for MMLU); default all
    # accuracy points (0-100) a variant may lose against base before the run fails
    max_drop: float | None = ranged(None, 0, 100, example="2.0")
    bench_data: str | None = None  # local benchmark data (also HARNESS_BENCH_DATA)
    seed: int = ranged(0, 0, example="0")  # which items a --limit draws; the same for every variant
    num_fewshot: int | None = ranged(
        None, 0, 1000, example="0"
    )  # default: each task's own (0 for lm-eval's mmlu and hellaswag)
    bootstrap: int = ranged(
        2000, 0, 100_000, example="2000"
    )  # bootstrap resamples for the intervals of metrics that are not 0/1 per item

    @property
    def enabled(self) -> bool:
        return bool(self.tasks)


EXIT_FORGETTING_FAILED = 1  # `harness run` exit status when a forgetting budget is exceeded significantly
