"""Plain JSON-able data from harness objects. Here, below the config layer, so that core modules (the
Generation codec) may record a dataclass tree too; harness.config.parse re-exports it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def to_plain(obj: Any) -> Any:
    """A dataclass tree as plain JSON-able data (for recording the resolved config)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return obj
