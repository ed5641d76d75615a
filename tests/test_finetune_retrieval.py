"""`harness finetune --with-retrieval`: the train prompts carry the retrieved context exactly as the rag or
hybrid variant sends it at eval time. Nothing trains here (tests/test_finetune.py does, on the real stack):
these build the training examples over BM25 and compare them with what the variant itself sends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.cli.parser import _parser
from harness.core.errors import ConfigError, UnknownNameError
from harness.finetune import (
    check_lengths,
    default_adapter_dir,
    open_retrieval,
    retrieval_record,
    retrieval_variant,
    train_rows,
    training_examples,
)
from harness.suite.prompts import build_request
from harness.variants import BuildContext, build_variant, load_suite
from harness.variants.rag import HybridVariant, RagVariant, render_context

TRAIN = [
    {"id": "t1", "country": "Norway", "output": '{"capital": "Oslo"}', "doc_ids": ["doc-no"]},
    {"id": "t2", "country": "Peru", "output": '{"capital": "Lima"}', "doc_ids": ["doc-pe"]},
    {"id": "t3", "country": "Chile", "output": '{"capital": "Santiago"}', "doc_ids": ["doc-cl"]},  # not in the KB
]
DOCUMENTS = {
    "doc-no": "The capital of Norway is Oslo, on the Oslofjord.",
    "doc-pe": "The capital of Peru is Lima, on the Pacific coast.",
    "doc-fr": "The capital of France is Paris, on the Seine.",
    "doc-jp": "The capital of Japan is Tokyo, on Honshu.",
}
HYBRID = '\n[variants.hybrid]\nkind = "hybrid"\ninner = "canned"\nretriever = "bm25"\ntop_k = 2\n'
RAG = (
    '\n[variants.rag]\nkind = "rag"\ninner = "canned"\nretriever = "bm25"\ntop_k = 1\n'
    'template = "Facts:\\n{context}\\n\\nQuestion: {input}"\nchunk_template = "({doc_id}) {text}"\n'
)


def knowledge_suite(root: Path, *tables: str) -> Path:
    """The tiny suite with gold doc_ids on its train items, a knowledge folder and the given variant tables
    (their inner variant is the suite's fake `canned`: no engine)."""
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in TRAIN))
    (root / "knowledge").mkdir()
    (root / "knowledge" / "capitals.jsonl").write_text(
        "".join(json.dumps({"id": doc_id, "text": text}) + "\n" for doc_id, text in DOCUMENTS.items())
    )
    with (root / "suite.toml").open("a") as handle:
        handle.write("".join(tables))
    return root


@pytest.fixture
def suite_dir(tiny_suite: Path) -> Path:
    return knowledge_suite(tiny_suite, HYBRID, RAG)


def eval_prompts(suite, name: str) -> list[list[dict[str, str]]]:  # noqa: ANN001
    """What the declared variant sends for each train item's request: its generations' messages."""
    context = BuildContext(suite, suite.config.variants, str(suite.dir / "suite.toml"), suite.dir)
    try:
        variant = build_variant(name, context)
        requests = [build_request(item, suite.prompt, suite.params) for item in suite.train_items]
        return [[m.to_dict() for m in g.messages] for g in variant.generate(requests)]
    finally:
        context.close()


def test_the_train_prompt_is_what_the_hybrid_variant_sends(suite_dir: Path) -> None:
    suite = load_suite(suite_dir)
    with open_retrieval(suite) as retrieval:
        assert retrieval.variant == "hybrid" and retrieval.config.top_k == 2
        examples = training_examples(suite, retrieval=retrieval)
        rows = train_rows(suite, retrieval=retrieval)
    assert [e["prompt"] for e in examples] == eval_prompts(suite, "hybrid")
    first = examples[0]
    assert first["prompt"][0] == {"role": "system", "content": "Answer with JSON."}
    assert "[doc-no] The capital of Norway is Oslo" in first["prompt"][1]["content"]
    assert first["prompt"][1]["content"].endswith("What is the capital of Norway?")
    assert first["completion"] == [{"role": "assistant", "content": '{"capital": "Oslo"}'}]
    assert rows[0].hits[0].doc_id == "doc-no" and len(rows[0].hits) == 2

    # and the very code path of the variant: with_context over render_context of the same hits
    context = BuildContext(suite, suite.config.variants, str(suite.dir / "suite.toml"), suite.dir)
    variant = build_variant("hybrid", context)
    assert isinstance(variant, HybridVariant)
    for row, example in zip(rows, examples):
        request = build_request(row.item, suite.prompt, suite.params)
        sent = variant.with_context(
            request, render_context(variant.index.search(request.query, 2), variant.chunk_template)
        )
        assert [m.to_dict() for m in sent.messages] == example["prompt"]
    context.close()


def test_a_named_rag_variant_lends_its_templates_retriever_and_top_k(suite_dir: Path) -> None:
    suite = load_suite(suite_dir)
    with open_retrieval(suite, "rag") as retrieval:
        assert retrieval.variant == "rag" and isinstance(retrieval.config, RagVariant.Config)
        examples = training_examples(suite, limit=2, retrieval=retrieval)
    assert len(examples) == 2
    assert [e["prompt"] for e in examples] == eval_prompts(suite, "rag")[:2]
    assert examples[1]["prompt"][1]["content"] == (
        "Facts:\n(doc-pe) The capital of Peru is Lima, on the Pacific coast.\n\nQuestion: What is the capital of Peru?"
    )


def test_without_retrieval_the_examples_are_the_plain_eval_conversation(suite_dir: Path) -> None:
    suite = load_suite(suite_dir)
    [first, *_] = training_examples(suite)
    assert first["prompt"] == [
        {"role": "system", "content": "Answer with JSON."},
        {"role": "user", "content": "What is the capital of Norway?"},
    ]


