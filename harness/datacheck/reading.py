"""Reading JSONL data for `harness check-data`: every line, every problem, never an exception.

A file is read in binary, line by line, so that invalid UTF-8, binary files and huge lines become
findings with file:line instead of a crash or a first-error-only stop. Each good line becomes a
`Record`: the text the later checks compare (input, output, label), whatever the layout.

Layouts: chat `{"messages": [...]}`, completion `{"prompt", "completion"}`, preference pairs
`{"prompt", "chosen", "rejected"}` and `fields` (`input` / `output`, or the suite's names).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from harness.core.errors import DataError, did_you_mean
from harness.core.types import ROLES
from harness.datacheck.findings import Findings
from harness.suite import items
from harness.suite.items import FieldNames, Item
from harness.suite.prompts import Template

LAYOUTS = ("auto", "chat", "completion", "preference", "fields")
MAX_LINE_BYTES = 64 << 20  # longer lines are reported, not parsed (a suite: the limit load_items has, if lower)
_SNIFF_BYTES = 8192
_KEY_CHUNK = 1 << 20
_NOT_TEXT = re.compile(r"[^\w+*/=<>%^]+")  # punctuation and whitespace; math operators stay


@dataclass(frozen=True)
class Record:
    """What the checks need from one example. `input` is what the model is asked (the key for
    duplicates and leakage); `prompt` everything it reads before answering, when more than `input`."""

    where: str
    input: str
    output: str
    prompt: str = ""
    label: str | None = None
    rejected: str | None = None  # preference pairs only

    @property
    def prompt_text(self) -> str:
        return self.prompt or self.input


@dataclass(frozen=True)
class SuiteLayout:
    """How a suite's records are read: the harness's own parser, then its prompt template and system prompt."""

    layout: str
    names: FieldNames
    template: Template
    system: str = ""
    needed: tuple[str, ...] = ()  # fields the template and the retrieval query need


@dataclass
class FileData:
    path: str
    role: str  # "train", "eval" or "data" (unknown)
    records: list[Record]
    layouts: Counter[str]  # non-blank lines by layout
    lines: int = 0  # non-blank lines
    dropped: int = 0  # exact repeats of earlier lines, left out as load_items leaves them out


def normalize(text: str) -> str:
    """Lowercase, NFKC, punctuation and whitespace runs collapsed to one space (operators like + and = kept)."""
    return _NOT_TEXT.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_key(text: str) -> bytes:
    """A hash of normalize(text), computed in pieces cut at punctuation or spaces, so that a huge text
    costs no huge copies."""
    digest, start, joiner = hashlib.blake2b(digest_size=16), 0, b""
    while start < len(text):
        cut = _NOT_TEXT.search(text, start + _KEY_CHUNK) if len(text) - start > _KEY_CHUNK else None
        end = cut.start() if cut else len(text)
        part = normalize(text[start:end])
        if part:
            digest.update(joiner + part.encode("utf-8", "surrogatepass"))
            joiner = b" "
        start = end
    return digest.digest()


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
            context = Line(f"{name}:{number}", name, findings)
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


@dataclass(frozen=True)
class Line:
    """Where a record came from, for its findings."""

    where: str
    file: str
    findings: Findings

    def error(self, code: str, message: str, fix: str = "") -> None:
        self.findings.add("error", code, message, self.where, fix, self.file)

    def warning(self, code: str, message: str, fix: str = "") -> None:
        self.findings.add("warning", code, message, self.where, fix, self.file)


def detect_layout(obj: dict[str, Any]) -> str:
    if "messages" in obj:
        return "chat"
    if "chosen" in obj or "rejected" in obj:
        return "preference"
    if "prompt" in obj or "completion" in obj:
        return "completion"
    if "input" in obj or "output" in obj:
        return "fields"
    return "unknown"


def plain_record(obj: dict[str, Any], layout: str, line: Line) -> tuple[str, Record | None, str | None]:
    """A record in one of the four layouts, checked field by field (data given as files, not a suite)."""
    kind = detect_layout(obj) if layout == "auto" else layout
    raw_id = obj.get("id")
    item_id = str(raw_id) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None
    label = obj.get("label")
    label = None if label is None else label if isinstance(label, str) else json.dumps(label, ensure_ascii=False)
    if kind == "chat":
        turns = _turns(obj.get("messages"), "messages", line)
        if turns is None:
            return kind, None, item_id
        roles = [role for role, _ in turns]
        if roles[-1] != "assistant":
            line.error(
                "last_not_assistant",
                f"the last message is '{roles[-1]}', not 'assistant'",
                "end every conversation with the assistant reply: it is what training learns and eval scores against",
            )
            return kind, None, item_id
        if len(roles) < 2 or roles[-2] != "user":
            line.error(
                "no_user_turn", "the assistant reply must follow a user message", "add the user message it answers"
            )
            return kind, None, item_id
        if "system" in roles[1:]:
            line.warning("misplaced_system", "a system message after the first turn", "put the system message first")
        before = turns[:-1]
        text = "\n".join(content for role, content in before if role != "system")
        return kind, Record(line.where, text, turns[-1][1], "\n".join(c for _, c in before), label), item_id
    if kind in ("completion", "preference"):
        outputs = ("completion",) if kind == "completion" else ("chosen", "rejected")
        texts = [_text_field(obj, key, line) for key in ("prompt", *outputs)]
        if any(text is None for text in texts):
            return kind, None, item_id
        if kind == "preference" and normalize(texts[1] or "") == normalize(texts[2] or ""):
            line.warning(
                "chosen_equals_rejected",
                "chosen and rejected are the same text: no preference to learn",
                "drop the pair or fix one side",
            )
        rejected = texts[2] if kind == "preference" else None
        return kind, Record(line.where, texts[0] or "", texts[1] or "", label=label, rejected=rejected), item_id
    if kind == "fields":
        texts = [_text_field(obj, key, line) for key in ("input", "output")]
        if texts[0] is None or texts[1] is None:
            return kind, None, item_id
        return kind, Record(line.where, texts[0], texts[1], label=label), item_id
    keys = ", ".join(sorted(obj)[:6]) or "none"
    line.error(
        "unknown_layout",
        f"no known layout (keys: {keys})",
        "use messages, prompt/completion, prompt/chosen/rejected or input/output; "
        "or check the suite folder, which names its fields",
    )
    return "unknown", None, item_id


def _text_field(obj: dict[str, Any], key: str, line: Line) -> str | None:
    """A string field, or the text of a message list (chosen/rejected and prompts in chat form)."""
    value = obj.get(key)
    if isinstance(value, list):
        turns = _turns(value, key, line)
        return None if turns is None else "\n".join(content for _, content in turns)
    if key not in obj:
        line.error("missing_field", f"missing field '{key}'", f"add '{key}'")
        return None
    if not isinstance(value, str):
        line.error("missing_field", f"'{key}' must be a string, got {_json_kind(value)}", f"write '{key}' as text")
        return None
    if not value.strip():
        line.error("empty_field", f"'{key}' is empty or whitespace", f"fill in '{key}' or drop the record")
        return None
    return value


def _json_kind(value: Any) -> str:
    """A JSON value's type as the file spells it (null, a number), not a Python class name."""
    if value is None:
        return "null"
    return {bool: "true/false", int: "a number", float: "a number", dict: "an object", list: "an array"}.get(
        type(value), type(value).__name__
    )


