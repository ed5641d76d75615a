"""What `harness history` builds from run.json files (harness.compare.history) and what history.png draws
(harness.compare.history_plot): the types both read, here so that neither module imports the other's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

MARKERS = {
    "M": "model changed: the engine's model, its content hash (apart from the adapter) or the backend",
    "A": "adapter changed: the LoRA adapter's sha256",
    "D": "data changed: an eval/train file's sha256, the number of eval items scored, or the RAG index",
    "C": "config changed: the suite's prompt, generation, answer, output, metrics or run settings, or the variant's own table",
}


@dataclass(frozen=True)
class MetricPoint:
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None


@dataclass(frozen=True)
class VariantPoint:
    """One variant in one run: its metrics, and what changed since its previous run."""

    metrics: Mapping[str, MetricPoint]
    markers: str  # letters of MARKERS in that order; "" in the variant's first run
    changes: tuple[tuple[str, str], ...]  # (marker, "path: old -> new")
    inputs: Mapping[str, Any]  # flattened engine + variant config, compared with the next run


@dataclass(frozen=True)
class HistoryRun:
    run_id: str
    dir: Path
    created_at: datetime
    status: str
    commit: str  # short git commit, "*" appended when the tree was dirty; "" when unknown
    variants: Mapping[str, VariantPoint]
    inputs: Mapping[str, Any]  # flattened data hashes and suite config, shared by its variants


@dataclass(frozen=True)
class History:
    suite: str
    results_dir: Path
    runs: tuple[HistoryRun, ...]  # oldest first
    variants: tuple[str, ...]
    metrics: tuple[str, ...]  # the suite's order
    plot_metrics: tuple[str, ...]  # what history.png draws: the suite's first metric unless chosen
    skipped_partial: int = 0
    unreadable: int = 0
