"""Planning a run: its options (RunOptions) and everything checked before the first generation (RunPlan).

plan_run selects the variants, checks every declared variant's settings, the data and the options, chooses
the run folder (fresh or an interrupted run to resume), loads the forgetting benchmarks and computes the
fingerprint a resume must match; harness.run.runner then generates, scores and writes.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.config.guards import check_name
from harness.config.parse import to_plain
from harness.config.settings import EngineSettings, ForgettingSettings, plain_suite_config
from harness.config.sweep import expand_sweeps, sweeps_of
from harness.core.errors import ConfigError, DataError, HarnessWarning, UnknownNameError, did_you_mean
from harness.core.types import Request, Variant
from harness.engines.cache import GenerationCache
from harness.engines.log import ENGINE_LOG
from harness.run.judge import check_judge, judge_spec
from harness.run.lock import RunLock
from harness.run.progress import RunProgress, fingerprint_of
from harness.suite.items import Item
from harness.suite.load import Suite, check_forgetting
from harness.suite.prompts import build_request
from harness.variants import check_variants

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
    forgetting_scorer: str | None = None  # auto | packed | engine
    bench_data: str | None = None
    forgetting_only: bool = False  # measure the variants' weights on benchmarks, not the suite's task
    resume: Path | None = None  # an interrupted run's folder to finish (also found by rerunning with its --out)
    cache: bool = (
        True  # answer from the generation cache (harness.engines.cache) where an identical request was answered
    )
    # The engine self-test (harness.scoring.selftest): None = when one engine serves LoRA and non-LoRA variants.
    self_test: bool | None = None
    verbose: bool = False  # engine logs on the terminal instead of RUN_DIR/engine.log


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
    judge: str | None = None  # the variant the judge metric names (harness.run.judge), evaluated or not


def plan_run(
    suite: Suite,
    options: RunOptions,
    prebuilt: Mapping[str, Variant],
    cache: GenerationCache | None = None,
    lock: RunLock | None = None,
) -> RunPlan:
    tables, where, config_dir = _variant_tables(suite, options)
    declared = [*tables, *(n for n in prebuilt if n not in tables)]
    spec = judge_spec(suite)
    judge = check_judge(spec, declared, where)
    # A judge is evaluated only when --variants names it (harness.run.judge).
    requested = options.variants or tuple(n for n in prebuilt if n != judge)
    names = _select(requested, declared, where, sweeps_of(tables))
    if judge is not None and not options.variants:
        names = [name for name in names if name != judge]
        if not names:
            raise ConfigError(
                f"the only variant to run is the judge, '{judge}'", where, "declare a variant for it to grade"
            )
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
            "suite config": plain_suite_config(suite.config),
            "data": suite.data_sha256,
            "variants": names,
            "limit": options.limit,
            "variant tables": {n: to_plain(tables[n]) if n in tables else type(prebuilt[n]).__name__ for n in names},
            "engine": to_plain(engine),
            "forgetting": to_plain(forgetting),
            "latency probe": options.latency_probe,
            "forgetting only": options.forgetting_only,
            # only with a judge: the fingerprint of a run without one is what it was before judges existed
            **({"judge": _judge_identity(judge, tables, prebuilt)} if judge is not None else {}),
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
        judge,
    )


def _judge_identity(judge: str, tables: Mapping[str, Mapping[str, Any]], prebuilt: Mapping[str, Variant]) -> Any:
    return {"variant": judge, "table": to_plain(tables[judge]) if judge in tables else type(prebuilt[judge]).__name__}


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
        "scorer": options.forgetting_scorer,
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


def _variant_tables(suite: Suite, options: RunOptions) -> tuple[Mapping[str, Mapping[str, Any]], str, Path]:
    """The variant tables, where they were declared, and the folder their relative paths start from."""
    if options.variant_tables is not None:
        source = options.config_source or Path("run-config.toml")
        # A run config's few_shot lists expand as a suite's do (read_suite); the suite's are expanded already.
        return expand_sweeps(options.variant_tables, str(source)), str(source), source.parent
    return suite.config.variants, str(suite.dir / "suite.toml"), suite.dir


def _select(
    requested: Sequence[str], declared: Sequence[str], where: str, sweeps: Mapping[str, Sequence[str]] | None = None
) -> list[str]:
    """The variants to run, in declared order; a sweep's name (`sweeps`: name -> expansions) selects all of
    its expansions."""
    if not declared:
        raise ConfigError("no variants declared", where, "add [variants.NAME] tables with a kind")
    if not requested:
        return list(declared)
    sweeps = sweeps or {}
    for name in requested:
        if name not in declared and name not in sweeps:
            raise UnknownNameError(f"unknown variant {name!r}", where, did_you_mean(name, [*declared, *sweeps]))
    requested = [*requested, *(child for name in requested for child in sweeps.get(name, ()))]
    # In the order the suite declares them, whatever order --variants named them in: every table and
    # report of the run shows its rows in this order (run.json's variant_order).
    return [name for name in declared if name in requested]
