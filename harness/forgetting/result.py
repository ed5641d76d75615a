"""What a forgetting check found, as data: the weights measured, their per-benchmark scores and the paired
comparisons against base. Results and reports read it without importing the engines that produced it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from harness.config.settings import ForgettingSettings

if TYPE_CHECKING:  # the types only: a report renders without engine code
    from harness.engines import Adapter, EngineHandle

REFERENCE = "base"


@dataclass(frozen=True)
class WeightsTarget:
    """One set of weights and the variants it answers for."""

    label: str  # "base", or the first variant carrying these weights
    variants: tuple[str, ...]
    engine: EngineHandle
    adapter: Adapter | None
    scored_with: str  # how log-likelihoods were computed, for the record


@dataclass
class BenchmarkScores:
    records: list[dict[str, Any]]
    metrics: dict[str, dict[str, float | None]]
    requests: int = 0
    seconds: float = 0.0


@dataclass
class ForgettingResult:
    settings: ForgettingSettings
    benchmarks: list[dict[str, Any]]  # name, source, items, primary metric
    targets: list[WeightsTarget]
    scores: dict[str, dict[str, BenchmarkScores]]  # benchmark -> weights label -> scores
    comparisons: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # benchmark -> label -> paired
    skipped: dict[str, str] = field(default_factory=dict)  # variant -> why it was not measured

    @property
    def failed(self) -> bool:
        return any(c.get("status") == "fail" for by_label in self.comparisons.values() for c in by_label.values())
