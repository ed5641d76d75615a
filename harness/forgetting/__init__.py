"""Forgetting checks: general benchmarks (MMLU, HellaSwag, any lm-eval task) on the base weights and on
each variant's own weights, item by item, with a paired comparison against base and a budget.

Forgetting is a property of weights: a variant is measured on the weights that answer for it (base,
prompted and rag share the base weights; finetuned and hybrid carry their adapter). lm-eval's prompts are
used as lm-eval writes them, with no system prompt, few-shot block or retrieval of the variant.
This module stays light (no lm-eval import) so suites can be read without it.

Modules: `tasks` (benchmark data as lm-eval tasks), `lm` (lm-eval's model interface over an engine), `check`
(running them), `result` (what they found, as data) and `report` (its run.json and markdown sections, which
harness.results writes without importing engine code). May import harness.variants and the layers below.
"""

from __future__ import annotations

EXIT_FORGETTING_FAILED = 1  # `harness run` exit status when a forgetting budget is exceeded significantly
