"""The judge metric's config and verdicts: every mistake in `{ name = "judge", rubric, judge }` is one line
(exit 2) before anything generates; a verdict's score is read by one documented rule, and a verdict that
gives none is None, never a guess; a 1-5 mean gets a mean interval and paired deltas a t-test, never
Wilson's or McNemar's, even when every grade is 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.config.settings import MetricSpec
from harness.scoring.answers import Extractor
from harness.scoring.metrics.judge import judge_messages, parse_verdict
from harness.scoring.paired import compare_paired
from harness.scoring.scores import ScoringSample, score

JUDGE = '{ name = "judge", rubric = "5: the right capital; 1: a wrong one", judge = "grader" }'
GRADER = '\n[variants.grader]\nkind = "fake"\ndefault = "Score: 4"\n'


def with_metric(suite: Path, metric: str, tables: str = GRADER) -> Path:
    toml = suite / "suite.toml"
    text = toml.read_text(encoding="utf-8")
    assert '"output_length"]' in text
    toml.write_text(text.replace('"output_length"]', f'"output_length", {metric}]', 1) + tables, encoding="utf-8")
    return suite


def one_error(capsys: pytest.CaptureFixture[str], argv: list[str], *needles: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize(
    ("metric", "needles"),
    [
        ('"judge"', ("names no judge variant", "metrics", 'judge = "VARIANT"')),
        ('{ name = "judge", judge = "grader" }', ("has no rubric",)),
        ('{ name = "judge", rubric = "  ", judge = "grader" }', ("has no rubric",)),
        ('{ name = "judge", rubric = "x", judge = "" }', ("names no judge variant",)),
        ('{ name = "judge", rubric = "x", judge = "grader", field = "capital" }', ("whole output", "remove field")),
        ('{ name = "token_f1", field = "capital", rubric = "x" }', ("'token_f1[capital]' has key 'rubric'",)),
        ('{ name = "rouge1", judge = "grader" }', ("'rouge1' has key 'judge'",)),
        ('{ name = "judge", rubric = "x", judge = "grader", rubrc = "y" }', ("rubrc",)),
        ('{ name = "judge", rubric = 5, judge = "grader" }', ("rubric",)),
        (f"{JUDGE}, {JUDGE}", ("listed twice",)),
    ],
)
def test_a_wrong_judge_entry_is_one_line(
    metric: str, needles: tuple[str, ...], tiny_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = with_metric(tiny_suite, metric)
    one_error(capsys, ["run", str(suite), "--out", str(tmp_path / "run"), "--quiet"], *needles)
    assert not (tmp_path / "run").exists()


def test_a_judge_that_is_not_declared_is_named_with_a_close_one(
    tiny_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = with_metric(tiny_suite, JUDGE.replace('"grader"', '"grade"'))
    line = one_error(capsys, ["run", str(suite), "--out", str(tmp_path / "run"), "--quiet"], "'grade'", "not declared")
    assert "did you mean 'grader'?" in line
    assert not (tmp_path / "run").exists()


def test_a_run_config_may_declare_the_judge(tiny_suite: Path, tmp_path: Path) -> None:
    suite = with_metric(tiny_suite, JUDGE, tables="")
    config = tmp_path / "run.toml"
    config.write_text('[variants.canned]\nkind = "fake"\ndefault = "x"\n' + GRADER)
    assert main(["run", str(suite), "--config", str(config), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    assert (tmp_path / "run" / "samples" / "canned.jsonl").is_file()
    assert not (tmp_path / "run" / "samples" / "grader.jsonl").exists()  # the judge is not evaluated


def test_a_run_whose_only_variant_is_the_judge_says_so(
    tmp_path: Path, tiny_suite: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = with_metric(tiny_suite, JUDGE)
    config = tmp_path / "only.toml"
    config.write_text(GRADER)
    argv = ["run", str(suite), "--config", str(config), "--out", str(tmp_path / "b"), "--quiet"]
    one_error(capsys, argv, "the only variant to run is the judge, 'grader'")


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        ("Score: 4", 4),
        ("The answer names Paris.\nScore: 5", 5),
        ("**Score:** 3", 3),
        ("score = 2/5", 2),
        ("Score: 4 out of 5", 4),
        ("Score (1-5): 4", 4),  # the scale is no grade
        ("Score: 1 to 5... Score: 2", 2),  # the last label decides
        ("Rated 5 first, then Score: 2", 2),  # the label, not a bare digit
        ("Score: 7", None),  # out of range: no fallback to another number
        ("Score: 0", None),
        ("Score: 4.5", None),  # not a whole grade
        ("Score: 3/10", None),  # another scale
        ("Score: -2", None),
        ("I would give it 4 out of 5.", None),  # no label: a bare digit may be an echoed rubric's
        ("On a scale of 1 to 5 this is a 3.", None),
        ("Rubric: 5: all three match; 1: not JSON. Task: ...", None),  # the prompt echoed back
        ("10/10", None),
        ("It scored 12 points", None),
        ("", None),
        ("I cannot judge this.", None),
    ],
)
def test_the_score_is_read_by_one_rule(verdict: str, expected: int | None) -> None:
    assert parse_verdict(verdict) == expected


def test_the_prompt_holds_rubric_task_reference_and_output() -> None:
    system, user = judge_messages("Rubric text", "What is the capital of France?", '{"capital": "Paris"}', "Lyon")
    assert system.role == "system" and "Score: N" in system.content
    assert user.role == "user"
    for part in ("Rubric:\nRubric text", "Task:\nWhat is the capital", 'Reference answer:\n{"capital"', "grade:\nLyon"):
        assert part in user.content
    assert user.content.index("Rubric") < user.content.index("Task") < user.content.index("Answer to grade")
    _, without = judge_messages("R", "Q", "  ", "A")
    assert "Reference answer" not in without.content  # an item without a reference: nothing to compare


def test_unparsed_verdicts_are_left_out_not_scored() -> None:
    grades = [5.0, None, 3.0, None, 4.0, 4.0]
    samples = [ScoringSample("out", "ref", judge=g) for g in grades]
    scores, _ = score(samples, [MetricSpec("judge")], Extractor("text"), bootstrap=200)
    assert scores.per_sample["judge"] == grades
    summary = scores.summary["judge"]
    assert summary.n == 4 and summary.value == pytest.approx(4.0)
    assert summary.interval == "bootstrap" and 3.0 <= summary.ci_low <= 4.0 <= summary.ci_high <= 5.0


def test_every_grade_1_is_still_no_proportion() -> None:
    samples = [ScoringSample("out", "ref", judge=1.0) for _ in range(8)]
    summary = score(samples, [MetricSpec("judge")], Extractor("text"), bootstrap=100)[0].summary["judge"]
    assert summary.interval == "bootstrap" and (summary.ci_low, summary.ci_high) == (1.0, 1.0)
    # 0/1 values of another metric are a proportion: Wilson's, as before
    assert score(samples, [MetricSpec("exact_match")], Extractor("text"))[0].summary["exact_match"].interval == "wilson"
    without = score(samples, [MetricSpec("judge")], Extractor("text"), bootstrap=0)[0].summary["judge"]
    assert without.interval is None and without.ci_low is None  # no resamples: no interval, never Wilson's


def test_paired_grades_get_the_t_test() -> None:
    before, after = [3.0, 4.0, 2.0, 5.0, 3.0, 4.0], [4.0, 4.0, 3.0, 5.0, 4.0, 5.0]
    assert compare_paired(before, after).test == "paired t"
    ones = [1.0] * 6
    assert compare_paired(ones, ones).test == "mcnemar exact"  # looks like 0/1 data when not told
    told = compare_paired(ones, ones, binary=False)
    assert told.test == "paired t" and told.p_value == 1.0 and (told.ci_low, told.ci_high) == (0.0, 0.0)
    assert np.isclose(compare_paired(before, after, binary=False).delta, 2 / 3)
