"""Tools on their way to the engines and back, with no model loaded: vLLM's chat calls grouped by tool list
(a fake `LLM`), the cache key, the api body and its streamed tool-call deltas (a fake client),
`constrain = "tools"`, and fine-tuning examples for a template with and without tools (stub tokenizers)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from harness.core.errors import ConfigError
from harness.core.tools import call_schema, call_text, parse_calls, tools_prompt
from harness.core.types import Constraint, Generation, GenerationParams, Message, Request, Tool, ToolCall
from harness.engines.api_engine import ApiEngine, Endpoint
from harness.engines.cache import entry_key, request_payload
from harness.engines.vllm_engine import VllmEngine
from harness.finetune.data import TrainRow, example, native_answer, template_native, token_count
from harness.suite.items import Item
from harness.variants.api import API_CONSTRAINTS
from harness.variants.constrain import constrained, mark, suite_constraint

LIGHT = Tool(
    "set_light",
    "Switch a light",
    json.dumps({"type": "object", "properties": {"room": {"type": "string"}}, "required": ["room"]}),
)
TEMP = Tool("set_temp", "", json.dumps({"type": "object", "properties": {"level": {"type": "integer"}}}))
NATIVE_TEMPLATE = "{% if tools %}{{ tools | tojson }}{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}"
PLAIN_TEMPLATE = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>{% endfor %}"


def request(rid: str, tools: tuple[Tool, ...] = (), **metadata: Any) -> Request:
    messages = (Message("system", "You run a house."), Message("user", f"please {rid}"))
    return Request(rid, messages, GenerationParams(max_tokens=8), metadata=metadata, tools=tools)


# -- vLLM: one chat call per tool list -----------------------------------------------------------------------


class FakeLLM:
    """Records every chat call and answers each conversation with its last user message."""

    def __init__(self, template: str | None) -> None:
        self.template = template
        self.calls: list[dict[str, Any]] = []
        self.tokenizer_asked = 0

    def get_tokenizer(self) -> Any:
        self.tokenizer_asked += 1
        return SimpleNamespace(chat_template=self.template)

    def chat(self, conversations: list, sampling: list, **kwargs: Any) -> list[Any]:
        self.calls.append({"conversations": conversations, "sampling": sampling, **kwargs})
        return [_output(conversation[-1]["content"]) for conversation in conversations]


def _output(text: str) -> Any:
    completion = SimpleNamespace(text=text, token_ids=[1, 2], finish_reason="stop", logprobs=None)
    return SimpleNamespace(outputs=[completion], prompt_token_ids=[1, 2, 3], metrics=None)


def fake_engine(template: str | None) -> VllmEngine:
    engine = object.__new__(VllmEngine)
    engine.llm = FakeLLM(template)
    engine.sampling = lambda requests: [r.id for r in requests]  # type: ignore[method-assign]
    engine._lora = lambda adapter: None  # type: ignore[method-assign]
    return engine


def test_vllm_groups_requests_by_tools_and_keeps_their_order() -> None:
    engine = fake_engine(NATIVE_TEMPLATE)
    batch = [request("a", (LIGHT,)), request("b"), request("c", (LIGHT, TEMP)), request("d", (LIGHT,))]
    generations = engine.generate(batch)
    assert [g.text for g in generations] == ["please a", "please b", "please c", "please d"]
    calls = engine.llm.calls
    assert [call["sampling"] for call in calls] == [["a", "d"], ["b"], ["c"]]  # one call per tool list
    assert calls[0]["tools"] == [LIGHT.to_dict()]
    assert "tools" not in calls[1]  # the request without tools goes without them
    assert calls[2]["tools"] == [LIGHT.to_dict(), TEMP.to_dict()]
    assert calls[1]["conversations"] == [[m.to_dict() for m in batch[1].messages]]
    assert engine.llm.tokenizer_asked == 1
    engine.generate(batch)
    assert engine.llm.tokenizer_asked == 1  # the template is read once per engine


def test_vllm_without_tools_is_exactly_the_one_call_it_always_was() -> None:
    engine = fake_engine(NATIVE_TEMPLATE)
    batch = [request("a"), request("b")]
    engine.generate(batch)
    assert engine.llm.calls == [
        {
            "conversations": [[m.to_dict() for m in r.messages] for r in batch],
            "sampling": ["a", "b"],
            "use_tqdm": False,
            "lora_request": None,
        }
    ]
    assert engine.llm.tokenizer_asked == 0  # nothing asked of the template


def test_vllm_without_a_tools_template_writes_them_into_the_prompt_in_one_call() -> None:
    engine = fake_engine(PLAIN_TEMPLATE)
    batch = [request("a", (LIGHT,)), request("b"), request("c", (TEMP,))]
    assert len(engine.generate(batch)) == 3
    [call] = engine.llm.calls
    assert "tools" not in call
    first, plain, third = call["conversations"]
    assert first[0] == {"role": "system", "content": f"You run a house.\n\n{tools_prompt((LIGHT,))}"}
    assert plain == [m.to_dict() for m in batch[1].messages]
    assert tools_prompt((TEMP,)) in third[0]["content"]


# -- transformers: apply_chat_template(tools=...) where the template knows them ---------------------------------


class RecordingTemplate:
    def __init__(self, template: str) -> None:
        self.chat_template = template
        self.calls: list[dict[str, Any]] = []

    def apply_chat_template(self, messages: list, **kwargs: Any) -> str:
        self.calls.append({"messages": messages, **kwargs})
        return "prompt"


@pytest.mark.parametrize("template", [NATIVE_TEMPLATE, PLAIN_TEMPLATE])
def test_hf_passes_tools_to_a_template_that_knows_them(template: str) -> None:
    from harness.engines.hf_engine import HfEngine

    engine = object.__new__(HfEngine)
    engine.tokenizer = RecordingTemplate(template)
    engine._prompt(request("a"))
    engine._prompt(request("a", (LIGHT,)))
    plain, tooled = engine.tokenizer.calls
    assert plain == {
        "messages": [m.to_dict() for m in request("a").messages],
        "tokenize": False,
        "add_generation_prompt": True,
    }
    if template == NATIVE_TEMPLATE:
        assert tooled["tools"] == [LIGHT.to_dict()] and tooled["messages"] == plain["messages"]
    else:
        assert "tools" not in tooled and tools_prompt((LIGHT,)) in tooled["messages"][0]["content"]


# -- the cache key -------------------------------------------------------------------------------------------


def test_the_cache_key_of_a_request_without_tools_is_unchanged() -> None:
    payload = request_payload(request("a"))
    assert payload == {
        "messages": [
            {"role": "system", "content": "You run a house."},
            {"role": "user", "content": "please a"},
        ],
        "params": {"max_tokens": 8, "temperature": 0.0, "top_p": 1.0, "stop": [], "seed": 0},
    }


def test_the_cache_key_covers_the_tools() -> None:
    engine = {"backend": "vllm"}
    plain = entry_key("generate", engine, request_payload(request("a")))
    light = entry_key("generate", engine, request_payload(request("a", (LIGHT,))))
    both = entry_key("generate", engine, request_payload(request("a", (LIGHT, TEMP))))
    assert len({plain, light, both}) == 3
    assert request_payload(request("a", (LIGHT,)))["tools"] == [LIGHT.to_dict()]
    parallel = request_payload(request("a", (LIGHT,), parallel_tool_calls=True))
    assert parallel["parallel_tool_calls"] is True


# -- the api engine: tools in the body, calls from the stream --------------------------------------------------


def api_engine() -> ApiEngine:
    return ApiEngine(Endpoint("http://127.0.0.1:1/v1", "test-model"), "")


def test_the_api_body_sends_tools_and_parallel_calls_only_when_set() -> None:
    engine = api_engine()
    plain = engine._body(request("a"))
    assert "tools" not in plain and "parallel_tool_calls" not in plain
    body = engine._body(request("a", (LIGHT, TEMP), parallel_tool_calls=True))
    assert body["tools"] == [LIGHT.to_dict(), TEMP.to_dict()]
    assert body["parallel_tool_calls"] is True
    assert {k: v for k, v in body.items() if k not in ("tools", "parallel_tool_calls")} == plain
    assert "parallel_tool_calls" not in engine._body(request("a", (LIGHT,)))
    history = Request(
        "h",
        (
            Message("user", "light on"),
            Message("assistant", "", (ToolCall("set_light", '{"room": "hall"}', "call_1"),)),
            Message("tool", "done", tool_call_id="call_1"),
        ),
        tools=(LIGHT,),
    )
    sent = engine._body(history)["messages"]
    assert sent[1]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "set_light", "arguments": '{"room": "hall"}'}}
    ]  # OpenAI's wire form: arguments as a JSON string
    assert sent[2] == {"role": "tool", "content": "done", "tool_call_id": "call_1"}


class FakeStream:
    def __init__(self, chunks: Sequence[Any]) -> None:
        self.chunks = list(chunks)

    async def __aenter__(self) -> FakeStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __aiter__(self) -> FakeStream:
        return self

    async def __anext__(self) -> Any:
        if not self.chunks:
            raise StopAsyncIteration
        return self.chunks.pop(0)


class FakeClient:
    """chat.completions.create(**body) -> the scripted stream; records the bodies."""

    def __init__(self, chunks: Sequence[Any]) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.script = chunks
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

    async def create(self, **body: Any) -> FakeStream:
        self.bodies.append(body)
        return FakeStream(self.script)

    async def close(self) -> None:
        return None


def _fragment(index: int, call_id: str | None = None, name: str | None = None, arguments: str | None = None) -> Any:
    return SimpleNamespace(
        index=index, id=call_id, type="function", function=SimpleNamespace(name=name, arguments=arguments)
    )


def _chunk(content: str | None = None, tool_calls: list | None = None, finish: str | None = None) -> Any:
    delta = SimpleNamespace(content=content, tool_calls=tool_calls)
    choice = SimpleNamespace(delta=delta, finish_reason=finish)
    return SimpleNamespace(choices=[choice], usage=None, model="test-model", system_fingerprint=None)


def test_streamed_tool_call_fragments_become_calls_in_the_text() -> None:
    chunks = [
        _chunk(content="Sure."),
        _chunk(tool_calls=[_fragment(0, "call_a", "set_light", '{"ro'), _fragment(1, "call_b", "set_", "")]),
        _chunk(tool_calls=[_fragment(0, arguments='om": "kitchen"}'), _fragment(1, name="temp", arguments='{"lev')]),
        _chunk(tool_calls=[_fragment(1, arguments='el": 3}')], finish="tool_calls"),
        SimpleNamespace(choices=[], usage=SimpleNamespace(prompt_tokens=7, completion_tokens=5), model=None),
    ]
    engine = api_engine()
    engine.client_ = FakeClient(chunks)
    try:
        [generation] = engine.generate([request("a", (LIGHT, TEMP))])
    finally:
        engine.close()
    expected = [ToolCall("set_light", '{"room": "kitchen"}', "call_a"), ToolCall("set_temp", '{"level": 3}', "call_b")]
    assert generation.text == call_text(expected, "Sure.")
    calls = parse_calls(generation.text)
    assert [(c.name, c.arguments) for c in calls] == [("set_light", {"room": "kitchen"}), ("set_temp", {"level": 3})]
    assert generation.metadata["finish_reason"] == "tool_calls"
    assert generation.completion_tokens == 5 and generation.ttft_s is not None


def test_a_stream_without_tool_calls_is_its_content() -> None:
    engine = api_engine()
    engine.client_ = FakeClient([_chunk(content='{"capital": '), _chunk(content='"Paris"}', finish="stop")])
    try:
        [generation] = engine.generate([request("a")])
    finally:
        engine.close()
    assert generation.text == '{"capital": "Paris"}'


# -- constrain = "tools" -------------------------------------------------------------------------------------


def _suite(*tool_lists: tuple[Tool, ...]) -> Any:
    return SimpleNamespace(eval_items=[SimpleNamespace(tools=tools) for tools in tool_lists])


def test_constrain_tools_gives_each_request_its_own_schema() -> None:
    constraint = suite_constraint("tools", (), _suite((), (LIGHT,)), "[variants.c]")
    assert constraint == Constraint("tools")
    batch = [request("a", (LIGHT,)), request("b"), request("c", (LIGHT, TEMP), parallel_tool_calls=True)]
    sent = constrained(batch, constraint)
    assert sent[0].constraint == Constraint("schema", schema=json.dumps(call_schema((LIGHT,)), sort_keys=True))
    assert sent[1] == batch[1]  # no tools: decoded freely
    assert sent[2].constraint is not None and sent[2].constraint.kind == "schema"
    assert json.loads(sent[2].constraint.schema) == call_schema((LIGHT, TEMP), parallel=True)
    assert [r.id for r in sent] == ["a", "b", "c"]
    [marked] = mark([Generation("x")], constraint)
    assert marked.metadata["constraint"] == "tools"


def test_constrain_tools_without_tools_in_the_suite_is_an_error() -> None:
    with pytest.raises(ConfigError) as raised:
        suite_constraint("tools", (), _suite((), ()), "[variants.c]")
    assert raised.value.where == "[variants.c] constrain"
    assert "tools" in raised.value.what and raised.value.fix


# -- fine-tuning examples ------------------------------------------------------------------------------------


class StubTokenizer:
    """apply_chat_template counts what it is given: one token per character of the rendered JSON."""

    def __init__(self, template: str) -> None:
        self.chat_template = template
        self.seen: list[dict[str, Any]] = []

    def apply_chat_template(self, conversation: list, **kwargs: Any) -> dict[str, list[int]]:
        self.seen.append({"conversation": conversation, **kwargs})
        text = json.dumps([conversation, kwargs.get("tools")])
        return {"input_ids": [0] * len(text)}


def _row(reference: str, tools: tuple[Tool, ...] = (LIGHT, TEMP)) -> TrainRow:
    item = Item("t1", {"text": "kitchen light on"}, reference, tools=tools)
    return TrainRow(item, request("t1", tools))


def test_a_template_without_tools_trains_on_the_prompt_block_and_the_call_text() -> None:
    tokenizer = StubTokenizer(PLAIN_TEMPLATE)
    assert not template_native(tokenizer)
    reference = call_text([ToolCall("set_light", '{"room": "kitchen"}')])
    built = example(_row(reference), template_native(tokenizer))
    assert set(built) == {"prompt", "completion"}
    assert built["prompt"][0]["content"].endswith(tools_prompt((LIGHT, TEMP)))
    assert built["completion"] == [{"role": "assistant", "content": reference}]
    token_count(tokenizer, built)
    assert "tools" not in tokenizer.seen[0]


def test_a_native_template_trains_on_tool_calls_with_a_tools_column() -> None:
    tokenizer = StubTokenizer(NATIVE_TEMPLATE)
    assert template_native(tokenizer)
    reference = call_text([ToolCall("set_light", '{"room": "kitchen"}'), ToolCall("set_temp", '{"level": 3}')], "Ok.")
    built = example(_row(reference), template_native(tokenizer))
    assert built["prompt"] == [m.to_dict() for m in request("t1").messages]
    assert built["completion"] == [
        {
            "role": "assistant",
            "content": "Ok.",
            "tool_calls": [
                {"type": "function", "function": {"name": "set_light", "arguments": {"room": "kitchen"}}},
                {"type": "function", "function": {"name": "set_temp", "arguments": {"level": 3}}},
            ],
        }
    ]
    assert json.loads(built["tools"]) == [LIGHT.to_dict(), TEMP.to_dict()]  # JSON text, as TRL reads it
    token_count(tokenizer, built)
    assert tokenizer.seen[0]["tools"] == [LIGHT.to_dict(), TEMP.to_dict()]


def test_a_native_rejection_is_plain_content_and_an_item_without_tools_is_unchanged() -> None:
    assert native_answer("No function fits that.") == {"role": "assistant", "content": "No function fits that."}
    built = example(_row("No function fits that."), native=True)
    assert built["completion"] == [{"role": "assistant", "content": "No function fits that."}]
    assert "tools" in built
    plain = example(_row("billing", tools=()), native=True)
    assert plain == {
        "prompt": [m.to_dict() for m in request("t1").messages],
        "completion": [{"role": "assistant", "content": "billing"}],
    }


def test_the_dataset_keeps_each_call_its_own_argument_keys() -> None:
    pytest.importorskip("datasets")
    from harness.finetune.data import training_dataset

    light = call_text([ToolCall("set_light", '{"room": "kitchen"}')])
    temp = call_text([ToolCall("set_temp", '{"level": 3}')])
    examples = [example(_row(light), native=True), example(_row(temp), native=True), example(_row("x", ()), True)]
    rows = list(training_dataset(examples))
    # one Arrow struct for both would give set_light a "level": null and set_temp a "room": null
    assert rows[0]["completion"] == examples[0]["completion"]
    assert rows[1]["completion"][0]["tool_calls"][0]["function"]["arguments"] == {"level": 3}
    assert rows[2]["tools"] is None and rows[2]["completion"] == [{"role": "assistant", "content": "x"}]


def test_an_api_endpoint_decodes_constrain_tools_as_each_requests_schema_beside_its_tools() -> None:
    assert "tools" in API_CONSTRAINTS
    [sent] = constrained([request("a", (LIGHT, TEMP), parallel_tool_calls=False)], Constraint("tools"))
    body = api_engine()._body(sent)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": call_schema((LIGHT, TEMP))},
    }
    assert body["tools"] == [LIGHT.to_dict(), TEMP.to_dict()] and body["parallel_tool_calls"] is False
