"""How the HTML report turns values into safe text: escaping for every data string, number formatting for
table cells, and the finite-float test the plots use to skip what they cannot place."""

from __future__ import annotations

import html
import math
from typing import Any


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt(x: Any) -> str:
    """A number for a table cell; None, NaN and non-numbers are shown safely."""
    if x is None or isinstance(x, bool):
        return "-" if x is None else esc(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "-"
        return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.4g}"
    return esc(x)


def with_ci(value: Any, low: Any, high: Any) -> str:
    if low is None and high is None:
        return fmt(value)
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def number(x: Any) -> float | None:
    """x as a finite float, else None (plots skip what they cannot place)."""
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None
