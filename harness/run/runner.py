"""The suite runner: every selected variant answers every eval item in batches, then gets scored.

Everything that can be checked is checked before the first generation (variant settings, templates
over every item, the output folder: harness.run.plan), so a mistake never leaves a half-made result
directory behind. This module holds what follows the plan: generation, the self-test, scoring and writing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config.parse import to_plain
from harness.config.settings import JUDGE_METRIC, MetricSpec
from harness.core.errors import GenerationFailed, HarnessError
from harness.core.escaping import echo
from harness.core.hardware import effective_dtype
from harness.core.paths import cache_root
from harness.core.types import (
    Generation,
    Request,
    Variant,
    variant_batch_size,
    variant_describe,
    variant_serving_note,
)
from harness.engines.cache import CACHE_FILE, CacheStats, GenerationCache
from harness.engines.log import ENGINE_LOG, capture
from harness.results.write import RunRecord, SampleRecord, VariantRecord, write_run
from harness.run.judge import JudgeOutcome, Verdict, judge_requests, judge_section, judge_spec, judged, progress_name
from harness.run.lock import RunLock
from harness.run.plan import RunOptions, RunPlan, plan_run
from harness.run.probe import cached_latency_probe, probe_identity
from harness.run.progress import RunProgress
from harness.scoring.metrics import MetricContext
from harness.scoring.metrics.retrieval import RETRIEVAL_METRICS
from harness.scoring.scores import ScoringSample, score
from harness.suite.load import Suite
from harness.variants import BuildContext, build_variant

# RunOptions and plan_run live in harness.run.plan; callers (the CLI, tests, the Python API) import them here too.
__all__ = ["RunOptions", "RunPlan", "VariantOutcome", "generate_all", "plan_run", "run_suite"]


@dataclass
class VariantOutcome:
    name: str
    generations: list[Generation]
    timings: dict[str, float] = field(default_factory=dict)
    probe: dict[str, Any] | None = None
    described: dict[str, Any] = field(default_factory=dict)
    cache: dict[str, int] | None = None  # generation-cache hits and misses, when the run had a cache


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
            outcomes, engine_record, forgetting, checked, judging = _generate(plan, options, prebuilt, progress, cache)
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
        variants=[_score_variant(plan, outcome, prebuilt, judging) for outcome in outcomes],
        total_s=time.perf_counter() - started,
        engine=engine_record,
        forgetting=forgetting,
        self_test=checked,
        judge=judging.section if judging else None,
    )
    write_run(plan.out_dir, record)
    progress.remove()
    return plan.out_dir


def _generate(
    plan: RunPlan,
    options: RunOptions,
    prebuilt: Mapping[str, Variant],
    progress: RunProgress,
    cache: GenerationCache | None,
) -> tuple[list[VariantOutcome], dict[str, Any], Any, dict[str, Any] | None, Judging | None]:
    context = BuildContext(plan.suite, plan.tables, plan.where, plan.config_dir, plan.engine, cache=cache)
    outcomes = []
    forgetting = judging = None
    try:
        # Build every variant first: adapters are checked and engines learn their LoRA rank before
        # any engine starts; engines then start once, on first use, and are shared.
        variants = {name: prebuilt.get(name) or build_variant(name, context) for name in plan.names}
        judge = None
        if plan.judge is not None:  # evaluated or not, built with the others
            judge = variants.get(plan.judge) or prebuilt.get(plan.judge) or build_variant(plan.judge, context)
        for variant in [*variants.values(), *([judge] if judge is not None and plan.judge not in variants else [])]:
            note = variant_serving_note(variant)
            if note and options.progress:
                echo(note, err=True)
        for name, variant in variants.items():
            if options.forgetting_only:
                break
            outcomes.append(_variant_outcome(plan, options, context, progress, name, variant))
        if judge is not None and outcomes:
            judging = _judge_all(plan, options, context, progress, judge, outcomes)
        checked = _self_test(plan, options, context, variants, outcomes)
        if plan.forgetting.enabled:
            from harness.forgetting.check import run_forgetting

            # The same engines as the task run: base weights, and each adapter as it was served.
            forgetting = run_forgetting(
                variants, context.engines, context.engine(), plan.forgetting, plan.benchmarks, options.progress
            )
        loads = context.engines.loads if "engines" in context.resources else 0
        engine_record = {"settings": to_plain(plan.engine), "loads": loads, "start_s": _engine_start_s(context)}
        if loads:  # what dtype = "auto" meant on this machine (harness.core.hardware.effective_dtype)
            engine_record["dtype"] = effective_dtype(plan.engine.dtype)
    finally:
        context.close()
    return outcomes, engine_record, forgetting, checked, judging


@dataclass(frozen=True)
class Judging:
    """The judge's verdicts on each judged variant (harness.run.judge) and run.json's `judge` section."""

    verdicts: dict[str, list[Verdict]]
    section: dict[str, Any]


def _judge_all(
    plan: RunPlan,
    options: RunOptions,
    context: BuildContext,
    progress: RunProgress,
    judge: Variant,
    outcomes: list[VariantOutcome],
) -> Judging:
    spec = judge_spec(plan.suite)
    assert spec is not None and plan.judge is not None
    graded = set(judged(spec, [o.name for o in outcomes]))
    found = []
    for outcome in outcomes:
        if outcome.name in graded:
            requests = judge_requests(spec, plan.suite, plan.items, plan.requests, outcome.generations)
            found.append(_judge_outcome(plan, options, context, progress, judge, outcome.name, requests))
    section = judge_section(spec, variant_describe(judge), found, plan.suite.config.cost)
    return Judging({o.judged: o.verdicts for o in found}, section)


def _judge_outcome(
    plan: RunPlan,
    options: RunOptions,
    context: BuildContext,
    progress: RunProgress,
    judge: Variant,
    judged_name: str,
    requests: list[Request],
) -> JudgeOutcome:
    """The judge's verdicts on one variant: those an interrupted run kept, then the rest, batch by batch."""
    key = progress_name(judged_name)
    done, finished = progress.completed(key), progress.finished(key)
    if finished is None or len(done) != len(requests):
        todo = [r for r in requests if r.id not in done]
        stats_before = CacheStats(**vars(context.cache.stats)) if context.cache else None
        fresh = _generate_kept(
            plan,
            options,
            progress,
            judge,
            key,
            f"{plan.judge} judging {judged_name}",
            todo,
            len(requests),
            f"judge '{plan.judge}' failed on variant '{judged_name}'",
            "verdicts",
        )
        done.update({r.id: g for r, g in zip(todo, fresh.generations)})
        cache = vars(context.cache.stats.since(stats_before)) if stats_before and context.cache else None
        finished = {"timings": fresh.timings, "cache": cache}
        progress.finish(key, finished)
    verdicts = [Verdict(r, done[r.id]) for r in requests]
    return JudgeOutcome(judged_name, verdicts, finished["timings"], finished["cache"])


