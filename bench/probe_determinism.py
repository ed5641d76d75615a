"""When do greedy outputs of the same request differ on one engine? A probe through the harness's own
EnginePool and the demo suite's variants (base, prompted, finetuned-lora), one engine per setting.

For each setting (a fresh process and engine) it sends the demo's first N base requests many times,
with different histories in between (the same call again, the adapter with its canary, the prompted
variant, the requests one at a time, the requests inside a bigger batch), compares every base answer
with the first call's, tie-aware (harness.core.ties), and counts how many prefill steps vLLM's scheduler
used for each call (distinct `scheduled_ts` among its requests: 1 = the whole batch started together).

    python bench/probe_determinism.py [--items 6] [--repeats 6] [--settings default,inproc,...]

Findings are written up in docs/engine-notes.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# setting -> (environment, extra vLLM LLM(...) arguments, LoRA enabled)
SETTINGS: dict[str, tuple[dict[str, str], dict[str, object], bool]] = {
    "default": ({}, {}, True),
    "inproc": ({"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}, {}, True),
    "no-prefix-cache": ({}, {"enable_prefix_caching": False}, True),
    "no-lora": ({}, {}, False),
    "inproc-no-lora": ({"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}, {}, False),
    "max-loras-2": ({}, {"max_loras": 2}, True),
    "batch-invariant": ({"VLLM_BATCH_INVARIANT": "1"}, {}, True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--settings", default="default,inproc,no-prefix-cache,no-lora")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process: run one setting
    args = parser.parse_args()
    if args.one:
        print(json.dumps(probe(args.one, args.items, args.repeats)))
        return
    for name in args.settings.split(","):
        env_extra, _, _ = SETTINGS[name]
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, __file__, "--one", name, "--items", str(args.items), "--repeats", str(args.repeats)],
            capture_output=True,
            text=True,
            env={**os.environ, **env_extra},
            cwd=ROOT,
        )
        if done.returncode != 0:
            print(
                f"{name:16s} failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
            )
            continue
        report(name, json.loads(done.stdout.strip().splitlines()[-1]), time.perf_counter() - started)


def probe(name: str, n_items: int, repeats: int) -> dict[str, object]:
    import vllm

    from harness.config.settings import EngineSettings
    from harness.core.ties import compare
    from harness.engines import EnginePool
    from harness.engines.models import resolve_model
    from harness.suite.prompts import build_request
    from harness.variants import BuildContext, build_variant, load_suite

    _, llm_kwargs, lora = SETTINGS[name]
    original_init = vllm.LLM.__init__

    def init(self, *a, **kw):  # type: ignore[no-untyped-def]
        original_init(self, *a, **{**kw, **llm_kwargs})
        chat = self.chat

        def recording_chat(*ca, **ckw):  # type: ignore[no-untyped-def]
            outputs = chat(*ca, **ckw)
            steps.append(len({round(o.metrics.scheduled_ts, 6) for o in outputs if o.metrics is not None}))
            return outputs

        self.chat = recording_chat

    vllm.LLM.__init__ = init  # type: ignore[method-assign]
    steps: list[int] = []
    suite = load_suite(ROOT / "suites" / "support-triage")
    pool = EnginePool(EngineSettings(backend="vllm"))
    if lora:
        pool.handle(resolve_model()).require_lora(16)
    context = BuildContext(suite, suite.config.variants, "suite.toml", suite.dir, pool.settings, {"engines": pool})
    names = ("base", "prompted") + (("finetuned-lora",) if lora else ())
    variants = {v: build_variant(v, context) for v in names}
    requests = [build_request(item, suite.prompt, suite.params) for item in suite.eval_items[: n_items + 24]]
    items = requests[:n_items]
    base = variants["base"]
    reference = base.generate(items)
    calls: list[tuple[str, list]] = []

    def base_call(label: str, batch=None) -> None:  # type: ignore[no-untyped-def]
        calls.append((label, base.generate(batch or items)[:n_items]))

    for r in range(repeats):
        base_call("same call again")
    if lora:
        variants["finetuned-lora"].generate(items)  # with its canary (base and adapter canary calls)
        base_call("after the adapter and its canary")
        for r in range(repeats // 2):
            variants["finetuned-lora"].generate(items)
            base_call("after the adapter")
    variants["prompted"].generate(items)
    base_call("after prompted")
    alone = [base.generate([request])[0] for request in items]
    calls.append(("one request per call", alone))
    base_call("inside a batch of 30", requests)
    results = []
    for label, generations in calls:
        verdicts = [
            compare(a.text, a.metadata.get("trace"), b.text, b.metadata.get("trace"))
            for a, b in zip(reference, generations)
        ]
        results.append(
            {
                "label": label,
                "equal": sum(v.verdict == "equal" for v in verdicts),
                "tie": sum(v.verdict == "tie" for v in verdicts),
                "different": sum(v.verdict == "different" for v in verdicts),
                "gaps": [round(v.gap, 4) for v in verdicts if v.gap is not None],
            }
        )
    pool.close()
    return {"calls": results, "prefill_steps": steps}


def report(name: str, result: dict, seconds: float) -> None:
    print(f"\n== {name} ({seconds:.0f} s); prefill steps per base call: {result['prefill_steps']}")
    merged: dict[str, list[int]] = {}
    gaps: dict[str, list[float]] = {}
    for call in result["calls"]:
        counts = merged.setdefault(call["label"], [0, 0, 0])
        for i, key in enumerate(("equal", "tie", "different")):
            counts[i] += call[key]
        gaps.setdefault(call["label"], []).extend(call["gaps"])
    for label, (equal, tie, different) in merged.items():
        print(
            f"  {label:34s} equal {equal:3d}  tie {tie:3d}  different {different:3d}  gaps at parting {sorted(gaps[label])}"
        )


if __name__ == "__main__":
    main()
