"""What determinism costs: vLLM's engine core in-process (the harness default, so that requests of one
call are scheduled together and an identical call on an identical engine gets identical batches)
against vLLM V1's default of a separate engine-core process; and the token trace (top log-probs of
each generated token, harness.core.ties) against none. Side by side in one run, start-up excluded.

    .venv/bin/python bench/bench_engine_modes.py [--n 30] [--reps 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODES = {"in-process core": "0", "engine-core process": "1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.n, args.reps)))
        return
    results = {}
    for mode, flag in MODES.items():
        done = subprocess.run(
            [sys.executable, __file__, "--child", "--n", str(args.n), "--reps", str(args.reps)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "VLLM_ENABLE_V1_MULTIPROCESSING": flag},
        )
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    for mode, r in results.items():
        print(
            f"{mode:20s} {args.n} requests: with trace {r['trace_s']:.2f} s, without {r['plain_s']:.2f} s "
            f"(trace costs {r['trace_s'] / r['plain_s']:.3f}x)"
        )
    a, b = (results[m]["trace_s"] for m in MODES)
    print(f"in-process / engine-core process: {a / b:.3f}x")


def measure(n: int, reps: int) -> dict[str, float]:
    from vllm import SamplingParams

    from harness.config.settings import EngineSettings
    from harness.engines import EnginePool
    from harness.engines.vllm_engine import VllmEngine
    from harness.suite.prompts import build_request
    from harness.variants import BuildContext, build_variant, load_suite

    suite = load_suite(ROOT / "suites" / "support-triage")
    requests = [build_request(item, suite.prompt, suite.params) for item in suite.eval_items[:n]]
    pool = EnginePool(EngineSettings(backend="vllm"))
    context = BuildContext(suite, {"base": {"kind": "base"}}, "bench", suite.dir, pool.settings, {"engines": pool})
    variant = build_variant("base", context)
    variant.generate(requests[:4])  # start and warm up
    engine: VllmEngine = variant.engine.started()  # type: ignore[assignment]
    conversations = [[m.to_dict() for m in r.messages] for r in requests]
    traced = engine.sampling(requests)
    plain = [
        SamplingParams(max_tokens=p.max_tokens, temperature=p.temperature, seed=p.seed)
        for p in (r.params for r in requests)
    ]
    times: dict[str, list[float]] = {"trace_s": [], "plain_s": []}
    for _ in range(reps):
        for key, params in (("trace_s", traced), ("plain_s", plain)):
            engine.llm.reset_prefix_cache()  # every timed call prefills afresh
            started = time.perf_counter()
            engine.llm.chat(conversations, params, use_tqdm=False)
            times[key].append(time.perf_counter() - started)
    pool.close()
    return {key: statistics.median(values) for key, values in times.items()}


if __name__ == "__main__":
    main()
