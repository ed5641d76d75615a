"""Tool-calling metrics against hand-computed values, through the real scoring entry (harness.scoring.scores.score),
and the tools a sample record writes."""

from __future__ import annotations

import json
import math

import pytest

from harness.config.settings import MetricSpec
from harness.core.tools import call_text, tool_call, tool_from_dict
from harness.core.types import Generation, Message
from harness.results.write import SampleRecord
from harness.scoring.answers import Extractor
from harness.scoring.metrics import MetricInput, available_metrics
from harness.scoring.metrics.tools import ToolArgsValid, json_key
from harness.scoring.scores import ScoringSample, score

METRICS = ("tool_name", "tool_args_exact", "tool_args_valid", "tool_args_f1")


def _tool(name: str, properties: dict, required: list[str]) -> dict:
    parameters = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    return {"type": "function", "function": {"name": name, "description": f"{name} tool", "parameters": parameters}}


TOOLS = tuple(
    tool_from_dict(entry)
    for entry in (
        _tool(
            "set_light",
            {"room": {"type": "string", "enum": ["kitchen", "hall"]}, "state": {"enum": ["on", "off"]}},
            ["room", "state"],
        ),
        _tool("set_thermostat", {"temperature": {"type": "number"}}, ["temperature"]),
        _tool("set_alarm", {"enabled": {"type": "boolean"}}, ["enabled"]),
    )
)


def calls(*pairs: tuple[str, dict]) -> str:
    """The Hermes text of these calls, as references and tool-calling models write them."""
    return call_text([tool_call(name, arguments) for name, arguments in pairs])


LIGHT_ON = ("set_light", {"room": "kitchen", "state": "on"})
HALL_OFF = ("set_light", {"room": "hall", "state": "off"})
WARM = ("set_thermostat", {"temperature": 21})
REJECTION = "Sorry, I cannot book flights: none of my functions does that."


def scored(output: str, reference: str, extractor: Extractor = Extractor("text")) -> dict[str, float | None]:
    """Every tool metric's value on one sample (None: undefined there)."""
    specs = [MetricSpec(name) for name in METRICS]
    scores, _ = score([ScoringSample(output, reference, tools=TOOLS)], specs, extractor, bootstrap=0)
    return {name: scores.per_sample[name][0] for name in METRICS}


def expect(name: float, exact: float | None, valid: float | None, f1: float | None) -> dict[str, float | None]:
    return dict(zip(METRICS, (name, exact, valid, f1)))


def test_registered_with_descriptions():
    found = available_metrics()
    for name in METRICS:
        assert found[name].description and found[name].needs == "tools"


