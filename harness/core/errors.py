"""Errors a user can fix, printed by the CLI as one line and exit code 2.

    HarnessError              what happened - where - how to fix
     +-- ConfigError          suite.toml / run config: unknown key, wrong type, bad value
     +-- DataError            eval or train data: malformed line, missing field, duplicate id
     +-- UnknownNameError     unknown metric, variant kind or variant name ("did you mean ...")
     +-- MissingDependencyError  an optional extra is not installed
     +-- GenerationFailed     a variant's engine failed mid-run (cause's traceback shown; resumable)
     +-- WriteError           a file cannot be written: disk full, no permission, a folder in the way

    HarnessWarning (UserWarning)  worth knowing, does not stop the run

Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class HarnessError(Exception):
    """A mistake in the user's input: says what happened, where, and how to fix it."""

    def __init__(self, what: str, where: str = "", fix: str = "") -> None:
        self.what, self.where, self.fix = what, where, fix
        super().__init__(" - ".join(part for part in (what, where, fix) if part))


class ConfigError(HarnessError):
    pass


class DataError(HarnessError):
    pass


class UnknownNameError(HarnessError):
    pass


class MissingDependencyError(HarnessError):
    pass


class GenerationFailed(HarnessError):
    """A variant's model failed mid-run (an engine died): the CLI prints the cause's traceback, then this
    line, which names the variant and how to resume; the samples completed before are kept."""


class WriteError(HarnessError):
    """An output file could not be written (harness.core.files); the previous version of the file is intact."""


class HarnessWarning(UserWarning):
    """Something the user should know that does not stop the run (printed as `warning: ...`)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A "did you mean 'x'?" hint, or the list of valid choices when nothing is close."""
    choices = sorted(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "choose one of: " + ", ".join(choices) if choices else "none are defined"
