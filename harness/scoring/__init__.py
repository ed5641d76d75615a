"""Scoring: answer extraction (`answers`), the metric registry and built-in metrics (`metrics`), per-sample
scores with intervals (`scores`), interval methods (`intervals`), paired statistics (`paired`) and the
engine self-test's comparison of replays (`selftest`).

May import harness.config and harness.core; never an engine (CI enforces it: pyproject.toml
[tool.importlinter]), so results can be re-scored and compared on any machine.
"""
