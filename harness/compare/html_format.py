"""How the HTML report turns values into safe text: escaping for every data string, number formatting for
table cells (scorecard's fmt3/p_text, the one formatter report.md uses too) and the finite-float test the
plots use to skip what they cannot place."""

from __future__ import annotations

import html
import math
from typing import Any

from harness.compare.scorecard import fmt3, p_text


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(x: Any) -> str:
    """A number for a table cell: counts as integers with thousands separators, other numbers with
    scorecard's 3 decimals; None, NaN and non-numbers are shown safely."""
    if x is None or isinstance(x, bool):
        return "-" if x is None else esc(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "-"
        return f"{x:,.0f}" if abs(x) >= 1000 else fmt3(x)
    return esc(x)


def signed(x: Any) -> str:
    """A delta: 3 decimals with its sign, so +0.100 and -0.100 line up and read as changes."""
    return fmt3(x, signed=True) if number(x) is not None else fmt(x)


def with_ci(value: Any, low: Any, high: Any, sign: bool = False) -> str:
    show = signed if sign else fmt
    if low is None and high is None:
        return show(value)
    return f"{show(value)} [{show(low)}, {show(high)}]"


def p_cell(p: Any) -> str:
    return esc(p_text(p)) if number(p) is not None else fmt(p)  # "<0.001" is text, not a tag


def number(x: Any) -> float | None:
    """x as a finite float, else None (plots skip what they cannot place)."""
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None
