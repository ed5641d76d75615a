"""The comparer: before/after tables with paired statistics (`harness compare`), diffs of two result
directories with gates (`harness diff`), and a self-contained HTML report.

Everything works from result directories alone (run.json and samples/), never regenerating. Also the cost
model (`cost`) and the trend over many runs (`history`, `history_plot`).

May import harness.results and the layers below it; never an engine (CI enforces it).
"""

from __future__ import annotations

ALPHA = 0.05  # significance level for every test in a table (after Holm's correction)
EXIT_GATE_FAILED = 1  # `harness diff --gate` when a gate fails (2 stays "bad input")
