"""The handlers of `harness review export` and `harness review import` (harness.review does the work)."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.commands import _names
from harness.core.escaping import echo


def _review_export(args: argparse.Namespace) -> int:
    from harness.core.errors import ConfigError
    from harness.results.read import load_run
    from harness.review.export import ExportOptions, export_review

    result = load_run(args.run_dir)
    pairs = _names(args.pairs, "--pairs")
    if pairs is not None and len(pairs) != 2:
        raise ConfigError(f"--pairs takes two variants, got {len(pairs)}", "harness review export", "e.g. --pairs a,b")
    options = ExportOptions(
        n=args.n,
        variants=tuple(_names(args.variants, "--variants") or ()),
        pairs=(pairs[0], pairs[1]) if pairs else None,
        raters=args.raters,
        seed=args.seed,
        out=Path(args.out) if args.out else None,
    )
    found = export_review(result, options)
    strata = ", ".join(f"{label or '(no label)'} {count}" for label, count in found.strata.items())
    echo(f"export {found.export_id} ({found.mode}): {found.items} items, stratified by label: {strata}")
    for path in found.files:
        echo(f"  for the reviewer: {path}")
    echo(f"  key (keep it from the reviewers): {found.key}")
    echo(f"then: harness review import {result.dir} RATINGS.csv ...")
    return 0


def _review_import(args: argparse.Namespace) -> int:
    from harness.compare.table import judge_min_alpha
    from harness.core.files import write_file
    from harness.results.read import load_run
    from harness.results.write import json_text
    from harness.review import REVIEW_DIR
    from harness.review.metrics import review_summary, summary_lines
    from harness.review.ratings import import_ratings

    result = load_run(args.run_dir)
    found = import_ratings(result.dir, args.files)
    summary = review_summary(result, judge_min_alpha(result.run_json))
    write_file(result.dir / REVIEW_DIR / "agreement.json", json_text(summary))
    replaced = f", {found.replaced} earlier rows of the same raters replaced" if found.replaced else ""
    echo(
        f"imported {found.ratings} ratings and {found.choices} pairwise choices ({found.skipped} blank rows{replaced})"
    )
    for line in summary_lines(summary):
        echo(f"  {line}")
    echo(f"stored in {result.dir / REVIEW_DIR}; `harness compare {result.dir}` shows them as human_* metrics")
    return 0
