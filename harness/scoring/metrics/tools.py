"""Tool-calling metrics: the calls a model makes against the gold calls.

Both sides are read with `harness.core.tools.parse_calls`, from the raw output and the raw reference (a
tool-calling reference is `call_text` of the gold assistant turn: one `<tool_call>` block per call, plain
text for a rejection), so `[answer]` extraction never cuts a call in half. "No call" is an empty list.

`tool_name` is defined on every sample (calling nothing where nothing fits is the right answer there); the
argument metrics only where the gold calls something, NaN elsewhere, so a rejection item neither helps nor
hurts them. JSON values compare as JSON: 1 equals 1.0, but `true` is not 1 (`json_key`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from harness.core.tools import ParsedCall, call_names, canonical_arguments, parse_calls
from harness.scoring.metrics.base import MeanMetric, MetricInput, register_metric

Triple = tuple[str, str | None, str]  # (function, argument key or None for the whole arguments, value key)


def json_key(value: Any) -> str:
    """Canonical JSON text under which two JSON values are equal exactly when their keys are: an integral
    float is written as the int it equals (1.0 as 1), while a bool stays `true`/`false` (Python's True == 1,
    JSON's does not)."""
    return canonical_arguments(_normal(value))


def _normal(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _normal(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_normal(inner) for inner in value]
    return value


def calls_of(inputs: Sequence[MetricInput], cache: dict[str, Any]) -> list[tuple[list[ParsedCall], list[ParsedCall]]]:
    """(predicted, gold) calls per sample, parsed once for all the tool metrics of one scoring pass."""
    if "tool_calls" not in cache:
        cache["tool_calls"] = [
            (parse_calls(i.output), parse_calls(i.reference if i.raw_reference is None else i.raw_reference))
            for i in inputs
        ]
    calls: list[tuple[list[ParsedCall], list[ParsedCall]]] = cache["tool_calls"]
    return calls


def names_match(predicted: Sequence[ParsedCall], gold: Sequence[ParsedCall]) -> bool:
    """The same functions as often as the gold calls them, in any order; both empty is a match."""
    return call_names(predicted) == call_names(gold)


def args_exact(predicted: Sequence[ParsedCall], gold: Sequence[ParsedCall]) -> bool:
    """The same calls, names and arguments as JSON values, in any order (parallel calls pair up by content)."""
    if not all(call.valid for call in predicted) or not all(call.valid for call in gold):
        return False
    return Counter(_call_key(c) for c in predicted) == Counter(_call_key(c) for c in gold)


def _call_key(call: ParsedCall) -> tuple[str, str]:
    return call.name, json_key(call.arguments)


def args_f1(predicted: Sequence[ParsedCall], gold: Sequence[ParsedCall]) -> float:
    """F1 over (function, argument key, value) triples, counted as multisets. A call with no arguments, or
    with arguments that are no object, is one triple of its own; an invalid call is one triple that matches
    nothing. 0 when either side has none."""
    matched = sum((Counter(_triples(predicted)) & Counter(_triples(gold))).values())
    total_predicted, total_gold = _triple_count(predicted), _triple_count(gold)
    if matched == 0 or total_predicted == 0 or total_gold == 0:
        return 0.0
    precision, recall = matched / total_predicted, matched / total_gold
    return 2 * precision * recall / (precision + recall)


def _triples(calls: Sequence[ParsedCall]) -> list[Triple]:
    triples: list[Triple] = []
    for call in calls:
        if not call.valid:
            continue
        if isinstance(call.arguments, dict) and call.arguments:
            triples.extend((call.name, key, json_key(value)) for key, value in call.arguments.items())
        else:
            triples.append((call.name, None, json_key(call.arguments)))
    return triples


def _triple_count(calls: Sequence[ParsedCall]) -> int:
    return len(_triples(calls)) + sum(not call.valid for call in calls)


def args_valid(predicted: Sequence[ParsedCall], schemas: dict[str, str]) -> bool:
    """At least one call, and every call names a tool offered (`schemas`: name -> parameters JSON text)
    with arguments its parameters schema accepts."""
    if not predicted:
        return False
    for call in predicted:
        if not call.valid or call.name not in schemas:
            return False
        validator = _validator(schemas[call.name])
        if validator is None or not validator.is_valid(call.arguments):
            return False
    return True


@lru_cache(maxsize=1024)
def _validator(parameters: str) -> Any:
    """A validator for one tool's parameters (the draft its `$schema` names, else 2020-12); None for a
    schema that is itself broken: no call is valid against it (check-data reports the schema)."""
    import jsonschema
    from jsonschema.validators import validator_for

    try:
        schema = json.loads(parameters) if parameters.strip() else {}
        if not isinstance(schema, dict | bool):
            return None
        cls = validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
    except (ValueError, jsonschema.exceptions.SchemaError):
        return None
    return cls(schema)


class _ToolMetric(MeanMetric):
    needs = "tools"

    def stats(self, inputs: Sequence[MetricInput], cache: dict[str, Any]) -> np.ndarray:
        values = [self.value(i, predicted, gold) for i, (predicted, gold) in zip(inputs, calls_of(inputs, cache))]
        return np.array(values, dtype=float).reshape(-1, 1)

    def value(self, sample: MetricInput, predicted: list[ParsedCall], gold: list[ParsedCall]) -> float:
        raise NotImplementedError


@register_metric("tool_name")
class ToolName(_ToolMetric):
    description = (
        "the functions called are the gold's (any order), or no call where the gold calls nothing (the right "
        "rejection); a malformed call still counts its name"
    )

    def value(self, sample: MetricInput, predicted: list[ParsedCall], gold: list[ParsedCall]) -> float:
        return float(names_match(predicted, gold))


@register_metric("tool_args_exact")
class ToolArgsExact(_ToolMetric):
    description = (
        "the calls equal the gold's, names and arguments as JSON values (any order; true is not 1); "
        "only where the gold calls something"
    )

    def value(self, sample: MetricInput, predicted: list[ParsedCall], gold: list[ParsedCall]) -> float:
        return float(args_exact(predicted, gold)) if gold else float("nan")


@register_metric("tool_args_valid")
class ToolArgsValid(_ToolMetric):
    description = (
        "at least one call, and every call names an offered tool with arguments valid for its parameters "
        "schema; only where the gold calls something"
    )

    def value(self, sample: MetricInput, predicted: list[ParsedCall], gold: list[ParsedCall]) -> float:
        if not gold:
            return float("nan")
        return float(args_valid(predicted, {tool.name: tool.parameters for tool in sample.tools}))


@register_metric("tool_args_f1")
class ToolArgsF1(_ToolMetric):
    description = (
        "F1 over (function, argument, value) triples of all calls against the gold's; 0 without a call; "
        "only where the gold calls something"
    )

    def value(self, sample: MetricInput, predicted: list[ParsedCall], gold: list[ParsedCall]) -> float:
        return args_f1(predicted, gold) if gold else float("nan")
