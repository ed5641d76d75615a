"""What `harness check-data` reports: a `Finding` per problem, collected by `Findings`, which lists the
first few of each kind per file and counts every one (the rest are an `Omitted`: "and N more like this").
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "info")
MAX_PER_KIND = 20  # findings listed per (file, code); the rest are counted

__all__ = ["MAX_PER_KIND", "SEVERITIES", "Finding", "Findings", "Omitted", "Severity", "file_of"]


@dataclass(frozen=True)
class Finding:
    """One problem: how bad, a stable code, what, where (file:line), how to fix, and the file it is listed under."""

    severity: Severity
    code: str
    message: str
    where: str = ""
    fix: str = ""
    file: str = ""
    count: int = 1  # problems this finding stands for: more than 1 for an "and N more like this" summary


@dataclass(frozen=True)
class Omitted:
    """The findings of one kind in one file beyond those listed: counted in every total, not listed."""

    severity: Severity
    code: str
    file: str
    count: int

    @property
    def message(self) -> str:
        return f"and {self.count} more like this"


class Findings:
    """Collects findings, listing the first `cap` of each (file, code) and counting every one."""

    def __init__(self, cap: int = MAX_PER_KIND) -> None:
        self.cap = cap
        self._kept: list[Finding] = []
        self._count: Counter[tuple[str, str]] = Counter()  # found
        self._listed: Counter[tuple[str, str]] = Counter()
        self._severity: dict[tuple[str, str], Severity] = {}

    def add(self, severity: Severity, code: str, message: str, where: str = "", fix: str = "", file: str = "") -> None:
        key = (file or file_of(where), code)
        self._count[key] += 1
        self._severity.setdefault(key, severity)
        if self._listed[key] < self.cap:
            self._listed[key] += 1
            self._kept.append(Finding(severity, code, message, where, fix, key[0]))

    def add_unlisted(self, severity: Severity, code: str, file: str, count: int) -> None:
        """`count` more problems of a kind whose first ones were added: too many to word one by one."""
        key = (file, code)
        self._severity.setdefault(key, severity)
        self._count[key] += count

    @property
    def listed(self) -> list[Finding]:
        return list(self._kept)

    @property
    def omitted(self) -> list[Omitted]:
        return [
            Omitted(self._severity[key], key[1], key[0], count - self._listed[key])
            for key, count in self._count.items()
            if count > self._listed[key]
        ]

    def result(self) -> list[Finding]:
        """The listed findings, then one "and N more like this" finding per kind with more (last)."""
        more = [Finding(o.severity, o.code, o.message, o.file, "", o.file, o.count) for o in self.omitted]
        return self._kept + more


def file_of(where: str) -> str:
    head, _, tail = where.rpartition(":")
    return head if head and tail.isdigit() else where
