"""Log-likelihood requests/s for forgetting checks: the harness's vLLM engine against lm-eval's `hf` backend.

The same benchmark items (a seeded, subject-stratified MMLU subset and a HellaSwag subset from the local
benchmark data), the same lm-eval tasks and the same embedded model, scored once through `HarnessLM` on
the harness's vLLM engine and once through lm-eval's own `HFLM` (transformers on the CPU). Model loading
and engine start-up are excluded: both sides are warmed up on a few other items first. Prints seconds,
requests/s, their ratio (goal >= 2x) and how many items got the same answer (goal: all, ties aside).

    .venv/bin/python bench/bench_forgetting.py [--bench-data ../shared/benchmarks] [--mmlu 100]
        [--hellaswag 40] [--shots 0,5] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.config.settings import (
    EngineSettings,
    ForgettingSettings,  # noqa: E402
)
from harness.engines import EnginePool, configure_offline  # noqa: E402
from harness.engines.models import resolve_model  # noqa: E402
from harness.forgetting.check import _no_request_building_bars, evaluate, item_record, plan_benchmarks  # noqa: E402
from harness.forgetting.result import WeightsTarget  # noqa: E402
from harness.forgetting.tasks import select_items  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# lm-eval's hf backend sums the bf16 model's log-probs in bf16 (about 1% error): closer than this, two
# choices are a tie and either answer is right (the parity test uses the same rule).
TIE_NATS, TIE_REL = 0.3, 0.01


def lm_eval_hf(lm, benchmarks, selections, shots):  # noqa: ANN001, ANN201 - bench script
    from lm_eval import simple_evaluate

    tasks = [task for b in benchmarks for name, task in b.tasks.items() if name in selections[b.name]]
    samples = {leaf: list(idx) for b in benchmarks for leaf, idx in selections[b.name].items()}
    started = time.perf_counter()
    with _no_request_building_bars():
        output = simple_evaluate(
            model=lm, tasks=tasks, samples=samples, num_fewshot=shots, log_samples=True, bootstrap_iters=0
        )
    seconds = time.perf_counter() - started
    return seconds, {
        b.name: [item_record(leaf, e) for leaf in selections[b.name] for e in output["samples"][leaf]]
        for b in benchmarks
    }


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
    parser.add_argument("--mmlu", type=int, default=100)
    parser.add_argument("--hellaswag", type=int, default=40)
    parser.add_argument("--shots", default="0,5", help="few-shot settings to measure, comma-separated")
    parser.add_argument("--batch-size", default="16", help="lm-eval hf batch size (a number or 'auto')")
    args = parser.parse_args()
    configure_offline()
    model = resolve_model()
    counts = {"mmlu": args.mmlu, "hellaswag": args.hellaswag}
    settings = ForgettingSettings(tasks=("mmlu", "hellaswag"), bench_data=args.bench_data)
    benchmarks = plan_benchmarks(settings)
    warmup = {b.name: select_items(b, 4, 1) for b in benchmarks}

    pool = EnginePool(EngineSettings(backend="vllm"))
    target = WeightsTarget("base", ("base",), pool.handle(model, "vllm"), None, "vllm")
    from lm_eval.models.huggingface import HFLM

    batch = int(args.batch_size) if args.batch_size.isdigit() else args.batch_size
    hf = HFLM(pretrained=str(model.path), device="cpu", batch_size=batch)
    evaluate(target, benchmarks, warmup, settings, pool.settings.max_model_len, False)
    lm_eval_hf(hf, benchmarks, warmup, 0)

    print(
        f"model {model.name}; items: MMLU {args.mmlu} (stratified by subject), HellaSwag {args.hellaswag}; lm-eval hf batch size {batch}"
    )
    for shots in (int(s) for s in args.shots.split(",")):
        # MMLU alone at >0 shots: the local HellaSwag is the validation split only. Tasks are loaded
        # afresh: lm-eval ignores a later num_fewshot for a task object once it was run at 0.
        run_settings = ForgettingSettings(
            tasks=("mmlu",) if shots else settings.tasks, bench_data=settings.bench_data, num_fewshot=shots
        )
        scope = plan_benchmarks(run_settings)
        chosen = {b.name: select_items(b, counts[b.name], 0) for b in scope}
        started = time.perf_counter()
        ours = evaluate(target, scope, chosen, run_settings, pool.settings.max_model_len, False)
        harness_s = time.perf_counter() - started
        requests = next(iter(ours.values())).requests
        hf_s, theirs = lm_eval_hf(hf, scope, chosen, shots)
        print(f"{shots}-shot ({' + '.join(b.name for b in scope)}): {requests} log-likelihood requests")
        print(f"  harness vLLM engine   {harness_s:7.1f} s  {requests / harness_s:6.1f} req/s")
        print(f"  lm-eval hf backend    {hf_s:7.1f} s  {requests / hf_s:6.1f} req/s")
        ratio = hf_s / harness_s
        print(f"  ratio (hf time / harness time) = {ratio:.2f}x (goal >= 2x: {'met' if ratio >= 2 else 'NOT met'})")
        for b in scope:
            same, ties, other = agreement(ours[b.name].records, theirs[b.name])
            print(
                f"  {b.name}: same answer {same}/{same + ties + other}, different on a near-tie {ties}, other differences {other}"
            )
    pool.close()


if __name__ == "__main__":
    main()
