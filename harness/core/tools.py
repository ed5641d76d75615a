"""Tool calls as text: the one writer and the one reader of the calls a model makes.

A model's answer is text (`Generation.text`), and so is a tool-calling reference: the calls in the
Hermes format that Qwen2.5, Hermes, SmolLM3 and most open tool-calling models are trained on,

    <tool_call>
    {"name": "set_light", "arguments": {"room": "kitchen", "state": "on"}}
    </tool_call>

one block per call; an answer without a call is plain text (a rejection, a question back). `call_text`
writes that form (references, training targets, an endpoint's structured `tool_calls`); `parse_calls` reads
it back, and also the other shapes models produce (documented there), so a result directory is re-scored
from its text alone.

`chat_messages` is what an engine hands to the chat template: the messages and tools as they are when the
template knows tools (`native`), else the tools written into the system prompt and calls and results written
as text, which every chat template renders (`tools_prompt`). Standard library only: the core imports nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.core.types import Message, Request, Tool, ToolCall

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
RESULT_OPEN, RESULT_CLOSE = "<tool_response>", "</tool_response>"
REPLY_KEY = "reply"  # a constrained answer that calls nothing: {"reply": "..."} (call_schema)
_BLOCK = re.compile(re.escape(CALL_OPEN) + r"\s*(.*?)\s*(?:" + re.escape(CALL_CLOSE) + r"|\Z)", re.S)
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n?(.*?)\n?\s*```$", re.S)
_MAX_JSON_STARTS = 32  # as harness.scoring.answers: a huge output stays linear


@dataclass(frozen=True)
class ParsedCall:
    """One call read from a model's text. `arguments` is the parsed JSON value (None when `valid` is False:
    the block or its arguments did not parse as JSON); `name` is "" when the call named no function."""

    name: str
    arguments: Any
    valid: bool = True


def canonical_arguments(arguments: Any) -> str:
    """Arguments as canonical JSON text (sorted keys), the form references and Tool parameters hold."""
    return json.dumps(arguments, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def call_text(calls: Sequence[ToolCall], content: str = "") -> str:
    """An assistant turn as text: its content (if any), then one <tool_call> block per call."""
    blocks = []
    for call in calls:
        try:
            arguments: Any = json.loads(call.arguments) if call.arguments.strip() else {}
        except ValueError:
            arguments = call.arguments  # kept as the string it was: the reader scores it as invalid
        body = json.dumps({"name": call.name, "arguments": arguments}, ensure_ascii=False)
        blocks.append(f"{CALL_OPEN}\n{body}\n{CALL_CLOSE}")
    return "\n".join(([content.strip()] if content.strip() else []) + blocks)


def parse_calls(text: str) -> list[ParsedCall]:
    """The calls in a model's answer; [] when it calls nothing (answers in text). Read in this order:

    1. `<tool_call>` blocks (Hermes; the closing tag may be missing where generation stopped): one call each,
       a block that is not a call-shaped JSON object is an invalid call;
    2. otherwise the first JSON value in the text (code fences allowed), when it is call-shaped: an object
       with "name" and "arguments" (or Llama's "parameters"), OpenAI's {"function": {...}} or
       {"tool_calls": [...]}, or a list of those. {"reply": ...} (a constrained answer) is no call.

    Arguments given as a JSON string (the OpenAI wire form) are parsed; ones that do not parse make the call
    invalid, as does a call with no name.
    """
    blocks = _BLOCK.findall(text)
    if blocks:
        return [_block_call(block) for block in blocks]
    value = _first_json(text)
    return _calls_of(value) if value is not None else []


def call_names(calls: Sequence[ParsedCall]) -> list[str]:
    return sorted(call.name for call in calls)


def _block_call(block: str) -> ParsedCall:
    try:
        value = json.loads(block)
    except ValueError:
        return ParsedCall(_name_in(block), None, valid=False)
    calls = _calls_of(value)
    return calls[0] if len(calls) == 1 else ParsedCall("", None, valid=False)


def _name_in(broken: str) -> str:
    """The function a malformed block meant to call, when its name is still legible (scored by name alone)."""
    match = re.search(r'"name"\s*:\s*"([^"\\]+)"', broken)
    return match.group(1) if match else ""


def _calls_of(value: Any) -> list[ParsedCall]:
    if isinstance(value, list):
        calls = [_one_call(entry) for entry in value]
        return [call for call in calls if call is not None] if any(calls) else []
    if isinstance(value, dict) and isinstance(value.get("tool_calls"), list):
        return _calls_of(value["tool_calls"])
    call = _one_call(value)
    return [call] if call is not None else []


def _one_call(value: Any) -> ParsedCall | None:
    """A call-shaped object as a call; None for anything else (a JSON answer that is no call)."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("function"), dict):
        value = value["function"]
    if "name" not in value or not ("arguments" in value or "parameters" in value):
        return None
    name = value["name"] if isinstance(value["name"], str) else ""
    arguments = value.get("arguments", value.get("parameters"))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return ParsedCall(name, None, valid=False)
    return ParsedCall(name, arguments, valid=bool(name))


def _first_json(text: str) -> Any:
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    decoder = json.JSONDecoder()
    starts = [m.start() for m in re.finditer(r"[\[{]", stripped)][:_MAX_JSON_STARTS]
    for start in starts:
        try:
            value, _ = decoder.raw_decode(stripped, start)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict | list):
            return value
    return None


