"""`harness check-data` on tool-calling fine-tuning files (OpenAI's format: tool_calls, tool messages, tools).

The drone file is generated in the shape of the public 87-line file of issue 23 (system prompt, user request,
assistant `tool_calls` with content null and arguments as JSON strings, `tools` with JSON-schema parameters),
which every line of used to be rejected with `bad_content`.
"""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from harness.cli import main
from harness.datacheck import CheckOptions, Report, check_data

SYSTEM = "You are a drone-control assistant. Call the functions that carry out the pilot's request."


def function(name: str, description: str, properties: dict, required: tuple[str, ...] = ()) -> dict:
    parameters = {"type": "object", "properties": properties, "required": list(required)}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


TOOLS = [
    function("takeoff", "Take off and climb", {"altitude": {"type": "number", "minimum": 1, "maximum": 500}}),
    function("land", "Land where the drone is", {}),
    function(
        "set_altitude",
        "Climb or descend",
        {"altitude": {"type": "number", "minimum": 0, "maximum": 500}},
        ("altitude",),
    ),
    function(
        "move",
        "Fly in a direction",
        {
            "direction": {"type": "string", "enum": ["forward", "back", "left", "right"]},
            "distance": {"type": "number", "minimum": 0, "maximum": 1000},
        },
        ("direction", "distance"),
    ),
    function("return_home", "Fly back to the launch point", {}),
    function("take_photo", "Take a photo", {"mode": {"type": "string", "enum": ["single", "burst", "hdr"]}}),
]
PLACES = ["the barn", "the north field", "the river", "the car park", "the old mill", "the orchard", "the bridge"]


def drone_request(index: int, rng: random.Random) -> tuple[str, str, dict]:
    """(request, tool, arguments): one of six kinds, each worded with its own numbers and places."""
    kind, place = index % 6, PLACES[index % len(PLACES)]
    height, distance = 10 + index * 3, 5 + index * 7
    if kind == 0:
        return f"Take off to {height} meters near {place}, request {index}", "takeoff", {"altitude": height}
    if kind == 1:
        return f"Land now beside {place} (request {index})", "land", {}
    if kind == 2:
        return f"Change altitude to {height} m over {place} #{index}", "set_altitude", {"altitude": height}
    if kind == 3:
        direction = rng.choice(["forward", "back", "left", "right"])
        request = f"Fly {direction} {distance} meters toward {place}, order {index}"
        return request, "move", {"direction": direction, "distance": distance}
    if kind == 4:
        return f"Come back home from {place} please, trip {index}", "return_home", {}
    mode = ["single", "burst", "hdr"][index % 3]
    return f"Take a {mode} photo of {place}, shot {index}", "take_photo", {"mode": mode}


def drone_record(index: int, rng: random.Random) -> dict:
    request, name, arguments = drone_request(index, rng)
    call = {"id": f"call_{index}", "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": request},
            {"role": "assistant", "content": None, "tool_calls": [call]},
        ],
        "tools": TOOLS,
    }


def drone_file(n: int = 87) -> list[dict]:
    rng = random.Random(23)
    return [drone_record(i, rng) for i in range(n)]


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def check(*paths: Path, **options: object) -> Report:
    return check_data([str(p) for p in paths], CheckOptions(tokenizer=False, **options))  # type: ignore[arg-type]


def findings(report: Report, code: str) -> list[tuple[str, int, str]]:
    """(severity, line, message) of each finding with this code."""
    return [(f.severity, int(f.where.rpartition(":")[2]), f.message) for f in report.findings if f.code == code]


def codes(report: Report, severity: str) -> Counter[str]:
    return Counter(f.code for f in report.findings if f.severity == severity)


def edited(line: int, edit: object) -> list[dict]:
    """The drone file with one record (1-based line) changed by `edit(record)`."""
    records = copy.deepcopy(drone_file())
    edit(records[line - 1])  # type: ignore[operator]
    return records


def call_of(record: dict, number: int = 0) -> dict:
    return record["messages"][2]["tool_calls"][number]["function"]


def test_the_drone_file_reads_every_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "drone_fine_tuning.jsonl", drone_file())
    assert main(["check-data", str(path), "--estimate-tokens"]) == 0
    out = capsys.readouterr().out
    assert "[train, chat layout: 87 records]" in out and "rejected" not in out and "bad_content" not in out
    report = check(path)
    assert report.files[0].records == 87 and report.files[0].lines == 87 and report.count("error") == 0
    tool_codes = {"unknown_tool", "bad_arguments", "arguments_schema", "tool_call_id", "bad_tool", "bad_call"}
    assert not tool_codes & {f.code for f in report.findings}
    assert not {"label_imbalance", "rare_label"} & {f.code for f in report.findings}  # six tools, ~15 calls each


def test_a_call_is_compared_as_its_call_text(tmp_path: Path) -> None:
    """Two records with the same request and different calls are a contradiction (the calls are the output)."""
    records = drone_file(20)
    copied = copy.deepcopy(records[3])
    call_of(copied)["arguments"] = json.dumps({"direction": "left", "distance": 1})
    report = check(write(tmp_path / "drone_eval.jsonl", [*records, copied]))
    assert [(s, line) for s, line, _ in findings(report, "contradiction")] == [("error", 4)]


