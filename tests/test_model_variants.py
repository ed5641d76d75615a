"""base / prompted / finetuned variants without an engine: what they send, and to which engine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.core import Generation, Request
from harness.engines import Adapter, EnginePool, EngineSettings
from harness.finetune import training_examples
from harness.models import ResolvedModel
from harness.prompts import build_request
from harness.suite import load_suite
from harness.variants.model import BaseVariant, PromptedVariant
from harness.variants import BuildContext, build_variant


class RecordingEngine:
    """Stands in for an EngineHandle: records each call and answers with the call's index."""

    backend = "fake"
    model = ResolvedModel("m", "m", "hash:m")

    def __init__(self) -> None:
        self.calls: list[tuple[list[Request], Adapter | None]] = []

    def generate(self, requests: Sequence[Request], adapter: Adapter | None = None) -> list[Generation]:
        self.calls.append((list(requests), adapter))
        return [Generation(f"out-{len(self.calls)}") for _ in requests]


def test_prompted_adds_system_and_the_same_few_shot_turns_to_every_request(tiny_suite: Path) -> None:
    suite = load_suite(tiny_suite)
    engine = RecordingEngine()
    context = BuildContext(suite, {"p": {"kind": "prompted", "few_shot": 2, "system": "Be terse."}}, "suite.toml", suite.dir)
    context.engine = lambda model=None, backend=None: engine  # type: ignore[method-assign]
    variant = build_variant("p", context)
    assert isinstance(variant, PromptedVariant)
    requests = [build_request(item, suite.prompt, suite.params) for item in suite.eval_items[:3]]
    generations = variant.generate(requests)
    sent = engine.calls[0][0]
    assert len(engine.calls) == 1 and len(sent) == 3
    for request, original in zip(sent, requests):
        roles = [m.role for m in request.messages]
        assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
        assert request.messages[0].content == "Be terse."  # replaces the suite's system prompt
        assert request.messages[-1] == original.messages[-1]
        assert request.messages[1:5] == sent[0].messages[1:5]  # one shared few-shot prefix
    assert {m.content for m in sent[0].messages[1:5:2]} == {"What is the capital of Norway?", "What is the capital of Peru?"}
    assert generations[0].messages == sent[0].messages  # what was sent is recorded


def test_prompted_few_shot_is_seeded(tiny_suite: Path) -> None:
    suite = load_suite(tiny_suite)
    picks = set()
    for seed in range(6):
        context = BuildContext(suite, {"p": {"kind": "prompted", "few_shot": 1, "seed": seed}}, "suite.toml", suite.dir)
        context.engine = lambda model=None, backend=None: RecordingEngine()  # type: ignore[method-assign]
        first = build_variant("p", context).examples[0].content
        again = build_variant("p", context).examples[0].content
        assert first == again
        picks.add(first)
    assert len(picks) == 2  # different seeds reach both train items


def test_prompted_refuses_more_shots_than_train_items(tiny_suite: Path) -> None:
    import pytest

    from harness.errors import ConfigError

    suite = load_suite(tiny_suite)
    context = BuildContext(suite, {"p": {"kind": "prompted", "few_shot": 5}}, "suite.toml", suite.dir)
    with pytest.raises(ConfigError, match="train split has 2 items"):
        build_variant("p", context)


def test_variants_of_one_model_share_one_engine_handle(tiny_suite: Path) -> None:
    suite = load_suite(tiny_suite)
    tables = {"b": {"kind": "base"}, "p": {"kind": "prompted", "few_shot": 1}}
    context = BuildContext(suite, tables, "suite.toml", suite.dir, EngineSettings(backend="hf"))
    base, prompted = build_variant("b", context), build_variant("p", context)
    assert isinstance(base, BaseVariant) and base.engine is prompted.engine
    assert isinstance(context.engines, EnginePool) and context.engines.loads == 0  # nothing started yet
    assert base.describe()["model"] == "embedded:smollm2-135m-instruct"


def test_finetuning_examples_are_the_eval_conversation_plus_the_reference(tiny_suite: Path) -> None:
    suite = load_suite(tiny_suite)
    [first, _] = training_examples(suite)
    assert first == {
        "prompt": [{"role": "system", "content": "Answer with JSON."}, {"role": "user", "content": "What is the capital of Norway?"}],
        "completion": [{"role": "assistant", "content": '{"capital": "Oslo"}'}],
    }