@pytest.mark.parametrize(
    ("output", "reference", "expected"),
    [
        pytest.param(calls(LIGHT_ON), calls(LIGHT_ON), expect(1, 1, 1, 1), id="right-call"),
        # a valid call to another offered tool: valid, but no triple in common
        pytest.param(calls(WARM), calls(LIGHT_ON), expect(0, 0, 1, 0), id="wrong-name"),
        # (room, kitchen) right, (state) wrong: P = R = 1/2
        pytest.param(
            calls(("set_light", {"room": "kitchen", "state": "off"})),
            calls(LIGHT_ON),
            expect(1, 0, 1, 0.5),
            id="wrong-arg",
        ),
        # 3 predicted triples, 2 right: P = 2/3, R = 1, F1 = 0.8; additionalProperties false fails it
        pytest.param(
            calls(("set_light", {"room": "kitchen", "state": "on", "brightness": 5})),
            calls(LIGHT_ON),
            expect(1, 0, 0, 0.8),
            id="extra-arg",
        ),
        # 1 triple, right: P = 1, R = 1/2, F1 = 2/3; a required key is missing
        pytest.param(
            calls(("set_light", {"room": "kitchen"})), calls(LIGHT_ON), expect(1, 0, 0, 2 / 3), id="missing-arg"
        ),
        # the name is legible, so tool_name counts it; nothing else can match
        pytest.param(
            '<tool_call>\n{"name": "set_light", "arguments": {room: kitchen}}\n</tool_call>',
            calls(LIGHT_ON),
            expect(1, 0, 0, 0),
            id="args-not-json",
        ),
        pytest.param(
            calls(("open_door", {"door": "front"})),
            calls(("open_door", {"door": "front"})),
            expect(1, 1, 0, 1),
            id="unknown-tool",
        ),
        pytest.param(calls(("open_door", {})), calls(LIGHT_ON), expect(0, 0, 0, 0), id="unknown-tool-wrong"),
        pytest.param(
            calls(("set_thermostat", {"temperature": "warm"})), calls(WARM), expect(1, 0, 0, 0), id="fails-schema"
        ),
        pytest.param("I cannot do that, sorry.", REJECTION, expect(1, None, None, None), id="right-rejection"),
        pytest.param(calls(LIGHT_ON), REJECTION, expect(0, None, None, None), id="call-where-rejection"),
        pytest.param("Sure, the kitchen light is on now.", calls(LIGHT_ON), expect(0, 0, 0, 0), id="text-where-call"),
        pytest.param(calls(HALL_OFF, LIGHT_ON), calls(LIGHT_ON, HALL_OFF), expect(1, 1, 1, 1), id="parallel-reordered"),
        # gold triples: (set_light, room), (set_light, state), (set_thermostat, temperature); 2 of 3 right
        pytest.param(
            calls(("set_light", {"room": "kitchen", "state": "off"}), WARM),
            calls(LIGHT_ON, WARM),
            expect(1, 0, 1, 2 / 3),
            id="partial-f1",
        ),
        # JSON numbers: 21 == 21.0; but true is not 1 (and 1 is no boolean for the schema)
        pytest.param(
            calls(("set_thermostat", {"temperature": 21.0})),
            calls(WARM),
            expect(1, 1, 1, 1),
            id="one-vs-one-point-zero",
        ),
        pytest.param(
            calls(("set_alarm", {"enabled": 1})),
            calls(("set_alarm", {"enabled": True})),
            expect(1, 0, 0, 0),
            id="one-vs-true",
        ),
        # one gold call, two predicted (one right): P = 2/4, R = 2/2, F1 = 2/3; the duplicate counts against
        pytest.param(calls(LIGHT_ON, HALL_OFF), calls(LIGHT_ON), expect(0, 0, 1, 2 / 3), id="extra-call"),
    ],
)
def test_hand_computed(output, reference, expected):
    got = scored(output, reference)
    for name, want in expected.items():
        if want is None:
            assert got[name] is None, name
        else:
            assert got[name] == pytest.approx(want), name


def test_argument_order_and_nesting_compare_as_json_values():
    gold = calls(("set_light", {"room": "kitchen", "state": "on"}))
    output = '<tool_call>\n{"arguments": {"state": "on", "room": "kitchen"}, "name": "set_light"}\n</tool_call>'
    assert scored(output, gold)["tool_args_exact"] == 1
    assert json_key({"a": [1.0, {"b": False}]}) == json_key({"a": [1, {"b": False}]})
    assert json_key(True) != json_key(1) and json_key(0) != json_key(False) and json_key(None) != json_key(0)
    assert json_key(-0.0) == json_key(0)


def test_other_call_shapes_are_read():
    """A constrained answer (bare JSON) and OpenAI's string arguments score as the same call."""
    gold = calls(LIGHT_ON)
    bare = json.dumps({"name": "set_light", "arguments": {"room": "kitchen", "state": "on"}})
    openai = json.dumps({"tool_calls": [{"function": {"name": "set_light", "arguments": json.dumps(LIGHT_ON[1])}}]})
    assert scored(bare, gold) == expect(1, 1, 1, 1)
    assert scored(openai, gold) == expect(1, 1, 1, 1)
    assert scored(json.dumps({"reply": "I cannot."}), REJECTION) == expect(1, None, None, None)