def test_unknown_tool_name(tmp_path: Path) -> None:
    report = check(write(tmp_path / "train.jsonl", edited(5, lambda r: call_of(r).update(name="take_foto"))))
    ((severity, line, message),) = findings(report, "unknown_tool")
    assert (severity, line) == ("error", 5)
    assert message == "messages[2] tool_calls[0] calls 'take_foto', which is not in the record's tools"
    assert next(f.fix for f in report.findings if f.code == "unknown_tool") == "did you mean 'take_photo'?"
    assert report.files[0].records == 86 and report.exit_code == 1


def test_arguments_that_are_not_json_or_not_an_object(tmp_path: Path) -> None:
    records = edited(2, lambda r: call_of(r).update(arguments='{"altitude": 12'))
    call_of(records[6])["arguments"] = "[1, 2]"
    report = check(write(tmp_path / "train.jsonl", records))
    found = findings(report, "bad_arguments")
    assert [(s, line) for s, line, _ in found] == [("error", 2), ("error", 7)]
    assert found[0][2].startswith("messages[2] tool_calls[0] land: arguments are not JSON (")
    assert found[1][2] == "messages[2] tool_calls[0] takeoff: arguments must be a JSON object, got an array"


def test_arguments_that_fail_the_schema_name_the_argument(tmp_path: Path) -> None:
    records = edited(3, lambda r: call_of(r).update(arguments=json.dumps({"altitude": 900})))
    call_of(records[8])["arguments"] = "{}"  # set_altitude without its required altitude
    call_of(records[3])["arguments"] = json.dumps({"direction": "up", "distance": 5})
    report = check(write(tmp_path / "train.jsonl", records))
    assert findings(report, "arguments_schema") == [
        ("error", 3, "messages[2] tool_calls[0] set_altitude: 'altitude' 900 is greater than the maximum of 500"),
        (
            "error",
            4,
            "messages[2] tool_calls[0] move: 'direction' 'up' is not one of ['forward', 'back', 'left', 'right']",
        ),
        ("error", 9, "messages[2] tool_calls[0] set_altitude: 'altitude' is a required property"),
    ]


def with_result(record: dict, call_id: str) -> None:
    record["messages"] += [
        {"role": "tool", "tool_call_id": call_id, "content": "done"},
        {"role": "assistant", "content": "Done."},
    ]


def test_a_tool_result_must_answer_an_earlier_call(tmp_path: Path) -> None:
    records = edited(4, lambda r: with_result(r, "call_3"))  # answers its call: fine
    with_result(records[9], "call_99")
    report = check(write(tmp_path / "train.jsonl", records))
    assert findings(report, "tool_call_id") == [
        ("error", 10, "messages[3] tool_call_id 'call_99' matches no earlier call; did you mean 'call_9'?")
    ]
    assert report.files[0].records == 86


def test_a_call_id_used_twice(tmp_path: Path) -> None:
    def twice(record: dict) -> None:
        first = record["messages"][2]["tool_calls"][0]
        record["messages"][2]["tool_calls"].append(copy.deepcopy(first))

    report = check(write(tmp_path / "train.jsonl", edited(6, twice)))
    assert findings(report, "tool_call_id") == [
        ("error", 6, "messages[2] tool_calls[1] reuses call id 'call_5' (also messages[2] tool_calls[0])")
    ]


def test_bad_tools_entries(tmp_path: Path) -> None:
    def broken(record: dict) -> None:
        record["tools"] = copy.deepcopy(TOOLS)
        del record["tools"][1]["function"]["name"]
        record["tools"][2]["function"]["parameters"] = {"type": "array"}
        record["tools"].append(copy.deepcopy(TOOLS[0]))
        record["tools"][3]["function"]["parameters"]["properties"]["distance"]["minimum"] = "zero"

    report = check(write(tmp_path / "train.jsonl", edited(1, broken)))
    messages = [message for _, line, message in findings(report, "bad_tool") if line == 1]
    assert messages[0] == "tools[1] has no function name"
    assert messages[1].startswith("tools[2] set_altitude: parameters must be a schema of type object")
    assert messages[2].startswith("tools[3] move: parameters are not a valid JSON schema (")
    assert messages[3] == "tools[6] duplicate tool name 'takeoff' (also tools[0])"
    assert report.files[0].records == 86


def test_several_calls_while_parallel_calls_are_off(tmp_path: Path) -> None:
    def parallel(record: dict) -> None:
        second = {"id": "photo_12", "type": "function", "function": {"name": "take_photo", "arguments": "{}"}}
        record["messages"][2]["tool_calls"].append(second)
        record["parallel_tool_calls"] = False

    report = check(write(tmp_path / "train.jsonl", edited(12, parallel)))
    ((severity, line, message),) = findings(report, "parallel_calls")
    assert (severity, line) == ("warning", 12) and "2 calls in one message" in message
    assert report.files[0].records == 87  # a warning: the record is kept


