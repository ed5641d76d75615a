"""The values a numeric setting may take, attached to a dataclass field (`ranged`). Plain data, so the core
types can declare their ranges; harness.config.parse checks them when it reads a config."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a numeric setting may take: `low`/`high` bounds, each inclusive unless `*_open`."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    example: str = ""  # a sensible value, shown in the fix

    def holds(self, value: float) -> bool:
        # Written so that NaN fails every bound; infinities are never a setting.
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def describe(self) -> str:
        low, high = _number(self.low), _number(self.high)
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'more than' if self.low_open else 'at least'} {low}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {high}"
        return "a finite number"


def _number(value: float | None) -> str:
    return (
        str(int(value))
        if value is not None and float(value).is_integer()
        else f"{value:g}"
        if value is not None
        else ""
    )


def ranged(
    default: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    example: str = "",
) -> Any:
    """A dataclass field whose value (when not None) must lie in a range, checked by parse_table."""
    bounds = Range(low, high, low_open, high_open, example)
    return dataclasses.field(default=default, metadata={"range": bounds})