def test_calls_without_arguments():
    """A call with no arguments is one triple of its own: right when the gold makes the same call."""
    ping = ("ping", {})
    assert scored(calls(ping), calls(ping))["tool_args_f1"] == 1
    assert scored(calls(("pong", {})), calls(ping))["tool_args_f1"] == 0
    assert scored(calls(("ping", {"x": 1})), calls(ping))["tool_args_f1"] == 0


def test_gold_read_from_the_raw_reference():
    """[answer] extraction cuts a reference's <tool_call> block apart; the tool metrics read the whole text."""
    gold = calls(LIGHT_ON, HALL_OFF)
    assert scored(calls(HALL_OFF, LIGHT_ON), gold, Extractor("last_line")) == expect(1, 1, 1, 1)
    assert scored(calls(HALL_OFF, LIGHT_ON), gold, Extractor("json")) == expect(1, 1, 1, 1)


def test_broken_tool_schema_validates_nothing():
    broken = (tool_from_dict({"name": "set_light", "parameters": {"type": 5}}),)
    sample = MetricInput(calls(LIGHT_ON), "", calls(LIGHT_ON), "", tools=broken)
    assert ToolArgsValid().stats([sample], {})[0, 0] == 0


def test_summaries_intervals_and_n():
    """Over a mixed set: undefined samples are left out of n; 0/1 metrics get Wilson's interval, F1 the bootstrap."""
    rows = [
        (calls(LIGHT_ON), calls(LIGHT_ON)),
        (calls(("set_light", {"room": "kitchen", "state": "off"})), calls(LIGHT_ON)),
        ("no idea", calls(WARM)),
        ("I cannot.", REJECTION),
        (calls(WARM), REJECTION),
    ]
    samples = [ScoringSample(output, reference, tools=TOOLS) for output, reference in rows]
    scores, _ = score(samples, [MetricSpec(name) for name in METRICS], Extractor("text"), bootstrap=200, seed=1)
    summary = scores.summary
    assert (summary["tool_name"].value, summary["tool_name"].n) == (pytest.approx(3 / 5), 5)
    assert (summary["tool_args_exact"].value, summary["tool_args_exact"].n) == (pytest.approx(1 / 3), 3)
    assert (summary["tool_args_valid"].value, summary["tool_args_valid"].n) == (pytest.approx(2 / 3), 3)
    assert (summary["tool_args_f1"].value, summary["tool_args_f1"].n) == (pytest.approx(0.5), 3)
    for name in ("tool_name", "tool_args_exact", "tool_args_valid"):
        assert summary[name].interval == "wilson"
    assert summary["tool_args_f1"].interval == "bootstrap"
    low, high = summary["tool_args_f1"].ci_low, summary["tool_args_f1"].ci_high
    assert low is not None and high is not None and 0 <= low <= 0.5 <= high <= 1
    assert all(math.isfinite(v) for v in (summary["tool_name"].ci_low, summary["tool_name"].ci_high))


def _record(tools=()) -> SampleRecord:
    return SampleRecord(
        id="a",
        messages=[Message("user", "turn on the kitchen light")],
        output=calls(LIGHT_ON),
        reference=calls(LIGHT_ON),
        answer="",
        label=None,
        doc_ids=(),
        scores={"tool_name": 1.0},
        generation=Generation(calls(LIGHT_ON)),
        tools=tools,
    )


def test_sample_record_writes_tools_only_when_offered():
    written = _record(TOOLS).to_dict()
    assert written["tools"] == [tool.to_dict() for tool in TOOLS]
    assert tuple(tool_from_dict(entry) for entry in written["tools"]) == TOOLS  # reads back as it was
    assert "tools" not in _record().to_dict()


def test_field_refused_on_tool_metrics(tiny_suite):
    from harness.core.errors import ConfigError
    from harness.variants import load_suite

    toml = tiny_suite / "suite.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(text.replace('"output_length"]', '"output_length", { name = "tool_name", field = "capital" }]'))
    with pytest.raises(ConfigError, match="tool metrics score the whole call"):
        load_suite(tiny_suite)
    toml.write_text(text.replace('"output_length"]', '"output_length", "tool_name"]'))
    assert "tool_name" in [spec.key for spec in load_suite(tiny_suite).metric_specs]
