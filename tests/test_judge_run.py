"""The judge in a run (fake judges, and a counting engine for the generation cache): every judged sample
keeps the judge's prompt, raw verdict and score; unparsed verdicts are None and counted; the judge's tokens
and cost are its own; a killed run resumes without asking the judge again what it answered; an unchanged
rerun on an engine asks it nothing; re-scoring a result directory needs no judge."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness import FakeVariant, RunOptions, load_suite, run_suite
from harness.cli import main
from harness.core.errors import GenerationFailed
from harness.core.types import Generation, Request
from harness.engines import BACKENDS
from harness.results.read import load_run
from harness.run.progress import PROGRESS_DIR
from harness.scoring.metrics.judge import parse_verdict
from harness.scoring.scores import ScoringSample, score

RUBRIC = "5: the right capital; 1: a wrong one"
JUDGE = f'{{ name = "judge", rubric = "{RUBRIC}", judge = "grader" }}'
GRADER = '\n[variants.grader]\nkind = "fake"\ndefault = "Score: 4"\n'
CAPITALS = {"fr": "Paris", "de": "Berlin", "it": "Rome", "es": "Madrid", "pt": "Lisbon", "at": "Vienna"}


def grade(request: Request) -> str:
    """5 for the right capital in the output, 2 for another, no score at all for no answer; as a task
    variant (the judge evaluated), "Score: 4"."""
    if "Answer to grade:" not in request.messages[-1].content:
        return "Score: 4"
    output = request.messages[-1].content.split("Answer to grade:\n")[1].split("\n\nGrade the answer")[0]
    if "know" in output:
        return "I cannot tell what this answer means."
    return "Right city. Score: 5" if CAPITALS[request.id].lower() in output.lower() else "Wrong city.\nScore: 2"


@pytest.fixture
def judged_suite(tiny_suite: Path) -> Path:
    toml = tiny_suite / "suite.toml"
    text = toml.read_text(encoding="utf-8").replace('"output_length"]', f'"output_length", {JUDGE}]', 1)
    toml.write_text(text + GRADER, encoding="utf-8")
    return tiny_suite


def samples(out: Path, variant: str) -> dict[str, dict]:
    lines = (out / "samples" / f"{variant}.jsonl").read_text().splitlines()
    return {s["id"]: s for s in map(json.loads, lines)}


def run(suite: Path, out: Path, judge: FakeVariant, **options: object) -> Path:
    prebuilt = {"canned": FakeVariant("canned", fn=_canned(suite)), "grader": judge}
    return run_suite(load_suite(suite), RunOptions(out=out, progress=False, **options), prebuilt)  # type: ignore[arg-type]


def _canned(suite: Path):  # noqa: ANN202
    canned = {r["id"]: r["output"] for r in map(json.loads, (suite / "canned.jsonl").read_text().splitlines())}
    return lambda request: canned.get(request.id, "I do not know.")


def test_each_sample_keeps_prompt_verdict_and_score(judged_suite: Path, tmp_path: Path) -> None:
    judge = FakeVariant("grader", fn=grade)
    out = run(judged_suite, tmp_path / "run", judge)
    found = samples(out, "canned")
    expected = {"fr": 5.0, "de": 5.0, "it": 2.0, "es": 5.0, "pt": 5.0, "at": None}
    assert {i: s["scores"]["judge"] for i, s in found.items()} == expected
    fr = found["fr"]["judge"]
    assert fr["variant"] == "grader" and fr["verdict"] == "Right city. Score: 5" and fr["score"] == 5
    assert RUBRIC in fr["prompt"] and "capital of France" in fr["prompt"] and '{"capital": "Paris"}' in fr["prompt"]
    assert found["at"]["judge"]["score"] is None and "cannot tell" in found["at"]["judge"]["verdict"]
    # one generate call per batch of the judge, never one per sample; the judge itself is not evaluated
    assert [len(c) for c in judge.calls] == [4, 2]
    assert not (out / "samples" / "grader.jsonl").exists()
    run_json = json.loads((out / "run.json").read_text())
    assert set(run_json["variants"]) == {"canned"}
    summary = run_json["metrics"]["canned"]["judge"]
    assert summary["n"] == 5 and summary["value"] == pytest.approx(22 / 5) and summary["interval"] == "bootstrap"
    section = run_json["judge"]
    assert section["variant"] == "grader" and section["rubric"] == RUBRIC and section["unparsed"] == 1
    judged = section["judged"]["canned"]
    assert judged["verdicts"] == 6 and judged["unparsed"] == 1
    assert judged["prompt_tokens"] == sum(s["judge"]["prompt_tokens"] for s in found.values())
    # the judge's tokens are its own: the judged variant's usage is its answers' alone
    assert run_json["variants"]["canned"]["usage"]["prompt_tokens_mean"] < 15 < judged["prompt_tokens"] / 6
    # token prices would need [cost]; the tiny suite has none
    assert judged["cost"] is None and judged["cost_basis"] == "no [cost] prices" and section["cost"] is None
    assert "## Judge: grader" in (out / "summary.md").read_text()
    assert "| canned | 6 | 1 |" in (out / "summary.md").read_text()


def test_judge_cost_is_priced_apart_from_the_variant(judged_suite: Path, tmp_path: Path) -> None:
    toml = judged_suite / "suite.toml"
    toml.write_text(toml.read_text() + "\n[cost]\ninput_per_mtok = 1000000.0\noutput_per_mtok = 0.0\n")
    out = run(judged_suite, tmp_path / "run", FakeVariant("grader", fn=grade))
    section = json.loads((out / "run.json").read_text())["judge"]
    assert section["cost"] == pytest.approx(section["judged"]["canned"]["prompt_tokens"])  # 1 per prompt token
    assert section["judged"]["canned"]["cost_basis"] == "token prices"


def test_the_judge_grades_itself_only_when_asked(judged_suite: Path, tmp_path: Path) -> None:
    out = run(judged_suite, tmp_path / "a", FakeVariant("grader", fn=grade), variants=("canned", "grader"))
    own = samples(out, "grader")
    assert all("judge" not in s["scores"] and "judge" not in s for s in own.values())
    assert set(json.loads((out / "run.json").read_text())["judge"]["judged"]) == {"canned"}
    toml = judged_suite / "suite.toml"
    toml.write_text(toml.read_text().replace('judge = "grader" }', 'judge = "grader", judge_self = true }'))
    out = run(judged_suite, tmp_path / "b", FakeVariant("grader", fn=grade), variants=("canned", "grader"))
    # its own answers ("Score: 4") name no capital: graded 2 by itself, when asked to
    assert {s["scores"]["judge"] for s in samples(out, "grader").values()} == {2.0}


def test_a_killed_judging_resumes_without_asking_again(judged_suite: Path, tmp_path: Path) -> None:
    def failing(request: Request) -> str:
        if request.id == "pt":  # the second batch: pt, at
            raise RuntimeError("the judge's server went away")
        return grade(request)

    with pytest.raises(GenerationFailed, match="judge 'grader' failed on variant 'canned' after 4 of 6 verdicts"):
        run(judged_suite, tmp_path / "run", FakeVariant("grader", fn=failing))
    assert (tmp_path / "run" / PROGRESS_DIR / "canned+judge.jsonl").is_file()
    again = FakeVariant("grader", fn=grade)
    out = run(judged_suite, tmp_path / "run", again)
    assert [r.id for call in again.calls for r in call] == ["pt", "at"]  # only what the kill lost
    whole = run(judged_suite, tmp_path / "whole", FakeVariant("grader", fn=grade))
    assert (out / "samples" / "canned.jsonl").read_bytes() == (whole / "samples" / "canned.jsonl").read_bytes()


def test_rescoring_a_result_directory_needs_no_judge(judged_suite: Path, tmp_path: Path) -> None:
    out = run(judged_suite, tmp_path / "run", FakeVariant("grader", fn=grade), variants=("echo", "canned"))
    result = load_run(out)  # files only: no variant, no judge
    rows = [result.samples["canned"][i] for i in sorted(result.samples["canned"])]
    graded = [ScoringSample(r["output"], r["reference"], judge=parse_verdict(r["judge"]["verdict"])) for r in rows]
    suite = load_suite(judged_suite)
    spec = next(s for s in suite.metric_specs if s.name == "judge")
    again = score(graded, [spec], suite.extractor, bootstrap=suite.config.run.bootstrap, seed=suite.config.run.seed)
    recorded = json.loads((out / "run.json").read_text())["metrics"]["canned"]["judge"]
    summary = again[0].summary["judge"].to_dict()
    assert summary["value"] == pytest.approx(recorded["value"]) and summary["n"] == recorded["n"]
    assert [r["scores"]["judge"] for r in rows] == again[0].per_sample["judge"]
    # the tables read the column from the files too
    assert main(["compare", str(out), "--baseline", "echo", "--out", str(tmp_path / "cmp")]) == 0
    comparison = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert "judge" in comparison["metrics"]
    cell = next(r for r in comparison["rows"] if r["variant"] == "canned")["metrics"]["judge"]
    assert cell["test"] == "paired t" and cell["delta"] is not None


class JudgingEngine:
    """An engine that grades: counts what it is really asked (the cache answers the rest)."""

    asked = 0

    def __init__(self, model, settings, max_lora_rank=0) -> None:  # noqa: ANN001
        self.backend = "judging"

    def generate(self, requests: Sequence[Request], adapter=None) -> list[Generation]:  # noqa: ANN001
        JudgingEngine.asked += len(requests)
        return [Generation("Fine. Score: 3", 40, 4) for _ in requests]

    def close(self) -> None:
        pass


def test_an_engine_judge_is_cached_like_any_generation(
    judged_suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = tmp_path / "cache"
    own.mkdir()
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(own))
    monkeypatch.setitem(BACKENDS, "judging", f"{__name__}:JudgingEngine")
    monkeypatch.setattr(JudgingEngine, "asked", 0)
    model = tmp_path / "model"  # a model folder: the engine above never reads it
    model.mkdir()
    (model / "config.json").write_text("{}")
    toml = judged_suite / "suite.toml"
    toml.write_text(
        toml.read_text().replace(GRADER, '\n[variants.grader]\nkind = "base"\n')
        + f'\n[engine]\nbackend = "judging"\nmodel = "{model}"\n'
    )
    argv = ["run", str(judged_suite), "--variants", "canned", "--quiet", "--no-self-test"]
    assert main([*argv, "--out", str(tmp_path / "first")]) == 0
    assert JudgingEngine.asked == 6
    first = json.loads((tmp_path / "first" / "run.json").read_text())["judge"]
    assert first["judged"]["canned"]["cache"] == {"hits": 0, "misses": 6}
    assert first["engine"]["backend"] == "judging"
    assert main([*argv, "--out", str(tmp_path / "second")]) == 0
    assert JudgingEngine.asked == 6  # every verdict from the cache
    second = json.loads((tmp_path / "second" / "run.json").read_text())["judge"]
    assert second["judged"]["canned"]["cache"] == {"hits": 6, "misses": 0}
    assert samples(tmp_path / "second", "canned") == samples(tmp_path / "first", "canned")
