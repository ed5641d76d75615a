"""A golden result directory from the fake variants: the format is stable byte for byte.

Regenerate after an intended format change with `UPDATE_GOLDEN=1 pytest tests/test_golden.py`,
and review the diff like any other change.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from harness.runner import RunOptions, run_suite
from harness.suite import load_suite

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


def test_golden_values_are_the_expected_ones() -> None:
    """Spot-check the golden numbers by hand, so a wrong golden file cannot pass unnoticed."""
    metrics = json.loads((GOLDEN / "run.json").read_text())["metrics"]
    canned = metrics["canned"]
    # fr exact; de fenced (json_valid yes); it embedded in prose, wrong city; es case differs; pt truncated; at default
    assert canned["exact_match"]["value"] == 3 / 6  # fr, de, es (normalization folds case)
    assert canned["json_valid"]["value"] == 3 / 6  # fr, de (fence allowed), es
    assert canned["accuracy[capital]"]["value"] == 3 / 6
    assert metrics["echo"]["json_valid"]["value"] == 0.0
    samples = [json.loads(line) for line in (GOLDEN / "samples" / "canned.jsonl").read_text().splitlines()]
    assert [s["id"] for s in samples] == sorted(s["id"] for s in samples)
    by_id = {s["id"]: s for s in samples}
    assert by_id["it"]["answer"] == '{"capital":"Milan"}'
    assert by_id["pt"]["answer"] == ""
    assert by_id["fr"]["messages"][0] == {"role": "system", "content": "Answer with JSON."}
