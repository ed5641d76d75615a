"""Checks on what a config may hold, shared by suites and run configs: names that become file names,
regexes that could backtrack for hours, values that look like API keys.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from harness.core.errors import ConfigError, HarnessWarning
from harness.core.redact import contains_secret, find_secrets

# Suite and variant names become file and folder names (results/<suite>-<time>/,
# samples/<variant>.jsonl): no separators, no leading dot ("..", ".hidden"), nothing a shell or a file
# system treats specially, and short enough for any file system once a suffix is added.
MAX_NAME_LENGTH = 100
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME_RULE = f"use letters, digits, '.', '_' and '-' (at most {MAX_NAME_LENGTH}), starting with a letter or digit"
# A variant name may also hold '@', safe in a file name: a few-shot sweep's expansions are NAME@kK
# (harness.config.sweep).
_SAFE_VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")
VARIANT_NAME_RULE = NAME_RULE.replace("'_' and '-'", "'_', '-' and '@'")


def shown(value: str, limit: int = 60) -> str:
    """A user's string as an error message quotes it: repr (so a newline or NUL stays one line), short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def check_name(name: str, what: str, where: str, key: str) -> None:
    """Refuse a name that is not a plain file name (`what`: "suite", "variant"), declared in file `where`
    at `key` (e.g. "key 'name'", '[variants."a/b"]')."""
    pattern, rule = (_SAFE_VARIANT_NAME, VARIANT_NAME_RULE) if what == "variant" else (_SAFE_NAME, NAME_RULE)
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH or not pattern.fullmatch(name):
        raise ConfigError(f"invalid {what} name {shown(str(name))}", f"{where} {key}", rule)
    if contains_secret(name):  # it would be a file name and a column of summary.md; never echo it
        raise ConfigError(f"a {what} name looks like an API key", where, "choose another name")


def warn_secrets(table: Any, where: str, prefix: tuple[str, ...] = ()) -> None:
    """One HarnessWarning per value that looks like an API key, naming where it is (never the value)."""
    for path in find_secrets(table, prefix):
        warnings.warn(
            f"{where} {describe_key(path)} looks like it contains an API key; it is redacted in results"
            " - keep keys in environment variables, never in a config",
            HarnessWarning,
            stacklevel=2,
        )


def describe_key(path: tuple[str | int, ...]) -> str:
    """("variants", "prompted", "system") -> "[variants.prompted] system"; ("metrics", 0) -> "metrics[0]"."""
    names, index = list(path), ""
    while names and isinstance(names[-1], int):
        index = f"[{names.pop()}]" + index
    if not names:
        return index
    *table, key = names
    dotted = ""
    for part in table:
        dotted += f"[{part}]" if isinstance(part, int) else (f".{part}" if dotted else str(part))
    return (f"[{dotted}] " if dotted else "") + f"{key}{index}"


def has_nested_repeat(pattern: str) -> bool:
    """Whether a regex repeats something that itself repeats without bound, like `(a+)+` or `(\\w+\\s?)*`.

    That shape (star height 2) is what backtracks catastrophically (ReDoS): matching `(a+)+$` against
    thirty a's and a b takes minutes, and Python's `re` cannot be interrupted. Only a heuristic: it also
    flags safe patterns such as `(\\d+\\.)+` and misses overlapping alternations such as `(a|a)*`; which
    is why loading warns rather than refuses.
    """
    try:
        from re import _parser as parser  # type: ignore[attr-defined]  # private, but stable since 3.11
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_parse as parser  # type: ignore[no-redef]
    try:
        return _nested(parser.parse(pattern), parser, False)
    except Exception:  # noqa: BLE001 - any surprise in a private API: no warning, never a crash
        return False


def _nested(items: Any, parser: Any, in_repeat: bool) -> bool:
    for op, arg in items:
        if op in (parser.MAX_REPEAT, parser.MIN_REPEAT):
            _low, high, body = arg
            unbounded = high == parser.MAXREPEAT or high > 100
            if unbounded and in_repeat or _nested(body, parser, in_repeat or unbounded):
                return True
        elif any(_nested(child, parser, in_repeat) for child in _children(arg, parser)):
            return True
    return False


def _children(arg: Any, parser: Any) -> list[Any]:
    """The sub-patterns inside one parsed item (groups, branches, lookarounds, possessive repeats)."""
    if isinstance(arg, parser.SubPattern):
        return [arg]
    if isinstance(arg, list | tuple):
        return [child for value in arg for child in _children(value, parser)]
    return []


def warn_backtracking(pattern: str | None, where: str) -> None:
    if pattern is not None and has_nested_repeat(pattern):
        warnings.warn(
            f"{where} pattern {shown(pattern)} repeats a repeat (like (a+)+): it can take minutes on some"
            " outputs (catastrophic backtracking) - bound the inner repeat or make it possessive (a++)",
            HarnessWarning,
            stacklevel=3,
        )
