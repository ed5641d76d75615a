"""Benchmark `harness.scoring.scores.score` on synthetic but realistic samples, with every registered metric.

Two passes over N samples each, as a suite would run them:
  text pass  (extract = "text"): exact_match, accuracy, macro_f1, token_f1, bleu, chrf, rouge1, rouge2,
                                 rougeL, regex_match, output_length  (+ any other registered metric that
                                 needs no suite setting)
  json pass  (extract = "json"): json_valid, json_schema, accuracy[category], macro_f1[category]
Both with the default 1000 bootstrap resamples. Prints a per-metric time breakdown (stats, per-sample
values, aggregate, bootstrap), total seconds, samples/s, and whether the goal (<= 10 s for 10,000
samples, both passes together) is met.

    .venv/bin/python bench/bench_scoring.py [--n 10000] [--bootstrap 1000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.config.settings import MetricSpec  # noqa: E402
from harness.scoring import scores as scoring  # noqa: E402
from harness.scoring.answers import Extractor  # noqa: E402
from harness.scoring.metrics import MetricContext, available_metrics, metric_class  # noqa: E402
from harness.scoring.scores import ScoringSample, score  # noqa: E402

GOAL_S = 10.0
GOAL_N = 10_000

CLASSES = ("sports", "politics", "science", "business", "health", "entertainment")
TOPIC_WORDS = {
    "sports": "team match season coach player goal league championship score victory fans stadium".split(),
    "politics": "government election minister parliament policy vote campaign senator law debate party".split(),
    "science": "researchers study experiment data cells climate physics discovery species telescope energy".split(),
    "business": "company market shares profit investors revenue growth bank prices trade quarter".split(),
    "health": "patients doctors hospital treatment vaccine disease study risk symptoms care clinical".split(),
    "entertainment": "film music album actor festival series director audience stage award premiere".split(),
}
COMMON = (
    "the a of to in and for on with that is was will has have from by at as after before new said "
    "year week this their its more than about over last first could would which while also been two "
    "three many most some other people city country report according officials early later during "
    "under between major local national international recent announced expected increase decision "
    "plan results show shows showed reported including several despite amid following"
).split()

SCHEMA = {
    "type": "object",
    "properties": {"category": {"enum": list(CLASSES)}, "summary": {"type": "string"}},
    "required": ["category", "summary"],
}
PATTERN = r"[A-Z].*[.!?]"  # a sentence: starts upper-case, ends with punctuation


def sentence(rng: random.Random, topic: str, length: int) -> list[str]:
    words = TOPIC_WORDS[topic]
    return [rng.choice(words) if rng.random() < 0.35 else rng.choice(COMMON) for _ in range(length)]


def perturb(rng: random.Random, words: list[str], topic: str) -> list[str]:
    """A model output that shares most words with the reference: drops, substitutions, insertions."""
    out: list[str] = []
    for word in words:
        r = rng.random()
        if r < 0.12:
            continue  # dropped
        if r < 0.27:
            out.append(rng.choice(TOPIC_WORDS[topic] + COMMON))  # substituted
        else:
            out.append(word)
        if rng.random() < 0.06:
            out.append(rng.choice(COMMON))  # inserted
    return out or [rng.choice(COMMON)]


def render(words: list[str], rng: random.Random) -> str:
    text = " ".join(words)
    if rng.random() < 0.3:  # a comma somewhere
        cut = rng.randrange(1, len(words)) if len(words) > 1 else 1
        text = " ".join(words[:cut]) + ", " + " ".join(words[cut:])
    return text[:1].upper() + text[1:] + rng.choice([".", ".", ".", "!", "?", ""])


def make_samples(n: int, seed: int) -> tuple[list[ScoringSample], list[ScoringSample]]:
    rng = random.Random(seed)
    text_samples: list[ScoringSample] = []
    json_samples: list[ScoringSample] = []
    for i in range(n):
        gold = CLASSES[rng.randrange(len(CLASSES))]
        reference = sentence(rng, gold, rng.randint(20, 40))
        if i % 50 == 0:
            output = list(reference)  # an exact answer now and then
        else:
            output = perturb(rng, reference, gold)
        ref_text, out_text = render(reference, rng), render(output, rng)
        if rng.random() < 0.05:
            out_text = "Answer:\n" + out_text  # a chatty prefix
        text_samples.append(ScoringSample(out_text, ref_text, gold))

        # JSON pass: {"category", "summary"}; predicted category right ~75% of the time
        predicted = gold if rng.random() < 0.75 else CLASSES[rng.randrange(len(CLASSES))]
        if rng.random() < 0.05:
            predicted = predicted.title()  # case differences
        summary = " ".join(output[: rng.randint(8, 16)])
        body = json.dumps({"category": predicted, "summary": summary})
        r = rng.random()
        if r < 0.60:
            json_out = body
        elif r < 0.75:
            json_out = f"```json\n{body}\n```"
        elif r < 0.88:
            json_out = f"Here is the classification: {body} Let me know if you need more."
        elif r < 0.94:
            json_out = body[: rng.randint(5, len(body) - 2)]  # truncated
        else:
            json_out = json.dumps({"label": predicted, "summary": summary})  # wrong key
        json_ref = json.dumps({"category": gold, "summary": " ".join(reference[:12])})
        json_samples.append(ScoringSample(json_out, json_ref, gold))
    return text_samples, json_samples


class Timings:
    """Wraps metric classes so each spec of a score() call records the time of its four phases."""

    PHASES = ("stats", "per_sample", "aggregate", "aggregate_resamples")

    def __init__(self) -> None:
        self.by_key: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))

    def run(self, samples, specs, extractor, context, bootstrap, seed):  # noqa: ANN001, ANN201
        keys = iter([spec.key for spec in specs])
        record = self.by_key

        def timed_class(name: str, where: str = "") -> type:
            base = metric_class(name, where)
            key = next(keys)
            namespace: dict[str, Any] = {}
            for phase in Timings.PHASES:
                namespace[phase] = _timed(getattr(base, phase), record[key], phase)
            return type(base.__name__, (base,), namespace)

        original = scoring.metric_class
        scoring.metric_class = timed_class
        try:
            started = time.perf_counter()
            result = score(samples, specs, extractor, context, bootstrap, seed)
            return result, time.perf_counter() - started
        finally:
            scoring.metric_class = original


def _timed(function: Callable[..., Any], into: dict[str, float], phase: str) -> Callable[..., Any]:
    def wrapper(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        started = time.perf_counter()
        try:
            return function(self, *args, **kwargs)
        finally:
            into[phase] += time.perf_counter() - started

    return wrapper


def report(title: str, scores, timings: Timings, specs: list[MetricSpec], total: float) -> None:  # noqa: ANN001
    print(f"\n{title}: {total:.2f} s")
    print(
        f"  {'metric':<22}{'value':>10}{'ci_low':>10}{'ci_high':>10}   {'stats':>7}{'per-smp':>8}{'aggr':>7}{'boot':>7}{'total':>8}"
    )
    accounted = 0.0
    for spec in specs:
        s = scores.summary[spec.key]
        t = timings.by_key[spec.key]
        metric_total = sum(t.values())
        accounted += metric_total
        ci = (f"{s.ci_low:>10.4f}{s.ci_high:>10.4f}") if s.ci_low is not None else f"{'-':>10}{'-':>10}"
        print(
            f"  {spec.key:<22}{s.value:>10.4f}{ci}   {t['stats']:>7.3f}{t['per_sample']:>8.3f}"
            f"{t['aggregate']:>7.3f}{t['aggregate_resamples']:>7.3f}{metric_total:>8.3f}"
        )
    print(f"  {'(extraction, inputs, percentiles)':<52}{'':>21}{total - accounted:>15.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=GOAL_N, help="samples per pass (default 10000)")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    started = time.perf_counter()
    text_samples, json_samples = make_samples(args.n, args.seed)
    print(f"built {args.n} + {args.n} samples in {time.perf_counter() - started:.2f} s")
    words = [len(s.output.split()) for s in text_samples]
    print(
        f"  text outputs: {min(words)}-{max(words)} words (mean {sum(words) / len(words):.1f}); classes: {len(CLASSES)}"
    )

    context = MetricContext(schema=SCHEMA, pattern=PATTERN)
    json_names = ["json_valid", "json_schema"]
    text_names = [n for n, cls in available_metrics().items() if n not in json_names and cls.needs != "schema"]
    text_specs = [MetricSpec(n) for n in text_names]
    json_specs = [MetricSpec(n) for n in json_names] + [
        MetricSpec("accuracy", field="category"),
        MetricSpec("macro_f1", field="category"),
    ]

    # Load the lazily imported libraries (sacrebleu, rouge-score, jsonschema) once, outside the timing.
    started = time.perf_counter()
    warm = [ScoringSample("A warm up.", "A warm-up run.", "sports"), ScoringSample("{}", "{}", "health")]
    score(warm, text_specs, Extractor("text"), context, 10, 0)
    score(warm, json_specs, Extractor("json"), context, 10, 0)
    print(f"library imports / warm-up: {time.perf_counter() - started:.2f} s (not counted)")

    # Serial first (PARALLEL_MIN_SAMPLES out of reach): the per-metric breakdown of where time goes.
    default_min = scoring.PARALLEL_MIN_SAMPLES
    scoring.PARALLEL_MIN_SAMPLES = 10**12
    text_timings, json_timings = Timings(), Timings()
    (text_scores, _), text_s = text_timings.run(
        text_samples, text_specs, Extractor("text"), context, args.bootstrap, args.seed
    )
    (json_scores, _), json_s = json_timings.run(
        json_samples, json_specs, Extractor("json"), context, args.bootstrap, args.seed
    )
    scoring.PARALLEL_MIN_SAMPLES = default_min

    print(
        f"\nserial, bootstrap resamples: {args.bootstrap}; columns: stats | per-sample values | aggregate | bootstrap (s)"
    )
    report(f"text pass ({args.n} samples, extract=text)", text_scores, text_timings, text_specs, text_s)
    print("  (accuracy/macro_f1 here compare whole free-text outputs with the class label: timing only;")
    print("   the json pass scores the category field. rouge2/rougeL reuse rouge1's cached scorer pass.)")
    report(f"json pass ({args.n} samples, extract=json)", json_scores, json_timings, json_specs, json_s)
    serial = text_s + json_s

    # As a run scores: per-sample statistics in forked workers (one per core) for large sets.
    started = time.perf_counter()
    (text_parallel, _) = score(text_samples, text_specs, Extractor("text"), context, args.bootstrap, args.seed)
    (json_parallel, _) = score(json_samples, json_specs, Extractor("json"), context, args.bootstrap, args.seed)
    total = time.perf_counter() - started
    same = text_parallel == text_scores and json_parallel == json_scores
    workers = scoring._worker_count(args.n)

    print(
        f"\nserial:              {serial:.2f} s for {args.n} samples (both passes) -> {args.n / serial:,.0f} samples/s"
    )
    print(
        f"default ({workers} workers):  {total:.2f} s -> {args.n / total:,.0f} samples/s; serial/default = {serial / total:.2f}x; identical scores: {same}"
    )
    goal = GOAL_S * args.n / GOAL_N
    met = total <= goal
    print(f"goal: <= {goal:.1f} s for {args.n} samples ({GOAL_S:.0f} s per {GOAL_N:,}): {'MET' if met else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
