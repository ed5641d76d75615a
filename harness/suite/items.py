"""Reading eval and train data: JSONL in the three layouts people use for fine-tuning data.

- chat:        {"messages": [{"role": ..., "content": ...}, ...]}   the last assistant message is the reference
- completion:  {"prompt": ..., "completion": ...}
- fields:      plain records, input and output named by the suite (default `input` / `output`)

Every layout may carry `id` (else a stable content hash), `label` and `doc_ids` (gold documents).

A chat record may be OpenAI's fine-tuning format with tools: assistant messages with `tool_calls` (their
`content` null or missing) or legacy `function_call`, `tool` results with `tool_call_id` (legacy role
`function` is read as a tool result without an id), and a per-record `tools` (or legacy `functions`) list
and `parallel_tool_calls` (absent: true when the reference makes more than one call). A reference that calls
tools is its `call_text`; one that does not is its content (a rejection). Only the shape is checked here;
whether the calls name the record's tools, their arguments fit the schemas and the ids match is
`harness check-data`'s job. Earlier turns, tool calls and results included, are the item's `history`.

An eval item ends with a user message then the assistant reference: `build_request` sends system + history +
the rendered user message, so nothing can follow that user message. A multi-step conversation (user, call,
tool result, final answer) is therefore refused here, as is one with no user turn (a system prompt, then
the assistant opening): `harness check-data --train` accepts both as training data, but no suite item (train
items are built the way eval requests are) can hold them yet.

A line that repeats an earlier record exactly (same JSON, whatever its key order) is a `Repeat`: it is
dropped, the first copy is used, and loading goes on; `harness check-data` reports it in the same words.
The same explicit id on two different records stays an error.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.config.guards import shown
from harness.config.parse import check_file
from harness.core.errors import DataError, HarnessWarning, did_you_mean
from harness.core.tools import call_text, tool_call, tool_from_dict
from harness.core.types import ROLES, Message, Tool, ToolCall

FORMATS = ("auto", "chat", "completion", "fields")
# One record per line, and no record longer than this. 10 MB of text is ~2.5M tokens: a thousand times
# the context of the small models this harness evaluates, so a longer line is a mistake (a file without
# newlines, a base64 blob, a concatenated dump) and never a prompt. Reading stops at the cap, so a huge
# line costs 10 MB of memory and milliseconds, not the size of the file.
MAX_LINE_BYTES = 10_000_000


@dataclass(frozen=True)
class FieldNames:
    """Which record keys hold what, for the `fields` layout (and id/label/doc_ids in every layout)."""

    input: str = "input"
    output: str = "output"
    id: str = "id"
    label: str = "label"
    doc_ids: str = "doc_ids"


@dataclass(frozen=True)
class Item:
    """One example: the fields a prompt template can use, its reference answer and where it came from.

    `history` holds earlier chat turns (chat layout) that precede the final user message.
    """

    id: str
    fields: Mapping[str, Any]
    reference: str
    label: str | None = None
    doc_ids: tuple[str, ...] = ()
    history: tuple[Message, ...] = ()
    source: str = field(default="", compare=False)  # "file:line", for error messages
    # The functions the model may call (a chat record's `tools`, or legacy `functions`); a reference that
    # calls them is their <tool_call> text (harness.core.tools.call_text)
    tools: tuple[Tool, ...] = ()
    parallel_tool_calls: bool = False


@dataclass(frozen=True)
class Repeat:
    """A line whose record repeats an earlier line's exactly: dropped, the first copy is kept.

    A repeated eval item counts twice in every score, a repeated train line over-weights one example:
    a mistake to report, not a reason to stop (docs/suite-format.md, "Repeated lines")."""

    file: str
    line: int  # the dropped copy
    first: int  # the line that is used
    snippet: str  # the start of the record, as the file has it

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def message(self) -> str:
        return (
            f"line {self.line} repeats line {self.first} exactly ({self.snippet}): dropped, line {self.first} is used"
        )

    @property
    def fix(self) -> str:
        return "delete the copy: a repeated eval item counts twice in scores, a repeated train line over-weights it"


def duplicate_id_message(item_id: str, first: int, line: int) -> str:
    """The one wording of an explicit id on two different records (load_items and check-data)."""
    return f"duplicate id {shown(item_id)} on lines {first} and {line}, with different content"


def content_key(record: Mapping[str, Any]) -> str:
    """A hash of the record's JSON with sorted keys: equal for two lines that hold the same record."""
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def snippet(line: str, limit: int = 60) -> str:
    """The start of a line as the file has it (not repr: JSON's own backslashes stay single); whoever
    prints it escapes control characters (harness.core.escaping)."""
    text = " ".join(line[: limit * 4].split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def warn_repeats(repeats: list[Repeat] | tuple[Repeat, ...]) -> None:
    """One `warning:` line per dropped copy, in the words check-data uses for it."""
    for repeat in repeats:
        warnings.warn(f"{repeat.message} - {repeat.where} - {repeat.fix}", HarnessWarning, stacklevel=3)


def load_items(path: Path, layout: str = "auto", names: FieldNames = FieldNames()) -> list[Item]:
    """Read a JSONL file into Items, warning about (and dropping) exact repeats; see read_items."""
    items, repeats = read_items(path, layout, names)
    warn_repeats(repeats)
    return items


def read_items(path: Path, layout: str = "auto", names: FieldNames = FieldNames()) -> tuple[list[Item], list[Repeat]]:
    """Read a JSONL file into Items and the Repeats dropped from them; every malformed line, and an id
    given to two different records, is a DataError naming file and line."""
    check_file(path, "data file", "", "check the path in suite.toml [data]", DataError)
    items: list[Item] = []
    repeats: list[Repeat] = []
    seen: dict[str, int] = {}  # id -> line
    contents: dict[str, int] = {}  # content_key -> line
    with path.open("rb") as handle:
        for number, raw in enumerate(iter(lambda: handle.readline(MAX_LINE_BYTES + 2), b""), start=1):
            where = f"{path}:{number}"
            if len(raw.rstrip(b"\r\n")) > MAX_LINE_BYTES:
                raise DataError(
                    f"line longer than the {MAX_LINE_BYTES // 1_000_000} MB limit for one record",
                    where,
                    "split it into records of one example each; is this file JSONL, one object per line?",
                )
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError("invalid UTF-8", f"{where} byte {exc.start}", "save the file as UTF-8") from None
            if number == 1:
                line = line.removeprefix("\ufeff")  # a byte-order mark, as some editors save UTF-8
            if not line.strip():
                continue
            record = _parse_json(line, where)
            if not isinstance(record, dict):
                raise DataError("expected a JSON object", where, "write one object per line")
            item = parse_record(record, layout, names, where)
            key = content_key(record)
            if key in contents:
                repeats.append(Repeat(str(path), number, contents[key], snippet(line)))
                continue
            if item.id in seen:
                raise DataError(
                    duplicate_id_message(item.id, seen[item.id], number),
                    f"{where} and {path}:{seen[item.id]}",
                    "give every item a unique id",
                )
            seen[item.id], contents[key] = number, number
            items.append(item)
    if not items:
        raise DataError(f"no items in {path}", "", "add at least one JSON record")
    return items, repeats


def _parse_json(line: str, where: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"malformed JSON ({exc.msg})", f"{where} column {exc.colno}", "fix the line") from None
    except RecursionError:
        raise DataError("malformed JSON (nested too deeply)", where, "flatten the record") from None
    except ValueError as exc:  # an integer of thousands of digits
        raise DataError(f"malformed JSON ({str(exc).split(':')[0]})", where, "quote the number as a string") from None


def detect_layout(record: Mapping[str, Any]) -> str:
    if "messages" in record:
        return "chat"
    if "prompt" in record and "completion" in record:
        return "completion"
    return "fields"


def parse_record(record: dict[str, Any], layout: str, names: FieldNames, where: str) -> Item:
    layout = detect_layout(record) if layout == "auto" else layout
    tools: tuple[Tool, ...] = ()
    parallel = False
    if layout == "chat":
        fields, reference, history, tools, parallel = _parse_chat(record, where)
    elif layout == "completion":
        for key in ("prompt", "completion"):
            if not isinstance(record.get(key), str):
                raise DataError(
                    f"missing or non-string '{key}'", where, "completion records need prompt and completion"
                )
        fields = {**record, "input": record["prompt"]}
        reference, history = record["completion"], ()
    else:
        if names.output not in record:
            raise DataError(
                f"missing output field {shown(names.output)}", where, "add it, or set output_field in suite.toml [data]"
            )
        fields, reference, history = dict(record), _as_text(record[names.output]), ()
    return Item(
        id=_item_id(record, names.id, where),
        fields=fields,
        reference=reference,
        label=_optional_text(record.get(names.label)),
        doc_ids=_doc_ids(record.get(names.doc_ids), where),
        history=history,
        source=where,
        tools=tools,
        parallel_tool_calls=parallel,
    )


def _parse_chat(
    record: dict[str, Any], where: str
) -> tuple[dict[str, Any], str, tuple[Message, ...], tuple[Tool, ...], bool]:
    raw = record["messages"]
    if not isinstance(raw, list) or not raw:
        raise DataError("'messages' must be a non-empty list", where, "see docs/suite-format.md")
    messages = [_message(message, index, where) for index, message in enumerate(raw)]
    tools = _tools(record, where)
    roles = [message.role for message in messages]
    if roles[-1] == "assistant" and len(roles) >= 2 and set(roles[:-1]) == {"system"}:
        raise DataError(
            "no user message (the assistant opens the conversation): as eval data it has no input",
            where,
            "for training data run harness check-data --train; for eval, add the user message the reply answers",
        )
    if roles[-1] == "assistant" and len(roles) >= 2 and roles[-2] == "tool":
        raise DataError(
            "the final assistant message follows a tool result: a suite item must end with a user message then "
            "the assistant reference",
            where,
            "harness check-data --train reads multi-step tool conversations, but a suite item (eval or train) "
            "cannot hold one yet: end the record with the user message and the call it should make",
        )
    if roles[-1] != "assistant" or len(roles) < 2 or roles[-2] != "user":
        raise DataError("a chat record must end with a user message then the assistant reference", where, "")
    fields = {key: value for key, value in record.items() if key != "messages"}
    fields["input"] = messages[-2].content
    history = messages[:-2]
    if history and history[0].role == "system":
        fields.setdefault("system", history[0].content)
    gold = messages[-1]
    reference = call_text(gold.tool_calls, gold.content) if gold.tool_calls else gold.content
    parallel = record.get("parallel_tool_calls")
    if parallel is None:  # OpenAI's default is true; without the key, what the reference itself does
        parallel = len(gold.tool_calls) > 1
    elif not isinstance(parallel, bool):
        raise DataError(f"parallel_tool_calls is {_kind(parallel)}, not true or false", where, "write true or false")
    return fields, reference, tuple(history), tools, parallel


def _message(message: Any, index: int, where: str) -> Message:
    role = message.get("role") if isinstance(message, dict) else None
    known = (*ROLES, "function")  # "function": a legacy function result
    if isinstance(role, str) and role not in known:
        raise DataError(f"message {index} has unknown role {shown(role)}", where, did_you_mean(role, ROLES))
    calls = _message_calls(message, index, where) if role in known else ()
    content = message.get("content") if role in known else None
    if content is None and calls:  # an assistant turn that only calls: OpenAI writes null or leaves it out
        content = ""
    if role not in known or not isinstance(content, str):
        raise DataError(
            f"message {index} needs a role ({', '.join(ROLES)}) and string content", where, "fix the message"
        )
    if calls and role != "assistant":
        raise DataError(f"message {index} is a '{role}' message with tool calls", where, "only assistant turns call")
    if role == "function":  # legacy function result: a tool message that names no call
        return Message("tool", content)
    call_id = message.get("tool_call_id") if role == "tool" else None
    if call_id is not None and not isinstance(call_id, str):
        raise DataError(f"message {index} tool_call_id is {_kind(call_id)}", where, "write the call's id as a string")
    return Message(role, content, tool_calls=calls, tool_call_id=call_id or "")


def _message_calls(message: dict[str, Any], index: int, where: str) -> tuple[ToolCall, ...]:
    entries, legacy = message.get("tool_calls"), message.get("function_call")
    if entries is not None and legacy is not None:
        raise DataError(f"message {index} has both tool_calls and function_call", where, "keep one of them")
    if legacy is not None:
        return (_call(legacy, f"message {index} function_call", where),)
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise DataError(
            f"message {index} tool_calls is {_kind(entries)}, not a list",
            where,
            'write [{"type": "function", "function": {"name": ..., "arguments": ...}}]',
        )
    return tuple(_call(entry, f"message {index} tool_calls[{n}]", where) for n, entry in enumerate(entries))


def _call(entry: Any, label: str, where: str) -> ToolCall:
    """One call: OpenAI's {"id", "type", "function": {"name", "arguments"}} or the bare function object
    (legacy function_call). Arguments stay the file's JSON text; an object is written as canonical JSON."""
    function = entry.get("function") if isinstance(entry, dict) and isinstance(entry.get("function"), dict) else entry
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise DataError(f"{label} names no function", where, 'give it "function": {"name": ..., "arguments": ...}')
    arguments = function.get("arguments")
    if not isinstance(arguments, str | dict):
        raise DataError(
            f"{label} arguments is {_kind(arguments)}, not a JSON string or object",
            where,
            "write the arguments as a JSON object, or as its JSON text in a string",
        )
    call_id = entry.get("id") if isinstance(entry, dict) else None
    if call_id is not None and not isinstance(call_id, str):
        raise DataError(f"{label} id is {_kind(call_id)}, not a string", where, "write the id as a string")
    return tool_call(name, arguments, call_id or "")


def _tools(record: dict[str, Any], where: str) -> tuple[Tool, ...]:
    """The record's `tools` and legacy `functions`: each entry needs a name (and an object for parameters)."""
    tools = []
    for key in ("tools", "functions"):
        entries = record.get(key)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise DataError(f"'{key}' is {_kind(entries)}, not a list", where, "write a list of function definitions")
        for index, entry in enumerate(entries):
            function = entry.get("function") if isinstance(entry, dict) else None
            function = function if isinstance(function, dict) else entry
            name = function.get("name") if isinstance(function, dict) else None
            if not isinstance(name, str) or not name.strip():
                raise DataError(
                    f"{key}[{index}] has no function name",
                    where,
                    'write {"type": "function", "function": {"name": ..., "parameters": {...}}}',
                )
            if not isinstance(function.get("parameters"), dict | None):
                raise DataError(
                    f"{key}[{index}] ({shown(name)}) parameters is {_kind(function['parameters'])}",
                    where,
                    "write its parameters as a JSON-schema object",
                )
            tools.append(tool_from_dict(entry))
    return tuple(tools)


def _kind(value: Any) -> str:
    """A JSON value's kind in the file's words (null, a string, a list), for error messages."""
    kinds = {bool: "true/false", str: "a string", list: "a list", dict: "an object", int: "a number"}
    return "null" if value is None else kinds.get(type(value), "a number")


def _item_id(record: Mapping[str, Any], key: str, where: str) -> str:
    if key in record:
        value = record[key]
        if not isinstance(value, str | int) or isinstance(value, bool) or str(value).strip() == "":
            raise DataError(f"invalid id {repr(value)[:60]}", where, "ids must be non-empty strings or integers")
        return str(value)
    # A stable id from the content, so that runs over the same data line up item by item.
    canonical = json.dumps(record, sort_keys=True, ensure_ascii=False)
    return "h" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def _doc_ids(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str | int) for v in value):
        return tuple(str(v) for v in value)
    raise DataError("doc_ids must be a list of strings", where, "fix the record")


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _optional_text(value: Any) -> str | None:
    return None if value is None else _as_text(value)
