"""The `harness` command line. It parses arguments and calls the library; no logic lives here.

User mistakes (HarnessError) print as one line `error: what - where - how to fix` with exit code 2;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from harness.core.errors import ConfigError, GenerationFailed, HarnessError
from harness.core.escaping import echo, escape_controls

EXIT_USAGE = 2


@dataclass(frozen=True)
class RunConfigFile:
    """A run config (e.g. variants/*.toml): the variants to run over a suite, in place of the suite's."""

    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""


class _Parser(argparse.ArgumentParser):
    """argparse with its mistakes as one line (`error: what - where - how to fix`, exit 2) instead of a
    usage block; --help still prints the full usage."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        echo(f"error: {message} - {self.prog} - see `{self.prog} --help`", err=True)  # the message quotes arguments
        raise SystemExit(EXIT_USAGE)


def main(argv: list[str] | None = None) -> int:
    _show_harness_warnings_as_one_line()
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage mistake (2, printed by _Parser.error)
        return int(exc.code or 0)
    try:
        _check_outputs(args)
        return int(args.handler(args) or 0)
    except HarnessError as exc:
        if isinstance(exc, GenerationFailed) and exc.__cause__ is not None:
            import traceback

            traceback.print_exception(exc.__cause__)  # not the user's mistake: keep what the engine said
        print(escape_controls(f"error: {exc}"), file=sys.stderr)  # messages quote paths, ids and values
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        run_dir = getattr(exc, "run_dir", None)  # set by the runner when a run folder holds samples
        if run_dir is not None:
            again = _resume_command(sys.argv[1:] if argv is None else argv, args, run_dir)
            print(
                escape_controls(f"error: interrupted - {run_dir} keeps the samples done - finish with `{again}`"),
                file=sys.stderr,
            )
        else:
            print("error: interrupted - nothing was kept", file=sys.stderr)
        return 130


def _resume_command(argv: list[str], args: argparse.Namespace, run_dir: Path) -> str:
    """The interrupted command with its folder named: a resume must repeat the variants, limit and
    config it was started with (the progress folder refuses others)."""
    import shlex

    if getattr(args, "resume", None) or args.out:
        return shlex.join(["harness", *argv])
    flag = "--resume" if args.command == "run" else "--out"  # `forgetting` resumes by rerunning into its folder
    return shlex.join(["harness", *argv, flag, str(run_dir)])


def _check_outputs(args: argparse.Namespace) -> None:
    """--out before any work: a folder for every command but check-data, which writes one file."""
    out = getattr(args, "out", None)
    if not out:
        return
    path = Path(out)
    if args.handler is _check_data:
        if path.is_dir():
            raise ConfigError(
                f"--out {out} is a folder",
                "harness check-data --out",
                f"name a file, e.g. --out {path / 'check-data.json'}",
            )
        if path.exists() and not path.is_file():
            raise ConfigError(
                f"--out {out} is not a regular file",
                "harness check-data --out",
                "name a file to write the JSON report to",
            )
    elif path.exists() and not path.is_dir():
        raise ConfigError(
            f"--out {out} is a file, not a folder",
            f"harness {args.command} --out",
            "name a folder (a new one is created)",
        )


def _show_harness_warnings_as_one_line() -> None:
    import warnings

    from harness.core.errors import HarnessWarning

    original = warnings.showwarning
    if getattr(original, "harness", False):
        return  # already installed (main() called again in one process)

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ANN202
        if issubclass(category, HarnessWarning):
            print(escape_controls(f"warning: {message}"), file=sys.stderr)
        else:
            original(message, category, filename, lineno, file, line)

    show.harness = True  # type: ignore[attr-defined]
    warnings.showwarning = show


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


def _number(cast: type, low: float | None = None, high: float | None = None, low_open: bool = False) -> Any:
    """An argparse type: `cast` (int or float), finite and within the bounds; argparse prints the error."""
    from harness.core.ranges import Range

    bounds = Range(low, high, low_open)

    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if cast is int else 'a number'}, got {text!r}"
            ) from None
        if not bounds.holds(value):
            raise argparse.ArgumentTypeError(f"must be {bounds.describe()}, got {text}")
        return value

    return parse


def _compare(args: argparse.Namespace) -> int:
    from harness.compare.cost import cost_model_from
    from harness.compare.table import compare_run, write_comparison
    from harness.config.parse import read_toml
    from harness.results.read import load_run

    result = load_run(args.run_dir)
    if args.cost:
        cost = cost_model_from(read_toml(Path(args.cost)).get("cost", {}), args.cost)
    else:
        cost = cost_model_from(
            result.run.get("suite", {}).get("config", {}).get("cost"), f"{result.dir / 'run.json'} suite.config"
        )
    comparison = compare_run(result, args.baseline, cost)
    samples = {variant: list(found.values()) for variant, found in result.samples.items()}
    paths = write_comparison(comparison, samples, Path(args.out) if args.out else result.dir)
    print(paths["markdown"].read_text(encoding="utf-8"))
    echo(f"report: {paths['html']}", err=True)
    return 0


def _diff(args: argparse.Namespace) -> int:
    import json

    from harness.compare import EXIT_GATE_FAILED
    from harness.compare.diff import diff_runs, load_gates
    from harness.compare.render import diff_markdown
    from harness.core.files import make_folder, write_file
    from harness.results.read import load_run
    from harness.results.write import stable

    gates = load_gates(args.gate) if args.gate else None
    found = diff_runs(load_run(args.old), load_run(args.new), gates, top=args.top)
    markdown = diff_markdown(found)
    if args.out:
        out = make_folder(args.out)
        write_file(out / "diff.md", markdown)
        write_file(
            out / "diff.json",
            escape_controls(json.dumps(stable(found), indent=2, sort_keys=True, ensure_ascii=False) + "\n", json=True),
        )
    print(
        escape_controls(json.dumps(stable(found), indent=2, sort_keys=True, ensure_ascii=False), json=True)
        if args.json
        else markdown
    )
    if not found["passed"]:
        print("error: a gate failed (see the table above)", file=sys.stderr)
        return EXIT_GATE_FAILED
    return 0


def _history(args: argparse.Namespace) -> int:
    import json

    from harness.compare.history import history_dict, history_markdown, load_history, select_history, write_history
    from harness.results.write import stable

    metrics = _names(",".join(args.metric), "--metric") if args.metric else None
    history = select_history(
        load_history(args.results_dir, args.suite), metrics, _names(args.variants, "--variants"), args.last
    )
    if args.out:
        echo(f"history: {write_history(history, args.out)['markdown']}", err=True)
    print(
        escape_controls(
            json.dumps(stable(history_dict(history)), indent=2, sort_keys=True, ensure_ascii=False), json=True
        )
        if args.json
        else history_markdown(history)
    )
    return 0


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
        }.items()
        if value is not None
    }
    out = finetune(
        load_suite(args.suite),
        Path(args.out) if args.out else None,
        FinetuneConfig(**overrides),
        args.model,
        args.verbose,
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


def _forgetting_arguments(parser: argparse.ArgumentParser, tasks: str, limit: str, max_drop: str) -> None:
    parser.add_argument(
        tasks,
        dest="forgetting",
        metavar="NAMES",
        help="forgetting checks on these benchmarks: mmlu, hellaswag or any lm-eval task (default: [forgetting] tasks)",
    )
    parser.add_argument(
        limit,
        dest="forgetting_limit",
        type=_number(int, 1),
        metavar="N",
        help="items per benchmark, stratified by subject for MMLU, the same for every variant",
    )
    parser.add_argument(
        max_drop,
        dest="forgetting_max_drop",
        type=_number(float, 0, 100),
        metavar="POINTS",
        help="fail (exit 1) when a variant loses more accuracy points than this, significantly",
    )
    parser.add_argument(
        "--bench-data",
        metavar="DIR",
        help="local benchmark data (mmlu/, hellaswag/); default $HARNESS_BENCH_DATA, else lm-eval's own",
    )


def _run_target_arguments(parser: argparse.ArgumentParser) -> None:
    """What `run` and `forgetting` share: which variants, on which model, written where."""
    parser.add_argument("--variants", help="comma-separated variant names (default: all declared)")
    parser.add_argument("--out", help="result directory (default: results/<suite>-<time>)")
    parser.add_argument("--results-dir", default="results", help="where default result directories go")
    parser.add_argument("--config", help="run config TOML declaring [variants.NAME] tables (replaces the suite's)")
    parser.add_argument(
        "--model", help="model for engine variants: an HF id or local directory (default: [engine] model)"
    )
    parser.add_argument("--backend", choices=["auto", "vllm", "hf"], help="engine backend (default: [engine] backend)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--verbose", action="store_true", help="engine logs and warnings on the terminal (default: RUN_DIR/engine.log)"
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="send every request to the engine (default: reuse cached answers to identical requests on identical weights)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description="Evaluate prompt, RAG and fine-tune variants.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND", dest="command")

    run = commands.add_parser("run", help="run a suite's variants and write a result directory")
    run.add_argument("suite", help="suite folder (holding suite.toml)")
    _run_target_arguments(run)
    run.add_argument("--limit", type=_number(int, 1), help="evaluate only the first N eval items")
    run.add_argument(
        "--resume", metavar="RUN_DIR", help="finish an interrupted run (rerunning with its --out does the same)"
    )
    run.add_argument(
        "--latency-probe",
        type=_number(int, 0),
        default=0,
        metavar="N",
        help="after the batched run, N requests one at a time per variant (p50/p95/p99)",
    )
    run.add_argument(
        "--self-test",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="after the run, replay a few requests of each variant alone and compare them, tie-aware, with the "
        "run's answers; fails the run when they differ (default: on when one engine serves LoRA and non-LoRA variants)",
    )
    _forgetting_arguments(run, "--forgetting", "--forgetting-limit", "--forgetting-max-drop")
    run.set_defaults(handler=_run)

    alone = commands.add_parser(
        "forgetting", help="only the forgetting checks: benchmarks on base and on each variant's weights"
    )
    alone.add_argument("suite", help="suite folder (its [engine], [forgetting] and variants)")
    _run_target_arguments(alone)
    alone.set_defaults(limit=None)
    _forgetting_arguments(alone, "--tasks", "--limit", "--max-drop")
    alone.set_defaults(handler=_forgetting)

    compare = commands.add_parser(
        "compare", help="one table of every variant against a baseline, with paired statistics, cost and an HTML report"
    )
    compare.add_argument("run_dir", help="a result directory written by harness run")
    compare.add_argument("--baseline", default="base", help="the variant deltas are measured against (default: base)")
    compare.add_argument("--cost", metavar="FILE", help="TOML with a [cost] table (default: the suite's [cost])")
    compare.add_argument("--out", help="where report.md, comparison.csv/.json and report.html go (default: RUN_DIR)")
    compare.set_defaults(handler=_compare)

    diff = commands.add_parser(
        "diff", help="what changed between two result directories of one suite; gates set the exit code"
    )
    diff.add_argument("old", help="the reference run (e.g. main, or last night)")
    diff.add_argument("new", help="the run to judge")
    diff.add_argument(
        "--gate",
        metavar="GATE.toml",
        help="[[gate]] rules: metric, variants, min, max_drop, significant; exit 1 when one fails",
    )
    diff.add_argument("--top", type=_number(int, 0), default=5, help="flipped items shown per variant (default 5)")
    diff.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    diff.add_argument("--out", help="also write diff.md and diff.json into this folder")
    diff.set_defaults(handler=_diff)

    history = commands.add_parser(
        "history", help="a suite's metrics over all its runs, marking where model, adapter, data or config changed"
    )
    history.add_argument(
        "results_dir", metavar="RESULTS_DIR", help="folder of run directories (and groups of them, e.g. baselines/)"
    )
    history.add_argument("--suite", required=True, help="suite name, as in run.json")
    history.add_argument(
        "--metric",
        action="append",
        metavar="NAME",
        help="metric(s) to show and plot, repeatable or comma-separated (default: all; the plot: the suite's first)",
    )
    history.add_argument("--variants", help="comma-separated variant names (default: all)")
    history.add_argument("--last", type=_number(int, 1), metavar="N", help="only the N most recent runs")
    history.add_argument("--out", help="also write history.md, history.csv and history.png into this folder")
    history.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    history.set_defaults(handler=_history)

    check = commands.add_parser(
        "check-data", help="check eval and train data: parse errors, duplicates, leakage, balance, lengths"
    )
    check.add_argument("paths", nargs="*", metavar="PATH", help="JSONL files (train/eval by name), or one suite folder")
    check.add_argument("--train", action="append", default=[], metavar="FILE", help="a training data file (repeatable)")
    check.add_argument("--eval", action="append", default=[], metavar="FILE", help="an eval data file (repeatable)")
    check.add_argument(
        "--format",
        default="auto",
        choices=["auto", "chat", "completion", "preference", "fields"],
        help="record layout of the files (default: detected per line)",
    )
    check.add_argument(
        "--max-len",
        type=_number(int, 1),
        metavar="N",
        help="context in tokens (default: [engine] max_model_len, else 2048)",
    )
    check.add_argument("--model", help="whose tokenizer counts tokens: a local HF directory (default: [engine] model)")
    check.add_argument(
        "--estimate-tokens", action="store_true", help="count tokens as characters/4, loading no tokenizer"
    )
    check.add_argument(
        "--similarity",
        type=_number(float, 0, 1, low_open=True),
        default=0.9,
        help="TF-IDF cosine for near duplicates (default 0.9)",
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    check.add_argument("--out", metavar="FILE", help="also write the JSON report to FILE")
    check.set_defaults(handler=_check_data)

    tune = commands.add_parser("finetune", help="train a LoRA adapter on a suite's train split (TRL + peft)")
    tune.add_argument("suite", help="suite folder (holding suite.toml)")
    tune.add_argument("--out", help="adapter directory (default: SUITE/adapters/<model>-lora)")
    tune.add_argument("--model", help="base model (default: [engine] model)")
    tune.add_argument("--rank", type=_number(int, 1), help="LoRA rank r (default 16)")
    tune.add_argument("--alpha", type=_number(int, 1), help="LoRA alpha (default 32)")
    tune.add_argument("--epochs", type=_number(float, 0, low_open=True), help="epochs (default 2)")
    tune.add_argument("--lr", type=_number(float, 0, 1, low_open=True), help="learning rate (default 1e-3)")
    tune.add_argument("--batch-size", type=_number(int, 1), help="per-device batch size (default 8)")
    tune.add_argument("--max-steps", type=_number(int, 1), help="stop after N optimizer steps (overrides epochs)")
    tune.add_argument("--limit", type=_number(int, 1), help="train on the first N items only")
    tune.add_argument("--seed", type=_number(int, 0, 2**32 - 1), help="random seed (default 0)")
    tune.add_argument(
        "--verbose",
        action="store_true",
        help="library logs and the trainer's own output on the terminal (default: OUT/.trainer/finetune.log, kept on failure)",
    )
    tune.set_defaults(handler=_finetune)

    listing = commands.add_parser("list", help="list suites, variant kinds or metrics")
    listing.add_argument("what", choices=["suites", "variants", "metrics"])
    listing.add_argument("--suites-dir", default="suites")
    listing.set_defaults(handler=_list)
    return parser


if __name__ == "__main__":
    sys.exit(main())
