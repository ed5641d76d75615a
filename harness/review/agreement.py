"""How far raters agree: Krippendorff's alpha (ordinal; any number of raters, missing ratings allowed; PyPI
`krippendorff`) and, for exactly two raters, Cohen's kappa with quadratic weights (scikit-learn), so that a
4 against a 5 counts as a near miss and a 1 against a 5 as a full one.

How to read them (printed beside each figure):
- alpha: >= 0.800 reliable; 0.667-0.800 tentative conclusions only; < 0.667 too unreliable to rest on
  (Krippendorff 2004, Content Analysis, 241). 1 is perfect agreement, 0 what chance alone gives.
- kappa: Landis and Koch's bands: < 0 poor, 0-0.20 slight, 0.21-0.40 fair, 0.41-0.60 moderate,
  0.61-0.80 substantial, 0.81-1 almost perfect.

A judge model is checked the same way: one more rater on `overall`, beside the people (judge_agreement).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.review import SCALE

Unit = tuple[str, str]  # (item, variant): one output
ALPHA_RELIABLE, ALPHA_TENTATIVE = 0.800, 0.667
KAPPA_BANDS = ((0.0, "poor"), (0.20, "slight"), (0.40, "fair"), (0.60, "moderate"), (0.80, "substantial"))
JUDGE = "judge"  # the judge's rater id when it joins the people


@dataclass(frozen=True)
class Agreement:
    dimension: str
    raters: tuple[str, ...]
    units: int  # outputs rated by two raters or more (the only ones alpha learns from)
    alpha: float | None
    alpha_reading: str
    kappa: float | None  # two raters only, over the outputs both rated
    kappa_reading: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "raters": list(self.raters)}


@dataclass(frozen=True)
class JudgeAgreement:
    """The judge metric against people on `overall`, over the outputs both scored."""

    metric: str
    units: int  # outputs with a judge score and at least one human rating
    alpha: float | None  # the people and the judge as raters together
    alpha_people: float | None  # the people alone, for comparison (None with one rater)
    kappa: float | None  # the judge (rounded) against the people's rounded mean rating
    reading: str
    threshold: float
    trusted: bool  # alpha known and at or above the threshold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_alpha(alpha: float | None) -> str:
    if alpha is None:
        return "not measurable (needs two raters on the same outputs, and more than one rating value)"
    if alpha >= ALPHA_RELIABLE:
        return "reliable (>= 0.800)"
    if alpha >= ALPHA_TENTATIVE:
        return "tentative conclusions only (0.667-0.800)"
    return "unreliable (< 0.667): do not rest a decision on these ratings"


def read_kappa(kappa: float | None) -> str:
    if kappa is None:
        return "not measurable"
    band = next((name for edge, name in KAPPA_BANDS if kappa <= edge), "almost perfect")
    return f"{band} (Landis and Koch)"


def krippendorff_alpha(table: Mapping[Unit, Mapping[str, float]], raters: Sequence[str] | None = None) -> float | None:
    """Ordinal alpha over a units x raters table (a rater missing on a unit is left out there)."""
    import numpy as np

    raters = list(raters or sorted({r for found in table.values() for r in found}))
    paired = [u for u in sorted(table) if sum(r in table[u] for r in raters) >= 2]
    values = sorted({float(v) for u in paired for r, v in table[u].items() if r in raters} | set(map(float, SCALE)))
    if len(raters) < 2 or not paired or len({table[u][r] for u in paired for r in raters if r in table[u]}) < 2:
        return None  # nothing pairable, or every rating the same: alpha is 0/0
    import krippendorff

    data = np.array([[table[u].get(r, np.nan) for u in paired] for r in raters], dtype=float)
    alpha = float(krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal", value_domain=values))
    return alpha if math.isfinite(alpha) else None


def weighted_kappa(first: Sequence[int], second: Sequence[int]) -> float | None:
    """Cohen's kappa with quadratic weights on the 1-5 scale; None when undefined (one value throughout)."""
    if len(first) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 when both raters give one value throughout
        kappa = float(cohen_kappa_score(list(first), list(second), labels=list(SCALE), weights="quadratic"))
    return kappa if math.isfinite(kappa) else None


def agreement(dimension: str, table: Mapping[Unit, Mapping[str, int]]) -> Agreement:
    raters = tuple(sorted({r for found in table.values() for r in found}))
    alpha = krippendorff_alpha(table, raters)
    kappa = None
    if len(raters) == 2:
        both = [u for u in sorted(table) if set(raters) <= set(table[u])]
        kappa = weighted_kappa([table[u][raters[0]] for u in both], [table[u][raters[1]] for u in both])
    units = sum(len(found) >= 2 for found in table.values())
    reading = read_kappa(kappa) if len(raters) == 2 else "for two raters only: read alpha"
    return Agreement(dimension, raters, units, alpha, read_alpha(alpha), kappa, reading)


def consensus(ratings: Mapping[str, float]) -> int:
    """The people's rating of one output as one category: their mean, rounded half up."""
    return int(math.floor(sum(ratings.values()) / len(ratings) + 0.5))


def judge_agreement(
    people: Mapping[Unit, Mapping[str, int]],
    judge: Mapping[Unit, float | None],
    threshold: float,
    metric: str = JUDGE,
) -> JudgeAgreement:
    """The judge as one more rater on `overall`: alpha with the people, over the outputs both scored.
    `people` is (item, variant) -> rater -> rating; `judge` is (item, variant) -> the judge's score."""
    both = {u: dict(people[u]) for u in people if people[u] and judge.get(u) is not None}
    together = {u: {**found, JUDGE: float(judge[u])} for u, found in both.items()}  # type: ignore[arg-type]
    alpha = krippendorff_alpha(together)
    alpha_people = krippendorff_alpha(both)
    units = sorted(both)
    kappa = weighted_kappa(
        [min(max(round(float(judge[u])), SCALE[0]), SCALE[-1]) for u in units],  # type: ignore[arg-type]
        [consensus(both[u]) for u in units],
    )
    trusted = alpha is not None and alpha >= threshold
    reading = f"{read_alpha(alpha)}; the judge counts in the decision only at alpha >= {threshold:g}"
    return JudgeAgreement(metric, len(units), alpha, alpha_people, kappa, reading, threshold, trusted)
