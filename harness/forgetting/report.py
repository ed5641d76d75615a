"""How forgetting results land in a run directory: a `forgetting` section of run.json, per-item records
in `forgetting/<benchmark>/<weights>.jsonl`, and a table in summary.md."""

from __future__ import annotations

import json
from typing import Any

from harness.config.parse import to_plain
from harness.forgetting.result import REFERENCE, ForgettingResult

STATUS_TEXT = {
    "pass": "within budget",
    "over": "over budget, not significant",
    "fail": "FAILED: over budget",
    None: "-",
}


def forgetting_dict(result: ForgettingResult) -> dict[str, Any]:
    return {
        "settings": to_plain(result.settings),
        "status": "failed" if result.failed else "passed",
        "benchmarks": {
            b["name"]: {
                **b,
                "weights": {
                    label: {
                        "metrics": scores.metrics,
                        "records": f"forgetting/{b['name']}/{label}.jsonl",
                        **({"vs_base": result.comparisons[b["name"]][label]} if label != REFERENCE else {}),
                    }
                    for label, scores in result.scores[b["name"]].items()
                },
            }
            for b in result.benchmarks
        },
        "weights": {
            t.label: {
                "variants": list(t.variants),
                "model": t.engine.model.name,
                "model_identity": t.engine.model.identity,
                "backend": t.engine.backend,
                "scored_with": t.scored_with,
                "loglikelihood_requests": _first(result, t.label, "requests"),
                "seconds": _first(result, t.label, "seconds"),
            }
            for t in result.targets
        },
        "skipped": result.skipped,
    }


def forgetting_files(result: ForgettingResult) -> dict[str, str]:
    """Relative path -> JSONL text, one file per benchmark and set of weights."""
    return {
        f"forgetting/{benchmark}/{label}.jsonl": "".join(
            json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in scores.records
        )
        for benchmark, by_label in result.scores.items()
        for label, scores in by_label.items()
    }


def forgetting_markdown(result: ForgettingResult) -> list[str]:
    budget = result.settings.max_drop
    lines = [
        "",
        "## Forgetting",
        "",
        "Accuracy on general benchmarks, base weights against each variant's own weights, on the same items. "
        "Accuracy with Wilson's 95% interval; delta with the 95% interval from McNemar's test, whose p is shown (exact "
        "below 25 flipped items, else asymptotic with Tango's interval): the interval excludes 0 exactly when p < 0.05; "
        "flips are items right->wrong / wrong->right."
        + (f" Budget: at most {budget:g} points lost." if budget is not None else ""),
        "",
        "| benchmark | weights | variants | items | metric | accuracy | delta vs base | flips -/+ | p | budget |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    variants_of = {t.label: ", ".join(t.variants) or "-" for t in result.targets}
    for b in result.benchmarks:
        metric = b["primary_metric"]
        for label, scores in result.scores[b["name"]].items():
            m = scores.metrics.get(metric, {})
            accuracy = _ci(m.get("value"), m.get("ci_low"), m.get("ci_high"))
            c = result.comparisons[b["name"]].get(label)
            delta = _ci(c["delta"], c["delta_ci_low"], c["delta_ci_high"], signed=True) if c else "-"
            flips = f"{c['right_to_wrong']} / {c['wrong_to_right']}" if c and c["right_to_wrong"] is not None else "-"
            p = f"{c['p_value']:.3f}" if c and c.get("p_value") is not None else "-"
            status = STATUS_TEXT[c["status"]] if c else "reference"
            lines.append(
                f"| {b['name']} | {label} | {variants_of[label]} | {b['items']} | {metric} | {accuracy} | {delta} | {flips} | {p} | {status} |"
            )
    for target in result.targets:
        lines.append(f"\n`{target.label}` scored with {target.scored_with}.")
    return lines


def _ci(value: float | None, low: float | None, high: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    fmt = "{:+.3f}" if signed else "{:.3f}"
    text = fmt.format(value)
    if low is not None and high is not None:
        text += f" [{fmt.format(low)}, {fmt.format(high)}]"
    return text


def _first(result: ForgettingResult, label: str, what: str) -> Any:
    for by_label in result.scores.values():
        if label in by_label:
            return getattr(by_label[label], what)
    return None
