"""Strict reading of TOML tables into frozen dataclasses.

Unknown keys are rejected with a "did you mean", values are type-checked against the dataclass
annotations, and nothing in a config is ever evaluated or executed.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from harness.core.errors import ConfigError, HarnessError, did_you_mean
from harness.core.plain import to_plain  # noqa: F401  (re-exported: defined below config, for core)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

T = TypeVar("T")

# TOML integers are 64-bit; tomllib reads longer ones, which then overflow in C (vLLM, numpy, torch).
MAX_INT = 2**63 - 1


def check_ranges(obj: Any, where: str) -> None:
    """Check every `ranged` field of a dataclass instance, e.g. one built from command-line overrides."""
    for spec in dataclasses.fields(obj):
        _check_range(spec, getattr(obj, spec.name), f"{where} key '{spec.name}'")


def _check_range(spec: dataclasses.Field, value: Any, where: str) -> None:  # type: ignore[type-arg]
    bounds = spec.metadata.get("range")
    if bounds is None or value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return
    if not bounds.holds(value):
        fix = f"e.g. {spec.name} = {bounds.example}" if bounds.example else f"use a value {bounds.describe()}"
        finite = "" if not isinstance(value, float) or math.isfinite(value) else "a finite number "
        raise ConfigError(f"{spec.name} must be {finite}{bounds.describe()}, got {_shown(value)}", where, fix)


# A config holds settings written by hand: kilobytes. 1 MB is already a system prompt of ~250k tokens,
# more than a small model's context; beyond it a file is a mistake (data pasted into the config, the
# wrong file passed) and parsing it would take seconds per 10 MB for nothing. Long text goes in data files.
MAX_CONFIG_BYTES = 1_000_000


def check_file(
    path: Path, what: str, where: str = "", fix: str = "check the path", error: type[HarnessError] = ConfigError
) -> None:
    """Refuse a path that is not a regular file, saying what it is instead: missing, a folder, or a FIFO,
    socket or device (which reading would block on, or read forever)."""
    if path.is_file():
        return
    if not path.exists():
        raise error(f"{what} not found: {path}", where, fix)
    found = "a folder" if path.is_dir() else "not a regular file (a FIFO, socket or device)"
    raise error(f"{what} {path} is {found}", where, "point it at a regular file")


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning every way it can fail into a one-line ConfigError."""
    check_file(path, "config file")
    data = read_capped(path, MAX_CONFIG_BYTES, "a config file", "move long text into data files")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not valid UTF-8", f"byte {exc.start}", "save it as UTF-8") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark, as some Windows editors save UTF-8
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {path}", str(exc), "fix the syntax") from None
    except RecursionError:
        raise ConfigError(f"invalid TOML in {path}", "arrays or tables nested too deeply", "flatten them") from None
    except ValueError as exc:  # an integer of thousands of digits, a date out of range
        raise ConfigError(
            f"invalid TOML in {path}", f"value out of range ({str(exc).split(':')[0]})", "fix the value"
        ) from None


def read_capped(path: Path, limit: int, what: str, fix: str) -> bytes:
    """A file's bytes, refusing (without reading it all) one larger than `limit` bytes."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror or exc}", "", "check the path and its permissions"
        ) from None
    if len(data) > limit:
        size = path.stat().st_size
        raise ConfigError(f"{path} is {size / 1e6:.1f} MB, over the {limit / 1e6:g} MB limit for {what}", "", fix)
    return data


def parse_table(cls: type[T], table: Any, where: str, section: str = "") -> T:
    """Build dataclass `cls` from a TOML table, rejecting unknown keys and wrong types.

    `where` names the file (e.g. "suites/x/suite.toml"), `section` the table inside it ("generation"),
    so that errors read "suites/x/suite.toml [generation]".
    """
    location = f"{where} [{section}]" if section else where
    if not isinstance(table, Mapping):
        raise ConfigError(f"expected a table, got {_type_name(table)}", location, "see docs/suite-format.md")
    # metadata config=False: filled in by the code (e.g. where a table was read), never from the file
    fields = {f.name: f for f in dataclasses.fields(cls) if f.metadata.get("config", True)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    for key in table:
        if key not in fields:
            raise ConfigError(f"unknown key '{key}'", location, did_you_mean(key, fields))
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        if name in table:
            hint = hints[name]
            if dataclasses.is_dataclass(hint):
                values[name] = parse_table(hint, table[name], where, f"{section}.{name}" if section else name)
            else:
                values[name] = coerce(table[name], hint, f"{location} key '{name}'")
                _check_range(spec, values[name], f"{location} key '{name}'")
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key '{name}'", location, f"add {name} = ...")
    return cls(**values)


def coerce(value: Any, hint: Any, where: str) -> Any:
    """Check `value` against a type hint; lists become tuples so configs stay hashable and frozen."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        # A table where a table is allowed: its own error ("missing required key 'name'") says more
        # than "expected str | MetricSpec".
        tables = [a for a in args if dataclasses.is_dataclass(a)] if isinstance(value, Mapping) else []
        if len(tables) == 1:
            return parse_table(tables[0], value, where)
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0] if len(errors) == 1 else _type_error(value, hint, where)
    if origin is typing.Literal:
        if value not in args:
            close = did_you_mean(value, map(str, args)) if isinstance(value, str) else ""
            fix = close if close.startswith("did you mean") else "use one of: " + ", ".join(map(repr, args))
            raise ConfigError(f"invalid value {_shown(value)}", where, fix)
        return value
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise _type_error(value, hint, where)
        item_hint = args[0] if args else Any
        return tuple(coerce(v, item_hint, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _type_error(value, hint, where)
        value_hint = args[1] if len(args) == 2 else Any
        return {str(k): coerce(v, value_hint, f"{where}.{k}") for k, v in value.items()}
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if dataclasses.is_dataclass(hint):
        return parse_table(hint, value, where)
    if hint in (int, float) and isinstance(value, bool):
        raise _type_error(value, hint, where)
    if hint in (int, float) and isinstance(value, int) and abs(value) > MAX_INT:
        raise ConfigError(
            f"integer {_shown(value, 30)} is out of range", where, "TOML integers are 64-bit: use a smaller value"
        )
    if isinstance(hint, type) and not isinstance(value, hint):
        raise _type_error(value, hint, where)
    return value


def _type_name(value: Any) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _type_error(value: Any, hint: Any, where: str) -> ConfigError:
    wanted = _hint_name(hint)
    fix = "fix the value"
    if typing.get_origin(hint) in (tuple, list) and isinstance(value, str):
        fix = f"write it as an array: [{_shown(value)}]"
    return ConfigError(f"expected {wanted}, got {_type_name(value)} {_shown(value)}", where, fix)


def _hint_name(hint: Any) -> str:
    """A type hint as a user reads it: "a string", "an array of strings", never a Python class name."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_hint_name(a) for a in args if a is not type(None))
    if origin in (tuple, list):
        item = _hint_name(args[0]) if args else "values"
        return "an array of " + (
            item.removeprefix("an ").removeprefix("a ") + "s" if " or " not in item else f"({item})"
        )
    if origin in (dict, Mapping) or hint in (dict, Mapping) or dataclasses.is_dataclass(hint):
        return "a table"
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    return names.get(hint, getattr(hint, "__name__", None) or str(hint).replace("typing.", ""))


def _shown(value: Any, limit: int = 80) -> str:
    """A value as an error message may quote it: one line, short, and never a secret it holds."""
    from harness.core.redact import redact_secrets

    text = repr(redact_secrets(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."
