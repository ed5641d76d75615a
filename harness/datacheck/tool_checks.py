"""Tool calls in chat records, as OpenAI's fine-tuning format has them: reading and checking them.

    {"messages": [..., {"role": "assistant", "content": null,
                        "tool_calls": [{"id": "c1", "type": "function",
                                        "function": {"name": "set_altitude", "arguments": "{\\"altitude\\": 120}"}}]},
                  {"role": "tool", "tool_call_id": "c1", "content": "ok"}, ...],
     "tools": [{"type": "function", "function": {"name": ..., "parameters": {JSON schema}}}],
     "parallel_tool_calls": false}

Older files use `function_call` (one call, no id), `function` messages (answered by `name`) and `functions`
(the function objects themselves). Arguments may be the JSON string the format wants or an object.

Every problem is a finding on the record's line; an error rejects the record, as every other error of a
line does (docs/check-data.md, "Tool calls"). Schemas are compiled once per distinct schema, so a file whose
records repeat one tools list costs one compile per tool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import jsonschema
import referencing

from harness.core.errors import did_you_mean
from harness.core.tools import call_text, canonical_arguments, tool_call
from harness.core.types import ToolCall
from harness.datacheck.records import Line

NO_CALL = "(no call)"  # the tool-name label of a plain reply in a record that has tools


@dataclass(frozen=True)
class Turn:
    """One chat message as the checks see it. A legacy `function` message is read as role "tool"."""

    role: str
    content: str
    calls: tuple[ToolCall, ...] = ()
    call_id: str = ""  # a tool message: the id of the call it answers
    name: str = ""  # a legacy function message: the function whose result it is
    legacy: bool = False  # the calls came from `function_call`

    @property
    def text(self) -> str:
        """The message as text: content, then its calls as <tool_call> blocks (what the model writes)."""
        return call_text(self.calls, self.content) if self.calls else self.content


@dataclass(frozen=True)
class Toolbox:
    """A record's tools: name -> parameter schema; `listed` is False when the record has no tools list."""

    listed: bool = False
    schemas: dict[str, Any] = field(default_factory=dict)
    parallel: bool = True  # OpenAI's default: several calls in one message are allowed
    text: str = ""  # the tools as JSON, which the chat template adds to the prompt (counted in its length)


def message_calls(message: dict[str, Any], place: str, line: Line) -> tuple[ToolCall, ...] | None:
    """The calls an assistant message makes (`tool_calls`, or legacy `function_call`); None after an error."""
    raw, legacy = message.get("tool_calls"), message.get("function_call")
    if raw is None and legacy is None:
        return ()
    if raw is not None and not isinstance(raw, list):
        line.error("bad_call", f"{place} tool_calls must be a list, got {json_kind(raw)}", 'write "tool_calls": [...]')
        return None
    entries = [(f"{place} tool_calls[{i}]", entry) for i, entry in enumerate(raw)] if raw is not None else []
    if raw is None:
        entries = [(f"{place} function_call", legacy)]
    calls = [_one_call(entry, where, line) for where, entry in entries]
    return None if any(call is None for call in calls) else tuple(call for call in calls if call is not None)


def _one_call(entry: Any, place: str, line: Line) -> ToolCall | None:
    function = entry.get("function") if isinstance(entry, dict) and "function" in entry else entry
    if not isinstance(function, dict):
        line.error("bad_call", f"{place} must be an object, got {json_kind(function)}", _CALL_SHAPE)
        return None
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        line.error("bad_call", f"{place} has no function name", _CALL_SHAPE)
        return None
    arguments = function.get("arguments")
    if not isinstance(arguments, str | dict):
        got = "no arguments" if arguments is None else f"arguments as {json_kind(arguments)}"
        line.error("bad_arguments", f"{place} {name}: {got}", 'write the arguments as a JSON object string, e.g. "{}"')
        return None
    try:  # JSON that is no object is reported by check_conversation; too deep to read is rejected here
        json.loads(arguments) if isinstance(arguments, str) else canonical_arguments(arguments)
    except ValueError:
        pass
    except RecursionError:
        line.error("bad_arguments", f"{place} {name}: arguments nested too deeply", "flatten the arguments")
        return None
    call_id = entry.get("id") if isinstance(entry, dict) else None
    return tool_call(name, arguments, call_id if isinstance(call_id, str) else "")


