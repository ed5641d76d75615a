"""rag / hybrid variants over a test double: what they retrieve, send and record, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import FakeVariant
from harness.cli import main
from harness.core.errors import ConfigError
from harness.run.runner import RunOptions, run_suite
from harness.suite.prompts import build_request
from harness.variants import BuildContext, build_variant, load_suite

CAPITALS = {
    "fr": ("France", "Paris"),
    "de": ("Germany", "Berlin"),
    "it": ("Italy", "Rome"),
    "es": ("Spain", "Madrid"),
    "pt": ("Portugal", "Lisbon"),
    "at": ("Austria", "Vienna"),
}


@pytest.fixture
def rag_suite(tiny_suite: Path, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    (tiny_suite / "knowledge").mkdir()
    (tiny_suite / "knowledge" / "atlas.jsonl").write_text(
        "".join(
            json.dumps({"id": f"doc-{code}", "text": f"The capital of {country} is {city}."}) + "\n"
            for code, (country, city) in CAPITALS.items()
        )
    )
    lines = (tiny_suite / "eval.jsonl").read_text().splitlines()
    gold = [json.dumps({**json.loads(line), "doc_ids": [f"doc-{json.loads(line)['id']}"]}) for line in lines[:4]]
    (tiny_suite / "eval.jsonl").write_text("\n".join(gold + lines[4:]) + "\n")  # pt and at carry no gold ids
    with (tiny_suite / "suite.toml").open("a") as handle:
        handle.write('\n[variants.rag]\nkind = "rag"\ninner = "echo"\nretriever = "bm25"\ntop_k = 2\n')
    return tiny_suite


def test_rag_puts_retrieved_chunks_with_ids_into_the_prompt(rag_suite: Path) -> None:
    suite = load_suite(rag_suite)
    inner = FakeVariant("inner", fn=lambda r: "ok")
    context = BuildContext(suite, {**suite.config.variants, "inner": {"kind": "fake"}}, "suite.toml", suite.dir)
    variant = build_variant("rag", context)
    variant.inner = inner  # answer with a recording double
    request = build_request(suite.eval_items[0], suite.prompt, suite.params)  # France
    [generation] = variant.generate([request])
    [[sent]] = inner.calls
    user = sent.messages[-1].content
    assert "[doc-fr] The capital of France is Paris." in user and user.endswith("What is the capital of France?")
    assert sent.messages[:-1] == request.messages[:-1]  # system prompt untouched
    assert generation.messages == sent.messages
    assert generation.metadata["retrieved"][0]["doc_id"] == "doc-fr" and len(generation.metadata["retrieved"]) <= 2
    # fake: no tokenizer
    assert generation.metadata["retrieval_s"] > 0 and generation.metadata["context_tokens"] is None


def test_run_adds_retrieval_metrics_and_omits_items_without_gold(rag_suite: Path, tmp_path: Path) -> None:
    out = run_suite(load_suite(rag_suite), RunOptions(variants=("echo", "rag"), out=tmp_path / "run", progress=False))
    run = json.loads((out / "run.json").read_text())
    rag = run["metrics"]["rag"]
    assert rag["recall@k"]["n"] == 4 and rag["recall@k"]["value"] == 1.0  # pt, at: no gold -> left out, not zero
    assert rag["mrr"]["value"] == 1.0 and rag["ndcg@k"]["value"] == 1.0
    assert "recall@k" not in run["metrics"]["echo"]
    usage = run["variants"]["rag"]["usage"]
    assert usage["retrieval_s_p50"] > 0 and usage["retrieval_s_p95"] >= usage["retrieval_s_p50"]
    info = run["variants"]["rag"]["engine"]["index"]
    assert info["kind"] == "bm25" and info["documents"] == 6 and info["chunks"] == 6
    samples = {
        json.loads(line)["id"]: json.loads(line) for line in (out / "samples" / "rag.jsonl").read_text().splitlines()
    }
    assert samples["pt"]["scores"]["recall@k"] is None and samples["fr"]["scores"]["recall@k"] == 1.0
    assert "retrieval p50 / p95 ms" in (out / "summary.md").read_text()


def test_no_gold_ids_anywhere_gives_a_note_not_zeros(rag_suite: Path, tmp_path: Path) -> None:
    lines = [json.loads(line) for line in (rag_suite / "eval.jsonl").read_text().splitlines()]
    (rag_suite / "eval.jsonl").write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "doc_ids"}) + "\n" for r in lines)
    )
    out = run_suite(load_suite(rag_suite), RunOptions(variants=("rag",), out=tmp_path / "run", progress=False))
    run = json.loads((out / "run.json").read_text())
    assert run["metrics"]["rag"]["recall@k"] == {
        "value": None,
        "ci_low": None,
        "ci_high": None,
        "interval": None,
        "n": 0,
        "higher_is_better": True,
    }
    assert "Retrieval metrics omitted: no eval item carries gold `doc_ids`." in (out / "summary.md").read_text()


@pytest.mark.parametrize(
    "table, message",
    [
        ({"kind": "rag", "inner": "nope"}, "inner variant 'nope' is not declared"),
        ({"kind": "rag", "inner": "rag2"}, "retrieves too"),
        ({"kind": "rag", "inner": "echo", "top_k": 0}, r"top_k must be in \[1, 1000000\], got 0"),
        ({"kind": "rag", "inner": "echo", "template": "{ctx}\n{input}"}, "unknown placeholder {ctx}"),
        ({"kind": "rag", "inner": "echo", "retriever": "tfidf"}, "invalid value 'tfidf'"),
    ],
)
def test_bad_rag_settings(rag_suite: Path, table: dict, message: str) -> None:
    suite = load_suite(rag_suite)
    tables = {**suite.config.variants, "r": table, "rag2": {"kind": "rag", "inner": "echo"}}
    with pytest.raises(ConfigError, match=message):
        build_variant("r", BuildContext(suite, tables, "suite.toml", suite.dir))


def test_missing_knowledge_folder_is_a_one_line_error(rag_suite: Path, capsys) -> None:
    import shutil

    shutil.rmtree(rag_suite / "knowledge")
    assert main(["run", str(rag_suite), "--variants", "rag", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: knowledge folder not found") and len(err.strip().splitlines()) == 1


def test_hybrid_defaults_to_the_finetuned_variant(rag_suite: Path) -> None:
    from harness.variants.rag import HybridVariant

    assert HybridVariant.Config().inner == "finetuned"
