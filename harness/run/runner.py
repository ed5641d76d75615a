"""The suite runner: every selected variant answers every eval item in batches, then gets scored.

Everything that can be checked is checked before the first generation (variant settings, templates
over every item, the output folder), so a mistake never leaves a half-made result directory behind.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.config.guards import check_name
from harness.config.parse import to_plain
from harness.config.settings import EngineSettings, ForgettingSettings, MetricSpec
from harness.core.errors import (
    ConfigError,
    DataError,
    GenerationFailed,
    HarnessError,
    HarnessWarning,
    UnknownNameError,
    did_you_mean,
)
from harness.core.escaping import echo
from harness.core.paths import cache_root
from harness.core.types import Generation, Request, Variant, variant_describe, variant_serving_note
from harness.engines.cache import CACHE_FILE, CacheStats, GenerationCache
from harness.engines.log import ENGINE_LOG, capture
from harness.results.write import RunRecord, SampleRecord, VariantRecord, write_run
from harness.run.lock import RunLock
from harness.run.probe import cached_latency_probe, probe_identity
from harness.run.progress import RunProgress, fingerprint_of
from harness.scoring.metrics import MetricContext
from harness.scoring.metrics.retrieval import RETRIEVAL_METRICS
from harness.scoring.scores import ScoringSample, score
from harness.suite.items import Item
from harness.suite.load import Suite, check_forgetting
from harness.suite.prompts import build_request
from harness.variants import BuildContext, build_variant, check_variants

DEFAULT_RESULTS_DIR = Path("results")
# Size guidance is for whoever trains on the data (`harness check-data`), not a reason to warn on every run.
SIZE_GUIDANCE = ("too_few_for_lora", "few_for_lora", "small_eval", "small_for_full_finetune")


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
    resume: Path | None = None  # an interrupted run's folder to finish (also found by rerunning with its --out)
    cache: bool = (
        True  # answer from the generation cache (harness.engines.cache) where an identical request was answered
    )
    # The engine self-test (harness.scoring.selftest): None = when one engine serves LoRA and non-LoRA variants.
    self_test: bool | None = None
    verbose: bool = False  # engine logs on the terminal instead of RUN_DIR/engine.log


@dataclass
class VariantOutcome:
    name: str
    generations: list[Generation]
    timings: dict[str, float] = field(default_factory=dict)
    probe: dict[str, Any] | None = None
    described: dict[str, Any] = field(default_factory=dict)
    cache: dict[str, int] | None = None  # generation-cache hits and misses, when the run had a cache


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
    benchmarks: (
        Sequence[Any] | None
    ) = ()  # lm-eval tasks, loaded and checked before any generation (None: later, if needed)
    fingerprint: dict[str, Any] = field(default_factory=dict)  # what a resume must match (harness.run.progress)
    resuming: bool = False


def run_suite(suite: Suite, options: RunOptions = RunOptions(), prebuilt: Mapping[str, Variant] | None = None) -> Path:
    """Run the suite and write its result directory; returns the directory.

    `prebuilt` maps variant names to ready Variant objects (tests and the Python API); other names are
    built from their [variants.NAME] tables. Without `options.variants`, a run with `prebuilt` runs
    just those; otherwise every declared variant.

    The run folder is locked (harness.run.lock) before it is looked at, until its last file is written:
    a second run on the same folder stops at once with one line naming the first's pid.
    """
    with RunLock() as lock:
        return _run_locked(suite, options, prebuilt, lock)


def _run_locked(suite: Suite, options: RunOptions, prebuilt: Mapping[str, Variant] | None, lock: RunLock) -> Path:
    started = time.perf_counter()
    prebuilt = dict(prebuilt or {})
    cache = GenerationCache(cache_root() / CACHE_FILE) if options.cache else None
    plan = plan_run(suite, options, prebuilt, cache, lock)
    progress = RunProgress(plan.out_dir)
    if plan.resuming:
        echo(f"harness: resuming the interrupted run in {plan.out_dir}", err=True)
    else:
        progress.start(plan.run_id, plan.created_at, plan.fingerprint)
    try:
        with capture(plan.out_dir / ENGINE_LOG, options.verbose):  # engine talk to a file (harness.engines.log)
            outcomes, engine_record, forgetting, checked = _generate(plan, options, prebuilt, progress, cache)
    except BaseException as exc:
        progress.discard_if_empty()  # e.g. a variant that failed to build: nothing to resume, leave no folder
        if isinstance(exc, KeyboardInterrupt) and progress.exists:
            exc.run_dir = plan.out_dir  # type: ignore[attr-defined]  # the CLI prints how to resume it
        raise
    record = RunRecord(
        run_id=plan.run_id,
        created_at=plan.created_at,
        suite=suite,
        limit=options.limit,
        variants=[_score_variant(plan, outcome, prebuilt) for outcome in outcomes],
        total_s=time.perf_counter() - started,
        engine=engine_record,
        forgetting=forgetting,
        self_test=checked,
    )
    write_run(plan.out_dir, record)
    progress.remove()
    return plan.out_dir


def plan_run(
    suite: Suite,
    options: RunOptions,
    prebuilt: Mapping[str, Variant],
    cache: GenerationCache | None = None,
    lock: RunLock | None = None,
) -> RunPlan:
    tables, where, config_dir = _variant_tables(suite, options)
    requested = options.variants or tuple(prebuilt)
    names = _select(requested, [*tables, *(n for n in prebuilt if n not in tables)], where)
    for name in prebuilt:
        check_name(name, "variant", "run_suite(prebuilt=...)", repr(name))  # names become file names
    # Every declared variant, selected or not: a mistake in one never waits for the run that selects it.
    check_variants(suite, tables, where, config_dir, skip=prebuilt, warn=True)
    if options.limit is not None and options.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {options.limit}", "", "")
    if options.latency_probe < 0:
        raise ConfigError("--latency-probe must be >= 0", "", "")
    _check_data(suite)
    items = suite.eval_items[: options.limit] if options.limit else suite.eval_items
    requests = [build_request(item, suite.prompt, suite.params) for item in items]
    created = datetime.now(timezone.utc).replace(microsecond=0)
    out_dir, resuming = _out_dir(options, f"{suite.name}-{created.strftime('%Y%m%d-%H%M%S')}", lock)
    run_id, created_at = out_dir.name, created.isoformat()
    engine = replace(
        suite.config.engine,
        model=options.model or suite.config.engine.model,
        backend=options.backend or suite.config.engine.backend,
    )
    forgetting, benchmarks = _plan_forgetting(suite, options, cache)
    fingerprint = fingerprint_of(
        {
            "suite config": to_plain(suite.config),
            "data": suite.data_sha256,
            "variants": names,
            "limit": options.limit,
            "variant tables": {n: to_plain(tables[n]) if n in tables else type(prebuilt[n]).__name__ for n in names},
            "engine": to_plain(engine),
            "forgetting": to_plain(forgetting),
            "latency probe": options.latency_probe,
            "forgetting only": options.forgetting_only,
        }
    )
    if resuming and options.resume is None and not RunProgress(out_dir).has_samples:
        RunProgress(out_dir).remove()  # stopped before its first sample: start afresh (perhaps with fixed settings)
        resuming = False
    if resuming:  # the interrupted run's own id and start time: its final files match an uninterrupted run's
        stored = RunProgress(out_dir).check_same(fingerprint)
        run_id, created_at = stored["run_id"], stored["created_at"]
    return RunPlan(
        suite,
        names,
        tables,
        where,
        config_dir,
        items,
        requests,
        engine,
        run_id,
        created_at,
        out_dir,
        forgetting,
        benchmarks,
        fingerprint,
        resuming,
    )


def _check_data(suite: Suite) -> None:
    """The fast data checks (harness.datacheck) before anything runs: an error (train/eval leakage, a
    contradiction in the eval set, an empty field) stops the run; warnings are printed."""
    from harness.datacheck import fast_checks

    findings = fast_checks(suite)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        total = sum(f.count for f in errors)  # an "and N more like this" finding stands for N
        more = f" (and {total - 1} more errors)" if total > 1 else ""
        raise DataError(
            f"{errors[0].message}{more}", errors[0].where, f"{errors[0].fix}; see `harness check-data {suite.dir}`"
        )
    for finding in findings:
        if finding.severity == "warning" and finding.code not in SIZE_GUIDANCE:
            warnings.warn(f"{finding.message} - {finding.where} - {finding.fix}", HarnessWarning, stacklevel=3)


def _out_dir(options: RunOptions, default_id: str, lock: RunLock | None = None) -> tuple[Path, bool]:
    """The run folder, and whether it holds an interrupted run to resume; locked first, when `lock` is given."""
    out = Path(options.resume if options.resume is not None else options.out or options.results_dir / default_id)
    if lock is not None:
        lock.acquire(out)  # before the folder is read: another live run's progress is never "interrupted"
    if options.resume is not None:
        if options.out is not None and Path(options.out).resolve() != out.resolve():
            raise ConfigError("--out and --resume name different folders", "", "pass only --resume RUN_DIR")
        if (out / "run.json").exists():
            raise ConfigError(f"{out} is a complete run: nothing to resume", "", "start a new run with another --out")
        if not RunProgress(out).exists:
            raise ConfigError(
                f"{out} holds no interrupted run", "", "pass the folder a stopped `harness run` was writing"
            )
        return out, True
    if (out / "run.json").exists():
        raise ConfigError(f"{out} already holds a run", "", "choose another --out or remove that folder")
    progress = RunProgress(out)
    if progress.exists:
        return out, True  # the same command again, after a kill: carry on
    if progress.stillborn:
        progress.remove()
    if out.is_dir() and [p.name for p in out.iterdir()] == [ENGINE_LOG]:
        (out / ENGINE_LOG).unlink()  # all a run that failed before its first sample left: its engine log
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not an empty folder", "", "choose another --out or remove it")
    return out, False


def _plan_forgetting(
    suite: Suite, options: RunOptions, cache: GenerationCache | None
) -> tuple[ForgettingSettings, list[Any] | None]:
    """The forgetting settings (suite.toml, then command-line overrides) and their benchmarks, loaded and
    checked; None when the cache knows these exact benchmark files loaded before (loading lm-eval's tasks
    takes seconds, and a rerun over unchanged weights may not need them at all)."""
    settings = suite.config.forgetting
    if settings.bench_data and not options.bench_data:
        settings = replace(settings, bench_data=str(suite.dir / settings.bench_data))  # relative to the suite
    overrides = {
        "tasks": options.forgetting,
        "limit": options.forgetting_limit,
        "max_drop": options.forgetting_max_drop,
        "bench_data": options.bench_data,
    }
    settings = replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    check_forgetting(settings, "--forgetting options")
    if options.forgetting_only and not settings.enabled:
        raise ConfigError(
            "no benchmarks to run", f"{suite.dir / 'suite.toml'} [forgetting] tasks", "pass --tasks mmlu,hellaswag"
        )
    if not settings.enabled:
        return settings, []
    from harness.forgetting.check import benchmarks_identity, plan_benchmarks

    if cache is None:
        return settings, plan_benchmarks(settings)
    identity = benchmarks_identity(settings)
    if cache.lookup("forgetting-benchmarks", {}, identity) is not None:
        return settings, None
    benchmarks = plan_benchmarks(settings)
    cache.store("forgetting-benchmarks", {}, identity, True)
    return settings, benchmarks


def _generate(
    plan: RunPlan,
    options: RunOptions,
    prebuilt: Mapping[str, Variant],
    progress: RunProgress,
    cache: GenerationCache | None,
) -> tuple[list[VariantOutcome], dict[str, Any], Any, dict[str, Any] | None]:
    context = BuildContext(plan.suite, plan.tables, plan.where, plan.config_dir, plan.engine, cache=cache)
    outcomes = []
    forgetting = None
    try:
        # Build every variant first: adapters are checked and engines learn their LoRA rank before
        # any engine starts; engines then start once, on first use, and are shared.
        variants = {name: prebuilt.get(name) or build_variant(name, context) for name in plan.names}
        for variant in variants.values():
            note = variant_serving_note(variant)
            if note and options.progress:
                echo(note, err=True)
        for name, variant in variants.items():
            if options.forgetting_only:
                break
            outcomes.append(_variant_outcome(plan, options, context, progress, name, variant))
        checked = _self_test(plan, options, context, variants, outcomes)
        if plan.forgetting.enabled:
            from harness.forgetting.check import run_forgetting

            # The same engines as the task run: base weights, and each adapter as it was served.
            forgetting = run_forgetting(
                variants, context.engines, context.engine(), plan.forgetting, plan.benchmarks, options.progress
            )
        loads = context.engines.loads if "engines" in context.resources else 0
        engine_record = {"settings": to_plain(plan.engine), "loads": loads, "start_s": _engine_start_s(context)}
    finally:
        context.close()
    return outcomes, engine_record, forgetting, checked


def _self_test(
    plan: RunPlan,
    options: RunOptions,
    context: BuildContext,
    variants: Mapping[str, Variant],
    outcomes: list[VariantOutcome],
) -> dict[str, Any] | None:
    """Replay a few requests of each variant alone and compare with the run's answers (harness.scoring.selftest)."""
    from harness.scoring.selftest import VariantAnswers, mixes_lora_and_base, self_test

    if options.self_test is False or not outcomes or (options.self_test is None and not mixes_lora_and_base(variants)):
        return None
    # "generated": not every answer was a cache hit (a variant whose engine has no cache counts none)
    answers = [
        VariantAnswers(
            o.name,
            variants[o.name],
            plan.requests,
            o.generations,
            o.cache is None or o.cache["hits"] < len(o.generations),
        )
        for o in outcomes
    ]
    return self_test(answers, context.resources.get("engines"), every=bool(options.self_test))


