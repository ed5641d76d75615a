"""What a variant costs per query, and the query volume at which fine-tuning pays back.

Two ways to price inference, as teams do: per million input/output tokens (an API or a provider's
price list), or per GPU-hour with the throughput the run measured. Fine-tuning is a one-time cost:
given, or its GPU-hours priced at `gpu_hour` (by default the `train_seconds` that `harness finetune`
recorded in the adapter's training.json).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config.settings import CostModel, check_cost


@dataclass(frozen=True)
class QueryCost:
    per_1k_queries: float | None
    basis: str  # how it was computed, printed with the table


def query_cost(
    model: CostModel, prompt_tokens: float | None, completion_tokens: float | None, seconds_per_query: float | None
) -> QueryCost:
    """Cost of 1,000 queries: token prices when given, else GPU time at the measured throughput."""
    if model.input_per_mtok is not None or model.output_per_mtok is not None:
        if prompt_tokens is None or completion_tokens is None:
            return QueryCost(None, "tokens not recorded")
        cost = (
            prompt_tokens * (model.input_per_mtok or 0.0) + completion_tokens * (model.output_per_mtok or 0.0)
        ) / 1e6
        return QueryCost(cost * 1000, "token prices")
    if model.gpu_hour is not None:
        if seconds_per_query is None:
            return QueryCost(None, "no measured throughput")
        return QueryCost(model.gpu_hour * seconds_per_query / 3600 * 1000, "GPU-hour x measured batched throughput")
    return QueryCost(None, "no [cost] prices")


def variant_query_cost(
    model: CostModel,
    engine: Mapping[str, Any],
    prompt_tokens: float | None,
    completion_tokens: float | None,
    seconds_per_query: float | None,
) -> QueryCost:
    """A variant's cost of 1,000 queries. One answered by an api endpoint (kind api, or prompted over one:
    run.json `engine.backend` "api") is priced by the endpoint's own token prices (`engine.prices`), never by
    [cost]: the run's GPU-hours and the local model's token prices are not what the provider charges."""
    if engine.get("backend") != "api":
        return query_cost(model, prompt_tokens, completion_tokens, seconds_per_query)
    prices = engine.get("prices") or {}
    own = CostModel(
        input_per_mtok=prices.get("input_per_mtok"),
        output_per_mtok=prices.get("output_per_mtok"),
        currency=model.currency,
    )
    if not own.priced:
        return QueryCost(None, "the api variant sets no input_per_mtok/output_per_mtok")
    found = query_cost(own, prompt_tokens, completion_tokens, None)
    return QueryCost(
        found.per_1k_queries, "the endpoint's token prices" if found.per_1k_queries is not None else found.basis
    )


def finetune_cost(model: CostModel, adapter_path: str | None) -> tuple[float | None, str]:
    """The one-time cost of training an adapter, and where the number came from."""
    if model.finetune is not None:
        return model.finetune, "given ([cost] finetune)"
    if model.finetune_hours is not None and model.gpu_hour is not None:
        return model.finetune_hours * model.gpu_hour, f"{model.finetune_hours:g} GPU-hours x gpu_hour"
    record = Path(adapter_path) / "training.json" if adapter_path else None
    if record is not None and record.is_file() and model.gpu_hour is not None:
        training = json.loads(record.read_text(encoding="utf-8"))
        seconds, device = float(training.get("train_seconds", 0.0)), training.get("device", "?")
        return seconds / 3600 * model.gpu_hour, f"training.json: {seconds:.0f} s on {device}, priced at gpu_hour"
    return None, "unknown: set [cost] finetune, or finetune_hours with gpu_hour"


def break_even(
    finetune: float | None, tuned_per_1k: float | None, other_per_1k: float | None
) -> tuple[float | None, str]:
    """Queries after which fine-tuning (one-time cost, cheaper queries) costs less than the other
    approach. None with a reason when it never does or a number is missing."""
    if finetune is None or tuned_per_1k is None or other_per_1k is None:
        return None, "a cost is unknown"
    saving = (other_per_1k - tuned_per_1k) / 1000
    if saving <= 0:
        return None, "never: the fine-tuned variant costs as much or more per query"
    return finetune / saving, f"{finetune:.2f} one-time / {saving * 1000:.4f} saved per 1k queries"


def cost_model_from(table: Mapping[str, Any] | None, where: str) -> CostModel:
    from harness.config.parse import parse_table

    model = parse_table(CostModel, table or {}, where, "cost")
    check_cost(model, f"{where} [cost]")
    return model
