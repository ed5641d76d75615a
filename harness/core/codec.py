"""The one dict form of a `Generation`, shared by the generation cache (harness.engines.cache), the
progress log of a run (harness.run.progress) and the samples files (harness.results.write).

The keys are the Generation's field names, so every cache entry and progress file written before this
module existed decodes unchanged. Nothing is rounded here: the samples files round their own floats.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from harness.core.plain import to_plain
from harness.core.types import Generation, Message

MEASUREMENTS = ("prompt_tokens", "completion_tokens", "ttft_s", "latency_s")  # None where not reported


def generation_to_dict(generation: Generation, *, text: bool = True, messages: bool = False) -> dict[str, Any]:
    """`text` (unless text=False: a sample records its output itself), the measurements and the metadata
    as plain data; with messages=True also `messages`, as role/content dicts (None: the request's own)."""
    found: dict[str, Any] = {"text": generation.text} if text else {}
    found.update((name, getattr(generation, name)) for name in MEASUREMENTS)
    found["metadata"] = to_plain(generation.metadata)
    if messages:
        sent = generation.messages
        found["messages"] = None if sent is None else [m.to_dict() for m in sent]
    return found


def generation_from_dict(value: Mapping[str, Any]) -> Generation:
    """The Generation `generation_to_dict` wrote (with or without `messages`)."""
    fields = dict(value)
    sent = fields.pop("messages", None)
    messages = None if sent is None else tuple(Message(m["role"], m["content"]) for m in sent)
    return Generation(**{**fields, "metadata": dict(fields.get("metadata") or {}), "messages": messages})
