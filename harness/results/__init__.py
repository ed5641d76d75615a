"""Result directories (docs/results-format.md): writing `run.json`, samples and summaries (`write`) and
reading them back, typed, for compare, diff and history (`read`).

May import harness.forgetting (its report section), harness.scoring, harness.suite, harness.config and
harness.core; never an engine.
"""
