"""Which items the HTML report's sample browser embeds, and why: the ones a reviewer should look at first.

An item is worth triaging when the variants disagree on it (a different primary-metric score or a different
answer), when a variant flipped against the baseline on it (primary metric 1 -> 0 or 0 -> 1), or when the
primary metric failed (scored 0) for some variant. The report embeds those first, in that order and in item
order within each group, then the rest while there is room; what does not fit stays in the run folder's
samples/*.jsonl, and the page says how many were left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# A reviewer reads a few hundred items in a meeting, not thousands; and the page must open in a browser at
# any eval-set size (20,000 items x 6 variants embedded was ~120 MB). 300 items x 6 variants of a few KB
# each is ~3 MB; MAX_BYTES bounds it whatever the outputs' length, so report.html stays under ~5 MB.
MAX_ITEMS = 300
MAX_BYTES = 3_000_000
# One runaway output (a model that never stops) must not take the whole budget: longer texts are cut.
MAX_TEXT = 20_000


@dataclass(frozen=True)
class Triage:
    """Why one item is worth a look (empty tuples and False: it is not)."""

    index: int  # position in the run's item order
    item_id: str
    disagree: bool
    broke: tuple[str, ...] = ()  # variants wrong where the baseline was right (primary 1 -> 0)
    fixed: tuple[str, ...] = ()  # variants right where the baseline was wrong (primary 0 -> 1)
    failed: tuple[str, ...] = ()  # variants whose primary metric scored 0 on this item

    @property
    def tier(self) -> int:
        """0 disagreement, 1 flip, 2 failure, 3 nothing to see: the order items are embedded in."""
        if self.disagree:
            return 0
        if self.broke or self.fixed:
            return 1
        return 2 if self.failed else 3

    def flags(self, ordered: list[str]) -> list[str]:
        """The filter tokens this item matches; variants go by their index in `ordered`, so the page's JS
        compares short fixed tokens, never names from the data."""
        found = ["d"] if self.disagree else []
        found += [f"r{ordered.index(v)}" for v in self.broke]
        found += [f"u{ordered.index(v)}" for v in self.fixed]
        return found + (["f"] if self.failed else [])


def primary_metric(comparison: Mapping[str, Any]) -> str | None:
    metrics = list(comparison.get("metrics") or [])
    return comparison.get("primary_metric") or (metrics[0] if metrics else None)


def higher_is_better(comparison: Mapping[str, Any]) -> dict[str, bool | None]:
    """Per metric, from the comparison's cells: a 0 is a failure only where higher is better (not for
    output_length, which is informational)."""
    found: dict[str, bool | None] = {}
    for row in comparison.get("rows") or []:
        for name, cell in (row.get("metrics") or {}).items():
            if isinstance(cell, Mapping) and found.get(name) is None:
                found[name] = cell.get("higher_is_better")
    return found


def _answer(sample: Mapping[str, Any]) -> str:
    """Answers that differ only in case or spacing are the same answer (the metrics fold those too)."""
    return " ".join(str(sample.get("answer") or "").split()).casefold()


def triage(
    ids: list[str],
    by_variant: Mapping[str, Mapping[str, Mapping[str, Any]]],
    baseline: str | None,
    primary: str | None,
    primary_higher: bool | None,
) -> list[Triage]:
    """One Triage per item id, in item order. A primary metric that is not higher-is-better has no failures;
    one that is not 0/1 on an item has no flip there."""
    found = []
    for index, item_id in enumerate(ids):
        present = {v: rows[item_id] for v, rows in by_variant.items() if item_id in rows}
        scores = {v: (s.get("scores") or {}).get(primary) if primary else None for v, s in present.items()}
        defined = {v: x for v, x in scores.items() if isinstance(x, (int, float)) and not isinstance(x, bool)}
        answers = {str(s.get("answer")) for s in present.values() if "answer" in s}
        if len(answers) > 1:  # normalized only where the raw answers differ: most items agree verbatim
            answers = {_answer(s) for s in present.values() if "answer" in s}
        disagree = len(set(defined.values())) > 1 or len(answers) > 1
        broke: list[str] = []
        fixed: list[str] = []
        before = defined.get(baseline or "")
        if before in (0, 1):
            for v, after in defined.items():
                if v != baseline and after in (0, 1) and after != before:
                    (broke if before == 1 else fixed).append(v)
        failed = tuple(v for v, x in defined.items() if x == 0) if primary_higher else ()
        found.append(Triage(index, item_id, disagree, tuple(broke), tuple(fixed), failed))
    return found


def choose(
    found: list[Triage], render: Callable[[Triage], str], max_items: int | None = None, max_bytes: int | None = None
) -> list[tuple[Triage, str]]:
    """The items to embed with their rendered blocks, in item order: by tier (disagreements, flips,
    failures, the rest), item order within a tier, until max_items or max_bytes (UTF-8) is reached.
    Deterministic: the same run gives the same page. Only the chosen items are rendered."""
    max_items = MAX_ITEMS if max_items is None else max_items  # read at call time: tests lower them
    max_bytes = MAX_BYTES if max_bytes is None else max_bytes
    chosen: list[tuple[Triage, str]] = []
    total = 0
    for item in sorted(found, key=lambda t: (t.tier, t.index)):
        if len(chosen) >= max_items:
            break
        block = render(item)
        size = len(block.encode("utf-8"))
        if chosen and total + size > max_bytes:
            break  # the first item always goes in (its texts are cut at MAX_TEXT)
        chosen.append((item, block))
        total += size
    return sorted(chosen, key=lambda pair: pair[0].index)
