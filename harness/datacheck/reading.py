"""Reading JSONL data for `harness check-data`: every line, every problem, never an exception.

A file is read in binary, line by line, so that invalid UTF-8, binary files and huge lines become
findings with file:line instead of a crash or a first-error-only stop. Each good line becomes a
`Record`: the text the later checks compare (input, output, label), whatever the layout.

A line is read in a plain layout (harness.datacheck.layouts: chat, completion, preference, fields) or
as the suite reads it (harness.datacheck.suite_records); `Record` and `Line` are in harness.datacheck.records.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from harness.core.errors import DataError
from harness.datacheck.findings import Findings
from harness.datacheck.layouts import plain_record
from harness.datacheck.records import Line, Record
from harness.datacheck.suite_records import SuiteLayout, suite_record
from harness.suite import items

MAX_LINE_BYTES = 64 << 20  # longer lines are reported, not parsed (a suite: the limit load_items has, if lower)
_SNIFF_BYTES = 8192


@dataclass
class FileData:
    path: str
    role: str  # "train", "eval" or "data" (unknown)
    records: list[Record]
    layouts: Counter[str]  # non-blank lines by layout
    lines: int = 0  # non-blank lines
    dropped: int = 0  # exact repeats of earlier lines, left out as load_items leaves them out


def read_file(path: Path, role: str, layout: str | SuiteLayout, findings: Findings) -> FileData:
    """Every line of a JSONL file as a Record, or as findings naming file:line. Never raises on content."""
    name = str(path)
    data = FileData(name, role, [], Counter())
    ids: dict[str, int] = {}  # explicit id -> line
    contents: dict[str, int] = {}  # items.content_key -> line, of records that passed
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}", "", "check the path and its permissions") from None
    with handle:
        head = handle.read(_SNIFF_BYTES)
        if b"\0" in head:
            findings.add(
                "error",
                "binary_file",
                "not UTF-8 text (NUL bytes: a binary or UTF-16 file?)",
                name,
                "write JSONL: one UTF-8 JSON object per line",
                name,
            )
            return data
        handle.seek(0)
        limit = MAX_LINE_BYTES
        if isinstance(layout, SuiteLayout):  # report what load_suite refuses, where it has a lower limit
            limit = min(limit, getattr(items, "MAX_LINE_BYTES", limit))
        for number, raw in _lines(handle, limit):
            line = _decode(raw, f"{name}:{number}", findings, limit)
            if number == 1 and line is not None:
                line = line.removeprefix("\ufeff")  # a byte-order mark, as load_suite accepts it
            data.lines += raw is None or bool(raw.strip())
            if line is None:
                continue
            obj = _parse(line, f"{name}:{number}", findings)
            if obj is None:
                continue
            context = Line(f"{name}:{number}", name, findings, role)
            if isinstance(layout, SuiteLayout):
                kind, record, item_id = suite_record(obj, layout, context)
                item_id = item_id if layout.names.id in obj else None  # a content hash is no id the user wrote
            else:
                kind, record, item_id = plain_record(obj, layout, context)
            data.layouts[kind] += 1
            key = items.content_key(obj) if record is not None else ""
            if key in contents:  # as load_items: the copy is dropped, in the same words as `harness run`
                repeat = items.Repeat(name, number, contents[key], items.snippet(line))
                findings.add("warning", "repeated_line", repeat.message, repeat.where, repeat.fix, name)
                data.dropped += 1
                continue
            if item_id is not None:
                if item_id in ids:
                    context.error(
                        "duplicate_id",
                        items.duplicate_id_message(item_id, ids[item_id], number),
                        "give every item a unique id: harness refuses to load duplicates",
                    )
                ids.setdefault(item_id, number)
            if record is not None:
                contents[key] = number
                data.records.append(record)
    if not data.lines:
        findings.add("error", "empty_file", "no records", name, "write one JSON object per line", name)
    if len(data.layouts) > 1:
        mix = ", ".join(f"{count} {kind}" for kind, count in data.layouts.most_common())
        findings.add(
            "warning",
            "mixed_layouts",
            f"records in several layouts: {mix}",
            name,
            "use one layout per file (trainers read a file as one format)",
            name,
        )
    return data


def _lines(handle: BinaryIO, limit: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) per line; None for a line over `limit` bytes, whose rest is skipped unread."""
    number = 0
    while raw := handle.readline(limit + 2):
        number += 1
        if len(raw.rstrip(b"\r\n")) <= limit:
            yield number, raw
            continue
        while raw and not raw.endswith(b"\n"):
            raw = handle.readline(1 << 20)
        yield number, None


def _decode(raw: bytes | None, where: str, findings: Findings, limit: int) -> str | None:
    if raw is None:
        findings.add(
            "error",
            "line_too_long",
            f"line longer than {limit:,} bytes: not read",
            where,
            "split it into records of one example each; is the file JSONL?",
        )
        return None
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        findings.add(
            "error", "invalid_utf8", f"invalid UTF-8 at byte {exc.start} of the line", where, "save the file as UTF-8"
        )
        return None
    return line.rstrip("\r\n") if line.strip() else None  # so that JSON errors name the column on this line


def _parse(line: str, where: str, findings: Findings) -> dict[str, Any] | None:
    try:
        obj = json.loads(line)
    except ValueError as exc:  # JSONDecodeError, and integers too long to convert
        detail = f"{exc.msg}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)[:80]
        findings.add(
            "error", "malformed_json", f"malformed JSON ({detail})", where, "fix the line: one JSON object per line"
        )
        return None
    except RecursionError:
        findings.add("error", "malformed_json", "JSON nested too deeply", where, "flatten the record")
        return None
    if not isinstance(obj, dict):
        findings.add(
            "error",
            "not_object",
            f"expected a JSON object, got {type(obj).__name__}",
            where,
            "write one object per line",
        )
        return None
    return obj
