"""Reasoning prompts (`reasoning = true` on a prompted variant): the model reasons first, then gives the
final answer on a last line that starts with "Answer:". The text after the last marker is what the
suite's extractor and metrics see; the reasoning is kept in the sample's metadata, and its tokens are
counted (and costed) with the rest of the completion.

An output without the marker has no final answer: it is scored as an empty answer, never as its
reasoning (a long ramble can contain a right-looking token by chance).
"""

from __future__ import annotations

from dataclasses import replace

from harness.core.types import Generation

MARKER = "Answer:"
INSTRUCTION = (
    "First think step by step, briefly. Then give the final answer on a last line that starts with "
    f'"{MARKER}", in exactly the format asked for.'
)


def with_reasoning(system: str) -> str:
    """The system prompt asking for reasoning before the answer."""
    return f"{system}\n\n{INSTRUCTION}" if system else INSTRUCTION


def split_answer(generation: Generation) -> Generation:
    """The generation whose text is the final answer alone, its reasoning in metadata."""
    text = generation.text
    cut = text.rfind(MARKER)
    if cut < 0:
        answer, reasoning = "", text
    else:
        answer, reasoning = text[cut + len(MARKER) :].strip(), text[:cut].rstrip()
    metadata = {**generation.metadata, "reasoning": reasoning, "final_answer_found": cut >= 0}
    return replace(generation, text=answer, metadata=metadata)