def _generate_kept(
    plan: RunPlan,
    options: RunOptions,
    progress: RunProgress,
    variant: Variant,
    key: str,
    label: str,
    todo: list[Request],
    total: int,
    failed: str,
    noun: str,
) -> VariantOutcome:
    """generate_all with each batch kept in progress/ under `key`; a failure (not the user's) is one
    GenerationFailed saying how many `noun` of `total` were kept and how to --resume."""
    try:
        return generate_all(
            variant,
            label,
            todo,
            variant_batch_size(variant, plan.suite.config.run.batch_size),
            options.progress,
            on_batch=lambda batch, produced: progress.append(key, [r.id for r in batch], produced),
        )
    except (HarnessError, KeyboardInterrupt):
        raise
    except Exception as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else ""
        raise GenerationFailed(
            f"{failed} after {len(progress.completed(key))} of {total} {noun}: {type(exc).__name__}: {first}",
            str(plan.out_dir),
            f"completed {noun} are kept; fix the cause, then finish with --resume {plan.out_dir}",
        ) from exc


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
    outcome = _generate_kept(
        plan, options, progress, variant, name, name, todo, len(plan.requests), f"variant '{name}' failed", "samples"
    )
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


def _score_variant(
    plan: RunPlan, outcome: VariantOutcome, prebuilt: Mapping[str, Variant], judging: Judging | None = None
) -> VariantRecord:
    started = time.perf_counter()
    suite, items, name = plan.suite, plan.items, outcome.name
    verdicts = judging.verdicts.get(name) if judging else None
    samples = [
        ScoringSample(
            g.text,
            item.reference,
            item.label,
            _retrieved_docs(g),
            item.doc_ids,
            verdicts[i].score if verdicts else None,
            item.tools,
        )
        for i, (g, item) in enumerate(zip(outcome.generations, items))
    ]
    # A variant the judge does not grade (the judge itself) has no judge column, rather than an empty one.
    specs = [spec for spec in suite.metric_specs if verdicts is not None or spec.name != JUDGE_METRIC]
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
                judge=verdicts[index].record(plan.judge or "") if verdicts else None,
                tools=item.tools,
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
