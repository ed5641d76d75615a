"""The suite runner: every selected variant answers every eval item in batches, then gets scored.

Everything that can be checked is checked before the first generation (variant settings, templates
over every item, the output folder), so a mistake never leaves a half-made result directory behind.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.config import to_plain
from harness.core import Generation, Request, Variant
from harness.engines import EngineSettings
from harness.errors import ConfigError, UnknownNameError, did_you_mean
from harness.forgetting import ForgettingSettings
from harness.items import Item
from harness.metrics import MetricContext
from harness.metrics.retrieval import RETRIEVAL_METRICS
from harness.prompts import build_request
from harness.records import RunRecord, SampleRecord, VariantRecord, write_run
from harness.scoring import ScoringSample, score
from harness.suite import MetricSpec, Suite, check_forgetting
from harness.variants import BuildContext, build_variant, parse_variant

DEFAULT_RESULTS_DIR = Path("results")


@dataclass(frozen=True)
class RunOptions:
    variants: tuple[str, ...] = ()  # names to run; empty = all declared
    limit: int | None = None  # the first N eval items
    out: Path | None = None  # the run directory; default results/<suite>-<UTC time>
    results_dir: Path = DEFAULT_RESULTS_DIR
    variant_tables: Mapping[str, Mapping[str, Any]] | None = None  # from a run config; default the suite's
    config_source: Path | None = None  # the run config file that variant_tables came from
    model: str | None = None  # overrides [engine] model
    backend: str | None = None  # overrides [engine] backend
    latency_probe: int = 0  # N sequential single requests per variant, after the batched run
    progress: bool = True
    # Forgetting checks; each overrides its [forgetting] key in suite.toml.
    forgetting: tuple[str, ...] | None = None  # benchmark names
    forgetting_limit: int | None = None
    forgetting_max_drop: float | None = None
    bench_data: str | None = None
    forgetting_only: bool = False  # measure the variants' weights on benchmarks, not the suite's task


@dataclass
class VariantOutcome:
    name: str
    generations: list[Generation]
    timings: dict[str, float] = field(default_factory=dict)
    probe: dict[str, Any] | None = None
    described: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunPlan:
    """Everything a run needs, checked before any generation."""

    suite: Suite
    names: list[str]
    tables: Mapping[str, Mapping[str, Any]]
    where: str  # the file that declared the variants
    config_dir: Path  # where their relative paths start
    items: Sequence[Item]
    requests: Sequence[Request]
    engine: EngineSettings
    run_id: str
    created_at: str
    out_dir: Path
    forgetting: ForgettingSettings = ForgettingSettings()
    benchmarks: Sequence[Any] = ()  # lm-eval tasks, loaded and checked before any generation


def run_suite(suite: Suite, options: RunOptions = RunOptions(), prebuilt: Mapping[str, Variant] | None = None) -> Path:
    """Run the suite and write its result directory; returns the directory.

    `prebuilt` maps variant names to ready Variant objects (tests and the Python API); other names are
    built from their [variants.NAME] tables. Without `options.variants`, a run with `prebuilt` runs
    just those; otherwise every declared variant.
    """
    started = time.perf_counter()
    prebuilt = dict(prebuilt or {})
    plan = plan_run(suite, options, prebuilt)
    outcomes, engine_record, forgetting = _generate(plan, options, prebuilt)
    record = RunRecord(
        run_id=plan.run_id,
        created_at=plan.created_at,
        suite=suite,
        limit=options.limit,
        variants=[_score_variant(plan, outcome, prebuilt) for outcome in outcomes],
        total_s=time.perf_counter() - started,
        engine=engine_record,
        forgetting=forgetting,
    )
    write_run(plan.out_dir, record)
    return plan.out_dir


def plan_run(suite: Suite, options: RunOptions, prebuilt: Mapping[str, Variant]) -> RunPlan:
    tables, where, config_dir = _variant_tables(suite, options)
    requested = options.variants or tuple(prebuilt)
    names = _select(requested, [*tables, *(n for n in prebuilt if n not in tables)], where)
    for name in names:
        if name not in prebuilt:
            parse_variant(name, tables[name], where)  # check every variant's settings before building any
    if options.limit is not None and options.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {options.limit}", "", "")
    if options.latency_probe < 0:
        raise ConfigError("--latency-probe must be >= 0", "", "")
    items = suite.eval_items[: options.limit] if options.limit else suite.eval_items
    requests = [build_request(item, suite.prompt, suite.params) for item in items]
    created = datetime.now(timezone.utc).replace(microsecond=0)
    run_id = options.out.name if options.out else f"{suite.name}-{created.strftime('%Y%m%d-%H%M%S')}"
    out_dir = options.out or options.results_dir / run_id
    if (out_dir / "run.json").exists():
        raise ConfigError(f"{out_dir} already holds a run", "", "choose another --out or remove that folder")
    engine = replace(
        suite.config.engine,
        model=options.model or suite.config.engine.model,
        backend=options.backend or suite.config.engine.backend,
    )
    forgetting, benchmarks = _plan_forgetting(suite, options)
    return RunPlan(
        suite, names, tables, where, config_dir, items, requests, engine, run_id, created.isoformat(), out_dir, forgetting, benchmarks
    )


def _plan_forgetting(suite: Suite, options: RunOptions) -> tuple[ForgettingSettings, list[Any]]:
    """The forgetting settings (suite.toml, then command-line overrides) and their benchmarks, loaded."""
    settings = suite.config.forgetting
    if settings.bench_data and not options.bench_data:
        settings = replace(settings, bench_data=str(suite.dir / settings.bench_data))  # relative to the suite
    overrides = {
        "tasks": options.forgetting, "limit": options.forgetting_limit,
        "max_drop": options.forgetting_max_drop, "bench_data": options.bench_data,
    }  # fmt: skip
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    check_forgetting(settings, "--forgetting options")
    if options.forgetting_only and not settings.enabled:
        raise ConfigError("no benchmarks to run", f"{suite.dir / 'suite.toml'} [forgetting] tasks", "pass --tasks mmlu,hellaswag")
    if not settings.enabled:
        return settings, []
    from harness.forgetting.check import plan_benchmarks

    return settings, plan_benchmarks(settings)


def _generate(plan: RunPlan, options: RunOptions, prebuilt: Mapping[str, Variant]) -> tuple[list[VariantOutcome], dict[str, Any], Any]:
    context = BuildContext(plan.suite, plan.tables, plan.where, plan.config_dir, plan.engine)
    outcomes = []
    forgetting = None
    try:
        # Build every variant first: adapters are checked and engines learn their LoRA rank before
        # any engine starts; engines then start once, on first use, and are shared.
        variants = {name: prebuilt.get(name) or build_variant(name, context) for name in plan.names}
        for name, variant in variants.items():
            if options.forgetting_only:
                break
            start_before = _engine_start_s(context)
            outcome = generate_all(variant, name, plan.requests, plan.suite.config.run.batch_size, options.progress)
            # The first variant on an engine pays its start-up; report that apart from generation.
            outcome.timings["engine_start_s"] = _engine_start_s(context) - start_before
            outcome.timings["generate_s"] -= outcome.timings["engine_start_s"]
            if options.latency_probe:
                outcome.probe = latency_probe(variant, plan.requests, options.latency_probe)
            describe = getattr(variant, "describe", None)
            outcome.described = dict(describe()) if describe else {}
            outcomes.append(outcome)
        if plan.forgetting.enabled:
            from harness.forgetting.check import run_forgetting

            # The same engines as the task run: base weights, and each adapter as it was served.
            forgetting = run_forgetting(variants, context.engines, context.engine(), plan.forgetting, plan.benchmarks, options.progress)
        loads = context.engines.loads if "engines" in context.resources else 0
        engine_record = {"settings": to_plain(plan.engine), "loads": loads, "start_s": _engine_start_s(context)}
    finally:
        context.close()
    return outcomes, engine_record, forgetting


def generate_all(variant: Variant, name: str, requests: Sequence[Request], batch_size: int, progress: bool) -> VariantOutcome:
    """One generate call per batch (never per sample); checks the batch contract."""
    from tqdm import tqdm

    generations: list[Generation] = []
    started = time.perf_counter()
    with tqdm(total=len(requests), desc=name, unit="item", file=sys.stderr, disable=not progress, leave=False) as bar:
        for start in range(0, len(requests), batch_size):
            batch = list(requests[start : start + batch_size])
            produced = variant.generate(batch)
            if len(produced) != len(batch):
                raise RuntimeError(
                    f"variant '{name}' returned {len(produced)} generations for {len(batch)} requests"
                )
            generations.extend(produced)
            bar.update(len(batch))
    return VariantOutcome(name, generations, {"generate_s": time.perf_counter() - started})


def latency_probe(variant: Variant, requests: Sequence[Request], n: int) -> dict[str, Any]:
    """N requests one at a time (concurrency 1): the latency an interactive user feels."""
    import numpy as np

    walls, ttfts = [], []
    for index in range(n):
        request = requests[index % len(requests)]
        started = time.perf_counter()
        [generation] = variant.generate([request])
        walls.append(time.perf_counter() - started)
        if generation.ttft_s is not None:
            ttfts.append(generation.ttft_s)
    p50, p95, p99 = (float(x) for x in np.percentile(walls, [50, 95, 99]))
    probe: dict[str, Any] = {"n": n, "latency_s_p50": p50, "latency_s_p95": p95, "latency_s_p99": p99}
    if ttfts:
        probe["ttft_s_p50"], probe["ttft_s_p95"] = (float(x) for x in np.percentile(ttfts, [50, 95]))
    return probe


def _score_variant(plan: RunPlan, outcome: VariantOutcome, prebuilt: Mapping[str, Variant]) -> VariantRecord:
    started = time.perf_counter()
    suite, items, name = plan.suite, plan.items, outcome.name
    samples = [
        ScoringSample(g.text, item.reference, item.label, _retrieved_docs(g), item.doc_ids)
        for g, item in zip(outcome.generations, items)
    ]
    specs = list(suite.metric_specs)
    if any(sample.retrieved is not None for sample in samples):
        specs += [MetricSpec(name) for name in RETRIEVAL_METRICS if MetricSpec(name) not in specs]
    context = MetricContext(suite.schema, suite.config.output.pattern)
    run = suite.config.run
    scores, answers = score(samples, specs, suite.extractor, context, run.bootstrap, run.seed)
    records = []
    for index, (request, item, generation) in enumerate(zip(plan.requests, items, outcome.generations)):
        records.append(
            SampleRecord(
                id=item.id,
                messages=generation.messages or request.messages,
                output=generation.text,
                reference=item.reference,
                answer=answers[index].text,
                label=item.label,
                doc_ids=item.doc_ids,
                scores={key: values[index] for key, values in scores.per_sample.items()},
                generation=generation,
            )
        )
    timings = {**outcome.timings, "score_s": time.perf_counter() - started}
    if name in plan.tables:
        table = plan.tables[name]
        kind, config = str(table["kind"]), {k: v for k, v in table.items() if k != "kind"}
    else:
        kind, config = type(prebuilt[name]).__name__, {}
    return VariantRecord(name, kind, to_plain(config), records, scores.summary, timings, outcome.described, outcome.probe)


def _retrieved_docs(generation: Generation) -> tuple[str, ...] | None:
    hits = generation.metadata.get("retrieved")
    return None if hits is None else tuple(hit["doc_id"] for hit in hits)


def _engine_start_s(context: BuildContext) -> float:
    return context.engines.start_s if "engines" in context.resources else 0.0


def _variant_tables(suite: Suite, options: RunOptions) -> tuple[Mapping[str, Mapping[str, Any]], str, Path]:
    """The variant tables, where they were declared, and the folder their relative paths start from."""
    if options.variant_tables is not None:
        source = options.config_source or Path("run-config.toml")
        return options.variant_tables, str(source), source.parent
    return suite.config.variants, str(suite.dir / "suite.toml"), suite.dir


def _select(requested: Sequence[str], declared: Sequence[str], where: str) -> list[str]:
    if not declared:
        raise ConfigError("no variants declared", where, "add [variants.NAME] tables with a kind")
    if not requested:
        return list(declared)
    for name in requested:
        if name not in declared:
            raise UnknownNameError(f"unknown variant '{name}'", where, did_you_mean(name, declared))
    return list(dict.fromkeys(requested))
