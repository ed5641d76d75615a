"""Engine output to a file (`<run>/engine.log`, docs/results-format.md); the terminal keeps the harness's own lines.

vLLM, transformers and torch talk while they start: platform notes, NUMA binding, deprecation warnings,
weight-loading bars. None of it is the user's to act on when the run works, and it buries the progress
and the errors. While a capture is open (`capture(path)`):

- records of the engine packages' loggers (ENGINE_LOGGERS) go to the file, and vLLM installs no
  handler of its own (VLLM_CONFIGURE_LOGGING=0; its default one writes to stdout, into the table);
- Python warnings raised outside the harness's own code go to the file; HarnessWarnings and warnings
  that point at harness code stay on the terminal;
- around an engine's start (`engine_output()`), file descriptors 1 and 2 point at the file too: that
  catches C-level prints and progress bars that write straight to the streams.

A failure prints the file's last lines. `verbose=True` (`--verbose`) leaves everything on the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from harness.core.errors import GenerationFailed, HarnessError, HarnessWarning
from harness.core.escaping import echo

ENGINE_LOG = "engine.log"
# Top-level loggers of the packages an engine, a merge, training or a benchmark runs through.
ENGINE_LOGGERS = (
    "vllm",
    "transformers",
    "torch",
    "peft",
    "trl",
    "accelerate",
    "datasets",
    "huggingface_hub",
    "lm_eval",
    "sentence_transformers",
    "numba",
    "httpx",
    "urllib3",
    "filelock",
)
TAIL_LINES = 20
_HARNESS_DIR = str(Path(__file__).resolve().parent) + os.sep
_ENV = {"VLLM_CONFIGURE_LOGGING": "0"}  # quiet: vLLM logs through the loggers routed here
_VERBOSE_ENV = {"VLLM_LOGGING_LEVEL": "INFO", "VLLM_LOGGING_STREAM": "ext://sys.stderr"}  # stdout holds the table


class EngineLog:
    """One open capture; `capture()` opens and closes it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.handler = logging.FileHandler(self.path, encoding="utf-8", delay=True)  # no file until a line comes
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.warnings_logger = logging.getLogger("harness.engine-warnings")
        self._loggers: dict[str, tuple[list[logging.Handler], bool, int]] = {}
        self._removed: list[tuple[logging.Logger, logging.Handler]] = []
        self._showwarning: Any = None
        self.stream: Any = None  # sys.stdout/sys.stderr while an engine starts (opened on the first start)

    def open(self) -> None:
        for name in ENGINE_LOGGERS:
            logger = logging.getLogger(name)
            self._loggers[name] = (list(logger.handlers), logger.propagate, logger.level)
            logger.handlers = [self.handler]
            logger.propagate = False
            if name == "vllm" or logger.level == logging.NOTSET:
                logger.setLevel(logging.INFO if name == "vllm" else logging.WARNING)
        self.warnings_logger.handlers, self.warnings_logger.propagate = [self.handler], False
        self.reroute()
        self._showwarning = warnings.showwarning
        warnings.showwarning = self._show

    def reroute(self) -> None:
        """Take terminal handlers off the engine packages' loggers again: a package configures its logging
        when first imported (transformers adds a stderr handler), which can happen inside the capture."""
        for name, logger in list(logging.root.manager.loggerDict.items()):
            if not isinstance(logger, logging.Logger) or name.split(".")[0] not in ENGINE_LOGGERS:
                continue
            for handler in list(logger.handlers):
                if handler is not self.handler and _to_terminal(handler):
                    logger.removeHandler(handler)
                    self._removed.append((logger, handler))
            if name in ENGINE_LOGGERS and self.handler not in logger.handlers:
                logger.addHandler(self.handler)
                logger.propagate = False

    def close(self) -> None:
        if warnings.showwarning == self._show:
            warnings.showwarning = self._showwarning
        for name, (handlers, propagate, level) in self._loggers.items():
            logger = logging.getLogger(name)
            logger.handlers = [h for h in logger.handlers if h is not self.handler and not _to_terminal(h)] + handlers
            logger.propagate, logger.level = propagate, level
        for logger, handler in self._removed:  # e.g. the handler transformers added when imported inside
            if self.stream is not None and getattr(handler, "stream", None) is self.stream:
                handler.stream = sys.stderr  # made while an engine started: the terminal's, from now on
                if getattr(vars(handler).get("flush"), "__self__", None) is self.stream:
                    del handler.flush  # transformers binds its handler's flush to that stream's
            if handler not in logger.handlers:
                logger.addHandler(handler)
        self.warnings_logger.handlers = []
        self.handler.close()
        if self.stream is not None:
            self.stream.close()

    def tail(self, lines: int = TAIL_LINES) -> list[str]:
        try:
            return self.path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        except OSError:
            return []

    def _show(
        self,
        message: Any,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if file is not None or issubclass(category, HarnessWarning) or str(filename).startswith(_HARNESS_DIR):
            self._showwarning(message, category, filename, lineno, file, line)
        else:
            self.warnings_logger.warning(warnings.formatwarning(message, category, filename, lineno, line).rstrip())


_current: EngineLog | None = None


@contextlib.contextmanager
def capture(path: Path, verbose: bool = False) -> Iterator[EngineLog | None]:
    """Engine logs to `path` while the block runs (None and nothing moved when `verbose`); an engine
    failure inside it prints the log's last lines, then goes on up."""
    global _current
    env = _VERBOSE_ENV if verbose else _ENV
    added = [key for key in env if key not in os.environ]
    os.environ.update({key: env[key] for key in added})  # the user's own settings win
    if verbose or _current is not None:  # nested (forgetting inside a run): the outer capture holds
        try:
            yield None
        finally:
            _unset(added)
        return
    log = _current = EngineLog(path)
    log.open()
    try:
        yield log
    except BaseException as exc:
        engine_failed = isinstance(exc, GenerationFailed) or not isinstance(
            exc, (HarnessError, KeyboardInterrupt, SystemExit)
        )
        lines = log.tail() if engine_failed else []
        if lines:
            echo(f"harness: the last lines of {log.path}:", err=True)
            for text in lines:
                echo(f"  {text}", err=True)
        raise
    finally:
        _current = None
        log.close()
        _unset(added)


@contextlib.contextmanager
def engine_output() -> Iterator[None]:
    """Standard output and error, down to the file descriptors, into the open capture's file while an
    engine (or a training run's model) starts; nothing changes without a capture."""
    log = _current
    if log is None:
        yield
        return
    _flush()
    target = os.open(log.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    if log.stream is None:  # the Python streams too: under pytest or in a notebook they are not fd 1 and 2
        log.stream = open(os.dup(target), "w", encoding="utf-8", errors="replace", buffering=1)  # noqa: SIM115
    saved: list[tuple[int, int]] = []
    streams = sys.stdout, sys.stderr
    try:
        for fd in (1, 2):
            with contextlib.suppress(OSError):  # a closed descriptor stays closed
                saved.append((fd, os.dup(fd)))
                os.dup2(target, fd)
        sys.stdout = sys.stderr = log.stream
        yield
    finally:
        _flush()
        sys.stdout, sys.stderr = streams
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(target)
        log.reroute()


def _to_terminal(handler: logging.Handler) -> bool:
    """A stream handler (a package's default: stderr or stdout, whichever object was current then)."""
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(Exception):
            stream.flush()


def _unset(keys: list[str]) -> None:
    for key in keys:
        os.environ.pop(key, None)
