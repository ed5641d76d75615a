"""Tool-calling chat records (OpenAI's fine-tuning format, and its legacy function_call / functions form)
read into suite Items: tools, calls, tool results, and the shape errors items.py reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.core.errors import DataError
from harness.core.tools import ParsedCall, call_text, parse_calls, tool_call
from harness.core.types import GenerationParams, Message, Tool
from harness.engines.api_engine import ApiEngine, Endpoint
from harness.engines.cache import request_payload
from harness.suite.items import FieldNames, load_items, parse_record
from harness.suite.prompts import PromptSpec, Template, build_request

REST = (PromptSpec(Template("{input}")), GenerationParams())

SYSTEM = "You control a drone. Call a function, or say why you cannot."
TAKE_OFF = {
    "type": "function",
    "function": {
        "name": "takeoff_drone",
        "description": "Take off to an altitude",
        "parameters": {
            "type": "object",
            "properties": {"altitude": {"type": "integer", "minimum": 1}},
            "required": ["altitude"],
        },
    },
}
PHOTO = {"type": "function", "function": {"name": "capture_photo", "parameters": {"type": "object"}}}


def parse(record: dict[str, Any]) -> Any:
    return parse_record(record, "auto", FieldNames(), "f.jsonl:3")


def drone(**extra: Any) -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": "takeoff_drone", "arguments": '{"altitude": 100}'}}
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": "Take off to 100 meters"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
        ],
        "tools": [TAKE_OFF, PHOTO],
        **extra,
    }


def test_drone_record() -> None:
    item = parse(drone())
    assert item.tools == (
        Tool(
            "takeoff_drone",
            "Take off to an altitude",
            '{"properties":{"altitude":{"minimum":1,"type":"integer"}},"required":["altitude"],"type":"object"}',
        ),
        Tool("capture_photo", "", '{"type":"object"}'),
    )
    assert item.reference == call_text([tool_call("takeoff_drone", '{"altitude": 100}', "call_1")])
    assert parse_calls(item.reference) == [ParsedCall("takeoff_drone", {"altitude": 100})]
    assert item.fields["input"] == "Take off to 100 meters" and item.fields["system"] == SYSTEM
    assert item.history == (Message("system", SYSTEM),)
    assert item.parallel_tool_calls is False


def test_drone_request_carries_tools() -> None:
    item = parse(drone(parallel_tool_calls=True))
    request = build_request(item, PromptSpec(Template("{input}")), GenerationParams())
    assert request.tools == item.tools and request.metadata["parallel_tool_calls"] is True
    assert [m.role for m in request.messages] == ["system", "user"]


def test_a_request_states_parallel_calls_false_for_an_endpoint_whose_default_is_true() -> None:
    item = parse(drone())
    request = build_request(item, PromptSpec(Template("{input}")), GenerationParams())
    assert request.metadata["parallel_tool_calls"] is False
    body = ApiEngine(Endpoint("http://127.0.0.1:1/v1", "m"), "")._body(request)
    assert body["parallel_tool_calls"] is False and [t["function"]["name"] for t in body["tools"]] == [
        "takeoff_drone",
        "capture_photo",
    ]
    # the cache keys false as it keyed the flag's absence, so earlier cached answers stay found
    assert "parallel_tool_calls" not in request_payload(request)
    plain = build_request(parse({"input": "hi", "output": "hello"}), *REST)
    assert "parallel_tool_calls" not in plain.metadata  # no tools: nothing to state


def test_arguments_kept_as_text_or_canonical() -> None:
    record = drone()
    record["messages"][2] = {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{ }"}}]}
    assert parse(record).reference == call_text([tool_call("f", "{ }")])
    record["messages"][2]["tool_calls"][0]["function"]["arguments"] = {"b": 1, "a": [2]}
    history_record = {
        "messages": [{"role": "user", "content": "x"}, record["messages"][2], {"role": "user", "content": "y"}],
    }
    history_record["messages"].append({"role": "assistant", "content": "done"})
    call = parse(history_record).history[1].tool_calls[0]
    assert call.arguments == '{"a":[2],"b":1}' and call.id == ""


def test_legacy_function_call_and_functions() -> None:
    record = {
        "messages": [
            {"role": "user", "content": "Take a photo"},
            {"role": "assistant", "content": None, "function_call": {"name": "capture_photo", "arguments": "{}"}},
        ],
        "functions": [PHOTO["function"]],
    }
    item = parse(record)
    assert item.tools == (Tool("capture_photo", "", '{"type":"object"}'),)
    assert parse_calls(item.reference) == [ParsedCall("capture_photo", {})]


def test_tool_results_in_history() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "capture_photo", "arguments": "{}"}}
    record = {
        "messages": [
            {"role": "user", "content": "Photo please"},
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "saved photo_1.jpg"},
            {"role": "function", "name": "capture_photo", "content": "saved photo_2.jpg"},
            {"role": "assistant", "content": "Two photos saved."},
            {"role": "user", "content": "Now land"},
            {"role": "assistant", "content": "I cannot land: no landing function."},
        ],
        "tools": [PHOTO],
    }
    item = parse(record)
    assert item.history == (
        Message("user", "Photo please"),
        Message("assistant", "", tool_calls=(tool_call("capture_photo", "{}", "c1"),)),
        Message("tool", "saved photo_1.jpg", tool_call_id="c1"),
        Message("tool", "saved photo_2.jpg"),
        Message("assistant", "Two photos saved."),
    )
    assert item.fields["input"] == "Now land"
    request = build_request(item, PromptSpec(Template("{input}")), GenerationParams())
    assert [m.role for m in request.messages] == ["user", "assistant", "tool", "tool", "assistant", "user"]


def test_rejection_with_tools_is_plain_text() -> None:
    record = drone()
    record["messages"][2] = {"role": "assistant", "content": "I can't do a backflip: no function for it."}
    item = parse(record)
    assert item.reference == "I can't do a backflip: no function for it."
    assert parse_calls(item.reference) == [] and len(item.tools) == 2


def test_parallel_calls() -> None:
    calls = [
        {"id": "a", "type": "function", "function": {"name": "takeoff_drone", "arguments": '{"altitude": 5}'}},
        {"id": "b", "type": "function", "function": {"name": "capture_photo", "arguments": "{}"}},
    ]
    record = drone()
    record["messages"][2] = {"role": "assistant", "content": "Sure.", "tool_calls": calls}
    item = parse(record)
    assert item.reference.startswith("Sure.\n<tool_call>")
    assert parse_calls(item.reference) == [
        ParsedCall("takeoff_drone", {"altitude": 5}),
        ParsedCall("capture_photo", {}),
    ]
    assert item.parallel_tool_calls is True  # no key: what the reference does
    assert parse({**record, "parallel_tool_calls": False}).parallel_tool_calls is False


def test_call_to_unknown_tool_passes_here() -> None:
    record = drone(tools=[PHOTO])  # takeoff_drone is not in tools: check-data's finding, not a load error
    assert parse_calls(parse(record).reference)[0].name == "takeoff_drone"


def _with(assistant: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    record = drone(**extra)
    if assistant is not None:
        record["messages"][2] = assistant
    return record


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (_with({"role": "assistant", "tool_calls": {"name": "x"}}), "message 2 tool_calls is an object, not a list"),
        (_with({"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}), "tool_calls.0. names no"),
        (_with({"role": "assistant", "tool_calls": [{"function": {"name": "", "arguments": "{}"}}]}), "names no"),
        (_with({"role": "assistant", "function_call": {"name": "f", "arguments": 3}}), "arguments is a number, not"),
        (_with({"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}), "arguments is null, not a JSON"),
        (_with({"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": []}}]}), "is a list"),
        (_with({"role": "assistant", "content": None}), "message 2 needs a role .* and string content"),
        (_with({"role": "assistant", "tool_calls": [], "function_call": {"name": "f"}}), "both tool_calls and"),
        (_with({"role": "robot", "content": "x"}), "message 2 has unknown role 'robot'"),
        (_with(tools={"takeoff_drone": {}}), "'tools' is an object, not a list"),
        (_with(functions=[{"description": "no name"}]), r"functions\[0\] has no function name"),
        (_with(tools=[{"type": "function", "function": {"description": "d"}}]), r"tools\[0\] has no function name"),
        (_with(tools=[{"type": "function", "function": {"name": "f", "parameters": "{}"}}]), "parameters is a string"),
        (_with(parallel_tool_calls="yes"), "parallel_tool_calls is a string, not true or false"),
    ],
)
def test_shape_errors(tmp_path: Path, record: dict[str, Any], message: str) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}))
    path.write_text(path.read_text() + "\n" + json.dumps(record) + "\n")
    with pytest.raises(DataError, match=message) as info:
        load_items(path)
    assert "d.jsonl:2" in str(info.value) and info.value.fix


def test_user_message_with_calls_is_refused() -> None:
    record = drone()
    record["messages"][1]["tool_calls"] = [{"function": {"name": "f", "arguments": "{}"}}]
    with pytest.raises(DataError, match="'user' message with tool calls"):
        parse(record)


def test_no_user_turn_says_train() -> None:
    record = {"messages": [{"role": "system", "content": "Greet."}, {"role": "assistant", "content": "Hello!"}]}
    with pytest.raises(DataError, match="as eval data it has no input") as info:
        parse(record)
    assert "check-data --train" in info.value.fix and "f.jsonl:3" in str(info.value)


def test_multi_step_conversation_is_not_an_eval_item() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "capture_photo", "arguments": "{}"}}
    record = {
        "messages": [
            {"role": "user", "content": "Photo please"},
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "saved"},
            {"role": "assistant", "content": "Saved."},
        ]
    }
    with pytest.raises(DataError, match="follows a tool result") as info:
        parse(record)
    assert "check-data --train" in info.value.fix


def test_plain_chat_record_unchanged() -> None:
    """Ids, fields and references of records without tools are what they were before tools were read
    (the values were taken from items.py before the change)."""
    record = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4"},
        ],
        "label": "math",
    }
    item = parse(record)
    assert item.id == "hb97fec27ef25" and item.reference == "4" and item.label == "math"
    assert item.fields == {"label": "math", "input": "2+2?", "system": "Be brief."}
    assert item.history == (Message("system", "Be brief."), Message("user", "Hi"), Message("assistant", "Hello"))
    assert item.tools == () and item.parallel_tool_calls is False
    short = parse({"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]})
    assert (short.id, dict(short.fields), short.reference, short.history) == ("h5615c512afa7", {"input": "Q"}, "A", ())
