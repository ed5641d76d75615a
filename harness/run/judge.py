"""The judge metric in a run: which variant judges whom, the requests it gets, and what run.json records.

A suite's `{ name = "judge", rubric = "...", judge = "VARIANT" }` names a variant declared like any other
(suite or run config). It grades every evaluated variant's outputs after they are generated, through its
own batch `generate` (so through the engine pool and the generation cache: cached, and resumable from
the run's progress folder). A judge named only by the metric is not evaluated itself; named in
--variants it is, and its own outputs are graded only with `judge_self = true` (a model grading itself
flatters itself). The runner calls the judge (harness.run.runner); the prompt and the verdict rule are
harness.scoring.metrics.judge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.config.parse import to_plain
from harness.config.settings import JUDGE_METRIC, CostModel, MetricSpec
from harness.core.errors import ConfigError, did_you_mean
from harness.core.types import Generation, GenerationParams, Request
from harness.scoring.metrics.judge import judge_messages, parse_verdict
from harness.suite.items import Item
from harness.suite.load import Suite

JUDGE_MAX_TOKENS = 256  # a few sentences of reasons and the score line; at most half of max_model_len
EXAMPLE = '{ name = "judge", rubric = "...", judge = "VARIANT" }'


def judge_spec(suite: Suite) -> MetricSpec | None:
    """The suite's judge metric (at most one: its key is `judge`, and keys are unique), or None."""
    return next((spec for spec in suite.metric_specs if spec.name == JUDGE_METRIC), None)


def check_judge(spec: MetricSpec | None, declared: Sequence[str], where: str) -> str | None:
    """The judge variant's name, checked against the declared variants (a sweep's expansions one by one)."""
    if spec is None:
        return None
    assert spec.judge is not None  # check_metric_specs required it when the suite loaded
    if spec.judge not in declared:
        raise ConfigError(
            f"the judge metric names variant '{spec.judge}', which is not declared",
            f"{where} (judge metric)",
            f"{did_you_mean(spec.judge, declared)} (or declare [variants.{spec.judge}]: {EXAMPLE})",
        )
    return spec.judge


def judged(spec: MetricSpec | None, names: Sequence[str]) -> list[str]:
    """The evaluated variants whose outputs the judge grades: all but the judge, unless judge_self."""
    if spec is None:
        return []
    return [name for name in names if name != spec.judge or spec.judge_self]


def judge_params(suite: Suite) -> GenerationParams:
    """Greedy, no stop strings (the task's could cut the score line off), the suite's seed."""
    tokens = min(JUDGE_MAX_TOKENS, max(1, suite.config.engine.max_model_len // 2))
    return GenerationParams(max_tokens=tokens, temperature=0.0, top_p=1.0, stop=(), seed=suite.config.generation.seed)


def judge_requests(
    spec: MetricSpec, suite: Suite, items: Sequence[Item], tasks: Sequence[Request], outputs: Sequence[Generation]
) -> list[Request]:
    """One request per item: the rubric, the item's task prompt (its last user message), its reference, the
    output. The item's id, so a fake judge answers by id as a fake variant does."""
    assert spec.rubric is not None
    params = judge_params(suite)
    requests = []
    for item, task, output in zip(items, tasks, outputs):
        prompt = next((m.content for m in reversed(task.messages) if m.role == "user"), "")
        requests.append(Request(item.id, judge_messages(spec.rubric, prompt, item.reference, output.text), params))
    return requests


@dataclass(frozen=True)
class Verdict:
    """The judge's grade of one output: what it was asked, what it answered, the score read from it."""

    request: Request
    generation: Generation

    @property
    def score(self) -> int | None:
        return parse_verdict(self.generation.text)

    def record(self, judge: str) -> dict[str, Any]:
        """The sample's `judge` object; `messages` only where the judge variant sent other messages
        than the prompt (a prompted judge's system prompt)."""
        found = {
            "variant": judge,
            "prompt": self.request.messages[-1].content,
            "verdict": self.generation.text,
            "score": self.score,
            "prompt_tokens": self.generation.prompt_tokens,
            "completion_tokens": self.generation.completion_tokens,
        }
        if self.generation.messages is not None and self.generation.messages != self.request.messages:
            found["messages"] = [m.to_dict() for m in self.generation.messages]
        return found


@dataclass
class JudgeOutcome:
    """The judge's verdicts on one variant's outputs, in item order."""

    judged: str
    verdicts: list[Verdict]
    timings: dict[str, float] = field(default_factory=dict)
    cache: dict[str, int] | None = None

    @property
    def unparsed(self) -> int:
        return sum(v.score is None for v in self.verdicts)


def progress_name(variant: str) -> str:
    """The judge's verdicts on a variant in the progress folder: '+' is in no variant name."""
    return f"{variant}+judge"


def judge_section(
    spec: MetricSpec, described: Mapping[str, Any], outcomes: Sequence[JudgeOutcome], cost: CostModel
) -> dict[str, Any]:
    """run.json's `judge`: the judge, its rubric, and per judged variant the verdicts, the unparsed ones,
    the judge's tokens, time and cost: the judge's, apart from the judged variant's own usage."""
    from harness.compare.cost import variant_query_cost

    per_variant, total, priced = {}, 0.0, True
    for outcome in outcomes:
        gens = [v.generation for v in outcome.verdicts]
        prompt = _total([g.prompt_tokens for g in gens])
        completion = _total([g.completion_tokens for g in gens])
        n = len(gens)
        seconds = outcome.timings.get("generate_s")
        found = variant_query_cost(
            cost,
            described,
            prompt / n if prompt is not None and n else None,
            completion / n if completion is not None and n else None,
            seconds / n if seconds is not None and n else None,
        )
        spent = found.per_1k_queries * n / 1000 if found.per_1k_queries is not None else None
        priced = priced and spent is not None
        total += spent or 0.0
        per_variant[outcome.judged] = {
            "verdicts": n,
            "unparsed": outcome.unparsed,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "timings": outcome.timings,
            "cost": spent,
            "cost_basis": found.basis,
            **({"cache": outcome.cache} if outcome.cache and any(outcome.cache.values()) else {}),
        }
    return {
        "variant": spec.judge,
        "rubric": spec.rubric,
        "judge_self": bool(spec.judge_self),
        "engine": dict(described),
        "params": to_plain(outcomes[0].verdicts[0].request.params) if outcomes and outcomes[0].verdicts else None,
        "judged": per_variant,
        "unparsed": sum(o.unparsed for o in outcomes),
        "cost": total if priced and outcomes else None,
        "currency": cost.currency,
    }


def _total(values: list[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None
