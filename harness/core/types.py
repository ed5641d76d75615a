"""The core data types and the one interface every variant implements.

A `Variant` turns a batch of `Request`s into a list of `Generation`s of the same length and order.
Everything else (prompting, retrieval, adapters, caching, timing) is built around that one method.
The built-in kinds subclass `VariantBase`, which adds the optional abilities with defaults.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from harness.core.ranges import ranged

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")  # "tool": a tool's result (tool_call_id)

DEFAULT_MAX_TOKENS = 256
# What answers for a variant: (harness.engines.EngineHandle, harness.engines.Adapter or None). Typed loosely
# because the core sits below the engines and imports nothing of theirs, not even for annotations.
Weights = tuple[Any, Any]


@dataclass(frozen=True)
class ToolCall:
    """One function call an assistant message makes. `arguments` is the arguments' JSON text as the model or
    the file wrote it (it may not parse: a model's call is scored, not trusted)."""

    name: str
    arguments: str = "{}"
    id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The OpenAI chat format (arguments as a JSON string), as fine-tuning files and endpoints hold it."""
        call: dict[str, Any] = {"type": "function", "function": {"name": self.name, "arguments": self.arguments}}
        return {"id": self.id, **call} if self.id else call


@dataclass(frozen=True)
class Tool:
    """A function the model may call: OpenAI's `{"type": "function", "function": {...}}`. `parameters` is
    its JSON schema as canonical JSON text (hashable: one cache key per tool list)."""

    name: str
    description: str = ""
    parameters: str = "{}"

    def to_dict(self) -> dict[str, Any]:
        function: dict[str, Any] = {"name": self.name}
        if self.description:
            function["description"] = self.description
        function["parameters"] = json.loads(self.parameters)
        return {"type": "function", "function": function}


@dataclass(frozen=True)
class Message:
    """A chat message. An assistant message may carry `tool_calls` (its content then often ""); a "tool"
    message is a tool's result for the call named by `tool_call_id`."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        # Only what is set: a message without tools is what it always was (cache keys, sample files).
        message: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [call.to_dict() for call in self.tool_calls]
        if self.tool_call_id:
            message["tool_call_id"] = self.tool_call_id
        return message


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings. Greedy (temperature 0) by default so that runs are reproducible."""

    # max_tokens is also checked against [engine] max_model_len when a suite loads.
    max_tokens: int = ranged(DEFAULT_MAX_TOKENS, 1, example="256")
    temperature: float = ranged(0.0, 0, example="0.0 (greedy) or 0.7")
    top_p: float = ranged(1.0, 0, 1, low_open=True, example="1.0 or 0.9")
    stop: tuple[str, ...] = ()
    seed: int = ranged(0, 0, example="0")


# "tools": a call to one of the request's tools or a plain reply, as JSON (harness.core.tools.call_schema);
# the variants turn it into each request's own "schema" constraint, so engines never see it.
ConstraintKind = Literal["schema", "regex", "choice", "tools"]
CONSTRAINT_KINDS: tuple[str, ...] = ("schema", "regex", "choice", "tools")


@dataclass(frozen=True)
class Constraint:
    """What decoding may produce (vLLM structured outputs, xgrammar on the hf backend): output matching a
    JSON schema, a regular expression, or exactly one of a list of strings."""

    kind: ConstraintKind
    schema: str = ""  # kind "schema": the schema as canonical JSON text (hashable, one cache key per schema)
    pattern: str = ""  # kind "regex"
    choices: tuple[str, ...] = ()  # kind "choice"

    def to_dict(self) -> dict[str, Any]:
        """What a cache key and a sample record hold of it."""
        value: Any = {"schema": self.schema, "regex": self.pattern, "choice": list(self.choices), "tools": True}[
            self.kind
        ]
        return {"kind": self.kind, "value": value}


@dataclass(frozen=True)
class Request:
    """One prompt for a variant: the chat messages to send and how to sample.

    `query` is the item's task input as plain text (what a retriever searches with); `metadata` carries
    free per-item context such as gold document ids.
    """

    id: str
    messages: tuple[Message, ...]
    params: GenerationParams = GenerationParams()
    query: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    constraint: Constraint | None = None  # None: free decoding
    tools: tuple[Tool, ...] = ()  # the functions the model may call (harness.core.tools renders and parses them)


@dataclass(frozen=True)
class Generation:
    """A variant's answer to one request.

    Optional measurements are None when the variant cannot provide them. `messages` is what was actually
    sent to the model when a variant changed the request (few-shot turns, retrieved context); None means
    the request's messages were sent as they were.
    """

    text: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    ttft_s: float | None = None
    latency_s: float | None = None
    messages: tuple[Message, ...] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Variant(Protocol):
    """One way of answering the task: base, prompted, RAG, fine-tuned, hybrid, or a test double.

    `generate` takes a batch and returns exactly one Generation per Request, in the same order. It is
    called once per batch (never once per sample) so that engines can batch on the hardware.
    """

    name: str

    def generate(self, requests: Sequence[Request]) -> list[Generation]: ...


class VariantBase(ABC):
    """What every built-in kind subclasses: `generate` plus the optional abilities, defaulted, so that
    callers ask a variant directly instead of probing it for methods.

    A variant written by a user needs only `name` and `generate` (the `Variant` protocol); the
    `variant_*` helpers below answer for both.
    """

    name: str

    @abstractmethod
    def generate(self, requests: Sequence[Request]) -> list[Generation]: ...

    def describe(self) -> dict[str, object]:
        """What a run records about the variant (model, adapter, index), so two runs can tell they differ."""
        return {}

    def weights(self) -> Weights | None:
        """The engine and adapter that answer for it (forgetting checks and the self-test measure
        these); None: no model weights behind it."""
        return None

    def serving_note(self) -> str:
        """One line for the run's progress on how its weights are served; "" for nothing to say."""
        return ""

    def batch_size(self, run_batch_size: int) -> int:
        """Requests per generate call: [run] batch_size, or more where the answering side needs more in
        flight than one batch holds (an api endpoint: the next batch starts only when the last is answered)."""
        return run_batch_size


def variant_describe(variant: Variant) -> dict[str, object]:
    return variant.describe() if isinstance(variant, VariantBase) else _structural(variant, "describe", {})


def variant_weights(variant: Variant) -> Weights | None:
    return variant.weights() if isinstance(variant, VariantBase) else _structural(variant, "weights", None)


def variant_serving_note(variant: Variant) -> str:
    return variant.serving_note() if isinstance(variant, VariantBase) else _structural(variant, "serving_note", "")


def variant_batch_size(variant: Variant, run_batch_size: int) -> int:
    if isinstance(variant, VariantBase):
        return variant.batch_size(run_batch_size)
    found = getattr(variant, "batch_size", None)
    return found(run_batch_size) if callable(found) else run_batch_size


def _structural(variant: object, method: str, default: Any) -> Any:
    """A user's variant that is no VariantBase may still define an optional method; it is honoured."""
    found = getattr(variant, method, None)
    return found() if found is not None else default