def test_retrieval_searches_the_knowledge_base_with_train_queries_only(suite_dir: Path, monkeypatch) -> None:
    suite = load_suite(suite_dir)
    closed = []
    monkeypatch.setattr(BuildContext, "close", lambda self: closed.append(self))
    with open_retrieval(suite) as retrieval:
        searched = []
        search = retrieval.index.search
        monkeypatch.setattr(retrieval.index, "search", lambda query, k: searched.append(query) or search(query, k))
        train_rows(suite, retrieval=retrieval)
        assert not closed
    assert len(closed) == 1  # the index's context is closed after use
    eval_queries = {build_request(item, suite.prompt, suite.params).query for item in suite.eval_items}
    assert searched == [f"What is the capital of {r['country']}?" for r in TRAIN]
    assert not eval_queries & set(searched)


def test_the_record_says_what_the_adapter_saw_and_the_recall_on_train(suite_dir: Path) -> None:
    suite = load_suite(suite_dir)
    with open_retrieval(suite) as retrieval:
        record = retrieval_record(retrieval, train_rows(suite, retrieval=retrieval))
    assert record["variant"] == "hybrid" and record["retriever"] == "bm25" and record["top_k"] == 2
    assert record["template"] == retrieval.config.template and record["chunk_template"] == "[{doc_id}] {text}"
    assert record["index"]["documents"] == 4 and record["index"] == retrieval.index_info
    # Norway and Peru find their document; Chile's is not in the knowledge base
    assert record["items_with_doc_ids"] == 3 and record["train_recall_at_k"] == pytest.approx(2 / 3, abs=1e-4)
    json.dumps(record)  # goes into training.json as it is


def test_recall_is_none_when_no_train_item_has_gold_documents(suite_dir: Path) -> None:
    (suite_dir / "train.jsonl").write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "doc_ids"}) + "\n" for r in TRAIN)
    )
    suite = load_suite(suite_dir)
    with open_retrieval(suite) as retrieval:
        record = retrieval_record(retrieval, train_rows(suite, retrieval=retrieval))
    assert record["items_with_doc_ids"] == 0 and record["train_recall_at_k"] is None


def test_the_rag_aware_adapter_has_its_own_default_folder(suite_dir: Path) -> None:
    suite = load_suite(suite_dir)
    plain = default_adapter_dir(suite, "embedded:smollm2-135m-instruct")
    aware = default_adapter_dir(suite, "embedded:smollm2-135m-instruct", with_retrieval=True)
    assert plain.name == "smollm2-135m-instruct-lora" and aware.name == "smollm2-135m-instruct-rag-lora"
    assert plain.parent == aware.parent == suite.dir / "adapters"


@pytest.mark.parametrize(
    ("tables", "name", "error", "needles"),
    [
        (
            (RAG,),
            None,
            ConfigError,
            ("declares no hybrid variants -", "[variants]", "declare one, or name a rag variant"),
        ),
        (
            (HYBRID, HYBRID.replace("variants.hybrid", "variants.hybrid2")),
            None,
            ConfigError,
            ("2 hybrid variants (hybrid, hybrid2)", "--with-retrieval hybrid"),
        ),
        ((HYBRID,), "hybird", UnknownNameError, ("unknown variant 'hybird'", "did you mean 'hybrid'")),
        ((HYBRID, RAG), "echo", ConfigError, ("'echo' is kind 'echo', not rag or hybrid", "hybrid, rag")),
    ],
)
def test_a_variant_that_cannot_lend_its_retrieval_is_one_line(
    tiny_suite: Path, tables, name, error, needles, monkeypatch, capsys
) -> None:  # noqa: ANN001
    suite = load_suite(knowledge_suite(tiny_suite, *tables))
    with pytest.raises(error) as raised:
        retrieval_variant(suite, name)
    assert all(needle in str(raised.value) for needle in needles), str(raised.value)

    # through the command line: exit 2, one line, told before any model is resolved or anything trains
    def never(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("got past the variant check")

    monkeypatch.setattr("harness.finetune.resolve_model", never)
    monkeypatch.setattr("harness.finetune._train", never)
    code = main(["finetune", str(tiny_suite), "--with-retrieval", *([name] if name else [])])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    assert all(needle in lines[0] for needle in needles), lines[0]
    assert not (tiny_suite / "adapters").exists()


def test_the_flag_takes_an_optional_variant_name() -> None:
    parse = _parser().parse_args
    assert parse(["finetune", "suite"]).with_retrieval is False
    assert parse(["finetune", "suite", "--with-retrieval"]).with_retrieval is True
    assert parse(["finetune", "suite", "--with-retrieval", "rag"]).with_retrieval == "rag"
    assert parse(["finetune", "suite", "--with-retrieval", "--limit", "2"]).with_retrieval is True
    assert parse(["finetune", "suite", "--max-length", "1024"]).max_length == 1024


def test_an_example_longer_than_max_length_is_refused_not_cut() -> None:
    """The trainer keeps an example's start: past max_length it cuts the completion, the part with the loss.
    The demo's train prompts with three retrieved chunks run to 660 tokens, past the default 512."""
    check_lengths([100, 512], 512)
    with pytest.raises(ConfigError) as raised:
        check_lengths([100, 591, 664], 512)
    assert str(raised.value) == (
        "2 of 3 train examples are longer than max_length 512 tokens (longest 664): their completions would be"
        " cut off - harness finetune options key 'max_length' - pass --max-length 704, or retrieve fewer or"
        " shorter chunks"
    )
