"""`harness diff OLD NEW`: two result directories of one suite (main vs a PR; last night vs tonight).

Per variant and metric the delta with a paired CI over the items both runs scored, the items that
flipped (with both outputs), what changed between the runs (model, adapter and data hashes, prompts,
parameters, package versions), and gates that decide the exit code: on metrics, and on the decision
(`decision = true`: what `harness decide` would ship, and by which rule, must not change).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from harness.compare import ALPHA
from harness.config.settings import check_primary, primary_metric
from harness.core.errors import ConfigError, HarnessError, UnknownNameError, did_you_mean
from harness.core.hardware import describe_change
from harness.core.ranges import ranged
from harness.results.read import RunResult
from harness.scoring.paired import compare_paired, holm

TOP_FLIPS = 5


@dataclass(frozen=True)
class Gate:
    """One [[gate]] of a gate file: a rule on one metric, for some or all variants; or, with decision = true,
    on the two runs' decisions."""

    metric: str = ""  # required unless decision = true
    variants: tuple[str, ...] = ()  # default: every variant in both runs
    min: float | None = ranged(None, example="0.8")  # absolute floor on the new value (finite)
    max_drop: float | None = ranged(None, 0, example="0.02")  # the new value may be at most this much below the old one
    significant: bool = False  # fail only when the drop is statistically significant (paired test, alpha)
    decision: bool = False  # fail when the recommendation (the variant to ship or the rule) changes
    where: str = field(default="--gate", compare=False, metadata={"config": False})  # "FILE [[gate]] N", for errors


def load_gates(path: str) -> list[Gate]:
    from pathlib import Path

    from harness.config.parse import parse_table, read_toml

    table = read_toml(Path(path))
    unknown = [k for k in table if k != "gate"]
    if unknown:
        raise ConfigError(f"unknown key '{unknown[0]}'", path, "a gate file holds [[gate]] tables only")
    entries = table.get("gate", [])
    if not isinstance(entries, list):
        raise ConfigError("'gate' must be an array of tables", path, "write [[gate]] (two brackets) before each rule")
    wheres = [f"{path} [[gate]] {i}" for i in range(1, len(entries) + 1)]
    gates = [replace(parse_table(Gate, entry, where), where=where) for entry, where in zip(entries, wheres)]
    if not gates:
        raise ConfigError("no [[gate]] tables", path, 'add [[gate]] metric = "exact_match" min = 0.8')
    for gate in gates:
        if gate.decision:
            if gate.metric or gate.variants or gate.min is not None or gate.max_drop is not None or gate.significant:
                raise ConfigError(
                    "a decision gate takes no metric, variants, min, max_drop or significant",
                    gate.where,
                    "give decision = true a [[gate]] of its own",
                )
            continue
        if not gate.metric:
            raise ConfigError(
                "missing required key 'metric'", gate.where, 'add metric = "exact_match" (or decision = true)'
            )
        if gate.min is None and gate.max_drop is None and not gate.significant:
            raise ConfigError("a gate needs min, max_drop or significant = true", gate.where, "e.g. min = 0.8")
    return gates


def diff_runs(
    old: RunResult,
    new: RunResult,
    gates: list[Gate] | None = None,
    alpha: float = ALPHA,
    top: int = TOP_FLIPS,
    primary: str | None = None,
) -> dict[str, Any]:
    """The diff as plain data (diff.json); `diff_markdown` renders it for a PR comment, the primary metric's
    rows first (`primary`, --primary; else the new run's suite's, config.settings.primary_metric)."""
    if old.suite_name != new.suite_name:
        raise HarnessError(
            f"different suites: {old.suite_name} vs {new.suite_name}",
            f"{old.dir} / {new.dir}",
            "diff two runs of the same suite",
        )
    from harness.review.metrics import with_ratings

    old, new = with_ratings(old), with_ratings(new)  # human ratings diff like any metric (both runs rated)
    variants = [v for v in new.variants if v in old.variants]
    rows = []
    for variant in variants:
        metrics = [m for m in new.metric_names(variant) if m in old.metric_names(variant)]
        for metric in metrics:
            rows.append(_metric_row(old, new, variant, metric))
    metric_keys = list(dict.fromkeys(r["metric"] for r in rows))
    if primary is not None:
        check_primary(primary, metric_keys, "--primary")
    primary = primary or primary_metric(new.run_json.suite_config, metric_keys)
    tested = [r for r in rows if r["p_value"] is not None]
    for row, adjusted in zip(tested, holm([r["p_value"] for r in tested])):
        row["p_holm"] = adjusted
        row["significant"] = adjusted < alpha
    decisions = _decisions(old, new) if any(gate.decision for gate in gates or []) else None
    checked = [
        _check_decision(decisions) if decisions and gate.decision else _check(gate, rows, variants, alpha)
        for gate in gates or []
    ]
    results = [entry for found in checked for entry in found]
    found = {
        "old": {"dir": str(old.dir), "run_id": old.run_json.run_id, "created_at": old.run_json.created_at},
        "new": {"dir": str(new.dir), "run_id": new.run_json.run_id, "created_at": new.run_json.created_at},
        "suite": new.suite_name,
        "alpha": alpha,
        "primary_metric": primary,
        "only_old": [v for v in old.variants if v not in new.variants],
        "only_new": [v for v in new.variants if v not in old.variants],
        "metrics": rows,
        "flips": {v: _flips(old, new, v, top) for v in variants},
        "changes": run_changes(old, new),
        "gates": results,
        "passed": all(g["passed"] for g in results),
    }
    if decisions:  # only with a decision gate: a diff without one is as it was
        found["decision"] = decisions
    return found