def tool_call(name: str, arguments: Any, call_id: str = "") -> ToolCall:
    """A ToolCall from a parsed arguments value (canonical JSON text) or a JSON string as files hold it."""
    text = arguments if isinstance(arguments, str) else canonical_arguments(arguments)
    return ToolCall(name, text, call_id)


def tool_from_dict(entry: dict[str, Any]) -> Tool:
    """A Tool from OpenAI's {"type": "function", "function": {...}} or a legacy `functions` entry
    (the function object itself). The caller has checked the shape (harness.suite.items)."""
    function = entry["function"] if isinstance(entry.get("function"), dict) else entry
    parameters = function.get("parameters") or {"type": "object", "properties": {}}
    return Tool(str(function["name"]), str(function.get("description") or ""), canonical_arguments(parameters))


# -- what a chat template sees ------------------------------------------------------------------------------


def template_knows_tools(template: str | None) -> bool:
    """Whether a chat template renders a `tools` list (Qwen2.5, Llama 3.1+, Mistral, SmolLM3 do; SmolLM2 does
    not): then tools and calls go to it as they are, else they are written as text (chat_messages)."""
    return bool(template) and "tools" in template


def tools_prompt(tools: Sequence[Tool]) -> str:
    """The tools as a system-prompt block, for a chat template that knows no tools: one signature line per
    function (shorter than its JSON schema, which a small model reads no better) and how to call."""
    lines = [signature(tool) for tool in tools]
    example = json.dumps({"name": "<function name>", "arguments": {"<parameter>": "<value>"}})
    return (
        "You can call these functions:\n"
        + "\n".join(lines)
        + f"\n\nTo call one, answer with only\n{CALL_OPEN}\n{example}\n{CALL_CLOSE}\n"
        "(one block per call). If no function fits the request, answer in plain text and call nothing."
    )


def signature(tool: Tool) -> str:
    """`name(param: type, optional?: type) - description`, types as JSON-schema words, enums as their values."""
    schema = json.loads(tool.parameters) if tool.parameters else {}
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    params = []
    for key, spec in properties.items():
        mark = "" if key in required else "?"
        params.append(f"{key}{mark}: {_type_words(spec if isinstance(spec, dict) else {})}")
    described = f" - {tool.description}" if tool.description else ""
    return f"{tool.name}({', '.join(params)}){described}"


def _type_words(spec: dict[str, Any]) -> str:
    if "enum" in spec:
        return "|".join(json.dumps(value, ensure_ascii=False) for value in spec["enum"])
    kind = spec.get("type", "any")
    kind = "|".join(kind) if isinstance(kind, list) else str(kind)
    low, high = spec.get("minimum"), spec.get("maximum")
    if low is not None or high is not None:
        kind += f" {'' if low is None else low}..{'' if high is None else high}"
    if kind == "array" and isinstance(spec.get("items"), dict):
        kind = f"list of {_type_words(spec['items'])}"
    return kind


def chat_messages(request: Request, native: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(messages, tools) for a chat template. A request without tools or tool messages is sent exactly as
    before tools existed. `native`: as OpenAI's format has them (call arguments as objects, which the
    templates expect); otherwise the tools block joins the system prompt, a call becomes its <tool_call>
    text and a tool's result a user turn in <tool_response> tags, and no tools list is passed."""
    tooled = request.tools or any(m.tool_calls or m.role == "tool" for m in request.messages)
    if not tooled:
        return [m.to_dict() for m in request.messages], None
    if native:
        return [_native(m) for m in request.messages], [tool.to_dict() for tool in request.tools] or None
    return _as_text(request.messages, request.tools), None


def _native(message: Message) -> dict[str, Any]:
    out = message.to_dict()
    if message.tool_calls:
        out["tool_calls"] = [
            {**call.to_dict(), "function": {"name": call.name, "arguments": _arguments_value(call.arguments)}}
            for call in message.tool_calls
        ]
    return out


def _arguments_value(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return arguments


def _as_text(messages: Sequence[Message], tools: Sequence[Tool]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            out.append({"role": "user", "content": f"{RESULT_OPEN}\n{message.content}\n{RESULT_CLOSE}"})
        elif message.tool_calls:
            out.append({"role": "assistant", "content": call_text(message.tool_calls, message.content)})
        else:
            out.append({"role": message.role, "content": message.content})
    if tools:
        block = tools_prompt(tools)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content']}\n\n{block}"}
        else:
            out.insert(0, {"role": "system", "content": block})
    return out


def call_schema(tools: Sequence[Tool], parallel: bool = False) -> dict[str, Any]:
    """A JSON schema for `constrain = "tools"`: one call to one of the tools with arguments valid for it, a
    list of such calls when `parallel`, or {"reply": "..."} to call nothing (parse_calls reads all three)."""
    calls = [
        {
            "type": "object",
            "properties": {"name": {"const": tool.name}, "arguments": json.loads(tool.parameters)},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for tool in tools
    ]
    reply = {
        "type": "object",
        "properties": {REPLY_KEY: {"type": "string"}},
        "required": [REPLY_KEY],
        "additionalProperties": False,
    }
    options: list[dict[str, Any]] = [*calls, reply]
    if parallel and calls:
        options.insert(len(calls), {"type": "array", "items": {"anyOf": calls}, "minItems": 1})
    return {"anyOf": options}
