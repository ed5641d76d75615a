"""Suites: `suites/<name>/suite.toml` plus its data, read strictly into frozen dataclasses.

See docs/suite-format.md for every key. Loading checks everything a run needs before any generation
starts (data parses, ids are unique, every item has the fields the template needs, metrics exist), so a
mistake costs seconds, not a run.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.config.guards import check_name, shown, warn_backtracking, warn_secrets
from harness.config.parse import check_file, check_ranges, parse_table, read_capped, read_toml, to_plain
from harness.config.settings import (
    BACKENDS,
    DecisionSettings,
    ForgettingSettings,
    MetricSpec,
    SuiteConfig,
    check_cost,
    check_primary,
    parse_target,
)
from harness.config.sweep import expand_sweeps
from harness.core.errors import ConfigError, DataError, did_you_mean
from harness.core.hashing import file_sha256
from harness.core.types import GenerationParams
from harness.scoring.answers import Extractor, reference_problem
from harness.suite.items import FieldNames, Item, Repeat, read_items
from harness.suite.prompts import PromptSpec, Template

SUITE_FILE = "suite.toml"
MAX_SCHEMA_BYTES = 10_000_000  # a generated JSON schema can be large; a file this big is the wrong file


@dataclass(frozen=True)
class Suite:
    """A loaded suite: its config, its items and the content hashes of its data files."""

    dir: Path
    config: SuiteConfig
    eval_items: tuple[Item, ...]
    train_items: tuple[Item, ...]
    data_sha256: dict[str, str]
    schema: dict[str, Any] | None
    repeats: tuple[Repeat, ...] = ()  # lines dropped as exact copies of earlier ones (harness.suite.items)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def metric_specs(self) -> tuple[MetricSpec, ...]:
        return tuple(m if isinstance(m, MetricSpec) else MetricSpec(m) for m in self.config.metrics)

    @property
    def prompt(self) -> PromptSpec:
        prompt = self.config.prompt
        query = Template(prompt.query) if prompt.query is not None else None
        return PromptSpec(Template(prompt.template), prompt.system, query)

    @property
    def params(self) -> GenerationParams:
        return self.config.generation

    @property
    def extractor(self) -> Extractor:
        return Extractor(self.config.answer.extract, self.config.answer.pattern)


def read_suite(path: str | Path) -> Suite:
    """Read and check a suite from its folder (or its suite.toml): everything but its variant tables, which
    `harness.variants.load_suite` checks against the kinds registered there, above this layer."""
    path = Path(path)
    suite_dir = path.parent if path.name == SUITE_FILE else path
    toml_path = suite_dir / SUITE_FILE
    if not suite_dir.is_dir() or not toml_path.is_file():
        raise ConfigError(f"no {SUITE_FILE} in {suite_dir}", "", "pass a suite folder, e.g. suites/support-triage")
    config = parse_table(SuiteConfig, read_toml(toml_path), str(toml_path))
    where = str(toml_path)
    # A few_shot list stands for one variant per k, named NAME@kK: every later check sees those.
    config = replace(config, variants=expand_sweeps(config.variants, where))
    check_name(config.name, "suite", where, "key 'name'")
    for variant in config.variants:  # their names become samples/<variant>.jsonl
        check_name(variant, "variant", where, f"[variants.{json.dumps(variant)[:60]}]")
    _check_settings(config, where)
    # Checked here, not when a RAG variant first needs it: a wrong path costs seconds, not a run.
    inside(suite_dir, config.knowledge.dir, f"{where} [knowledge] dir")
    warn_secrets(to_plain(config), where)

    names = FieldNames(
        config.data.input_field,
        config.data.output_field,
        config.data.id_field,
        config.data.label_field,
        config.data.doc_ids_field,
    )
    eval_path = inside(suite_dir, config.data.eval, f"{where} [data] eval")
    eval_items, repeats = read_items(eval_path, config.data.format, names)
    hashes = {config.data.eval: file_sha256(eval_path)}
    train_items: list[Item] = []
    if config.data.train:
        train_path = inside(suite_dir, config.data.train, f"{where} [data] train")
        train_items, train_repeats = read_items(train_path, config.data.format, names)
        repeats += train_repeats
        hashes[config.data.train] = file_sha256(train_path)

    needed = Template(config.prompt.template).fields(f"{where} [prompt] template")
    if config.prompt.query is not None:
        needed += Template(config.prompt.query).fields(f"{where} [prompt] query")
    for item in (*eval_items, *train_items):
        missing = [name for name in needed if name not in item.fields]
        if missing:
            raise DataError(
                f"item {shown(item.id)} has no field '{missing[0]}' needed by the prompt template",
                item.source,
                f"add '{missing[0]}' to the record or change [prompt] template",
            )
        null = [name for name in needed if item.fields[name] is None]
        if null:  # it would reach the prompt as the word "null"
            raise DataError(
                f"item {shown(item.id)} has null in field '{null[0]}', used by the prompt template",
                item.source,
                f"give '{null[0]}' a string (\"\" for none), or leave it out of [prompt] template",
            )
    _check_references(eval_items, config)
    schema = _load_schema(suite_dir, config.output.schema, where)
    return Suite(suite_dir, config, tuple(eval_items), tuple(train_items), hashes, schema, tuple(repeats))


def _check_references(items: list[Item], config: SuiteConfig) -> None:
    """Every eval reference must be scorable: under JSON extraction an unusable one would match a missing answer."""
    extractor = Extractor(config.answer.extract, config.answer.pattern)
    fields = scored_fields(config)
    for item in items:
        problem = reference_problem(item.reference, extractor, fields)
        if problem:
            raise DataError(f"item {shown(item.id)}: {problem[0]}", item.source, problem[1])


def scored_fields(config: SuiteConfig) -> tuple[str, ...]:
    """The JSON keys that field metrics (`{ name = ..., field = ... }`) score, in order, once each."""
    return tuple(dict.fromkeys(m.field for m in config.metrics if isinstance(m, MetricSpec) and m.field))


def inside(root: Path, relative: str, where: str) -> Path:
    """Resolve a path from a config, refusing anything that escapes the suite folder: `..`, an absolute
    path, or a symlink inside the folder that points out of it (resolving follows every link)."""
    if "\0" in relative:
        raise ConfigError(f"path {shown(relative)} contains a NUL character", where, "fix the path")
    base = root.resolve()
    try:
        candidate = (base / relative).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop (RuntimeError before Python 3.13)
        raise ConfigError(f"cannot resolve path {shown(relative)}: {exc}", where, "fix the symlinks") from None
    if not candidate.is_relative_to(base):
        if Path(os.path.normpath(base / relative)).is_relative_to(base):
            raise ConfigError(
                f"path {shown(relative)} is a symlink to {candidate}, outside the suite folder",
                where,
                "copy the file into the suite folder instead of linking to it",
            )
        raise ConfigError(
            f"path {shown(relative)} points outside the suite folder", where, "keep suite files inside it"
        )
    return candidate


def _check_settings(config: SuiteConfig, where: str) -> None:
    """What one key's range cannot say (parse_table checked those): settings that must agree."""
    generation, engine, knowledge = config.generation, config.engine, config.knowledge
    if generation.max_tokens >= engine.max_model_len:
        raise ConfigError(
            f"max_tokens = {generation.max_tokens} leaves no room for a prompt in max_model_len = {engine.max_model_len}",
            f"{where} [generation]",
            "lower max_tokens, or raise [engine] max_model_len",
        )
    check_backend(engine.backend, f"{where} [engine] key 'backend'")
    if any(not stop for stop in generation.stop):
        raise ConfigError(
            "an empty stop string would end every output at once", f"{where} [generation] key 'stop'", "remove it"
        )
    if knowledge.chunk_overlap >= knowledge.chunk_size:
        raise ConfigError(
            f"chunk_overlap = {knowledge.chunk_overlap} must be less than chunk_size = {knowledge.chunk_size}",
            f"{where} [knowledge]",
            "e.g. chunk_size = 200, chunk_overlap = 40",
        )
    if config.answer.extract == "regex" and not config.answer.pattern:
        raise ConfigError("extract = 'regex' needs a pattern", f"{where} [answer]", "add pattern = '...'")
    for pattern, table in ((config.answer.pattern, "answer"), (config.output.pattern, "output")):
        if pattern is not None:
            try:
                re.compile(pattern)
            except (re.error, RecursionError, OverflowError) as exc:
                raise ConfigError(f"invalid regex {shown(pattern)}: {exc}", f"{where} [{table}]", "") from None
            warn_backtracking(pattern, f"{where} [{table}]")
    check_forgetting(config.forgetting, f"{where} [forgetting]")
    check_cost(config.cost, f"{where} [cost]")
    if not config.metrics:
        raise ConfigError("no metrics", where, "add metrics = ['exact_match', ...]")
    from harness.scoring.metrics import check_metric_specs  # deferred: metrics import numpy and friends

    specs = tuple(m if isinstance(m, MetricSpec) else MetricSpec(m) for m in config.metrics)
    check_metric_specs(specs, config, where)
    _check_decision(config.decision, [spec.key for spec in specs], f"{where} [decision]")
    if config.primary is not None:
        check_primary(config.primary, [spec.key for spec in specs], f"{where} key 'primary'")


