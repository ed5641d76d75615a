"""Variant kinds by name. Each maps to "module:Class" and is imported only when a run uses it, so a
run of fake variants never imports an engine.

A kind is a class with a frozen `Config` dataclass (its settings in suite.toml, checked strictly) and
`from_config(name, config, context) -> Variant`; it subclasses `harness.core.types.VariantBase`.
`load_suite` lives here, not in harness.suite: checking a suite's variant tables needs these kinds.

May import harness.retrieval, harness.engines and the layers below; never harness.run or harness.cli.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config.guards import check_name, warn_secrets
from harness.config.parse import parse_table, to_plain
from harness.core.errors import ConfigError, HarnessError, UnknownNameError, did_you_mean
from harness.core.types import Variant
from harness.suite.items import warn_repeats
from harness.suite.load import SUITE_FILE, Suite, check_backend, inside, read_suite
from harness.suite.prompts import Template

if TYPE_CHECKING:
    from harness.config.settings import EngineSettings
    from harness.engines import EngineHandle, EnginePool
    from harness.engines.cache import GenerationCache

VARIANT_KINDS: dict[str, str] = {
    "fake": "harness.variants.fake:FakeVariant",
    "echo": "harness.variants.fake:EchoVariant",
    "base": "harness.variants.model:BaseVariant",
    "prompted": "harness.variants.model:PromptedVariant",
    "finetuned": "harness.variants.model:FinetunedVariant",
    "rag": "harness.variants.rag:RagVariant",
    "hybrid": "harness.variants.rag:HybridVariant",
    "api": "harness.variants.api:ApiVariant",
}
# `backend = "api"` on a base or prompted variant: its `model` names an api variant, whose endpoint answers
# (harness.variants.api). Not an engine backend: no [engine] table may name it.
API_BACKEND = "api"
# Settings checked when the config is read, before a run starts: files must lie inside the config's
# folder, templates may hold only plain {field} placeholders. The kinds check them again when built.
PATH_SETTINGS: dict[str, tuple[str, ...]] = {
    "fake": ("outputs",),
    "finetuned": ("adapter",),
    "prompted": ("system_file",),
}
TEMPLATE_SETTINGS: dict[str, tuple[str, ...]] = {
    "rag": ("template", "chunk_template"),
    "hybrid": ("template", "chunk_template"),
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
    resources: dict[str, Any] = field(default_factory=dict)
    cache: GenerationCache | None = None  # engines answer through it; None: no cache (--no-cache)

    @property
    def engines(self) -> EnginePool:
        from harness.config.settings import EngineSettings
        from harness.engines import EnginePool

        if "engines" not in self.resources:
            self.resources["engines"] = EnginePool(self.engine_settings or EngineSettings(), self.cache)
        return self.resources["engines"]

    def engine(self, model: str | None = None, backend: str | None = None) -> EngineHandle:
        """The shared engine for a model (default: the run's model); resolving converts the embedded
        model on first use. With backend "api", `model` names an api variant, handed out as the engine."""
        if backend == API_BACKEND:  # by name, as every kind: this package never imports a kind's module
            return variant_class(API_BACKEND).endpoint(model, self)  # an EngineHandle's interface
        from harness.engines.models import resolve_model

        return self.engines.handle(resolve_model(model or self.engines.settings.model), backend)

    def retrieval_index(self, kind: str) -> tuple[Any, dict[str, Any]]:
        """The suite's knowledge base indexed for `kind`, built (or read from the cache) once per run."""
        from harness.retrieval.index import build_index
        from harness.retrieval.knowledge import chunk_documents, load_documents

        indexes = self.resources.setdefault("retrieval", {})
        if kind == "hybrid" and kind not in indexes:
            from harness.retrieval.index import HybridIndex, hybrid_info

            (bm25, bm25_info), (dense, dense_info) = self.retrieval_index("bm25"), self.retrieval_index("dense")
            indexes[kind] = (
                HybridIndex(bm25, dense),
                {**hybrid_info(bm25_info, dense_info), "documents": bm25_info["documents"]},
            )
        if kind not in indexes:
            settings = self.suite.config.knowledge
            where = f"{self.suite.dir / SUITE_FILE} [knowledge] dir"
            folder = inside(self.suite.dir, settings.dir, where)
            _check_links(self.suite.dir, folder, where)
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


def parse_variant(
    name: str, table: Mapping[str, Any], where: str, folder: Path | None = None, warn: bool = True
) -> tuple[type, Any]:
    """Check one [variants.NAME] table: its name can be a file name, its kind exists and its settings fit
    that kind's Config. Runs before any variant is built, for suite.toml and run configs alike.

    `where` is the file that declares it; its relative paths start from `folder` (default: that file's).
    `warn`: warn about values that look like API keys (once, when the run is planned)."""
    check_name(name, "variant", where, f"[variants.{json.dumps(name)[:60]}]")
    if warn and Path(where).name != SUITE_FILE:  # a run config; load_suite has warned about suite.toml
        warn_secrets(to_plain(table), where, ("variants", name))
    folder = Path(where).parent if folder is None else folder
    where = f"{where} [variants.{name}]"
    if not isinstance(table, Mapping):
        raise ConfigError("expected a table", where, "declare variants as [variants.NAME] tables")
    kind = table.get("kind")
    if not isinstance(kind, str):
        raise ConfigError("missing 'kind'", where, "add kind = '" + "' | '".join(VARIANT_KINDS) + "'")
    cls = variant_class(kind, where)
    settings = {key: value for key, value in table.items() if key != "kind"}
    config = parse_table(cls.Config, settings, where)
    for key in PATH_SETTINGS.get(kind, ()):
        if getattr(config, key, None):
            inside(folder, getattr(config, key), f"{where} {key}")
    for key in TEMPLATE_SETTINGS.get(kind, ()):
        Template(getattr(config, key)).fields(f"{where} {key}")
    if getattr(config, "backend", None) not in (None, API_BACKEND):  # base, prompted, finetuned
        check_backend(config.backend, f"{where} key 'backend'")
    return cls, config


def load_suite(path: str | Path) -> Suite:
    """Load and fully check a suite from its folder (or its suite.toml): its data, settings and every
    declared variant table, before any generation starts."""
    suite = read_suite(path)
    check_variants(suite, suite.config.variants, str(suite.dir / SUITE_FILE), suite.dir)
    warn_repeats(suite.repeats)  # last: a suite that fails to load is told its error, not these
    return suite


def check_variants(
    suite: Suite,
    tables: Mapping[str, Mapping[str, Any]],
    where: str,
    folder: Path,
    skip: Collection[str] = (),
    warn: bool = False,
) -> None:
    """Check every declared variant, selected or not (the docs promise every key is checked at load): its
    table, then what a kind's `check` says its settings must agree on (a rag's inner, few_shot against
    the train split). `skip`: names the caller supplies ready-built."""
    parsed = {
        name: parse_variant(name, table, where, folder, warn) for name, table in tables.items() if name not in skip
    }
    context = BuildContext(suite, tables, where, folder)
    for name, (cls, config) in parsed.items():
        if getattr(config, "backend", None) == API_BACKEND:
            variant_class(API_BACKEND).check_over(name, str(tables[name]["kind"]), config, context)
        check = getattr(cls, "check", None)
        if check is not None:
            check(name, config, context)


def build_variant(name: str, context: BuildContext) -> Variant:
    cls, config = parse_variant(name, context.tables[name], context.where, context.config_dir, warn=False)
    try:
        return cls.from_config(name, config, context)
    except HarnessError as exc:
        if exc.where:
            raise
        # e.g. a bad placeholder in a RAG template: say which variant's settings hold it
        raise type(exc)(exc.what, f"{context.where} [variants.{name}]", exc.fix) from None


def _check_links(root: Path, folder: Path, where: str) -> None:
    """Refuse a symlink under the knowledge folder that leads out of the suite folder: the documents
    end up in prompts and results, so a link to ~/.ssh or /etc would publish them."""
    if not folder.is_dir():
        return  # load_documents says so
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            inside(root, str(path.relative_to(root.resolve())), where)
