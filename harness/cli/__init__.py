"""The `harness` command line. It parses arguments and calls the library; no logic lives here.

User mistakes (HarnessError) print as one line `error: what - where - how to fix` with exit code 2;
anything else is a bug and keeps its traceback. This module holds `main()`, the one place errors are
caught and printed; the arguments are declared in `parser.py`, the command handlers live in
`commands.py` (run, forgetting, finetune, check-data, list) and `result_commands.py` (compare, diff, history).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.commands import _check_data
from harness.cli.parser import EXIT_USAGE, _parser
from harness.core.errors import ConfigError, GenerationFailed, HarnessError
from harness.core.escaping import escape_controls


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
