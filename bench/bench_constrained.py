"""Constrained decoding against free decoding, side by side on one engine: the demo's prompted variant with
and without `constrain = "schema"` over the same eval items, in alternating rounds (these machines are
noisy), the generation cache off. Prints wall time per round, the ratio, and what each gets right.

    .venv/bin/python bench/bench_constrained.py [--backend vllm|hf] [--limit 60] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="vllm", choices=("vllm", "hf"))
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    import jsonschema

    from harness.config.settings import EngineSettings
    from harness.engines import EnginePool
    from harness.suite.prompts import build_request
    from harness.variants import BuildContext, build_variant, load_suite

    suite = load_suite(ROOT / "suites" / "support-triage")
    pool = EnginePool(EngineSettings(backend=args.backend))
    context = BuildContext(suite, suite.config.variants, "suite.toml", suite.dir, pool.settings, {"engines": pool})
    variants = {name: build_variant(name, context) for name in ("prompted", "constrained")}
    requests = [build_request(item, suite.prompt, suite.params) for item in suite.eval_items[: args.limit]]
    variants["prompted"].generate(requests[:2])  # the engine starts outside the timing

    seconds: dict[str, list[float]] = {name: [] for name in variants}
    outputs: dict[str, list] = {}
    for round_ in range(args.rounds):
        order = list(variants) if round_ % 2 == 0 else list(reversed(variants))
        for name in order:
            started = time.perf_counter()
            outputs[name] = variants[name].generate(requests)
            seconds[name].append(time.perf_counter() - started)
    pool.close()

    def valid(text: str) -> bool:
        try:
            jsonschema.validate(json.loads(text), suite.schema)
        except (ValueError, jsonschema.ValidationError):
            return False
        return True

    gold = {item.id: json.loads(item.reference) for item in suite.eval_items}
    print(f"{args.backend}, {len(requests)} demo items, {args.rounds} alternating rounds, cache off")
    for name, generations in outputs.items():
        schema_ok = sum(valid(g.text) for g in generations)
        category = sum(
            valid(g.text) and json.loads(g.text)["category"] == gold[r.id]["category"]
            for g, r in zip(generations, requests)
        )
        tokens = statistics.mean(g.completion_tokens or 0 for g in generations)
        rounds = ", ".join(f"{s:.1f}" for s in seconds[name])
        print(
            f"  {name:12s} wall {rounds} s  schema-valid {schema_ok}/{len(requests)}  "
            f"category right {category}/{len(requests)}  completion tokens {tokens:.1f}"
        )
    ratio = statistics.median(seconds["constrained"]) / statistics.median(seconds["prompted"])
    per_token = ratio * statistics.mean(g.completion_tokens or 0 for g in outputs["prompted"])
    per_token /= max(statistics.mean(g.completion_tokens or 0 for g in outputs["constrained"]), 1e-9)
    print(f"constrained / free wall time: {ratio:.2f}x (per completion token: {per_token:.2f}x)")


if __name__ == "__main__":
    main()