def _decisions(old: RunResult, new: RunResult) -> dict[str, dict[str, Any]]:
    """Each run's decision from its own run.json ([decision] and [cost]), as `harness decide RUN_DIR` makes it."""
    from harness.compare.table import run_decision

    sides = {}
    for side, result in (("old", old), ("new", new)):
        made = run_decision(result)
        found = (made or {}).get("decision") or {}
        status = "no target" if made is None else "not made" if not found else "made"
        sides[side] = {
            "status": status,
            "ship": found.get("ship"),
            "rule": found.get("rule"),
            "recommendation": found.get("recommendation"),
            "targets": [t["text"] for t in found.get("targets") or []],
            "note": "no [decision] target in its run.json" if made is None else made["error"] or "",
        }
    return sides


def _check_decision(decisions: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Skipped (passes) when either run sets no target; else fails when the variant to ship or the rule
    that picked it differs. A decision that could not be made counts as ship nothing, rule "not made"."""
    entry: dict[str, Any] = {"variant": "-", "metric": "decision", "rule": "same recommendation (ship and rule)"}
    untargeted = [side for side in ("old", "new") if decisions[side]["status"] == "no target"]
    if untargeted:
        why = f"the {' and the '.join(untargeted)} run set{'s' if len(untargeted) == 1 else ''} no [decision] target"
        return [entry | {"passed": True, "skipped": True, "why": why}]
    old, new = (
        {"ship": d["ship"], "rule": d["rule"] if d["status"] == "made" else "not made"}
        for d in (decisions["old"], decisions["new"])
    )
    reasons = [
        f"{key} {old[key] or 'nothing'} -> {new[key] or 'nothing'}" for key in ("ship", "rule") if old[key] != new[key]
    ]
    return [entry | {"passed": not reasons, "skipped": False, "why": "; ".join(reasons)}]


def _metric_row(old: RunResult, new: RunResult, variant: str, metric: str) -> dict[str, Any]:
    before, after = old.scores(variant, metric), new.scores(variant, metric)
    ids = sorted(i for i in before.keys() & after.keys() if before[i] is not None and after[i] is not None)
    row: dict[str, Any] = {
        "variant": variant,
        "metric": metric,
        "items": len(ids),
        "old": old.run_json.metric(variant, metric).get("value"),
        "new": new.run_json.metric(variant, metric).get("value"),
        "higher_is_better": new.run_json.metric(variant, metric).get("higher_is_better"),
        "delta": None,
        "delta_ci_low": None,
        "delta_ci_high": None,
        "p_value": None,
        "p_holm": None,
        "significant": None,
        "test": None,
        "right_to_wrong": None,
        "wrong_to_right": None,
    }
    if len(ids) >= 2:
        binary = False if False in (old.paired_binary(metric), new.paired_binary(metric)) else None
        paired = compare_paired([before[i] for i in ids], [after[i] for i in ids], binary)  # type: ignore[misc]
        row.update(
            delta=paired.delta,
            delta_ci_low=paired.ci_low,
            delta_ci_high=paired.ci_high,
            p_value=paired.p_value,
            test=paired.test,
            right_to_wrong=paired.right_to_wrong,
            wrong_to_right=paired.wrong_to_right,
        )
    return row


def _flips(old: RunResult, new: RunResult, variant: str, top: int) -> list[dict[str, Any]]:
    """Items whose score moved on a 0/1 metric, worst first (right->wrong), with both outputs."""
    metrics = [m for m in new.metric_names(variant) if m in old.metric_names(variant)]
    flips: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        before, after = old.scores(variant, metric), new.scores(variant, metric)
        for item in sorted(before.keys() & after.keys()):
            a, b = before[item], after[item]
            if a in (0.0, 1.0) and b in (0.0, 1.0) and a != b:
                entry = flips.setdefault(
                    item,
                    {
                        "id": item,
                        "lost": [],
                        "gained": [],
                        "old_output": old.samples[variant][item].get("output"),
                        "new_output": new.samples[variant][item].get("output"),
                    },
                )
                entry["lost" if a > b else "gained"].append(metric)
    ordered = sorted(flips.values(), key=lambda f: (-len(f["lost"]), len(f["gained"]), f["id"]))
    return ordered[:top]  # the counts of every flip are in the metric rows


def run_changes(old: RunResult, new: RunResult) -> list[dict[str, Any]]:
    """What differs between the runs' inputs: config, data, weights, prompts sent, environment."""
    before, after = old.run_json, new.run_json
    changes = []
    changes += _dict_changes("suite config", before.suite_config, after.suite_config)
    changes += _dict_changes("data sha256", before.data.get("sha256", {}), after.data.get("sha256", {}))
    for variant in (v for v in new.variants if v in old.variants):
        o, n = before.variants[variant], after.variants[variant]
        changes += _dict_changes(f"{variant} config", o.get("config", {}), n.get("config", {}))
        changes += _dict_changes(f"{variant} engine", o.get("engine", {}), n.get("engine", {}), skip=("index",))
        changed = [
            i
            for i in sorted(old.samples[variant].keys() & new.samples[variant].keys())
            if old.samples[variant][i].get("messages") != new.samples[variant][i].get("messages")
        ]
        if changed:
            example = changed[0]
            changes.append(
                {
                    "what": f"{variant} prompts",
                    "old": f"messages differ for {len(changed)} items, e.g. {example}: "
                    + _first_difference(
                        old.samples[variant][example].get("messages"), new.samples[variant][example].get("messages")
                    ),
                    "new": None,
                }
            )
    env_old, env_new = before.environment, after.environment
    changes += _dict_changes("packages", env_old.get("packages", {}), env_new.get("packages", {}))
    changes += _dict_changes("git", env_old.get("git", {}), env_new.get("git", {}))
    hardware = describe_change(env_old.get("hardware"), env_new.get("hardware"))
    if hardware:  # another CPU can part greedy outputs at near-ties (docs/engine-notes.md)
        changes.append({"what": "hardware", "old": hardware, "new": None})
    return changes


def _dict_changes(what: str, old: Any, new: Any, path: str = "", skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found = []
        for key in sorted(set(old) | set(new)):
            if key in skip:
                continue
            found += _dict_changes(what, old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return found
    return [] if old == new else [{"what": f"{what}: {path}" if path else what, "old": old, "new": new}]


def _first_difference(old: Any, new: Any) -> str:
    for index, (a, b) in enumerate(zip(old or [], new or [])):
        if a != b:
            return f"message {index} ({b.get('role')}) changed"
    return f"{len(old or [])} -> {len(new or [])} messages"


def _check(gate: Gate, rows: list[dict[str, Any]], variants: list[str], alpha: float) -> list[dict[str, Any]]:
    wanted = list(gate.variants) or variants
    for name in wanted:
        if name not in variants:
            raise UnknownNameError(
                f"gate names variant '{name}', not in both runs",
                gate.where,
                did_you_mean(name, variants) or f"one of: {', '.join(variants)}",
            )
    known = {r["metric"] for r in rows}
    if gate.metric not in known:
        raise UnknownNameError(
            f"gate names metric '{gate.metric}', not in both runs",
            gate.where,
            did_you_mean(gate.metric, known) or f"one of: {', '.join(sorted(known))}",
        )
    results = []
    for row in (r for r in rows if r["metric"] == gate.metric and r["variant"] in wanted):
        sign = -1.0 if row["higher_is_better"] is False else 1.0  # a "drop" is a change for the worse
        worse = row["delta"] is not None and sign * row["delta"] < 0
        # The table's verdict (Holm across every row of the diff), so a gate never fails as "significantly
        # worse" on a row the table shows as not significant.
        significant = bool(worse and row["significant"])
        reasons = []
        if gate.min is not None and (row["new"] is None or row["new"] < gate.min):
            reasons.append(f"{row['new']} is below the floor {gate.min:g}")
        if (
            gate.max_drop is not None
            and row["delta"] is not None
            and sign * row["delta"] < -gate.max_drop
            and (significant or not gate.significant)
        ):
            reasons.append(
                f"dropped {abs(row['delta']):.3f} > {gate.max_drop:g}" + (" (significant)" if gate.significant else "")
            )
        if gate.significant and gate.max_drop is None and significant:
            reasons.append(f"significantly worse (p Holm={row['p_holm']:.3g})")
        results.append(
            {
                "variant": row["variant"],
                "metric": gate.metric,
                "rule": _rule(gate),
                "passed": not reasons,
                "why": "; ".join(reasons),
            }
        )
    return results


def _rule(gate: Gate) -> str:
    parts = []
    if gate.min is not None:
        parts.append(f">= {gate.min:g}")
    if gate.max_drop is not None:
        parts.append(f"drop <= {gate.max_drop:g}" + (" (fails only when significant)" if gate.significant else ""))
    elif gate.significant:
        parts.append("not significantly worse")
    return ", ".join(parts)
