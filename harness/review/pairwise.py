"""Pairwise review (`--pairs a,b`): which of two outputs people prefer, per item.

Each item is one vote: its raters' picks added up (+1 for b, -1 for a, 0 a tie), so that two raters on
one item do not count as two independent items. b's win rate is wins / (wins + losses) with Wilson's
interval (it does not collapse at 0 or 1); ties are counted and left out of the rate, as the sign test
leaves them out. The sign test is McNemar's exact test on the same counts (harness.scoring.paired): under
no preference each decided item goes either way with probability 1/2.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.review.ratings import Choice
from harness.scoring.intervals import wilson
from harness.scoring.paired import mcnemar_exact


@dataclass(frozen=True)
class PairwiseResult:
    first: str  # a in --pairs a,b
    second: str  # b: the win rate is b's
    items: int
    judgments: int  # rows across raters
    wins: int  # items b won
    losses: int
    ties: int
    win_rate: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float  # two-sided sign test

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def line(self) -> str:
        if self.win_rate is None:
            return f"{self.second} vs {self.first}: {self.ties} ties of {self.items} items, no item decided"
        return (
            f"{self.second} vs {self.first}: win rate {self.win_rate:.3f} [{self.ci_low:.3f}, {self.ci_high:.3f}] "
            f"({self.wins} won, {self.losses} lost, {self.ties} tied of {self.items} items), "
            f"sign test p = {self.p_value:.4f}"
        )


def win_rate(choices: Sequence[Choice], first: str, second: str) -> PairwiseResult:
    votes: dict[str, int] = {}
    rows = 0
    for choice in choices:
        if {choice.left, choice.right} != {first, second}:
            continue
        rows += 1
        winner = choice.winner
        votes[choice.item] = votes.get(choice.item, 0) + (0 if winner is None else 1 if winner == second else -1)
    wins = sum(v > 0 for v in votes.values())
    losses = sum(v < 0 for v in votes.values())
    decided = wins + losses
    bounds = wilson(wins, decided)
    return PairwiseResult(
        first,
        second,
        len(votes),
        rows,
        wins,
        losses,
        len(votes) - decided,
        wins / decided if decided else None,
        bounds[0] if bounds else None,
        bounds[1] if bounds else None,
        mcnemar_exact(losses, wins),
    )
