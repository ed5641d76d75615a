"""What `decide` reads and returns (harness.compare.decision): the `[decision]` settings with their strict
parser, the target strings ("accuracy[category] >= 0.9") and the frozen records of a decision. Here, apart
from the measuring (decision), the rules (decision_rules) and the rendering (decision_render), so that
none of those modules imports another's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from harness.config.settings import (
    DecisionSettings,
    Target,
)

VerdictStatus = Literal["meets", "fails", "undecided"]
ConditionStatus = Literal["met", "not met", "unknown"]

RECALL_LINE = 0.7  # "if retrieval misses the right documents 30% of the time, fine-tuning will not save you"


@dataclass(frozen=True)
class Verdict:
    """One variant against one target, judged by the interval, not the point."""

    target: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    status: VerdictStatus
    items_needed: int | None = None  # undecided: about this many eval items would decide it (1/sqrt(n))
    note: str = ""


@dataclass(frozen=True)
class Forgetting:
    benchmark: str
    weights: str
    delta: float | None
    delta_ci_low: float | None
    delta_ci_high: float | None
    status: str | None  # pass, over, fail (harness.forgetting), None without a budget


@dataclass(frozen=True)
class Assessment:
    """One variant: its verdicts, what it costs, how long a user waits, what its weights forgot."""

    variant: str
    kind: str
    verdicts: tuple[Verdict, ...]
    status: VerdictStatus  # against every target: meets all, fails one, else undecided
    cost_per_1k: float | None
    cost_basis: str
    latency_p95_ms: float | None
    latency_source: str
    latency_status: str  # within, over, unknown (no number), no budget
    forgetting: tuple[Forgetting, ...]
    forgetting_status: str  # pass, over, fail, not checked, same weights as base

    @property
    def tuned(self) -> bool:
        return self.kind in ("finetuned", "hybrid")


@dataclass(frozen=True)
class Step:
    """A paired delta on one target metric: what one step of the ladder closed."""

    step: str  # prompting, retrieval, fine-tuning
    label: str  # "what prompting closed"
    metric: str
    before: str
    after: str
    n: int
    delta: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_holm: float | None
    test: str | None
    interval: str | None
    note: str = ""


@dataclass(frozen=True)
class Recall:
    variant: str
    metric: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    status: VerdictStatus  # against RECALL_LINE, by the interval


@dataclass(frozen=True)
class Payback:
    """Does training pay for itself through cheaper queries, against the best variant without it?"""

    finetuned: str
    against: str
    training_cost: float | None
    training_cost_source: str
    tuned_per_1k: float | None
    other_per_1k: float | None
    break_even_queries: float | None
    days_to_pay_back: float | None
    horizon_days: float  # the settings' horizon, or shorter when knowledge changes force retraining
    horizon_note: str
    pays_back: bool | None  # None: a number is missing
    queries_per_day_needed: float | None  # to pay back inside the horizon
    note: str


@dataclass(frozen=True)
class Condition:
    id: str
    title: str
    status: ConditionStatus
    evidence: str


@dataclass(frozen=True)
class Decision:
    run_id: str
    run_dir: str
    suite: str
    eval_items: int | None
    settings: DecisionSettings
    targets: tuple[Target, ...]
    currency: str
    variants: tuple[Assessment, ...]
    excluded: tuple[tuple[str, str], ...]  # (variant, why it takes no part)
    steps: tuple[Step, ...]
    recall: tuple[Recall, ...]
    payback: tuple[Payback, ...]
    conditions: tuple[Condition, ...]
    ship: str | None  # the variant to ship; None when none should be
    rule: str  # a stable id of the rule that fired (RULES)
    recommendation: str  # one sentence
    evidence: tuple[str, ...]

    def assessment(self, variant: str) -> Assessment:
        return next(a for a in self.variants if a.variant == variant)
