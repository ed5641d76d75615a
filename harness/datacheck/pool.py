"""`Pool`: the records of one role, which the checks run over; and how a finding lists several places.

`places` and `some_of` are shared by the exact and the near-duplicate checks, so that both word a
list of lines the same way (the first few, then how many more).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.datacheck.findings import file_of
from harness.datacheck.records import Record, text_key

_SHOWN = 5


@dataclass
class Pool:
    """The records of one role; token counts are filled in before the length checks."""

    role: str  # "train", "eval" or "data"
    file: str  # where findings about the pool as a whole are listed
    records: list[Record]
    keys: list[bytes] = field(default_factory=list)  # normalized input hashes
    tokens_in: Any = None  # numpy int arrays, one count per record
    tokens_out: Any = None

    def __post_init__(self) -> None:
        if not self.keys:
            self.keys = [text_key(record.input) for record in self.records]


def places(records: list[Record], file: str) -> str:
    return some_of([f"line {r.where.rpartition(':')[2]}" if file_of(r.where) == file else r.where for r in records])


def some_of(names: list[str]) -> str:
    """The first few of a list, then how many more: a count and the names listed always agree."""
    more = len(names) - _SHOWN
    return ", ".join(names[:_SHOWN]) + (f" and {more} more" if more > 0 else "")
