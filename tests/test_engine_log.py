"""Engine output to RUN_DIR/engine.log (harness.engines.log): the terminal keeps only the harness's own lines."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.errors import HarnessWarning
from harness.engines.log import ENGINE_LOG, capture, engine_output


def test_engine_logs_warnings_and_start_up_prints_go_to_the_file(tmp_path: Path, capfd) -> None:
    path = tmp_path / ENGINE_LOG
    handlers_before = list(logging.getLogger("vllm").handlers)
    shown: list[str] = []  # what the terminal's warning printer (the CLI's, in a run) was given
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *rest, **named: shown.append(str(message))
        with capture(path):
            logging.getLogger("vllm.platforms").warning("Triton is installed, but doesn't include CPU backend")
            logging.getLogger("transformers.modeling_utils").warning("Loading weights took 3 s")
            # as a vLLM module raises it: the warning points at a file outside the harness
            warnings.warn_explicit(
                "torch.distributed.reduce_op is deprecated", FutureWarning, "/venv/site-packages/vllm/utils.py", 12
            )
            warnings.warn("a suite line repeats", HarnessWarning, stacklevel=1)
            with engine_output():
                os.write(2, b"numa: binding to node 0 failed\n")  # C-level, straight to the descriptor
                os.write(1, b"INFO vllm on stdout\n")
                print("Loading safetensors checkpoint shards: 100%", file=sys.stderr)  # a bar, from Python
            print("harness: the harness's own line", file=sys.stderr)
    out, err = capfd.readouterr()
    log = path.read_text()
    for noise in (
        "doesn't include CPU backend",
        "Loading weights",
        "reduce_op is deprecated",
        "numa: binding",
        "vllm on stdout",
        "checkpoint shards",
    ):
        assert noise in log and noise not in err + out, noise
    assert shown == ["a suite line repeats"] and "a suite line repeats" not in log
    assert "the harness's own line" in err and "harness's own" not in log
    # everything put back: later output is the caller's again
    assert logging.getLogger("vllm").handlers == handlers_before and "VLLM_CONFIGURE_LOGGING" not in os.environ
    logging.getLogger("vllm").warning("after the capture")
    assert "after the capture" not in path.read_text()


def test_an_engine_failure_prints_the_last_lines_of_the_log(tmp_path: Path, capfd) -> None:
    path = tmp_path / ENGINE_LOG
    with pytest.raises(RuntimeError, match="engine core died"):
        with capture(path):
            logging.getLogger("vllm.v1.engine").error("CUDA out of memory while allocating the KV cache")
            raise RuntimeError("engine core died")
    err = capfd.readouterr().err
    assert f"the last lines of {path}" in err and "CUDA out of memory" in err


def test_verbose_leaves_everything_on_the_terminal(tmp_path: Path, capfd, caplog) -> None:
    path = tmp_path / ENGINE_LOG
    with capture(path, verbose=True) as log:
        logging.getLogger("vllm").error("shown to the user")
        with engine_output():
            os.write(2, b"C-level start-up line\n")
    err = capfd.readouterr().err
    assert log is None and not path.exists()
    assert "C-level start-up line" in err and "shown to the user" in caplog.text  # logging as configured


def test_a_run_without_an_engine_writes_no_log_and_a_failed_runs_log_is_no_obstacle(
    tiny_suite: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / ENGINE_LOG).write_text("what a run that failed before its first sample left\n")
    assert main(["run", str(tiny_suite), "--variants", "echo", "--out", str(out), "--quiet"]) == 0
    assert (out / "run.json").is_file() and not (out / ENGINE_LOG).exists()


def test_verbose_is_a_flag_of_run_and_finetune(tiny_suite: Path, tmp_path: Path) -> None:
    assert (
        main(["run", str(tiny_suite), "--variants", "echo", "--out", str(tmp_path / "r"), "--quiet", "--verbose"]) == 0
    )
    from harness.cli.parser import _parser

    assert _parser().parse_args(["finetune", str(tiny_suite), "--verbose"]).verbose is True