def _variant_outcome(
    plan: RunPlan, options: RunOptions, context: BuildContext, progress: RunProgress, name: str, variant: Variant
) -> VariantOutcome:
    """One variant's answers to every item: those an interrupted run finished, then the rest, appended to
    the progress folder batch by batch."""
    done = progress.completed(name)
    finished = progress.finished(name)
    if finished is not None and len(done) == len(plan.requests):
        generations = [done[r.id] for r in plan.requests]
        return VariantOutcome(
            name, generations, finished["timings"], finished["probe"], finished["described"], finished["cache"]
        )
    todo = [r for r in plan.requests if r.id not in done]
    stats_before = CacheStats(**vars(context.cache.stats)) if context.cache else None
    start_before = _engine_start_s(context)
    try:
        outcome = generate_all(
            variant,
            name,
            todo,
            plan.suite.config.run.batch_size,
            options.progress,
            on_batch=lambda batch, produced: progress.append(name, [r.id for r in batch], produced),
        )
    except (HarnessError, KeyboardInterrupt):
        raise
    except Exception as exc:
        kept = len(progress.completed(name))
        raise GenerationFailed(
            f"variant '{name}' failed after {kept} of {len(plan.requests)} samples: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
            str(plan.out_dir),
            f"completed samples are kept; fix the cause, then finish with --resume {plan.out_dir}",
        ) from exc
    fresh = {r.id: g for r, g in zip(todo, outcome.generations)}
    outcome.generations = [done.get(r.id) or fresh[r.id] for r in plan.requests]
    # The first variant on an engine pays its start-up; report that apart from generation.
    outcome.timings["engine_start_s"] = _engine_start_s(context) - start_before
    outcome.timings["generate_s"] -= outcome.timings["engine_start_s"]
    if stats_before is not None and context.cache is not None:
        outcome.cache = vars(context.cache.stats.since(stats_before))
    if options.latency_probe:
        outcome.probe = cached_latency_probe(
            variant,
            plan.requests,
            options.latency_probe,
            context,
            probe_identity(variant, plan.tables.get(name, {}), plan.suite),
        )
    outcome.described = dict(variant_describe(variant))
    summary = {
        "timings": outcome.timings,
        "probe": outcome.probe,
        "described": to_plain(outcome.described),
        "cache": outcome.cache,
    }
    progress.finish(name, summary)
    return outcome


