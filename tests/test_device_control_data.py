"""The device-control demo suite's data: what make_data.py writes, and that it says what README.md says."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import jsonschema
import pytest

from harness.cli import main
from harness.core.tools import parse_calls
from harness.variants import load_suite

SUITE = Path(__file__).resolve().parents[1] / "suites" / "device-control"
SIZES = {"train": 320, "eval": 120}
REJECTS = {"train": 48, "eval": 18}  # 15%
PARALLEL = {"train": 16, "eval": 6}  # 5%


def records(split: str) -> list[dict]:
    return [json.loads(line) for line in (SUITE / "data" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]


def request(record: dict) -> str:
    return record["messages"][0]["content"]


def normalized(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9%]+", " ", text.lower()).split())


def test_make_data_is_deterministic_and_wrote_the_committed_files(tmp_path: Path) -> None:
    outputs = []
    for run, hash_seed in enumerate(("0", "12345")):
        out = tmp_path / f"run{run}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, str(SUITE / "make_data.py"), str(out)], check=True, env=env, cwd=tmp_path)
        outputs.append({p.name: p.read_bytes() for p in sorted((out / "data").iterdir())})
    assert outputs[0] == outputs[1]
    committed = {p.name: p.read_bytes() for p in sorted((SUITE / "data").iterdir())}
    assert committed == outputs[0], "regenerate with python suites/device-control/make_data.py"


def test_generate_returns_what_main_writes() -> None:
    spec = importlib.util.spec_from_file_location("device_control_make_data", SUITE / "make_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = module.generate()
    assert sorted(files) == ["data/eval.jsonl", "data/train.jsonl"]
    assert files["data/eval.jsonl"] == (SUITE / "data" / "eval.jsonl").read_text(encoding="utf-8")


@pytest.mark.parametrize("split", ["train", "eval"])
def test_every_gold_call_validates_against_its_tool(split: str) -> None:
    tools = json.loads((SUITE / "tools.json").read_text(encoding="utf-8"))
    schemas = {tool["function"]["name"]: tool["function"]["parameters"] for tool in tools}
    assert len(schemas) == 8
    for record in records(split):
        assert record["tools"] == tools, record["id"]
        assert [m["role"] for m in record["messages"]] == ["user", "assistant"], "no system message in the records"
        gold = record["messages"][1]
        calls = gold.get("tool_calls") or []
        for n, call in enumerate(calls, 1):
            assert call["id"] == f"call_{n}" and call["type"] == "function"
            name = call["function"]["name"]
            arguments = json.loads(call["function"]["arguments"])
            jsonschema.Draft202012Validator(schemas[name]).validate(arguments)
        if calls:
            assert gold["content"] is None
            assert record["label"] == "+".join(call["function"]["name"] for call in calls)
        else:  # a rejection: a short plain answer
            assert record["label"] == "none" and gold["content"].startswith("Sorry, I can't do that: ")


@pytest.mark.parametrize("split", ["train", "eval"])
def test_counts_of_rejections_two_call_requests_and_tools(split: str) -> None:
    rows = records(split)
    assert len(rows) == SIZES[split]
    assert [r["id"] for r in rows] == [f"{split}-{n:04d}" for n in range(1, SIZES[split] + 1)]
    calls = [len(r["messages"][1].get("tool_calls") or []) for r in rows]
    assert Counter(calls) == {0: REJECTS[split], 2: PARALLEL[split], 1: SIZES[split] - REJECTS[split] - PARALLEL[split]}
    assert all(r["parallel_tool_calls"] is (n == 2) for r, n in zip(rows, calls))
    singles = Counter(r["label"] for r, n in zip(rows, calls) if n == 1)
    assert len(singles) == 8 and len(set(singles.values())) == 1, "the same number of single calls per tool"
    assert len({normalized(request(r)) for r in rows}) == len(rows), "no request repeats within a split"


def test_every_two_call_label_of_eval_is_in_train() -> None:
    trained = {r["label"] for r in records("train") if "+" in r["label"]}
    assert {r["label"] for r in records("eval") if "+" in r["label"]} <= trained


def test_no_eval_request_is_a_train_request() -> None:
    train = {normalized(request(r)) for r in records("train")}
    assert not [request(r) for r in records("eval") if normalized(request(r)) in train]


def test_check_data_finds_no_error_nor_near_leakage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-data", str(SUITE), "--estimate-tokens", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["error"] == 0
    assert [f["role"] for f in report["files"]] == ["eval", "train"]
    assert not [f for f in report["findings"] if f["code"] in ("near_leakage", "leakage")]


def test_suite_loads_and_each_reference_is_the_gold_calls() -> None:
    suite = load_suite(SUITE)
    assert (len(suite.eval_items), len(suite.train_items)) == (120, 320)
    assert set(suite.config.variants) == {"base", "prompted", "constrained", "finetuned"}
    # declared before it is trained (README): loading does not need the adapter's folder
    assert suite.config.variants["finetuned"]["adapter"] == "adapters/smollm2-135m-instruct-lora"
    for item, record in zip(suite.eval_items, records("eval")):
        assert item.id == record["id"] and item.label == record["label"] and len(item.tools) == 8
        assert item.fields["input"] == request(record)
        assert item.parallel_tool_calls is record["parallel_tool_calls"]
        gold = [
            (c["function"]["name"], json.loads(c["function"]["arguments"]))
            for c in record["messages"][1].get("tool_calls") or []
        ]
        assert [(c.name, c.arguments) for c in parse_calls(item.reference)] == gold
        if not gold:
            assert item.reference == record["messages"][1]["content"]
