"""The `harness` argument parser: every command, its flags and the handler each one calls."""

from __future__ import annotations

import argparse
import typing
from typing import Any, NoReturn

from harness.cli.commands import _check_data, _finetune, _forgetting, _list, _run
from harness.cli.result_commands import _compare, _decide, _diff, _history
from harness.cli.review_commands import _review_export, _review_import
from harness.config.settings import Scorer
from harness.core.escaping import echo

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with its mistakes as one line (`error: what - where - how to fix`, exit 2) instead of a
    usage block; --help still prints the full usage."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        echo(f"error: {message} - {self.prog} - see `{self.prog} --help`", err=True)  # the message quotes arguments
        raise SystemExit(EXIT_USAGE)


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


def _forgetting_arguments(parser: argparse.ArgumentParser, tasks: str, limit: str, max_drop: str, scorer: str) -> None:
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
        scorer,
        dest="forgetting_scorer",
        choices=typing.get_args(Scorer),
        help="what computes the log-likelihoods: packed prefix trees on a transformers forward, the variants'"
        " own engine, or auto (packed, but vLLM on a GPU: engine); default: [forgetting] scorer",
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
    _forgetting_arguments(run, "--forgetting", "--forgetting-limit", "--forgetting-max-drop", "--forgetting-scorer")
    run.set_defaults(handler=_run)

    alone = commands.add_parser(
        "forgetting", help="only the forgetting checks: benchmarks on base and on each variant's weights"
    )
    alone.add_argument("suite", help="suite folder (its [engine], [forgetting] and variants)")
    _run_target_arguments(alone)
    alone.set_defaults(limit=None)
    _forgetting_arguments(alone, "--tasks", "--limit", "--max-drop", "--scorer")
    alone.set_defaults(handler=_forgetting)

    compare = commands.add_parser(
        "compare", help="one table of every variant against a baseline, with paired statistics, cost and an HTML report"
    )
    compare.add_argument("run_dir", help="a result directory written by harness run")
    compare.add_argument("--baseline", default="base", help="the variant deltas are measured against (default: base)")
    compare.add_argument("--cost", metavar="FILE", help="TOML with a [cost] table (default: the suite's [cost])")
    compare.add_argument("--out", help="where report.md, comparison.csv/.json and report.html go (default: RUN_DIR)")
    compare.add_argument(
        "--primary",
        metavar="METRIC",
        help="the metric the scorecard and plots show, e.g. 'accuracy[category]' (default: the suite's primary)",
    )
    compare.add_argument(
        "--full", action="store_true", help="print all of report.md (default: the decision and the scorecard)"
    )
    compare.set_defaults(handler=_compare)

    decide = commands.add_parser(
        "decide", help="prompt, RAG or fine-tune: the guides' rule applied to a run's numbers, with its evidence"
    )
    decide.add_argument("run_dir", help="a result directory written by harness run")
    decide.add_argument(
        "--target",
        action="append",
        metavar="EXPR",
        help="a quality target, e.g. 'accuracy[category] >= 0.9' (repeatable; replaces the [decision] targets)",
    )
    decide.add_argument(
        "--queries-per-day",
        type=_number(float, 0, low_open=True),
        help="expected volume, for the pay-back of a fine-tune",
    )
    decide.add_argument("--decision", metavar="FILE", help="TOML with a [decision] table (default: the suite's)")
    decide.add_argument("--cost", metavar="FILE", help="TOML with a [cost] table (default: the suite's [cost])")
    decide.add_argument(
        "--history", metavar="RESULTS_DIR", help="earlier runs of the suite: how often the prompt was iterated"
    )
    decide.add_argument("--json", action="store_true", help="print decision.json's content instead of markdown")
    decide.add_argument("--out", help="also write decision.md and decision.json into this folder")
    decide.set_defaults(handler=_decide)

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
    diff.add_argument(
        "--primary", metavar="METRIC", help="the metric whose rows lead the table (default: the suite's primary)"
    )
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

    _review_parser(commands)

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
    tune.add_argument(
        "--out", help="adapter directory (default: SUITE/adapters/<model>-lora, <model>-rag-lora with --with-retrieval)"
    )
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
        "--max-length", type=_number(int, 1), help="longest train example in tokens, prompt and answer (default 512)"
    )
    tune.add_argument(
        "--with-retrieval",
        nargs="?",
        const=True,
        default=False,
        metavar="VARIANT",
        help="train on the prompts a rag/hybrid variant sends: each train item's retrieved context in its prompt"
        " (default VARIANT: the suite's only hybrid variant)",
    )
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


def _review_parser(commands: Any) -> None:
    review = commands.add_parser("review", help="human review: blinded export for raters, ratings imported as metrics")
    actions = review.add_subparsers(required=True, metavar="ACTION", dest="action")
    export = actions.add_parser(
        "export", help="a blinded, stratified sample of outputs: a CSV and an HTML form per rater"
    )
    export.add_argument("run_dir", help="a result directory written by harness run")
    export.add_argument("--n", type=_number(int, 1), default=60, help="items to review (default 60)")
    export.add_argument("--variants", help="comma-separated variants whose outputs are rated (default: all)")
    export.add_argument("--pairs", metavar="A,B", help="pairwise: A's and B's outputs side by side, pick one or a tie")
    export.add_argument("--raters", type=_number(int, 1, 100), default=1, help="forms to write, one per rater")
    export.add_argument("--seed", type=_number(int, 0, 2**32 - 1), default=0, help="sample and shuffle seed")
    export.add_argument("--out", help="folder for the reviewers' files (default: RUN_DIR/review/<export id>)")
    export.set_defaults(handler=_review_export)
    imported = actions.add_parser("import", help="validate and unblind ratings CSVs, store them in the run folder")
    imported.add_argument("run_dir", help="the result directory the export came from")
    imported.add_argument("files", nargs="+", metavar="RATINGS.csv", help="CSVs the forms saved or filled sheets")
    imported.set_defaults(handler=_review_import)