def generate_all(
    variant: Variant,
    name: str,
    requests: Sequence[Request],
    batch_size: int,
    progress: bool,
    on_batch: Callable[[list[Request], list[Generation]], None] | None = None,
) -> VariantOutcome:
    """One generate call per batch (never per sample); checks the batch contract. `on_batch` sees each
    completed batch (the runner appends it to the run's progress folder)."""
    from tqdm import tqdm

    generations: list[Generation] = []
    started = time.perf_counter()
    with tqdm(total=len(requests), desc=name, unit="item", file=sys.stderr, disable=not progress, leave=False) as bar:
        for start in range(0, len(requests), batch_size):
            batch = list(requests[start : start + batch_size])
            produced = variant.generate(batch)
            if len(produced) != len(batch):
                raise RuntimeError(f"variant '{name}' returned {len(produced)} generations for {len(batch)} requests")
            if on_batch is not None:
                on_batch(batch, produced)
            generations.extend(produced)
            bar.update(len(batch))
    return VariantOutcome(name, generations, {"generate_s": time.perf_counter() - started})


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
    return VariantRecord(
        name, kind, to_plain(config), records, scores.summary, timings, outcome.described, outcome.probe, outcome.cache
    )


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
            raise UnknownNameError(f"unknown variant {name!r}", where, did_you_mean(name, declared))
    # In the order the suite declares them, whatever order --variants named them in: every table and
    # report of the run shows its rows in this order (run.json's variant_order).
    return [name for name in declared if name in requested]
