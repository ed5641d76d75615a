"""`constrain = ...` on engine variants without an engine: what reaches the engine, what is checked at
load, what the cache keys by and what a sample records. The real engines: tests/test_engine.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.core.errors import ConfigError
from harness.core.types import Constraint, Generation, Request
from harness.engines import Adapter
from harness.engines.cache import request_payload
from harness.engines.models import ResolvedModel
from harness.suite.prompts import build_request
from harness.variants import BuildContext, build_variant, check_variants, load_suite

ROOT = Path(__file__).resolve().parents[1]


class RecordingEngine:
    backend = "fake"
    model = ResolvedModel("m", "m", "hash:m")

    def __init__(self, error: ConfigError | None = None) -> None:
        self.sent: list[Request] = []
        self.error = error

    def generate(self, requests: Sequence[Request], adapter: Adapter | None = None) -> list[Generation]:
        if self.error is not None:
            raise self.error
        self.sent.extend(requests)
        return [Generation('{"capital": "Oslo"}', metadata={"trace": []}) for _ in requests]


def _built(suite_dir: Path, table: dict, engine: RecordingEngine):
    suite = load_suite(suite_dir)
    context = BuildContext(suite, {"v": table}, "suite.toml", suite.dir)
    context.engine = lambda model=None, backend=None: engine  # type: ignore[method-assign]
    return suite, build_variant("v", context)


@pytest.mark.parametrize("kind", ["base", "prompted"])
def test_schema_constraint_reaches_the_engine_and_the_sample(tiny_suite: Path, kind: str) -> None:
    engine = RecordingEngine()
    table = {"kind": kind, "constrain": "schema"} | ({"few_shot": 1} if kind == "prompted" else {})
    suite, variant = _built(tiny_suite, table, engine)
    requests = [build_request(item, suite.prompt, suite.params) for item in suite.eval_items[:2]]
    generations = variant.generate(requests)
    assert [r.constraint for r in engine.sent] == [
        Constraint("schema", schema=json.dumps(suite.schema, sort_keys=True))
    ] * 2
    assert json.loads(engine.sent[0].constraint.schema) == suite.schema
    assert all(g.metadata["constraint"] == "schema" for g in generations)
    assert all(g.metadata["trace"] == [] for g in generations)  # the engine's metadata is kept
    assert variant.describe()["constrain"]["kind"] == "schema"


def test_free_decoding_sends_no_constraint_and_records_none(tiny_suite: Path) -> None:
    engine = RecordingEngine()
    suite, variant = _built(tiny_suite, {"kind": "base"}, engine)
    generations = variant.generate([build_request(suite.eval_items[0], suite.prompt, suite.params)])
    assert engine.sent[0].constraint is None
    assert "constraint" not in generations[0].metadata and "constrain" not in variant.describe()


def test_choice_constraint_carries_the_labels(tiny_suite: Path) -> None:
    engine = RecordingEngine()
    suite, variant = _built(tiny_suite, {"kind": "base", "constrain": "choice", "choices": ["Oslo", "Lima"]}, engine)
    variant.generate([build_request(suite.eval_items[0], suite.prompt, suite.params)])
    assert engine.sent[0].constraint == Constraint("choice", choices=("Oslo", "Lima"))


def _suite_without_output(tiny_suite: Path) -> Path:
    text = (tiny_suite / "suite.toml").read_text().replace('"json_schema", ', "")
    lines = [line for line in text.splitlines() if not line.startswith("schema = ")]
    (tiny_suite / "suite.toml").write_text("\n".join(lines) + "\n")
    return tiny_suite


@pytest.mark.parametrize(
    "table, message",
    [
        ({"kind": "base", "constrain": "choice"}, 'constrain = "choice" needs the labels to choose from'),
        ({"kind": "base", "choices": ["a"]}, 'choices is read only with constrain = "choice"'),
        ({"kind": "prompted", "few_shot": 0, "constrain": "choice", "choices": ["a", "a"]}, "choices must be distinct"),
        ({"kind": "finetuned", "adapter": "x", "constrain": "regex"}, "the suite has no [output] pattern"),
    ],
)
def test_bad_settings_are_one_line_errors_at_load(tiny_suite: Path, table: dict, message: str) -> None:
    suite = load_suite(tiny_suite)
    with pytest.raises(ConfigError) as caught:
        check_variants(suite, {"v": table}, "suite.toml", suite.dir)
    assert message in caught.value.what
    assert caught.value.where.startswith("suite.toml [variants.v]") and caught.value.fix


def test_schema_without_an_output_schema_is_refused_at_load(tiny_suite: Path) -> None:
    suite = load_suite(_suite_without_output(tiny_suite))
    with pytest.raises(ConfigError, match="no \\[output\\] schema"):
        check_variants(suite, {"v": {"kind": "base", "constrain": "schema"}}, "suite.toml", suite.dir)


def test_an_unknown_constrain_value_is_refused(tiny_suite: Path) -> None:
    suite = load_suite(tiny_suite)
    with pytest.raises(ConfigError) as caught:
        check_variants(suite, {"v": {"kind": "base", "constrain": "json"}}, "suite.toml", suite.dir)
    assert "constrain" in str(caught.value)


def test_an_engine_that_cannot_compile_it_names_the_variant(tiny_suite: Path) -> None:
    refusal = ConfigError("vLLM cannot decode with this constraint: bad schema", "", "simplify the schema")
    suite, variant = _built(tiny_suite, {"kind": "base", "constrain": "schema"}, RecordingEngine(refusal))
    with pytest.raises(ConfigError) as caught:
        variant.generate([build_request(suite.eval_items[0], suite.prompt, suite.params)])
    assert caught.value.where == "[variants.v] constrain"


def test_the_cache_keys_by_the_constraint_and_unconstrained_keys_stay() -> None:
    free = Request("a", ())
    assert set(request_payload(free)) == {"messages", "params"}  # the keys of every entry cached so far
    schema = request_payload(Request("a", (), constraint=Constraint("schema", schema='{"type": "object"}')))
    regex = request_payload(Request("a", (), constraint=Constraint("regex", pattern="[0-9]+")))
    assert schema["constraint"] == {"kind": "schema", "value": '{"type": "object"}'}
    assert regex["constraint"] == {"kind": "regex", "value": "[0-9]+"}
    assert len({json.dumps(p, sort_keys=True) for p in (request_payload(free), schema, regex)}) == 3


def test_the_demo_declares_a_constrained_variant() -> None:
    demo = load_suite(ROOT / "suites" / "support-triage")
    constrained = [name for name, table in demo.config.variants.items() if table.get("constrain") == "schema"]
    assert constrained, "make demo shows a constrained variant"


def test_a_rag_variant_and_its_inner_cannot_both_constrain(tiny_suite: Path) -> None:
    suite = load_suite(tiny_suite)
    tables = {
        "p": {"kind": "prompted", "few_shot": 0, "constrain": "schema"},
        "r": {"kind": "rag", "inner": "p", "constrain": "schema"},
    }
    with pytest.raises(ConfigError) as caught:
        check_variants(suite, tables, "suite.toml", suite.dir)
    assert "both this variant and its inner 'p' set constrain" in caught.value.what
    check_variants(suite, {**tables, "r": {"kind": "rag", "inner": "p"}}, "suite.toml", suite.dir)


def test_the_scorecard_says_how_a_prompted_variant_differs() -> None:
    from harness.compare.table import variant_setup

    assert variant_setup("prompted", {"few_shot": 3, "constrain": "schema"}) == "3 shots, schema"
    assert variant_setup("prompted", {"few_shot": 3, "few_shot_select": "similar"}) == "3 similar shots"
    assert variant_setup("prompted", {"few_shot": 0, "reasoning": True}) == "0 shots, reasoning"
    assert variant_setup("prompted", {}) == "3 shots"  # the default few_shot
    assert variant_setup("rag", {"inner": "prompted", "retriever": "bm25", "top_k": 3}) == "bm25 top 3 over prompted"
    assert variant_setup("base", {}) == "" and variant_setup("base", {"constrain": "choice"}) == "choice"
