"""The handlers of the commands that read result directories: compare, decide, diff and history."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.commands import _names
from harness.core.escaping import echo


def _compare(args: argparse.Namespace) -> int:
    from harness.compare.cost import cost_model_from
    from harness.compare.report_md import headline_markdown
    from harness.compare.table import compare_run, run_decision, write_comparison
    from harness.config.parse import read_toml
    from harness.results.read import load_run

    result = load_run(args.run_dir)
    if args.cost:
        cost = cost_model_from(read_toml(Path(args.cost)).get("cost", {}), args.cost)
    else:
        cost = cost_model_from(
            result.run.get("suite", {}).get("config", {}).get("cost"), f"{result.dir / 'run.json'} suite.config"
        )
    comparison = compare_run(result, args.baseline, cost, primary=args.primary)
    decision = run_decision(result, cost)  # None without a [decision] target; --cost weighs it too
    samples = {variant: list(found.values()) for variant, found in result.samples.items()}
    paths = write_comparison(comparison, samples, Path(args.out) if args.out else result.dir, decision)
    if args.full:
        print(paths["markdown"].read_text(encoding="utf-8"))
    else:  # the headline: what a terminal shows without scrolling; the rest is a file away
        print(headline_markdown(comparison, decision))
    echo(f"report: {paths['markdown']} and {paths['html']}", err=True)
    if "decision" in paths:
        echo(f"decision: {paths['decision']}", err=True)
    return 0


def _diff(args: argparse.Namespace) -> int:

    from harness.compare import EXIT_GATE_FAILED
    from harness.compare.diff import diff_runs, load_gates
    from harness.compare.render import diff_markdown
    from harness.core.files import make_folder, write_file
    from harness.results.read import load_run
    from harness.results.write import json_text

    gates = load_gates(args.gate) if args.gate else None
    found = diff_runs(load_run(args.old), load_run(args.new), gates, top=args.top, primary=args.primary)
    markdown = diff_markdown(found)
    if args.out:
        out = make_folder(args.out)
        write_file(out / "diff.md", markdown)
        write_file(out / "diff.json", json_text(found))
    print(json_text(found) if args.json else markdown, end="" if args.json else "\n")
    if not found["passed"]:
        print("error: a gate failed (see the table above)", file=sys.stderr)
        return EXIT_GATE_FAILED
    return 0


def _history(args: argparse.Namespace) -> int:

    from harness.compare.history import history_dict, history_markdown, load_history, select_history, write_history
    from harness.results.write import json_text

    metrics = _names(",".join(args.metric), "--metric") if args.metric else None
    history = select_history(
        load_history(args.results_dir, args.suite), metrics, _names(args.variants, "--variants"), args.last
    )
    if args.out:
        echo(f"history: {write_history(history, args.out)['markdown']}", err=True)
    print(json_text(history_dict(history)) if args.json else history_markdown(history), end="" if args.json else "\n")
    return 0


def _decide(args: argparse.Namespace) -> int:
    import dataclasses

    from harness.compare.cost import cost_model_from
    from harness.compare.decision import decide, decision_dict, decision_markdown, parse_decision_settings
    from harness.compare.history import load_history
    from harness.config.parse import read_toml
    from harness.core.files import make_folder, write_file
    from harness.results.read import load_run, read_run_json
    from harness.results.write import json_text

    result = load_run(args.run_dir)
    # [decision] from --decision FILE, else from the run's suite config; --target and --queries-per-day on top
    if args.decision:
        settings = parse_decision_settings(read_toml(Path(args.decision)).get("decision", {}), args.decision)
    else:
        table = result.run_json.suite_config.get("decision")
        settings = parse_decision_settings(table, f"{result.dir / 'run.json'} suite.config")
    overrides = {}
    if args.target:
        overrides["target"] = tuple(args.target)
    if args.queries_per_day is not None:
        overrides["queries_per_day"] = args.queries_per_day
    if overrides:
        settings = parse_decision_settings({**dataclasses.asdict(settings), **overrides}, "the command line")
    cost = cost_model_from(read_toml(Path(args.cost)).get("cost", {}), args.cost) if args.cost else None
    history = None
    if args.history:
        history = [read_run_json(run.dir / "run.json") for run in load_history(args.history, result.suite_name).runs]
    decision = decide(result, settings, history, cost)
    found, markdown = json_text(decision_dict(decision)), decision_markdown(decision)
    if args.out:
        out = make_folder(args.out)
        write_file(out / "decision.md", markdown)
        write_file(out / "decision.json", found)
    print(found if args.json else markdown, end="" if args.json else "\n")
    return 0
