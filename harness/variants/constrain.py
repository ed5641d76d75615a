"""Constrained decoding on any engine variant: `constrain = "schema" | "regex" | "choice" | "tools"`.

The constraint comes from the suite ([output] schema or pattern) or, for "choice", from the variant's own
`choices`, so a constrained variant is held to the very format the json_schema and regex_match metrics
check. "tools" holds each request to its own tools: one call to one of them with arguments valid for its
parameter schema (a list of calls where the item allows parallel calls), or {"reply": "..."} to call
nothing (harness.core.tools.call_schema); it is turned into each request's own "schema" constraint here,
so engines never see kind "tools". The engines decode through it (vLLM structured outputs; xgrammar on
the hf backend); each sample records it, and the generation cache keys by it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Literal

from harness.core.errors import ConfigError
from harness.core.tools import call_schema
from harness.core.types import Constraint, Generation, Request
from harness.suite.load import Suite

ConstrainSetting = Literal["none", "schema", "regex", "choice", "tools"]


def suite_constraint(setting: str, choices: Sequence[str], suite: Suite, where: str) -> Constraint | None:
    """The constraint a variant's `constrain` and `choices` settings name (None for "none"); `where` is
    its [variants.NAME] table."""
    if choices and setting != "choice":
        raise ConfigError(
            'choices is read only with constrain = "choice"',
            f"{where} choices",
            'add constrain = "choice" or drop choices',
        )
    if setting == "none":
        return None
    if setting == "schema":
        if suite.schema is None:
            raise ConfigError(
                'constrain = "schema" but the suite has no [output] schema',
                f"{where} constrain",
                'add [output] format = "json" and schema = "schema.json" to suite.toml, or constrain another way',
            )
        return Constraint("schema", schema=json.dumps(suite.schema, sort_keys=True, ensure_ascii=False))
    if setting == "tools":
        if not any(item.tools for item in suite.eval_items):
            raise ConfigError(
                'constrain = "tools" but no eval item of the suite has tools',
                f"{where} constrain",
                'give the eval records a "tools" list (OpenAI\'s chat format), or constrain another way',
            )
        return Constraint("tools")  # made into each request's schema by `constrained`
    if setting == "regex":
        pattern = suite.config.output.pattern
        if not pattern:
            raise ConfigError(
                'constrain = "regex" but the suite has no [output] pattern',
                f"{where} constrain",
                'add [output] format = "regex" and pattern = "..." to suite.toml',
            )
        return Constraint("regex", pattern=pattern)
    if not choices:
        raise ConfigError(
            'constrain = "choice" needs the labels to choose from',
            f"{where} choices",
            'add choices = ["billing", "technical", ...] to the variant',
        )
    if len(set(choices)) != len(choices) or not all(isinstance(c, str) and c for c in choices):
        raise ConfigError("choices must be distinct, non-empty strings", f"{where} choices", "remove the repeats")
    return Constraint("choice", choices=tuple(choices))


def constrained(requests: Sequence[Request], constraint: Constraint | None) -> list[Request]:
    """The requests to decode under `constraint` (as they are for None)."""
    if constraint is None:
        return list(requests)
    if constraint.kind == "tools":
        return [tools_constrained(r) for r in requests]
    return [replace(r, constraint=constraint) for r in requests]


def tools_constrained(request: Request) -> Request:
    """The request held to a call of its own tools or a plain reply; one without tools decodes freely."""
    if not request.tools:
        return request
    schema = call_schema(request.tools, bool(request.metadata.get("parallel_tool_calls", False)))
    return replace(request, constraint=Constraint("schema", schema=json.dumps(schema, sort_keys=True)))


def mark(generations: Sequence[Generation], constraint: Constraint | None) -> list[Generation]:
    """Each sample says which constraint its output was decoded under (samples/<variant>.jsonl metadata):
    "tools" for the tools constraint, whose schema is each request's own."""
    if constraint is None:
        return list(generations)
    return [replace(g, metadata={**g.metadata, "constraint": constraint.kind}) for g in generations]


def decode(
    generate: Callable[[list[Request]], list[Generation]],
    requests: Sequence[Request],
    constraint: Constraint | None,
    variant: str,
) -> list[Generation]:
    """`generate` (an engine's, or an inner variant's) on the requests under `constraint`: what every kind
    that can constrain does, so each sample is marked and an engine's refusal names the variant."""
    with constraint_errors(variant):
        return mark(generate(constrained(requests, constraint)), constraint)


@contextmanager
def constraint_errors(variant: str) -> Iterator[None]:
    """An engine's refusal of a constraint (a schema its grammar backend cannot compile) names the variant."""
    try:
        yield
    except ConfigError as exc:
        if exc.where or "constraint" not in exc.what:
            raise
        raise ConfigError(exc.what, f"[variants.{variant}] constrain", exc.fix) from None
