"""Tie-aware comparison of two greedy outputs of the same request.

Greedy decoding picks the most likely next token. When two tokens are almost equally likely, a change
in the last bits of the arithmetic (another kernel, another batch shape, another CPU) can pick the other
one, and the two texts part from there on. That is a numerical near-tie, not a different model. Engines
that can (vLLM, hf) record a trace of each generation: the generated token ids, and at each position
the runner-up tokens whose log-probability was within RECORDED_GAP of the chosen one. Two outputs:

- equal:     the same text.
- tie:       they share every token up to a position where each run chose a token that the other run
             saw as a runner-up within TIE_TOLERANCE nats of its own choice.
- different: anything else, including outputs without a trace (no evidence that it was a tie).

Only the first parting counts: after it, the prefixes differ and so do the predictions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

# Log-prob gap (nats) under which two tokens count as tied. bf16 logits of magnitude 10-30 are
# rounded to steps of 0.06-0.125, and kernels that sum in another order move a logit by a step or two:
# measured partings between kernels and batch shapes here had gaps up to ~0.2 (docs/engine-notes.md).
TIE_TOLERANCE = 0.5
# Runner-ups recorded per position when within this gap of the chosen token (a trace stays small:
# most positions have none). Larger than TIE_TOLERANCE so the tolerance can be raised on old traces.
RECORDED_GAP = 1.0
RUNNER_UPS = 3  # top-k log-probs asked of the engine besides the chosen token

Verdict = Literal["equal", "tie", "different"]


@dataclass(frozen=True)
class Agreement:
    verdict: Verdict
    position: int | None = None  # the first token position where the outputs part
    gap: float | None = None  # the larger of the two runs' log-prob gaps there (nats)
    why: str = ""


def token_trace(token_ids: Sequence[int], top: Sequence[Mapping[int, float]]) -> dict[str, Any]:
    """A generation's trace: its token ids and, per position, the runner-ups within RECORDED_GAP.

    `top[i]` maps token ids to log-probs at position i (the chosen token among them or not)."""
    ties = []
    for position, (chosen, scores) in enumerate(zip(token_ids, top)):
        best = scores.get(chosen, max(scores.values(), default=0.0))
        for token, logprob in sorted(scores.items()):
            if token != chosen and best - logprob < RECORDED_GAP:
                ties.append([position, int(token), round(float(best - logprob), 6)])
    return {"token_ids": [int(t) for t in token_ids], "near_ties": ties}


def compare(
    a_text: str,
    a_trace: Mapping[str, Any] | None,
    b_text: str,
    b_trace: Mapping[str, Any] | None,
    tolerance: float = TIE_TOLERANCE,
) -> Agreement:
    """Whether output a and output b of one request are equal, a near-tie, or different."""
    if a_text == b_text:
        return Agreement("equal")
    if not a_trace or not b_trace or "token_ids" not in a_trace or "token_ids" not in b_trace:
        return Agreement("different", why="no token trace to tell a near-tie from a difference")
    a_ids, b_ids = list(a_trace["token_ids"]), list(b_trace["token_ids"])
    position = next((i for i, (x, y) in enumerate(zip(a_ids, b_ids)) if x != y), None)
    if position is None:
        # One run stopped where the other went on (a stop string or an end token that the ids omit):
        # no runner-up names "stop", so there is no evidence of a near-tie.
        return Agreement("different", min(len(a_ids), len(b_ids)), why="one output stops where the other goes on")
    gaps = [_gap(a_trace, position, b_ids[position]), _gap(b_trace, position, a_ids[position])]
    if all(g is not None and g < tolerance for g in gaps):
        return Agreement("tie", position, max(gaps))  # type: ignore[type-var]
    known = [g for g in gaps if g is not None]
    return Agreement(
        "different",
        position,
        max(known) if known else None,
        f"token {position}: the other run's token was not a runner-up within {tolerance} nats",
    )


def _gap(trace: Mapping[str, Any], position: int, token: int) -> float | None:
    """How far below the chosen token `token` was at `position` in this run (None: not within reach)."""
    for at, alternative, gap in trace.get("near_ties", ()):
        if at == position and alternative == token:
            return float(gap)
    return None


def summarize(agreements: Sequence[Agreement]) -> dict[str, int]:
    counts = {"equal": 0, "tie": 0, "different": 0}
    for agreement in agreements:
        counts[agreement.verdict] += 1
    return counts


def compare_samples(a: Mapping[str, Any], b: Mapping[str, Any], tolerance: float = TIE_TOLERANCE) -> Agreement:
    """Two records of one item from result directories (samples/<variant>.jsonl rows)."""
    trace = lambda row: (row.get("metadata") or {}).get("trace")  # noqa: E731
    return compare(a["output"], trace(a), b["output"], trace(b), tolerance)
