"""What the report's plots share: the Plot record and its <figure>, the variant palette (one colour per
variant, indexed by the suite's declared order, the same in every plot), safe labels and the Agg figure."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

from harness.compare.html_format import esc
from harness.compare.scorecard import ordered_rows

# Tableau 10 (matplotlib's default cycle), fixed here so the colour of a variant does not depend on which
# plot draws it or on how many points that plot happens to have.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


@dataclass(frozen=True)
class Plot:
    name: str  # file stem under plots/
    alt: str
    caption: str
    png: bytes


def figure_html(plot: Plot) -> str:
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure id="plot-{esc(plot.name)}"><img src="data:image/png;base64,{data}" alt="{esc(plot.alt)}">'
        f"<figcaption>{esc(plot.caption)}</figcaption></figure>"
    )


def label(text: Any) -> str:
    # Matplotlib reads $...$ as mathtext; a variant named "a$b$" must not break (or restyle) a plot.
    return str(text).replace("$", r"\$")


def variant_order(comparison: dict) -> list[str]:
    return [str(r.get("variant")) for r in ordered_rows(comparison)] if comparison.get("rows") else []


def colours(comparison: dict, extra: list[str] | None = None) -> dict[str, str]:
    """Variant -> colour, by declared order; names only the samples know (extra) come after, so a
    comparison's variants keep their colours whatever else is plotted."""
    names = list(dict.fromkeys([*variant_order(comparison), *(extra or [])]))
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def new_figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)  # Agg explicitly: no display, no pyplot global state; also what measures label boxes
    return fig


def render(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")  # dpi as new_figure's: measured boxes hold
    return buf.getvalue()
