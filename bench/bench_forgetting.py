"""Log-likelihood requests/s for forgetting checks: the harness's scorer against lm-eval's `hf` backend.

The same benchmark items (a seeded, subject-stratified MMLU subset and a HellaSwag subset from the local
benchmark data), the same lm-eval tasks and the same embedded model, scored through `HarnessLM` with the
forgetting check's own scorer (packed prefix trees on a transformers forward, harness.engines.packed) and
through lm-eval's own `HFLM` (transformers, one padded row per request) in the same dtype: the harness's
choice for this machine (float32 on a CPU without native bf16, where lm-eval's default bf16 is emulated),
or --hf-dtype. `--vllm` adds the vLLM engine's prompt-log-prob path. Model loading and engine start-up are
excluded: every side is warmed up on a few other items first. Prints seconds, requests/s, the ratio (goal
>= 2x) and how many items got the same answer (goal >= 99%, near-ties aside).

    .venv/bin/python bench/bench_forgetting.py [--bench-data ../shared/benchmarks] [--mmlu 1000]
        [--hellaswag 1000] [--shots 0,5] [--batch-size 16] [--hf-dtype auto] [--vllm]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.config.settings import EngineSettings, ForgettingSettings  # noqa: E402
from harness.core.hardware import effective_dtype, machine  # noqa: E402
from harness.engines import EnginePool, configure_offline  # noqa: E402
from harness.engines.models import resolve_model  # noqa: E402
from harness.forgetting.check import (  # noqa: E402
    _no_request_building_bars,
    evaluate,
    item_record,
    plan_benchmarks,
    scoring_engine,
)
from harness.forgetting.result import WeightsTarget  # noqa: E402
from harness.forgetting.tasks import select_items  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# lm-eval's hf backend sums the bf16 model's log-probs in bf16 (about 1% error): closer than this, two
# choices are a tie and either answer is right. (The parity test runs both sides in float32 instead, where
# 0.02 nats is the tie: tests/test_forgetting_real.py.)
TIE_NATS, TIE_REL = 0.3, 0.01


def lm_eval_hf(lm, benchmarks, selections, shots):  # noqa: ANN001, ANN201 - bench script
    from lm_eval import simple_evaluate

    tasks = [task for b in benchmarks for name, task in b.tasks.items() if name in selections[b.name]]
    samples = {leaf: list(idx) for b in benchmarks for leaf, idx in selections[b.name].items()}
    started = time.perf_counter()
    with _no_request_building_bars():
        output = simple_evaluate(
            model=lm,
            tasks=tasks,
            samples=samples,
            num_fewshot=shots,
            log_samples=True,
            bootstrap_iters=0,
            # the seeds the harness's evaluate() passes: the same few-shot examples (HellaSwag draws them)
            random_seed=0,
            numpy_random_seed=0,
            torch_random_seed=0,
            fewshot_random_seed=0,
        )
    seconds = time.perf_counter() - started
    return seconds, {
        b.name: [item_record(leaf, e) for leaf in selections[b.name] for e in output["samples"][leaf]]
        for b in benchmarks
    }


class Timed:
    """Seconds spent inside one method: the scoring itself, apart from lm-eval's request building and metrics
    (the same for both sides)."""

    def __init__(self, owner, method: str) -> None:  # noqa: ANN001 - any object
        self.seconds = 0.0
        inner = getattr(owner, method)

        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started

        setattr(owner, method, timed)


def agreement(ours: list[dict], theirs: list[dict]) -> tuple[int, int, int]:
    """(same answer, different but a near-tie, different)."""
    by_id = {r["id"]: r for r in theirs}
    same = ties = 0
    for record in ours:
        other = by_id[record["id"]]
        if record["chosen"] == other["chosen"]:
            same += 1
        else:
            top = sorted(other["loglikelihoods"], reverse=True)
            ties += top[0] - top[1] < max(TIE_NATS, TIE_REL * abs(top[0]))
    return same, ties, len(ours) - same - ties


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench-data", default=str(ROOT.parent / "shared" / "benchmarks"))
    parser.add_argument("--mmlu", type=int, default=1000)
    parser.add_argument("--hellaswag", type=int, default=1000)
    parser.add_argument("--shots", default="0,5", help="few-shot settings to measure, comma-separated")
    parser.add_argument("--batch-size", default="16", help="lm-eval hf batch size (a number or 'auto')")
    parser.add_argument("--hf-dtype", default=None, help="lm-eval hf dtype; default: the harness's for this machine")
    parser.add_argument("--vllm", action="store_true", help="also time the vLLM engine's prompt-log-prob path")
    args = parser.parse_args()
    configure_offline()
    model = resolve_model()
    counts = {"mmlu": args.mmlu, "hellaswag": args.hellaswag}
    settings = ForgettingSettings(tasks=("mmlu", "hellaswag"), bench_data=args.bench_data)
    benchmarks = plan_benchmarks(settings)
    warmup = {b.name: select_items(b, 4, 1) for b in benchmarks}

    pool = EnginePool(EngineSettings(backend="vllm" if args.vllm else "hf"))
    ours = {
        "harness packed": WeightsTarget("base", ("base",), *scoring_engine(pool, pool.handle(model), None, "packed"))
    }
    if args.vllm:
        ours["harness vLLM engine"] = WeightsTarget(
            "base", ("base",), *scoring_engine(pool, pool.handle(model, "vllm"), None, "engine")
        )
    from lm_eval.models.huggingface import HFLM

    batch = int(args.batch_size) if args.batch_size.isdigit() else args.batch_size
    dtype = args.hf_dtype or effective_dtype(pool.settings.dtype)
    hf = HFLM(pretrained=str(model.path), device="cpu", batch_size=batch, dtype=dtype)
    for target in ours.values():
        evaluate(target, benchmarks, warmup, settings, pool.settings.max_model_len, False)
    lm_eval_hf(hf, benchmarks, warmup, 0)
    scoring = {label: Timed(target.engine, "loglikelihood") for label, target in ours.items()}
    scoring["lm-eval hf"] = Timed(hf, "_loglikelihood_tokens")

    hardware = machine()
    print(f"machine: {hardware['cpu_model']}, {hardware['cpus_usable']} cores, flags {' '.join(hardware['cpu_flags'])}")
    print(f"model {model.name}; items: MMLU {args.mmlu} (stratified by subject), HellaSwag {args.hellaswag}")
    print(
        f"lm-eval hf: batch size {batch}, dtype {dtype}; harness packed: dtype {effective_dtype(pool.settings.dtype)}"
    )
    for shots in (int(s) for s in args.shots.split(",")):
        for name in ("mmlu", "hellaswag"):
            if not counts[name]:
                continue
            # Tasks are loaded afresh per setting: lm-eval ignores a later num_fewshot for a task object once
            # it was run at 0. HellaSwag's few-shot examples come from its validation split (no local train).
            run_settings = ForgettingSettings(tasks=(name,), bench_data=settings.bench_data, num_fewshot=shots)
            scope = plan_benchmarks(run_settings)
            chosen = {b.name: select_items(b, counts[b.name], 0) for b in scope}
            for timer in scoring.values():
                timer.seconds = 0.0
            timed = {}
            for label, target in ours.items():
                started = time.perf_counter()
                found = evaluate(target, scope, chosen, run_settings, pool.settings.max_model_len, False)
                timed[label] = (found, time.perf_counter() - started)
            hf_s, theirs = lm_eval_hf(hf, scope, chosen, shots)
            hf_scoring = scoring["lm-eval hf"].seconds
            requests = timed["harness packed"][0][name].requests
            print(f"{name} {shots}-shot: {len(theirs[name])} items, {requests} log-likelihood requests")
            print(
                f"  lm-eval hf backend    {hf_s:7.1f} s whole  {hf_scoring:7.1f} s scoring  {requests / hf_s:6.1f} req/s"
            )
            for label, (scores, seconds) in timed.items():
                ratio, scoring_ratio = hf_s / seconds, hf_scoring / scoring[label].seconds
                same, ties, other = agreement(scores[name].records, theirs[name])
                print(
                    f"  {label:<21} {seconds:7.1f} s whole  {scoring[label].seconds:7.1f} s scoring"
                    f"  {requests / seconds:6.1f} req/s  {ratio:.2f}x lm-eval hf whole, {scoring_ratio:.2f}x scoring"
                    f" (goal >= 2x: {'met' if ratio >= 2 else 'NOT met'}); same answer {same}/{same + ties + other},"
                    f" near-tie {ties}, other {other} ({(same + ties) / max(1, same + ties + other):.1%})"
                )
    pool.close()


if __name__ == "__main__":
    main()