_ORPHAN_FIX = "drop the result, or add the assistant call it answers"
_CALL_SHAPE = 'write {"type": "function", "function": {"name": ..., "arguments": "<JSON object>"}}'


def read_tools(obj: dict[str, Any], line: Line) -> Toolbox | None:
    """The record's `tools` (or legacy `functions`) and `parallel_tool_calls`; None after an error."""
    key = "tools" if "tools" in obj else "functions"
    raw, parallel = obj.get(key), obj.get("parallel_tool_calls")
    parallel = True if parallel is None else parallel
    ok = isinstance(parallel, bool)
    if not ok:
        got = json_kind(parallel)
        line.error("bad_tool", f"parallel_tool_calls must be true or false, got {got}", "write true or false")
    if raw is None:
        return Toolbox(parallel=parallel is not False) if ok else None
    if not isinstance(raw, list):
        line.error("bad_tool", f"'{key}' must be a list of functions, got {json_kind(raw)}", _TOOL_SHAPE)
        return None
    schemas: dict[str, Any] = {}
    first: dict[str, int] = {}
    for index, entry in enumerate(raw):
        place = f"{key}[{index}]"
        function = entry.get("function") if isinstance(entry, dict) and "function" in entry else entry
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name.strip():
            line.error("bad_tool", f"{place} has no function name", _TOOL_SHAPE)
            ok = False
            continue
        if name in first:
            line.error("bad_tool", f"{place} duplicate tool name '{name}' (also {key}[{first[name]}])", "keep one")
            ok = False
            continue
        first[name] = index
        parameters = function.get("parameters")
        parameters = {"type": "object", "properties": {}} if parameters is None else parameters
        problem = _schema_problem(parameters)
        if problem:
            line.error("bad_tool", f"{place} {name}: {problem}", "write parameters as a JSON schema of type object")
            ok = False
        schemas[name] = parameters
    if not ok:
        return None
    return Toolbox(True, schemas, parallel, json.dumps(raw, ensure_ascii=False))


_TOOL_SHAPE = 'write {"type": "function", "function": {"name": ..., "parameters": {"type": "object", ...}}}'


def _schema_problem(parameters: Any) -> str:
    if not isinstance(parameters, dict):
        return f"parameters must be a JSON schema object, got {json_kind(parameters)}"
    if parameters.get("type", "object") != "object":
        return f"parameters must be a schema of type object (the arguments are an object), got {parameters['type']!r}"
    try:
        compiled = _validator(canonical_arguments(parameters))
    except RecursionError:
        return "parameters nested too deeply"
    return compiled if isinstance(compiled, str) else ""


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Any:
    """A compiled validator for a schema (its canonical JSON), or why the schema is not valid."""
    schema = json.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"parameters are not a valid JSON schema ({exc.message})"
    # an empty registry: a `$ref` to a URL is never fetched (jsonschema's default would download it)
    return cls(schema, registry=referencing.Registry())


def check_conversation(turns: list[Turn], box: Toolbox, line: Line) -> bool:
    """Every call and tool result of a conversation: known tools, JSON arguments valid for the tool's schema,
    ids that match. False when any error was found (the record is rejected)."""
    ok = True
    ids: dict[str, str] = {}  # call id -> where it was made
    called: set[str] = set()  # names called so far, for legacy function messages
    for index, turn in enumerate(turns):
        place = f"messages[{index}]"
        if len(turn.calls) > 1 and not box.parallel:
            line.warning(
                "parallel_calls",
                f"{place} makes {len(turn.calls)} calls in one message, but parallel_tool_calls is false",
                "split the calls into turns, or set parallel_tool_calls to true",
            )
        for number, call in enumerate(turn.calls):
            where = f"{place} function_call" if turn.legacy else f"{place} tool_calls[{number}]"
            if call.id and call.id in ids:
                line.error(
                    "tool_call_id",
                    f"{where} reuses call id '{call.id}' (also {ids[call.id]})",
                    "give every call its own id",
                )
                ok = False
            if call.id:
                ids.setdefault(call.id, where)
            called.add(call.name)
            ok = _check_call(call, where, box, line) and ok
        if turn.role == "tool":
            ok = _check_result(turn, place, ids, called, line) and ok
    if not box.listed and any(turn.calls for turn in turns):
        severity = line.error if line.role == "eval" else line.warning
        severity(
            "no_tools",
            "calls functions but the record has no 'tools' list: the model is never shown them",
            "add the record's tools",
        )
        ok = ok and line.role != "eval"
    return ok


