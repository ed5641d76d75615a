"""The judge metric: a judge variant's 1-5 grade of each output by a rubric, and how a verdict reads.

The grading itself runs in harness.run.judge (the judge variant's `generate`, through the engine pool and
the generation cache); this module holds what needs no engine: the prompt the judge gets, the rule that
reads a score out of its verdict, and the metric that averages the scores. A sample keeps the prompt and
the raw verdict, so a result directory is re-scored (or re-parsed by a changed rule) without the judge.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from harness.core.types import Message
from harness.scoring.metrics.base import MeanMetric, MetricInput, register_metric

LOWEST, HIGHEST = 1, 5
JUDGE_SYSTEM = (
    "You grade an answer to a task by a rubric. Explain your grade in a few sentences, then end with one "
    f"line: Score: N, where N is a whole number from {LOWEST} (worst) to {HIGHEST} (best)."
)
# "1-5", "1 to 5" and "1–5" name the scale, not a grade: they are blanked before either rule reads the text
# (a judge often echoes the scale: "Score (1-5): 4").
_RANGE = re.compile(r"(?<![\w.])[0-9]+\s*(?:-|–|to)\s*[0-9]+(?![\w.])", re.I)
# "Score: 4", "**Score:** 4", "score = 4/5": the label, at most a few non-word characters, a number
_LABELLED = re.compile(r"\bscore\b\W{0,6}?(-?\d+(?:[.,]\d+)?)(?:\s*(?:/|out of)\s*(\d+))?", re.I)


def parse_verdict(text: str) -> int | None:
    """The grade a verdict gives, or None when it gives none (never a guess).

    The last `Score: N` decides: N a whole number 1-5 (`N/5` and `N out of 5` allowed) is the grade; any
    other number there (0, 7, 4.5, 3/10) leaves the verdict unparsed. A verdict without the label is
    unparsed too: a small judge often echoes its prompt, and a bare digit there is the rubric's ("5: all
    three match"), not a grade (the embedded model's verdicts on the demo read 5 that way).
    """
    text = _RANGE.sub(" ", text)
    labelled = list(_LABELLED.finditer(text))
    if not labelled:
        return None
    number, scale = labelled[-1].group(1), labelled[-1].group(2)
    if not number.isdigit() or (scale is not None and int(scale) != HIGHEST):
        return None
    value = int(number)
    return value if LOWEST <= value <= HIGHEST else None


def judge_messages(rubric: str, task: str, reference: str, output: str) -> tuple[Message, ...]:
    """What the judge is asked about one output: the rubric, the task as the variant got it (the item's
    rendered prompt), the reference when the item has one, and the output."""
    parts = [f"Rubric:\n{rubric.strip()}", f"Task:\n{task}"]
    if reference.strip():
        parts.append(f"Reference answer:\n{reference}")
    parts += [
        f"Answer to grade:\n{output}",
        f'Grade the answer by the rubric. End with the line "Score: N", N a whole number from {LOWEST} to {HIGHEST}.',
    ]
    return Message("system", JUDGE_SYSTEM), Message("user", "\n\n".join(parts))


@register_metric("judge")
class JudgeMetric(MeanMetric):
    description = (
        'a judge variant\'s 1-5 grade of the output by a rubric: { name = "judge", rubric = "...", '
        'judge = "VARIANT" }; unparsed verdicts are left out (n)'
    )
    proportion = False  # a mean of grades 1-5 gets the bootstrap interval, even when every grade is 1

    def stats(self, inputs: Sequence[MetricInput], cache: dict[str, Any]) -> np.ndarray:
        return np.array([[np.nan if i.judge is None else float(i.judge)] for i in inputs], dtype=float).reshape(-1, 1)
