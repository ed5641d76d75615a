"""Every variant kind keeps the same contract: a VariantBase subclass with a frozen Config and
from_config; the ones that need no engine are built the normal way and checked batch by batch.

Engine kinds (base, prompted, finetuned) are checked at class level only: no engine may start here."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness import Generation, Variant, load_suite
from harness.core.types import VariantBase, variant_describe, variant_serving_note, variant_weights
from harness.suite.prompts import build_request
from harness.variants import VARIANT_KINDS, BuildContext, build_variant, variant_class

ENGINE_KINDS = ("base", "prompted", "finetuned")
ENDPOINT_KINDS = ("api",)  # an HTTP endpoint: tests/test_api_variant.py runs it against a server of its own
# How to declare each kind with no engine behind it: the retrieving kinds answer with a fake inner
# over BM25 (the dense and hybrid retrievers load an embedding model).
WITHOUT_ENGINE = {
    "fake": {"kind": "fake"},  # with an answer per item, below
    "echo": {"kind": "echo"},
    "rag": {"kind": "rag", "inner": "inner", "retriever": "bm25", "top_k": 2},
    "hybrid": {"kind": "hybrid", "inner": "inner", "retriever": "bm25", "top_k": 2},
}


def test_every_kind_is_covered() -> None:
    assert set(VARIANT_KINDS) == set(ENGINE_KINDS) | set(WITHOUT_ENGINE) | set(ENDPOINT_KINDS)


@pytest.mark.parametrize("kind", sorted(VARIANT_KINDS))
def test_kind_class_contract(kind: str) -> None:
    cls = variant_class(kind)
    assert issubclass(cls, VariantBase)
    assert dataclasses.is_dataclass(cls.Config) and cls.Config.__dataclass_params__.frozen
    assert callable(cls.from_config)
    if kind in ENGINE_KINDS:  # what forgetting checks and the self-test measure
        assert cls.weights is not VariantBase.weights and cls.describe is not VariantBase.describe


@pytest.fixture
def knowledge_suite(tiny_suite: Path) -> Path:
    (tiny_suite / "knowledge").mkdir()
    (tiny_suite / "knowledge" / "atlas.jsonl").write_text(
        json.dumps({"id": "doc-fr", "text": "The capital of France is Paris."})
        + "\n"
        + json.dumps({"id": "doc-jp", "text": "The capital of Japan is Tokyo."})
        + "\n"
    )
    return tiny_suite


@pytest.mark.parametrize("kind", sorted(WITHOUT_ENGINE))
def test_kind_built_without_an_engine_keeps_the_batch_contract(kind: str, knowledge_suite: Path) -> None:
    suite = load_suite(knowledge_suite)
    # an answer of its own per item, so that the order of the answers shows
    fake = {"kind": "fake", "responses": {item.id: f"answer {item.id}" for item in suite.eval_items}}
    tables = {"v": fake if kind == "fake" else WITHOUT_ENGINE[kind], "inner": fake}
    context = BuildContext(suite, tables, "suite.toml", suite.dir)
    variant = build_variant("v", context)
    assert isinstance(variant, variant_class(kind)) and isinstance(variant, Variant) and variant.name == "v"
    assert variant.generate([]) == []
    requests = [build_request(item, suite.prompt, suite.params) for item in suite.eval_items]
    generations = variant.generate(requests)
    assert len(generations) == len(requests) and all(isinstance(g, Generation) for g in generations)
    # same order out as in (retrieval_s is measured anew each call: compare what was answered and sent)
    answered = [(g.text, g.messages) for g in variant.generate(list(reversed(requests)))]
    assert answered == [(g.text, g.messages) for g in reversed(generations)]
    # the optional abilities: no weights behind a fake, even wrapped in retrieval
    assert variant.weights() is None and variant_weights(variant) is None
    assert variant.serving_note() == "" and variant_serving_note(variant) == ""
    described = variant.describe()
    assert isinstance(described, dict) and variant_describe(variant) == described
    if kind in ("rag", "hybrid"):
        assert described["inner"] == "inner" and described["retriever"] == "bm25"
        assert all(g.metadata["context_tokens"] is None for g in generations)  # no tokenizer behind a fake
    context.close()


class _OnlyGenerate:
    """A variant as users write it: structurally typed, just `name` and `generate`."""

    name = "mine"

    def generate(self, requests):  # noqa: ANN001, ANN201
        return [Generation(text="") for _ in requests]


class _WithWeights(_OnlyGenerate):
    def weights(self) -> tuple[object, None]:
        return ("engine", None)

    def describe(self) -> dict[str, object]:
        return {"model": "m"}

    def serving_note(self) -> str:
        return "note"


def test_helpers_answer_for_structural_variants() -> None:
    plain, weighted = _OnlyGenerate(), _WithWeights()
    assert isinstance(plain, Variant) and not isinstance(plain, VariantBase)
    assert (variant_weights(plain), variant_describe(plain), variant_serving_note(plain)) == (None, {}, "")
    assert variant_weights(weighted) == ("engine", None)
    assert variant_describe(weighted) == {"model": "m"} and variant_serving_note(weighted) == "note"


def test_a_subclass_must_define_generate() -> None:
    class Missing(VariantBase):
        name = "missing"

    with pytest.raises(TypeError):
        Missing()  # type: ignore[abstract]
