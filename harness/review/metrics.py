"""Ratings as metrics, and what the comparer says about them.

`with_ratings(result)` returns the run with `human_accuracy`, `human_format` and `human_overall` added, as
if `harness run` had scored them: per sample the mean of its raters' ratings (None where no one rated it),
per variant the mean over rated items with a seeded percentile bootstrap interval (the intervals every
continuous metric gets, harness.scoring.scores). So `compare`, `diff` and `decide` give them paired deltas
(the paired t-test on the items both variants had rated) and targets (`human_overall >= 4`) with no code of
their own. `review_summary` adds the agreement across raters, the judge's agreement with people and the
pairwise win rates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from harness.config.settings import Target
from harness.results.read import RunJson, RunResult
from harness.review import DIMENSIONS, METRIC_PREFIX, REVIEW_DIR
from harness.review.agreement import JudgeAgreement, agreement, judge_agreement
from harness.review.ratings import Rating, load_choices, load_ratings, units

JUDGE_METRIC = "judge"  # the judge metric's key (a `name[...]` variant of it counts too)
BOOTSTRAP = 1000


def is_judge(metric: str) -> bool:
    return metric.split("[", 1)[0] == JUDGE_METRIC


def human_metric(dimension: str) -> str:
    return METRIC_PREFIX + dimension


def with_ratings(result: RunResult) -> RunResult:
    """The run with its stored ratings as metrics; itself when it holds none. Calling it twice is harmless."""
    ratings = load_ratings(result.dir)
    if not ratings:
        return result
    raw = dict(result.run_json.raw)
    metrics = {v: dict(found) for v, found in (raw.get("metrics") or {}).items()}
    samples = {v: dict(found) for v, found in result.samples.items()}
    for dimension in DIMENSIONS:
        name = human_metric(dimension)
        per_output = units(ratings, dimension)
        for variant in result.variants:
            rated = {i: sum(r.values()) / len(r) for (i, v), r in per_output.items() if v == variant}
            if not rated:
                continue
            metrics.setdefault(variant, {})[name] = _summary([rated[i] for i in sorted(rated)])
            for item, sample in samples[variant].items():
                samples[variant][item] = {**sample, "scores": {**(sample.get("scores") or {}), name: rated.get(item)}}
    raw["metrics"] = metrics
    return dataclasses.replace(result, run_json=RunJson(raw), samples=samples)


def _summary(values: list[float]) -> dict[str, Any]:
    import numpy as np

    from harness.scoring.intervals import percentile_interval
    from harness.scoring.scores import bootstrap_indices

    array = np.asarray(values, dtype=float)
    indices = bootstrap_indices(len(values), BOOTSTRAP, seed=0)
    bounds = None if indices is None else percentile_interval(array[indices].mean(axis=1))
    return {
        "value": float(array.mean()),
        "ci_low": bounds[0] if bounds else None,
        "ci_high": bounds[1] if bounds else None,
        "interval": "bootstrap" if bounds else None,
        "n": len(values),
        "higher_is_better": True,
    }


def judge_metrics(result: RunResult) -> list[str]:
    return [m for m in dict.fromkeys(m for v in result.variants for m in result.metric_names(v)) if is_judge(m)]


def judge_scores(result: RunResult, metric: str = JUDGE_METRIC) -> dict[tuple[str, str], float | None]:
    """(item, variant) -> the judge's score of that output (None where its verdict could not be read)."""
    return {
        (item, variant): result.samples[variant][item].get("scores", {}).get(metric)
        for variant in result.variants
        for item in result.samples.get(variant, {})
    }


def judge_trust(
    result: RunResult, metric: str, threshold: float, ratings: list[Rating] | None = None
) -> JudgeAgreement:
    """How far the judge agrees with the people who rated the same outputs (overall)."""
    people = units(load_ratings(result.dir) if ratings is None else ratings, "overall")
    return judge_agreement(people, judge_scores(result, metric), threshold, metric)


def review_summary(result: RunResult, judge_min_alpha: float) -> dict[str, Any] | None:
    """Agreement per dimension, the judge's agreement with people, pairwise win rates; None without review."""
    import json

    from harness.review.export import key_path
    from harness.review.pairwise import win_rate

    ratings, choices = load_ratings(result.dir), load_choices(result.dir)
    if not ratings and not choices:
        return None
    pairs: dict[tuple[str, str], None] = {}
    for export in dict.fromkeys(c.export for c in choices):
        path = key_path(result.dir, export)
        if path.is_file():
            first, second = json.loads(path.read_text(encoding="utf-8"))["variants"]
            pairs[(first, second)] = None
    return {
        "folder": str(result.dir / REVIEW_DIR),
        "raters": sorted({r.rater for r in ratings} | {c.rater for c in choices}),
        "outputs_rated": len({(r.item, r.variant) for r in ratings}),
        "agreement": [agreement(d, units(ratings, d)).to_dict() for d in DIMENSIONS] if ratings else [],
        "judge": [judge_trust(result, m, judge_min_alpha, ratings).to_dict() for m in judge_metrics(result)]
        if ratings
        else [],
        "pairwise": [win_rate(choices, a, b).to_dict() for a, b in pairs],
    }


def summary_lines(summary: Mapping[str, Any] | None) -> list[str]:
    """The review section in words (import's output, report.md)."""
    from harness.review.pairwise import PairwiseResult

    if not summary:
        return []

    def num(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    lines = [f"raters: {', '.join(summary['raters'])}; outputs rated: {summary['outputs_rated']}"]
    for a in summary["agreement"]:
        lines.append(
            f"{a['dimension']}: Krippendorff's alpha (ordinal) {num(a['alpha'])}, {a['alpha_reading']}; "
            f"weighted kappa (quadratic) {num(a['kappa'])}, {a['kappa_reading']}; {a['units']} outputs with 2+ raters"
        )
    for j in summary["judge"]:
        lines.append(
            f"judge metric '{j['metric']}' against people (overall, {j['units']} outputs): alpha {num(j['alpha'])} "
            f"(people alone {num(j['alpha_people'])}), kappa {num(j['kappa'])}; {j['reading']}: "
            f"{'trusted' if j['trusted'] else 'not trusted'}"
        )
    lines += [PairwiseResult(**p).line for p in summary["pairwise"]]
    return lines


def judge_gate(
    result: RunResult, targets: tuple[Target, ...], threshold: float
) -> tuple[tuple[Target, ...], list[str]]:
    """The decision's targets less those on a judge metric people do not back (alpha with their ratings
    of the same outputs below `threshold`, or unknown), with an evidence line per judge metric either way."""
    judged = list(dict.fromkeys(t.metric for t in targets if is_judge(t.metric)))
    dropped, notes = set(), []
    for metric in judged:
        trust = judge_trust(result, metric, threshold)
        alpha = "unknown" if trust.alpha is None else f"{trust.alpha:.3f}"
        measured = f"alpha {alpha} with human ratings of {trust.units} outputs (overall), judge_min_alpha {threshold:g}"
        if trust.trusted:
            notes.append(f"judge '{metric}' counts: {measured}")
            continue
        dropped.add(metric)
        fix = "rate its outputs by hand: harness review export" if trust.alpha is None else "fix its rubric or judge"
        notes.append(f"judge '{metric}' ignored, its targets left out: {measured}; {fix}")
    return tuple(t for t in targets if t.metric not in dropped), notes