def _check_result(turn: Turn, place: str, ids: dict[str, str], called: set[str], line: Line) -> bool:
    if turn.name:  # a legacy function message answers the function by name
        if turn.name in called:
            return True
        line.error(
            "tool_call_id", f"{place} is the result of '{turn.name}', which no earlier message calls", _ORPHAN_FIX
        )
        return False
    if not turn.call_id and not called:
        line.error("tool_call_id", f"{place} is a tool result, but no earlier message calls a tool", _ORPHAN_FIX)
        return False
    if not turn.call_id:
        line.warning(
            "tool_call_id",
            f"{place} (tool) has no tool_call_id: which call it answers is unknown",
            "add the id of the call",
        )
        return True
    if turn.call_id in ids:
        return True
    known = f"; {did_you_mean(turn.call_id, ids)}" if ids else ""
    line.error(
        "tool_call_id",
        f"{place} tool_call_id '{turn.call_id}' matches no earlier call{known}",
        "use the id of the call it answers",
    )
    return False


def _check_call(call: ToolCall, where: str, box: Toolbox, line: Line) -> bool:
    ok = True
    if box.listed and call.name not in box.schemas:
        line.error(
            "unknown_tool",
            f"{where} calls '{call.name}', which is not in the record's tools",
            did_you_mean(call.name, box.schemas),
        )
        ok = False
    try:
        arguments = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError as exc:
        detail = f" ({exc.msg}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        line.error(
            "bad_arguments",
            f"{where} {call.name}: arguments are not JSON{detail}",
            "write the arguments as a JSON object",
        )
        return False
    if not isinstance(arguments, dict):
        line.error(
            "bad_arguments",
            f"{where} {call.name}: arguments must be a JSON object, got {json_kind(arguments)}",
            'write them as {"name": value, ...}',
        )
        return False
    if call.name not in box.schemas:
        return ok
    validator = _validator(canonical_arguments(box.schemas[call.name]))
    try:
        problems = list(validator.iter_errors(arguments))
    except (RecursionError, referencing.exceptions.Unresolvable) as exc:  # jsonschema wraps it as a subclass
        line.error(
            "bad_tool",
            f"{where} {call.name}: the tool's parameters cannot be checked ({str(exc)[:80]})",
            "write parameters as a self-contained JSON schema (no $ref to other files or URLs)",
        )
        return False
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        line.error(
            "arguments_schema",
            f"{where} {call.name}: {_problem(problems[0])}{more}",
            "fix the arguments to match the tool's parameters",
        )
        ok = False
    return ok


def _problem(error: Any) -> str:
    """A schema error with the argument it is about: "'altitude' 900 is greater than the maximum of 500"."""
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path).lstrip(".")
    return f"'{path}' {error.message}" if path else error.message


def label_of(turn: Turn, box: Toolbox) -> str | None:
    """The functions a reply calls, sorted and joined by "+" (a class for the balance check); NO_CALL for a
    plain reply in a record that has tools; None for a record without tools or calls."""
    if turn.calls:
        return "+".join(sorted(call.name for call in turn.calls))
    return NO_CALL if box.listed else None


def json_kind(value: Any) -> str:
    """A JSON value's type as the file spells it (null, a number), not a Python class name."""
    if value is None:
        return "null"
    kinds = {
        bool: "true/false",
        int: "a number",
        float: "a number",
        dict: "an object",
        list: "an array",
        str: "a string",
    }
    return kinds.get(type(value), type(value).__name__)
