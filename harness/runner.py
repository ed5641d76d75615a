"""The suite runner: every selected variant answers every eval item in batches, then gets scored.

Everything that can be checked is checked before the first generation (variant settings, templates
over every item, the output folder), so a mistake never leaves a half-made result directory behind.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.config import to_plain
from harness.core import Generation, Request, Variant
from harness.errors import ConfigError, UnknownNameError, did_you_mean
from harness.metrics import MetricContext
from harness.prompts import build_request
from harness.records import RunRecord, SampleRecord, VariantRecord, write_run
from harness.scoring import ScoringSample, score
from harness.suite import Suite
from harness.variants import BuildContext, build_variant, parse_variant

DEFAULT_RESULTS_DIR = Path("results")


@dataclass(frozen=True)
class RunOptions:
    variants: tuple[str, ...] = ()  # names to run; empty = all declared
    limit: int | None = None  # the first N eval items
    out: Path | None = None  # the run directory; default results/<suite>-<UTC time>
    results_dir: Path = DEFAULT_RESULTS_DIR
    variant_tables: Mapping[str, Mapping[str, Any]] | None = None  # from a run config; default the suite's
    config_source: str = ""  # where variant_tables came from, for error messages
    progress: bool = True


@dataclass
class VariantOutcome:
    name: str
    generations: list[Generation]
    timings: dict[str, float] = field(default_factory=dict)


def run_suite(suite: Suite, options: RunOptions = RunOptions(), prebuilt: Mapping[str, Variant] | None = None) -> Path:
    """Run the suite and write its result directory; returns the directory.

    `prebuilt` maps variant names to ready Variant objects (tests and the Python API); other names are
    built from their [variants.NAME] tables.
    """
    started = time.perf_counter()
    prebuilt = dict(prebuilt or {})
    tables, where = _variant_tables(suite, options)
    names = _select(options.variants, [*tables, *(n for n in prebuilt if n not in tables)], where)
    for name in names:
        if name not in prebuilt:
            parse_variant(name, tables[name], where)  # check every variant's settings up front

    if options.limit is not None and options.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {options.limit}", "", "")
    items = suite.eval_items[: options.limit] if options.limit else suite.eval_items
    requests = [build_request(item, suite.prompt, suite.params) for item in items]
    created = datetime.now(timezone.utc).replace(microsecond=0)
    run_id = options.out.name if options.out else f"{suite.name}-{created.strftime('%Y%m%d-%H%M%S')}"
    out_dir = options.out or options.results_dir / run_id
    if (out_dir / "run.json").exists():
        raise ConfigError(f"{out_dir} already holds a run", "", "choose another --out or remove that folder")

    context = BuildContext(suite, tables, where)
    outcomes = []
    try:
        for name in names:
            variant = prebuilt.get(name) or build_variant(name, context)
            outcomes.append(generate_all(variant, name, requests, suite.config.run.batch_size, options.progress))
    finally:
        context.close()

    variants = [_score_variant(suite, name, requests, items, outcome, tables, prebuilt) for name, outcome in zip(names, outcomes)]
    record = RunRecord(
        run_id=run_id,
        created_at=created.isoformat(),
        suite=suite,
        limit=options.limit,
        variants=variants,
        total_s=time.perf_counter() - started,
    )
    write_run(out_dir, record)
    return out_dir


def generate_all(variant: Variant, name: str, requests: Sequence[Request], batch_size: int, progress: bool) -> VariantOutcome:
    """One generate call per batch (never per sample); checks the batch contract."""
    from tqdm import tqdm

    generations: list[Generation] = []
    started = time.perf_counter()
    with tqdm(total=len(requests), desc=name, unit="item", file=sys.stderr, disable=not progress, leave=False) as bar:
        for start in range(0, len(requests), batch_size):
            batch = list(requests[start : start + batch_size])
            produced = variant.generate(batch)
            if len(produced) != len(batch):
                raise RuntimeError(
                    f"variant '{name}' returned {len(produced)} generations for {len(batch)} requests"
                )
            generations.extend(produced)
            bar.update(len(batch))
    return VariantOutcome(name, generations, {"generate_s": time.perf_counter() - started})


def _score_variant(suite, name, requests, items, outcome, tables, prebuilt) -> VariantRecord:  # noqa: ANN001
    started = time.perf_counter()
    samples = [ScoringSample(g.text, item.reference, item.label) for g, item in zip(outcome.generations, items)]
    context = MetricContext(suite.schema, suite.config.output.pattern)
    run = suite.config.run
    scores, answers = score(samples, suite.metric_specs, suite.extractor, context, run.bootstrap, run.seed)
    records = []
    for index, (request, item, generation) in enumerate(zip(requests, items, outcome.generations)):
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
            )
        )
    timings = {**outcome.timings, "score_s": time.perf_counter() - started}
    if name in tables:
        kind, config = tables[name]["kind"], {k: v for k, v in tables[name].items() if k != "kind"}
    else:
        kind, config = type(prebuilt[name]).__name__, {}
    return VariantRecord(name, str(kind), to_plain(config), records, scores.summary, timings)


def _variant_tables(suite: Suite, options: RunOptions) -> tuple[Mapping[str, Mapping[str, Any]], str]:
    if options.variant_tables is not None:
        return options.variant_tables, options.config_source or "run config"
    return suite.config.variants, str(suite.dir / "suite.toml")


def _select(requested: Sequence[str], declared: Sequence[str], where: str) -> list[str]:
    if not declared:
        raise ConfigError("no variants declared", where, "add [variants.NAME] tables with a kind")
    if not requested:
        return list(declared)
    for name in requested:
        if name not in declared:
            raise UnknownNameError(f"unknown variant '{name}'", where, did_you_mean(name, declared))
    return list(dict.fromkeys(requested))
