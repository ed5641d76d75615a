"""Variant kinds by name. Each maps to "module:Class" and is imported only when a run uses it, so a
run of fake variants never imports an engine.

A kind is a class with a frozen `Config` dataclass (its settings in suite.toml, checked strictly) and
`from_config(name, config, context) -> Variant`.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import parse_table
from harness.core import Variant
from harness.errors import ConfigError, UnknownNameError, did_you_mean
from harness.suite import Suite

if TYPE_CHECKING:
    from harness.cache import GenerationCache
    from harness.engines import EngineHandle, EnginePool, EngineSettings

VARIANT_KINDS: dict[str, str] = {
    "fake": "harness.variants.fake:FakeVariant",
    "echo": "harness.variants.fake:EchoVariant",
    "base": "harness.variants.model:BaseVariant",
    "prompted": "harness.variants.model:PromptedVariant",
    "finetuned": "harness.variants.model:FinetunedVariant",
    "rag": "harness.variants.rag:RagVariant",
    "hybrid": "harness.variants.rag:HybridVariant",
}


@dataclass
class BuildContext:
    """What variants may need while being built: the suite, every declared variant table (wrappers
    name an inner variant), the folder their relative paths start from, and shared resources such as
    the engine pool, closed at the end of a run."""

    suite: Suite
    tables: Mapping[str, Mapping[str, Any]]
    where: str = "suite.toml"
    config_dir: Path = Path(".")
    engine_settings: EngineSettings | None = None
    cache: GenerationCache | None = None  # engines answer through it; None: no cache (--no-cache)
    resources: dict[str, Any] = field(default_factory=dict)

    @property
    def engines(self) -> EnginePool:
        from harness.engines import EnginePool, EngineSettings

        if "engines" not in self.resources:
            self.resources["engines"] = EnginePool(self.engine_settings or EngineSettings(), self.cache)
        return self.resources["engines"]

    def engine(self, model: str | None = None, backend: str | None = None) -> EngineHandle:
        """The shared engine for a model (default: the run's model); resolving converts the embedded
        model on first use."""
        from harness.models import resolve_model

        return self.engines.handle(resolve_model(model or self.engines.settings.model), backend)

    def retrieval_index(self, kind: str) -> tuple[Any, dict[str, Any]]:
        """The suite's knowledge base indexed for `kind`, built (or read from the cache) once per run."""
        from harness.knowledge import chunk_documents, load_documents
        from harness.retrieval import build_index
        from harness.suite import inside

        indexes = self.resources.setdefault("retrieval", {})
        if kind == "hybrid" and kind not in indexes:
            from harness.retrieval import HybridIndex, hybrid_info

            (bm25, bm25_info), (dense, dense_info) = self.retrieval_index("bm25"), self.retrieval_index("dense")
            indexes[kind] = (HybridIndex(bm25, dense), {**hybrid_info(bm25_info, dense_info), "documents": bm25_info["documents"]})
        if kind not in indexes:
            settings = self.suite.config.knowledge
            folder = inside(self.suite.dir, settings.dir, f"{self.suite.dir / 'suite.toml'} [knowledge] dir")
            documents = load_documents(folder)
            chunks = chunk_documents(documents, settings.chunk_size, settings.chunk_overlap)
            index, info = build_index(kind, chunks, settings.embedding_model)  # type: ignore[arg-type]
            indexes[kind] = (index, {**info, "documents": len(documents)})
        return indexes[kind]

    def close(self) -> None:
        for resource in reversed(list(self.resources.values())):
            close = getattr(resource, "close", None)
            if close is not None:
                close()
        self.resources.clear()


def variant_class(kind: str, where: str = "") -> type:
    if kind not in VARIANT_KINDS:
        raise UnknownNameError(f"unknown variant kind '{kind}'", where, did_you_mean(kind, VARIANT_KINDS))
    module_name, _, class_name = VARIANT_KINDS[kind].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def parse_variant(name: str, table: Mapping[str, Any], where: str) -> tuple[type, Any]:
    """Check one [variants.NAME] table: its kind exists and its settings fit that kind's Config."""
    where = f"{where} [variants.{name}]"
    if not isinstance(table, Mapping):
        raise ConfigError("expected a table", where, "declare variants as [variants.NAME] tables")
    kind = table.get("kind")
    if not isinstance(kind, str):
        raise ConfigError("missing 'kind'", where, "add kind = '" + "' | '".join(VARIANT_KINDS) + "'")
    cls = variant_class(kind, where)
    settings = {key: value for key, value in table.items() if key != "kind"}
    return cls, parse_table(cls.Config, settings, where)


def build_variant(name: str, context: BuildContext) -> Variant:
    cls, config = parse_variant(name, context.tables[name], context.where)
    return cls.from_config(name, config, context)
