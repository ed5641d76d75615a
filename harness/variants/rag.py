"""Retrieval-augmented variants: `rag` retrieves the top-k chunks for each item's query, puts them with
their document ids into the prompt, and lets an inner variant on the same engine answer; `hybrid` is
the same over the fine-tuned variant (the guides' production pattern)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from harness.config.sweep import sweeps_of
from harness.core.errors import ConfigError, did_you_mean
from harness.core.ranges import ranged
from harness.core.types import (
    Constraint,
    Generation,
    Message,
    Request,
    Variant,
    VariantBase,
    variant_batch_size,
    variant_describe,
    variant_weights,
)
from harness.retrieval.index import Hit, RetrieverKind
from harness.suite.prompts import Template
from harness.variants.constrain import ConstrainSetting, decode, suite_constraint

if TYPE_CHECKING:
    from harness.engines import Adapter, EngineHandle
    from harness.variants import BuildContext

DEFAULT_TEMPLATE = """Reference documents (cite the ids you use as [id]):

{context}

{input}"""
DEFAULT_CHUNK_TEMPLATE = "[{doc_id}] {text}"
RETRIEVING_KINDS = ("rag", "hybrid")


class RagVariant(VariantBase):
    """Top-k retrieved chunks in the prompt, answered by an inner variant (default: base)."""

    @dataclass(frozen=True)
    class Config:
        inner: str = "base"  # a variant declared in the same file
        retriever: RetrieverKind = "hybrid"
        top_k: int = ranged(3, 1, 1_000_000, example="3")  # more than the knowledge base holds returns all of it
        template: str = DEFAULT_TEMPLATE  # {context} and {input}: the task's user message
        chunk_template: str = DEFAULT_CHUNK_TEMPLATE  # {doc_id}, {chunk_id}, {text}
        constrain: ConstrainSetting = "none"  # as on base/prompted/finetuned; or set it on the inner variant
        choices: tuple[str, ...] = ()

    def __init__(
        self, name: str, inner: Variant, index: Any, config: RagVariant.Config, index_info: dict[str, Any]
    ) -> None:
        self.name = name
        self.inner = inner
        self.index = index
        self.config = config
        self.index_info = index_info
        self.template = Template(config.template)
        self.chunk_template = Template(config.chunk_template)
        self.constraint: Constraint | None = None

    @classmethod
    def check(cls, name: str, config: RagVariant.Config, context: BuildContext) -> None:
        """What the settings must agree on with the other variants; run at load for every declared one."""
        where = f"{context.where} [variants.{name}]"
        others = [n for n in context.tables if n != name]
        if config.inner not in others:
            swept = sweeps_of(context.tables).get(config.inner)  # a few_shot list: its name became NAME@kK
            if swept:
                raise ConfigError(
                    f"inner variant '{config.inner}' is a few-shot sweep, not one variant",
                    where,
                    f"point inner at one of {', '.join(swept)}",
                )
            raise ConfigError(
                f"inner variant '{config.inner}' is not declared", where, did_you_mean(config.inner, others)
            )
        if config.constrain != "none" and context.tables[config.inner].get("constrain", "none") != "none":
            raise ConfigError(
                f"both this variant and its inner '{config.inner}' set constrain",
                f"{where} constrain",
                "set it on one of them",
            )
        suite_constraint(config.constrain, config.choices, context.suite, where)
        if context.tables[config.inner].get("kind") in RETRIEVING_KINDS:  # also what rules out a cycle
            raise ConfigError(
                f"inner variant '{config.inner}' retrieves too",
                where,
                "point inner at a base, prompted or finetuned variant",
            )
        for template, fields in (
            (config.template, {"context", "input"}),
            (config.chunk_template, {"doc_id", "chunk_id", "text"}),
        ):
            unknown = set(Template(template).fields()) - fields
            if unknown:
                raise ConfigError(
                    f"unknown placeholder {{{sorted(unknown)[0]}}} in a RAG template",
                    where,
                    "use " + ", ".join("{" + f + "}" for f in sorted(fields)),
                )

    @classmethod
    def from_config(cls, name: str, config: RagVariant.Config, context: BuildContext) -> RagVariant:
        cls.check(name, config, context)
        from harness.variants import build_variant

        index, info = context.retrieval_index(config.retriever)
        variant = cls(name, build_variant(config.inner, context), index, config, info)
        where = f"{context.where} [variants.{name}]"
        variant.constraint = suite_constraint(config.constrain, config.choices, context.suite, where)
        return variant

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        prepared, retrieved = [], []
        for request in requests:
            started = time.perf_counter()
            hits = self.index.search(request.query, self.config.top_k)
            seconds = time.perf_counter() - started
            context = render_context(hits, self.chunk_template)
            prepared.append(self.with_context(request, context))
            retrieved.append((hits, seconds, context))
        context_tokens = self._count_tokens([text for _, _, text in retrieved])
        generations = decode(self.inner.generate, prepared, self.constraint, self.name)
        results = []
        for generation, request, (hits, seconds, _), tokens in zip(generations, prepared, retrieved, context_tokens):
            metadata = {
                **generation.metadata,
                "retrieved": [_hit_record(h) for h in hits],
                "retrieval_s": seconds,
                "context_tokens": tokens,
            }
            results.append(replace(generation, messages=generation.messages or request.messages, metadata=metadata))
        return results

    def with_context(self, request: Request, context: str) -> Request:
        """The request with its last user message wrapped in the context template."""
        return with_context(request, context, self.template)

    def weights(self) -> tuple[EngineHandle, Adapter | None] | None:
        """The inner variant's weights: retrieval changes the prompt, not the model (None over a fake)."""
        return variant_weights(self.inner)

    def batch_size(self, run_batch_size: int) -> int:
        return variant_batch_size(self.inner, run_batch_size)

    def describe(self) -> dict[str, object]:
        return {
            **variant_describe(self.inner),
            "inner": self.config.inner,
            "retriever": self.config.retriever,
            "top_k": self.config.top_k,
            "index": self.index_info,
            **({"constrain": self.constraint.to_dict()} if self.constraint else {}),
        }

    def _count_tokens(self, texts: list[str]) -> list[int | None]:
        """Extra prompt tokens the context costs per query, with the inner model's tokenizer."""
        weights = variant_weights(self.inner)  # the engine holding them is the one that tokenizes
        if weights is None:
            return [None] * len(texts)
        return weights[0].count_tokens(texts)


class HybridVariant(RagVariant):
    """Retrieval over the fine-tuned variant: the same as rag with inner = "finetuned"."""

    @dataclass(frozen=True)
    class Config(RagVariant.Config):
        inner: str = "finetuned"


def render_context(hits: Sequence[Hit], chunk_template: Template) -> str:
    """The retrieved chunks as the prompt shows them, in rank order. `harness finetune --with-retrieval`
    builds its train prompts with this and `with_context`, so they cannot drift from the eval prompts."""
    return "\n\n".join(
        chunk_template.render({"doc_id": h.doc_id, "chunk_id": h.chunk_id, "text": h.text}) for h in hits
    )


def with_context(request: Request, context: str, template: Template) -> Request:
    """The request with its last user message wrapped in the context template."""
    messages = list(request.messages)
    last = max(i for i, m in enumerate(messages) if m.role == "user")
    messages[last] = Message("user", template.render({"context": context, "input": messages[last].content}))
    return replace(request, messages=tuple(messages))


def _hit_record(hit: Hit) -> dict[str, Any]:
    return {"doc_id": hit.doc_id, "chunk_id": hit.chunk_id, "score": hit.score}