def _check_decision(settings: DecisionSettings, metric_keys: list[str], where: str) -> None:
    """Every target names a metric the suite scores: a typo would otherwise surface only in `harness decide`."""
    for i, text in enumerate(settings.target):
        target = parse_target(text, f"{where} key 'target'[{i}]")
        if target.metric not in metric_keys:
            raise ConfigError(
                f"target {shown(text)} names '{target.metric}', which the suite does not score",
                f"{where} key 'target'[{i}]",
                did_you_mean(target.metric, metric_keys),
            )


def check_backend(name: str, where: str) -> None:
    """A backend a config names must be registered (harness.config.settings.BACKENDS) or `auto`: checked at load, not
    when the engine starts minutes later."""
    if name != "auto" and name not in BACKENDS:
        raise ConfigError(f"unknown backend {shown(name)}", where, did_you_mean(name, ["auto", *BACKENDS]))


def check_forgetting(settings: ForgettingSettings, where: str) -> None:
    check_ranges(settings, where)  # again: command-line overrides replace values parse_table checked
    if len(set(settings.tasks)) != len(settings.tasks) or any(not t.strip() for t in settings.tasks):
        raise ConfigError(
            f"tasks must be distinct, non-empty names: {list(settings.tasks)}",
            where,
            "e.g. tasks = ['mmlu', 'hellaswag']",
        )


