"""The core data types and the one interface every variant implements.

A `Variant` turns a batch of `Request`s into a list of `Generation`s of the same length and order.
Everything else (prompting, retrieval, adapters, caching, timing) is built around that one method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from harness.config.parse import ranged

Role = Literal["system", "user", "assistant"]
ROLES: tuple[str, ...] = ("system", "user", "assistant")

DEFAULT_MAX_TOKENS = 256


@dataclass(frozen=True)
class Message:
    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class GenerationParams:
    """Sampling settings. Greedy (temperature 0) by default so that runs are reproducible."""

    # max_tokens is also checked against [engine] max_model_len when a suite loads.
    max_tokens: int = ranged(DEFAULT_MAX_TOKENS, 1, example="256")
    temperature: float = ranged(0.0, 0, example="0.0 (greedy) or 0.7")
    top_p: float = ranged(1.0, 0, 1, low_open=True, example="1.0 or 0.9")
    stop: tuple[str, ...] = ()
    seed: int = ranged(0, 0, example="0")


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
