"""The policy-qa demo suite: it loads, its generator is deterministic and wrote the committed files, every
gold document exists and states the answer, and the eval asks today's facts where the train split holds
last quarter's (the point of the suite). Fast: no engine."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from harness.cli import main
from harness.retrieval.knowledge import load_documents
from harness.variants import load_suite

SUITE = Path(__file__).resolve().parents[1] / "suites" / "policy-qa"
GENERATED = ("data", "knowledge", "history", "fake")  # what make_data.py writes


@pytest.fixture(scope="module")
def make_data() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("policy_qa_make_data", SUITE / "make_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def records(name: str) -> list[dict]:
    return [json.loads(line) for line in (SUITE / "data" / name).read_text(encoding="utf-8").splitlines()]


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for folder in GENERATED
        for p in sorted((root / folder).rglob("*"))
        if p.is_file()
    }


def test_suite_loads_with_its_variants() -> None:
    suite = load_suite(SUITE)
    assert len(suite.eval_items) == 150 and len(suite.train_items) >= 250
    assert all(item.doc_ids for item in suite.eval_items)
    assert set(suite.config.variants) >= {"echo", "base", "prompted", "rag", "finetuned", "hybrid"}
    # declared before it is trained (README: harness finetune ... --out): loading does not need the folder
    assert suite.config.variants["finetuned"]["adapter"] == "adapters/policy-qa-lora"


def test_make_data_is_deterministic_and_wrote_the_committed_files(tmp_path: Path) -> None:
    outputs = []
    for run, hash_seed in enumerate(("0", "12345")):
        out = tmp_path / f"run{run}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, str(SUITE / "make_data.py"), str(out)], check=True, env=env, cwd=tmp_path)
        outputs.append(tree(out))
    assert outputs[0] == outputs[1]
    committed = tree(SUITE)
    assert sorted(committed) == sorted(outputs[0]), "committed files differ from what make_data.py writes"
    stale = [name for name in committed if committed[name] != outputs[0][name]]
    assert not stale, f"regenerate with python suites/policy-qa/make_data.py: {stale}"


def test_gold_documents_exist_and_state_the_current_answer(make_data: ModuleType) -> None:
    documents = {d.id: d.text for d in load_documents(SUITE / "knowledge")}
    assert 20 <= len(documents) <= 40
    facts = {f"{f.doc}.{f.key}": f for f in make_data.build_facts()[0]}
    for item in records("eval.jsonl") + records("train.jsonl"):
        assert item["doc_ids"] and all(doc in documents for doc in item["doc_ids"]), item["id"]
        fact = facts[item["fact"]]
        # the knowledge base is today's handbook: it states the v3 value, whatever the item's version
        assert fact.line("v3") in documents[item["doc_ids"][0]], item["id"]


def test_eval_asks_current_facts_and_train_holds_old_ones(make_data: ModuleType) -> None:
    facts = {f"{f.doc}.{f.key}": f for f in make_data.build_facts()[0]}
    evals, train = records("eval.jsonl"), records("train.jsonl")
    assert all(i["version"] == "v3" and i["output"] == facts[i["fact"]].values[2] for i in evals)
    assert all(i["version"] == "v1" and i["output"] == facts[i["fact"]].values[0] for i in train)
    trained = {}
    for item in train:
        trained.setdefault(item["fact"], set()).add(item["output"])
    assert all(len(outputs) == 1 for outputs in trained.values()), "one train answer per fact"
    assert {i["fact"] for i in evals} <= set(trained), "every eval fact is in train: a fine-tune can learn it"
    stale = [i for i in evals if i["output"] not in trained[i["fact"]]]
    assert all(i["changed"] for i in stale) and len(stale) == sum(i["changed"] for i in evals)
    assert 0.4 <= len(stale) / len(evals) <= 0.8, "most, not all, eval facts changed since the train split"
    assert not {i["question"] for i in evals} & {i["question"] for i in train}, "no eval question is in train"


def test_stale_oracle_scores_the_unchanged_share(tmp_path: Path) -> None:
    """A perfect memoriser of the train split gets exactly the eval items whose fact did not change."""
    out = tmp_path / "run"
    assert main(["run", str(SUITE), "--variants", "stale-oracle", "--no-cache", "--quiet", "--out", str(out)]) == 0
    metrics = json.loads((out / "run.json").read_text())["metrics"]["stale-oracle"]
    unchanged = sum(not i["changed"] for i in records("eval.jsonl")) / 150
    assert metrics["exact_match"]["value"] == pytest.approx(unchanged, abs=1e-4)