def _load_schema(suite_dir: Path, schema: str | dict[str, Any] | None, where: str) -> dict[str, Any] | None:
    if schema is None:
        return None
    if isinstance(schema, str):
        path = inside(suite_dir, schema, f"{where} [output] schema")
        schema = _read_schema(path, f"{where} [output] schema")
    import jsonschema

    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"invalid JSON schema: {exc.message[:200]}", f"{where} [output] schema", "") from None
    except RecursionError:
        raise ConfigError("invalid JSON schema: nested too deeply", f"{where} [output] schema", "flatten it") from None
    if not isinstance(schema, dict):
        raise ConfigError("a JSON schema must be an object", f"{where} [output] schema", "") from None
    return dict(schema)


def _read_schema(path: Path, where: str) -> Any:
    check_file(path, "JSON schema file", where)
    data = read_capped(path, MAX_SCHEMA_BYTES, "a JSON schema", "point [output] schema at the right file")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError("invalid UTF-8", f"{path} byte {exc.start} ({where})", "save the file as UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"malformed JSON ({exc.msg})", f"{path}:{exc.lineno} column {exc.colno} ({where})", "fix the schema"
        ) from None
    except (ValueError, RecursionError):
        raise ConfigError(
            "malformed JSON (a number out of range, or nested too deeply)", f"{path} ({where})", "fix the schema"
        ) from None