def _turns(messages: Any, key: str, line: Line) -> list[tuple[str, str]] | None:
    if not isinstance(messages, list) or not messages:
        line.error(
            "bad_messages",
            f"'{key}' must be a non-empty list of messages",
            'write [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]',
        )
        return None
    turns = []
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if role not in ROLES:
            hint = did_you_mean(str(role), ROLES) if isinstance(role, str) else "use one of: " + ", ".join(ROLES)
            line.error("bad_role", f"{key}[{index}] has role {role!r}", hint)
            return None
        if not isinstance(content, str):
            line.error(
                "bad_content",
                f"{key}[{index}] content must be a string, got {_json_kind(content)}",
                "write the content as text",
            )
            return None
        if not content.strip():
            line.error(
                "empty_field",
                f"{key}[{index}] ({role}) content is empty or whitespace",
                "fill it in or drop the message",
            )
            return None
        turns.append((role, content))
    return turns


def suite_record(obj: dict[str, Any], layout: SuiteLayout, line: Line) -> tuple[str, Record | None, str | None]:
    """A record read exactly as `load_suite` reads it, so that everything it would refuse is reported here."""
    kind = items.detect_layout(obj) if layout.layout == "auto" else layout.layout
    try:
        item = items.parse_record(obj, kind, layout.names, line.where)
    except DataError as exc:
        line.error("invalid_record", exc.what, exc.fix or "see docs/suite-format.md")
        return kind, None, None
    missing = [name for name in layout.needed if name not in item.fields]
    if missing:
        line.error(
            "missing_template_field",
            f"no field '{missing[0]}', needed by the prompt template",
            f"add '{missing[0]}' to the record or change [prompt] template",
        )
        return kind, None, item.id
    null = [name for name in layout.needed if item.fields[name] is None]
    if null:  # load_suite refuses it: the prompt would read the word "null"
        line.error(
            "null_field",
            f"'{null[0]}' is null, used by the prompt template",
            f"give '{null[0]}' a string (\"\" for none), or leave it out of [prompt] template",
        )
        return kind, None, item.id
    for name in layout.template.fields():
        value = item.fields[name]
        if isinstance(value, str) and not value.strip():
            line.error("empty_field", f"'{name}' is empty or whitespace", f"fill in '{name}' or drop the record")
            return kind, None, item.id
    if not item.reference.strip():
        line.error(
            "empty_field",
            f"the reference ('{layout.names.output}') is empty or whitespace",
            "fill in the expected answer or drop the record",
        )
        return kind, None, item.id
    return kind, record_from_item(item, layout), item.id


def record_from_item(item: Item, layout: SuiteLayout) -> Record:
    """The input is the values the template fills in (not its fixed instructions); the prompt is all of it."""
    names = layout.template.fields()
    values = [item.fields.get(name, "") for name in names]
    earlier = [message.content for message in item.history if message.role != "system"]  # chat turns count
    text = "\n".join([*earlier, *(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values)])
    try:
        rendered = layout.template.render(item.fields, item.id)
    except DataError:
        rendered = text
    history, system = list(item.history), layout.system
    if history and history[0].role == "system":  # as prompts.build_request: the suite's system prompt wins
        system, history = system or history[0].content, history[1:]
    parts = [system] if system else []
    prompt = "\n".join([*parts, *(message.content for message in history), rendered])
    return Record(item.source, text, item.reference, prompt, item.label)


def records_of(suite_items: tuple[Item, ...], layout: SuiteLayout) -> list[Record]:
    return [record_from_item(item, layout) for item in suite_items]


def suite_layout(config: Any) -> SuiteLayout:
    """The SuiteLayout of a `SuiteConfig` (template and query fields, system prompt, field names)."""
    data, prompt = config.data, config.prompt
    names = FieldNames(data.input_field, data.output_field, data.id_field, data.label_field, data.doc_ids_field)
    template = Template(prompt.template)
    needed = template.fields() + (Template(prompt.query).fields() if prompt.query is not None else ())
    return SuiteLayout(data.format, names, template, prompt.system, tuple(dict.fromkeys(needed)))