def test_legacy_function_call_and_functions(tmp_path: Path) -> None:
    functions = [tool["function"] for tool in TOOLS]
    legacy = {
        "messages": [
            {"role": "user", "content": "Climb to 40 meters"},
            {
                "role": "assistant",
                "content": None,
                "function_call": {"name": "set_altitude", "arguments": '{"altitude": 40}'},
            },
            {"role": "function", "name": "set_altitude", "content": "altitude 40"},
            {"role": "assistant", "content": "Now at 40 meters."},
        ],
        "functions": functions,
    }
    answered_wrong = copy.deepcopy(legacy)
    answered_wrong["messages"][0]["content"] = "Climb to 50 meters"
    answered_wrong["messages"][2]["name"] = "land"
    unknown = copy.deepcopy(legacy)
    unknown["messages"][0]["content"] = "Climb to 60 meters"
    unknown["messages"][1]["function_call"]["name"] = "climb"
    report = check(write(tmp_path / "train.jsonl", [legacy, answered_wrong, unknown]))
    assert report.files[0].records == 1
    assert findings(report, "tool_call_id") == [
        ("error", 2, "messages[2] is the result of 'land', which no earlier message calls"),
        ("error", 3, "messages[2] is the result of 'set_altitude', which no earlier message calls"),
    ]
    assert [line for _, line, _ in findings(report, "unknown_tool")] == [3]
    assert "messages[1] function_call calls 'climb'" in findings(report, "unknown_tool")[0][2]


def greeting(index: int) -> dict:
    return {
        "messages": [
            {"role": "system", "content": f"You greet visitors of shop {index}."},
            {"role": "assistant", "content": f"Hello, welcome to shop number {index}! How can I help?"},
        ]
    }


@pytest.mark.parametrize(
    ("name", "severity", "records"),
    [("greetings_train.jsonl", "info", 5), ("greetings_eval.jsonl", "error", 0), ("greetings.jsonl", "warning", 5)],
)
def test_a_conversation_without_a_user_turn_by_role(tmp_path: Path, name: str, severity: str, records: int) -> None:
    report = check(write(tmp_path / name, [greeting(i) for i in range(5)]))
    found = findings(report, "no_user_turn")
    assert [(s, line) for s, line, _ in found] == [(severity, i) for i in range(1, 6)]
    assert report.files[0].records == records and report.exit_code == (severity == "error")
    if severity == "error":
        assert "eval data needs an input" in found[0][2]
    if severity == "warning":
        assert "as training data" in found[0][2] and "as eval data it has no input" in found[0][2]


def test_the_tool_name_balance_is_reported_like_label_balance(tmp_path: Path) -> None:
    rng = random.Random(5)
    records = [drone_record(6 * i + 5, rng) for i in range(60)]  # take_photo, 60 times
    records += [drone_record(6 * i + 1, rng) for i in range(3)]  # land, 3 times
    plain = copy.deepcopy(records[0])  # a rejection: a plain reply in a record with tools
    plain["messages"][1]["content"] = "Fire the water cannon"
    plain["messages"][2] = {"role": "assistant", "content": "I cannot do that: there is no such function."}
    report = check(write(tmp_path / "train.jsonl", [*records, plain]))
    ((_, _, imbalance),) = [(f.severity, 0, f.message) for f in report.findings if f.code == "label_imbalance"]
    assert imbalance == "tool names are imbalanced: '(no call)' has 1 item, 'take_photo' 60"
    rare = next(f.message for f in report.findings if f.code == "rare_label")
    assert rare == "2 tool name(s) with fewer than 5 examples: '(no call)' (1), 'land' (3)"


def test_odd_shapes_are_findings_and_no_schema_is_fetched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("a $ref was fetched")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    records = copy.deepcopy(drone_file(8))
    records[0]["tools"] = copy.deepcopy(TOOLS)
    records[0]["tools"][0]["function"]["parameters"]["properties"]["altitude"] = {"$ref": "http://example.com/a.json"}
    call_of(records[1])["arguments"] = "[" * 50_000 + "]" * 50_000
    records[2]["messages"].insert(2, {"role": "tool", "content": "ok"})  # a result before any call
    records[3]["parallel_tool_calls"] = "no"
    records[4]["messages"][2]["tool_calls"] = {"name": "land"}
    del records[5]["tools"]
    records[6]["messages"][2]["tool_calls"][0]["function"]["arguments"] = {"direction": "left", "distance": 3}
    report = check(write(tmp_path / "drone_eval.jsonl", records))
    by_line = {int(f.where.rpartition(":")[2]): (f.severity, f.code) for f in report.findings if f.where[-1].isdigit()}
    assert by_line == {
        1: ("error", "bad_tool"),  # the $ref cannot be resolved: reported, not downloaded
        2: ("error", "bad_arguments"),
        3: ("error", "tool_call_id"),
        4: ("error", "bad_tool"),
        5: ("error", "bad_call"),
        6: ("error", "no_tools"),  # eval: the model would never be shown the function
    }
    assert report.files[0].records == 2  # arguments as an object (line 7) are read as their JSON
