"""The judge metric on the real engine: the embedded model (SmolLM2-135M on vLLM, the session's pool of
tests/conftest.py) grades the base variant's answers on a few support-triage tickets. A 135M model is a
poor judge, and that is the point: every verdict is kept as it came, a score is recorded only where the
verdict gives one, and the run counts and says how many gave none."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.run.runner import RunOptions, run_suite
from harness.variants import BuildContext, build_variant, load_suite

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "suites" / "support-triage"
ITEMS = 4
RUBRIC = (
    "The answer must be JSON with category, priority and product. 5: all three match the reference; "
    "3: the category matches; 1: not JSON, or the category is wrong."
)
VARIANTS = '\n[variants.base]\nkind = "base"\n\n[variants.judge]\nkind = "base"\n'


@pytest.fixture(scope="module")
def judged_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """support-triage's data, prompt and metrics plus the judge metric; two variants: base, and the same
    model as its judge (the adapters and other variants are left behind)."""
    suite = tmp_path_factory.mktemp("judge-real") / "support-triage"
    suite.mkdir()
    for part in ("data", "knowledge", "prompts"):
        shutil.copytree(DEMO / part, suite / part)
    shutil.copy(DEMO / "schema.json", suite / "schema.json")
    text = (DEMO / "suite.toml").read_text(encoding="utf-8")
    text = text[: text.index("[variants.")]  # the demo's settings, none of its variants
    entry = f'  {{ name = "judge", rubric = "{RUBRIC}", judge = "judge" }},\n]'
    head, tail = text.split("\n]\n", 1)  # the end of the metrics list
    (suite / "suite.toml").write_text(f"{head}\n{entry}\n{tail}{VARIANTS}", encoding="utf-8")
    return suite


def test_the_embedded_model_judges_and_the_run_says_how_often_it_could_not(
    judged_demo: Path, vllm_pool, tmp_path: Path
) -> None:
    suite = load_suite(judged_demo)
    tables = suite.config.variants
    context = BuildContext(suite, tables, "suite.toml", suite.dir, vllm_pool.settings, {"engines": vllm_pool})
    prebuilt = {name: build_variant(name, context) for name in ("base", "judge")}
    options = RunOptions(limit=ITEMS, out=tmp_path / "run", progress=False, self_test=False)
    out = run_suite(suite, options, prebuilt)

    run_json = json.loads((out / "run.json").read_text())
    assert set(run_json["variants"]) == {"base"}  # the judge graded; it was not evaluated
    rows = [json.loads(line) for line in (out / "samples" / "base.jsonl").read_text().splitlines()]
    assert len(rows) == ITEMS
    scores = [row["scores"]["judge"] for row in rows]
    for row, found in zip(rows, scores):
        judge = row["judge"]
        assert found is None or found in (1.0, 2.0, 3.0, 4.0, 5.0)
        assert judge["score"] == (None if found is None else int(found))
        assert isinstance(judge["verdict"], str) and judge["variant"] == "judge"
        assert RUBRIC in judge["prompt"] and row["output"] in judge["prompt"] and row["reference"] in judge["prompt"]
        assert judge["prompt_tokens"] > 50 and judge["completion_tokens"] is not None
    section = run_json["judge"]
    unparsed = sum(s is None for s in scores)
    assert section["unparsed"] == unparsed == section["judged"]["base"]["unparsed"]
    assert section["judged"]["base"]["verdicts"] == ITEMS
    assert section["engine"]["backend"] == "vllm" and section["params"]["temperature"] == 0.0
    summary = run_json["metrics"]["base"]["judge"]
    assert summary["n"] == ITEMS - unparsed
    assert summary["interval"] in ("bootstrap", None)  # never Wilson's, even if every grade were 1
    # the judge's tokens are its own: the judged variant's usage counts its answers alone
    judged_prompt_mean = section["judged"]["base"]["prompt_tokens"] / ITEMS
    assert run_json["variants"]["base"]["usage"]["prompt_tokens_mean"] < judged_prompt_mean
    assert f"| base | {ITEMS} | {unparsed} |" in (out / "summary.md").read_text()
    print(f"\njudge scores on {ITEMS} items: {scores} ({unparsed} unparsed)")
    for row in rows:
        print(f"  {row['id']}: {row['judge']['verdict'][:160]!r}")
