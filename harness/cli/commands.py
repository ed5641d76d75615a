"""The handlers of the commands that run or check a suite: run, forgetting, finetune, check-data and list."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.errors import ConfigError, HarnessError
from harness.core.escaping import echo


@dataclass(frozen=True)
class RunConfigFile:
    """A run config (e.g. variants/*.toml): the variants to run over a suite, in place of the suite's."""

    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""


def _run(args: argparse.Namespace, forgetting_only: bool = False) -> int:
    import json

    from harness.config.parse import parse_table, read_toml
    from harness.forgetting import EXIT_FORGETTING_FAILED
    from harness.run.runner import RunOptions, run_suite
    from harness.variants import load_suite

    suite = load_suite(args.suite)
    tables, source = None, None
    if args.config:
        source = Path(args.config)
        tables = parse_table(RunConfigFile, read_toml(source), str(source)).variants
    options = RunOptions(
        variants=_names(args.variants, "--variants") or (),
        limit=args.limit,
        out=Path(args.out) if args.out else None,
        results_dir=Path(args.results_dir),
        variant_tables=tables,
        config_source=source,
        model=args.model,
        backend=args.backend,
        latency_probe=getattr(args, "latency_probe", 0),
        progress=not args.quiet,
        forgetting=_names(args.forgetting),
        forgetting_limit=args.forgetting_limit,
        forgetting_max_drop=args.forgetting_max_drop,
        forgetting_scorer=args.forgetting_scorer,
        bench_data=args.bench_data,
        forgetting_only=forgetting_only,
        resume=Path(args.resume) if getattr(args, "resume", None) else None,
        cache=not args.no_cache,
        self_test=getattr(args, "self_test", None),
        verbose=args.verbose,
    )
    out_dir = run_suite(suite, options)
    print((out_dir / "summary.md").read_text(encoding="utf-8"))
    echo(f"results: {out_dir}", err=True)
    run = json.loads((out_dir / "run.json").read_text(encoding="utf-8"))
    if run.get("status") == "failed":
        if (run.get("self_test") or {}).get("status") == "different":
            from harness.scoring.selftest import failure_line

            print(f"error: {failure_line(run['self_test'])}", file=sys.stderr)
        if (run.get("forgetting") or {}).get("status") == "failed":
            print("error: a forgetting budget was exceeded significantly (see summary.md)", file=sys.stderr)
        return EXIT_FORGETTING_FAILED
    return 0


def _forgetting(args: argparse.Namespace) -> int:
    return _run(args, forgetting_only=True)


def _names(value: str | None, flag: str = "") -> tuple[str, ...] | None:
    """A comma-separated list; with `flag`, one that names nothing (`--variants ""`) is refused rather
    than read as "all"."""
    names = None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())
    if flag and names == ():
        raise ConfigError(
            f"{flag} {value!r} names nothing",
            "the command line",
            f"pass comma-separated names, or leave out {flag} for all",
        )
    return names


def _check_data(args: argparse.Namespace) -> int:
    from harness.datacheck import CheckOptions, check_data, report_json, report_text, write_report

    options = CheckOptions(
        train=tuple(args.train),
        eval=tuple(args.eval),
        layout=args.format,
        max_len=args.max_len,
        model=args.model,
        tokenizer=not args.estimate_tokens,
        similarity=args.similarity,
    )
    report = check_data(args.paths, options)
    if args.out:
        write_report(report, Path(args.out))
    print(report_json(report) if args.json else report_text(report), end="")
    return report.exit_code


def _finetune(args: argparse.Namespace) -> int:
    from harness.finetune import FinetuneConfig, finetune
    from harness.variants import load_suite

    overrides = {
        key: value
        for key, value in {
            "rank": args.rank,
            "alpha": args.alpha,
            "epochs": args.epochs,
            "learning_rate": args.lr,
            "batch_size": args.batch_size,
            "max_steps": args.max_steps,
            "limit": args.limit,
            "seed": args.seed,
            "max_length": args.max_length,
        }.items()
        if value is not None
    }
    out = finetune(
        load_suite(args.suite),
        Path(args.out) if args.out else None,
        FinetuneConfig(**overrides),
        args.model,
        args.verbose,
        args.with_retrieval,
    )
    echo(out)
    return 0


def _list(args: argparse.Namespace) -> int:
    if args.what == "metrics":
        from harness.scoring.metrics import available_metrics

        for name, cls in available_metrics().items():
            direction = {True: "higher is better", False: "lower is better", None: "informational"}
            print(f"{name:15} {cls.description} ({direction[cls.higher_is_better]})")
    elif args.what == "variants":
        from harness.variants import VARIANT_KINDS, variant_class

        for kind in VARIANT_KINDS:
            doc = (variant_class(kind).__doc__ or "").strip().splitlines()
            print(f"{kind:10} {doc[0] if doc else ''}")
    else:
        from harness.suite.load import SUITE_FILE

        root = Path(args.suites_dir)
        if not root.is_dir():
            raise HarnessError(f"no suites folder {root}", "", "pass --suites-dir DIR")
        for path in sorted(root.glob(f"*/{SUITE_FILE}")):
            echo(path.parent)  # a folder name is user data
    return 0
