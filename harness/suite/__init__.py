"""Suites: `suite.toml` and its data read and checked (`load.read_suite`), eval and train items in the three
JSONL layouts (`items`), prompt templates and requests (`prompts`).

May import harness.scoring, harness.config and harness.core. Checking a suite's variant tables needs the
variant kinds, one layer up: `harness.variants.load_suite` is the full load.
"""
