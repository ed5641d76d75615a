"""Few-shot sweeps: `few_shot = [0, 1, 3]` on a `kind = "prompted"` table stands for one prompted variant
per k, named `NAME@k0`, `NAME@k1`, `NAME@k3`, each with that integer few_shot and the table's other
settings. They share one engine (the pool keys engines by model and backend), so a sweep loads the model
once. Expanded on the raw TOML tables, before any table is parsed: a variant's Config holds one integer.

Each expansion carries `sweep = "NAME"`, a key only this module writes (PromptedVariant.Config accepts
it): run.json records it, `--variants NAME` selects the whole sweep, and a rag `inner` naming the sweep
is told which expansions it may name instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from harness.config.guards import check_name
from harness.config.parse import MAX_INT
from harness.core.errors import ConfigError

SWEEP_KEY = "sweep"  # the marker an expansion carries: the sweep's name
SWEPT_KIND = "prompted"
_EXPANSION = re.compile(r"(.+)@k(\d+)")


def expansion_name(sweep: str, k: int) -> str:
    return f"{sweep}@k{k}"


def parse_expansion(name: str) -> tuple[str, int] | None:
    """("prompted", 3) for "prompted@k3"; None for a name that is not shaped like an expansion."""
    found = _EXPANSION.fullmatch(name)
    return (found.group(1), int(found.group(2))) if found else None


def expand_sweeps(tables: Mapping[str, Mapping[str, Any]], where: str) -> dict[str, dict[str, Any]]:
    """The variant tables with each sweep replaced, in its place, by its expansions (in the list's order).

    `where` is the file declaring them. Idempotent: an expansion's table (integer few_shot and its
    `sweep` marker) passes through as it is. Tables that are not sweeps are left for parse_variant to check."""
    declared = set(tables)
    expanded: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            expanded[name] = table  # type: ignore[assignment]  # parse_variant says "expected a table"
            continue
        if SWEEP_KEY in table:
            _check_marker(name, table, where)
        if not isinstance(table.get("few_shot"), list):
            expanded[name] = dict(table)
            continue
        for k in _sweep_values(name, table, where):
            child = expansion_name(name, k)
            if child in declared:
                raise ConfigError(
                    f"the sweep's expansion '{child}' is also declared as a variant",
                    f"{where} [variants.{child}]",
                    f"rename one of them: [variants.{name}] few_shot expands into {name}@kK",
                )
            expanded[child] = {**table, "few_shot": k, SWEEP_KEY: name}
    return expanded


def _sweep_values(name: str, table: Mapping[str, Any], where: str) -> list[int]:
    """The list's k values, each checked: integers >= 0, no repeats, on a prompted variant."""
    key = f"{where} [variants.{name}] few_shot"
    values = table["few_shot"]
    kind = table.get("kind")
    if isinstance(kind, str) and kind != SWEPT_KIND:
        raise ConfigError(
            f"a few_shot list sweeps a prompted variant, but this one is kind = {json.dumps(kind)[:40]}",
            key,
            'use kind = "prompted", or one integer few_shot',
        )
    check_name(name, "variant", where, f"[variants.{json.dumps(name)[:60]}]")  # before it names the expansions
    if not values:
        raise ConfigError("few_shot = [] sweeps nothing", key, "list the k to try, e.g. few_shot = [0, 1, 3, 5]")
    for i, k in enumerate(values):
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_INT:
            raise ConfigError(
                f"few_shot[{i}] = {json.dumps(k)[:40]} is not a whole number of examples (0 or more)",
                key,
                "e.g. few_shot = [0, 1, 3, 5]",
            )
    repeated = next((k for i, k in enumerate(values) if k in values[:i]), None)
    if repeated is not None:
        raise ConfigError(f"few_shot lists {repeated} twice", key, f"list each k once: {sorted(set(values))}")
    return list(values)


def _check_marker(name: str, table: Mapping[str, Any], where: str) -> None:
    """`sweep` is written by the expansion: by hand it would plot a variant as a sweep it is not part of."""
    marked, k = table[SWEEP_KEY], table.get("few_shot")
    if not (isinstance(marked, str) and isinstance(k, int) and expansion_name(marked, k) == name):
        raise ConfigError(
            f"'{SWEEP_KEY}' is set by a few_shot list, not by hand",
            f"{where} [variants.{name}] {SWEEP_KEY}",
            "remove it; to sweep, write few_shot = [0, 1, 3] on one [variants.NAME] table",
        )


def sweeps_of(tables: Mapping[str, Mapping[str, Any]]) -> dict[str, list[str]]:
    """Sweep name -> its expansions' names, in declared order, from expanded tables."""
    found: dict[str, list[str]] = {}
    for name, table in tables.items():
        marked = table.get(SWEEP_KEY) if isinstance(table, Mapping) else None
        if isinstance(marked, str):
            found.setdefault(marked, []).append(name)
    return found
