"""The harness's vLLM path against raw `vllm.LLM.generate`, and engine loads for a 3-variant run.

1. Overhead: the demo suite's base requests through the harness `base` variant, and the same prompts
   (chat template applied beforehand) with the same SamplingParams through `LLM.generate` on the same
   engine, alternated `--reps` times after a warm-up; start-up excluded. Goal: ratio <= 1.03.
2. Engine loads: `run_suite` with base, prompted and finetuned-lora (the adapter served per request on
   the shared engine) on the demo suite. Goal: 1.

    .venv/bin/python bench/bench_engine.py [--n 150] [--reps 3] [--backend vllm]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.config.settings import EngineSettings
from harness.engines import EnginePool  # noqa: E402
from harness.engines.models import resolve_model  # noqa: E402
from harness.run.runner import RunOptions, run_suite  # noqa: E402
from harness.suite.prompts import build_request  # noqa: E402
from harness.variants import (  # noqa: E402
    BuildContext,
    build_variant,
    load_suite,  # noqa: E402
)

DEMO = Path(__file__).resolve().parents[1] / "suites" / "support-triage"


def overhead(n: int, reps: int) -> None:
    from vllm import SamplingParams

    suite = load_suite(DEMO)
    requests = [build_request(item, suite.prompt, suite.params) for item in suite.eval_items[:n]]
    pool = EnginePool(EngineSettings(backend="vllm"))
    context = BuildContext(suite, {"base": {"kind": "base"}}, "bench", suite.dir, pool.settings, {"engines": pool})
    variant = build_variant("base", context)
    variant.generate(requests[:4])  # start the engine and warm up
    llm = variant.engine.engine_.llm
    tokenizer = llm.get_tokenizer()
    prompts = [
        tokenizer.apply_chat_template([m.to_dict() for m in r.messages], tokenize=False, add_generation_prompt=True)
        for r in requests
    ]
    p = suite.params
    params = SamplingParams(max_tokens=p.max_tokens, temperature=p.temperature, top_p=p.top_p, seed=p.seed)

    harness_s, raw_s, same = [], [], True
    for _ in range(reps):
        started = time.perf_counter()
        ours = variant.generate(requests)
        harness_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        raw = llm.generate(prompts, params, use_tqdm=False)
        raw_s.append(time.perf_counter() - started)
        same &= [g.text for g in ours] == [o.outputs[0].text for o in raw]
    tokens = sum(g.completion_tokens or 0 for g in ours)
    pool.close()
    ratio = statistics.median(harness_s) / statistics.median(raw_s)
    print(f"overhead: {n} requests x {reps} reps, {tokens} completion tokens per rep")
    print(f"  harness base variant  median {statistics.median(harness_s):.2f} s  {[round(x, 2) for x in harness_s]}")
    print(f"  raw LLM.generate      median {statistics.median(raw_s):.2f} s  {[round(x, 2) for x in raw_s]}")
    print(
        f"  ratio harness/raw = {ratio:.3f} (goal <= 1.03: {'met' if ratio <= 1.03 else 'NOT met'}); identical outputs: {same}"
    )


def engine_loads(n: int) -> None:
    suite = load_suite(DEMO)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        out = run_suite(
            suite,
            RunOptions(variants=("base", "prompted", "finetuned-lora"), limit=n, out=Path(tmp) / "run", progress=False),
        )
        run = json.loads((out / "run.json").read_text())
    loads = run["engine"]["loads"]
    print(
        f"engine loads for a 3-variant run (base, prompted, finetuned-lora; {n} items): {loads} (goal 1: {'met' if loads == 1 else 'NOT met'}); {time.perf_counter() - started:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=150)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    resolve_model()  # convert the embedded model first, outside any timing
    overhead(args.n, args.reps)
    engine_loads(min(args.n, 20))


if __name__ == "__main__":
    main()
