"""A golden result directory from the fake variants: the format is stable byte for byte.

Regenerate after an intended format change with `UPDATE_GOLDEN=1 pytest tests/test_golden.py`,
and review the diff like any other change.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest

from harness.run.runner import RunOptions, run_suite
from harness.variants import load_suite

GOLDEN = Path(__file__).resolve().parent / "golden" / "tiny-run"
VOLATILE = ("created_at", "timings", "environment")


def comparable_run_json(path: Path) -> dict:
    record = json.loads(path.read_text())
    for key in VOLATILE:
        assert key in record
        record.pop(key)
    record["suite"].pop("dir")
    return record


def test_golden_result_directory(tiny_suite: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiny-run"
    run_suite(load_suite(tiny_suite), RunOptions(out=out, progress=False))
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["run.json", "samples/canned.jsonl", "samples/echo.jsonl", "summary.md"]
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        shutil.copytree(out, GOLDEN)
    for name in files:
        if name == "run.json":
            assert comparable_run_json(out / name) == comparable_run_json(GOLDEN / name)
        else:
            assert (out / name).read_bytes() == (GOLDEN / name).read_bytes(), name


# What each canned output should score, worked out by hand (JSON extraction, the reference {"capital": X}):
# fr exact; de fenced (json_valid allows one fence); it prose around {"capital": "Milan"}: the answer is
# extracted but wrong and the output is not JSON; es "madrid" (SQuAD normalization and label matching fold
# case, BLEU does not); pt truncated JSON: no answer; at "I do not know.": no answer.
# token_f1: normalization drops the punctuation, so '{"capital":"Paris"}' is one token "capitalparis".
# rougeL tokenizes to [capital, X]: Milan vs Rome shares one of two tokens (F = 1/2).
# BLEU (13a) tokenizes to 9 tokens, { " capital " : " X " }; one wrong X leaves 8/9 unigrams, 6/8 bigrams,
# 4/7 trigrams and 3/6 4-grams: 100 * (8/9 * 6/8 * 4/7 * 3/6) ** (1/4) = 66.0633.
# output_length = completion tokens = words of the output: 2, 4, 5, 2, 2, 4.
CANNED = {  # id: exact_match, json_valid, json_schema, token_f1, rougeL, accuracy[capital], output_length, bleu
    "fr": (1, 1, 1, 1, 1.0, 1, 2, 100.0),
    "de": (1, 1, 1, 1, 1.0, 1, 4, 100.0),
    "it": (0, 0, 0, 0, 0.5, 0, 5, 100 * (8 / 9 * 6 / 8 * 4 / 7 * 3 / 6) ** 0.25),
    "es": (1, 1, 1, 1, 1.0, 1, 2, 100 * (8 / 9 * 6 / 8 * 4 / 7 * 3 / 6) ** 0.25),
    "pt": (0, 0, 0, 0, 0.0, 0, 2, 0.0),
    "at": (0, 0, 0, 0, 0.0, 0, 4, 0.0),
}
COLUMNS = (
    "exact_match",
    "json_valid",
    "json_schema",
    "token_f1",
    "rougeL",
    "accuracy[capital]",
    "output_length",
    "bleu",
)


def test_golden_values_are_the_expected_ones() -> None:
    """Check the golden numbers by hand, so a wrong golden file (it is written by the code under test)
    cannot pass unnoticed."""
    run = json.loads((GOLDEN / "run.json").read_text())
    metrics = run["metrics"]
    samples = [json.loads(line) for line in (GOLDEN / "samples" / "canned.jsonl").read_text().splitlines()]
    assert [s["id"] for s in samples] == sorted(s["id"] for s in samples)
    by_id = {s["id"]: s for s in samples}
    for item, expected in CANNED.items():
        got = tuple(by_id[item]["scores"][name] for name in COLUMNS)
        assert got == pytest.approx(expected, abs=1e-6), item
        # "Answer with JSON." + 6 words
        assert by_id[item]["completion_tokens"] == expected[6] and by_id[item]["prompt_tokens"] == 9
        assert by_id[item]["scores"]["macro_f1[capital]"] is None  # defined over the set only
    for index, name in enumerate(COLUMNS[:-1]):  # the run-level values are the means of the above
        assert metrics["canned"][name]["value"] == pytest.approx(
            sum(e[index] for e in CANNED.values()) / 6, abs=1e-6
        ), name
        assert metrics["canned"][name]["n"] == 6
    # macro F1 over the 6 gold capitals, each with support 1: Paris, Berlin and Madrid found (F1 1), the rest 0
    assert metrics["canned"]["macro_f1[capital]"]["value"] == 3 / 6
    # corpus BLEU sums the statistics: matches 34/36, 28/32, 22/28, 18/24 over 4 answers (pt and at are
    # empty), hypothesis length 36 against reference length 54: brevity penalty exp(1 - 54/36)
    bleu = 100 * math.exp(1 - 54 / 36) * (34 / 36 * 28 / 32 * 22 / 28 * 18 / 24) ** 0.25
    assert metrics["canned"]["bleu"]["value"] == pytest.approx(bleu, abs=1e-6)
    assert by_id["fr"]["scores"]["chrf"] == 100.0 and by_id["pt"]["scores"]["chrf"] == 0.0
    for name, summary in metrics["canned"].items():
        assert summary["ci_low"] <= summary["value"] <= summary["ci_high"], name
    usage = run["variants"]["canned"]["usage"]
    assert usage["prompt_tokens_mean"] == 9.0 and usage["completion_tokens_mean"] == pytest.approx(19 / 6, abs=1e-6)
    assert by_id["it"]["answer"] == '{"capital":"Milan"}'
    assert by_id["pt"]["answer"] == "" and by_id["at"]["output"] == "I do not know."
    assert by_id["fr"]["messages"][0] == {"role": "system", "content": "Answer with JSON."}
    # echo answers with the question (6 words): no JSON, nothing right
    echo = metrics["echo"]
    assert {name: s["value"] for name, s in echo.items() if name != "output_length"} == dict.fromkeys(
        set(echo) - {"output_length"}, 0.0
    )
    assert echo["output_length"]["value"] == 6.0 and run["variants"]["echo"]["usage"]["completion_tokens_mean"] == 6.0
    assert run["data"]["eval_items"] == 6 and run["status"] == "passed"
