"""The suite format: three data layouts, stable ids, templates, and the checks made at load time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.core.errors import ConfigError, DataError
from harness.core.types import GenerationParams
from harness.suite.items import FieldNames, load_items, read_items
from harness.suite.prompts import PromptSpec, Template, build_request
from harness.variants import load_suite


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_chat_layout_last_assistant_is_reference(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {
                "id": "a",
                "label": "x",
                "doc_ids": ["d1"],
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello"},
                    {"role": "user", "content": "2+2?"},
                    {"role": "assistant", "content": "4"},
                ],
            }
        ],
    )
    [item] = load_items(path)
    assert item.reference == "4" and item.fields["input"] == "2+2?" and item.label == "x" and item.doc_ids == ("d1",)
    request = build_request(item, PromptSpec(Template("{input}")), GenerationParams())
    assert [(m.role, m.content) for m in request.messages] == [
        ("system", "Be brief."),
        ("user", "Hi"),
        ("assistant", "Hello"),
        ("user", "2+2?"),
    ]
    assert request.metadata == {"doc_ids": ["d1"]}


def test_completion_layout(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "Q: 1+1", "completion": "2"}])
    [item] = load_items(path)
    assert item.fields["input"] == "Q: 1+1" and item.reference == "2"


def test_fields_layout_with_named_fields(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"key": 7, "question": "q", "answer": {"a": 1}, "cls": "pos"}])
    [item] = load_items(path, "fields", FieldNames(input="question", output="answer", id="key", label="cls"))
    assert item.id == "7" and item.reference == '{"a": 1}' and item.label == "pos"


def test_hash_ids_are_stable_and_content_based(tmp_path: Path) -> None:
    a = load_items(write_jsonl(tmp_path / "a.jsonl", [{"input": "x", "output": "y"}, {"input": "z", "output": "y"}]))
    b = load_items(write_jsonl(tmp_path / "b.jsonl", [{"output": "y", "input": "z"}]))
    assert a[1].id == b[0].id  # key order does not matter
    assert a[0].id != a[1].id and a[0].id.startswith("h") and len(a[0].id) == 13


def test_exact_repeats_are_dropped_with_a_warning_not_an_error(tmp_path: Path) -> None:
    rows = [
        {"input": "x", "output": "y"},
        {"input": "z", "output": "y"},
        {"output": "y", "input": "x"},
        {"id": 4, "input": "w", "output": "v"},
        {"id": 4, "input": "w", "output": "v"},
    ]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    items, repeats = read_items(path)
    assert [item.fields["input"] for item in items] == ["x", "z", "w"]  # the first copy of each is kept
    assert [(r.line, r.first) for r in repeats] == [(3, 1), (5, 4)]  # key order does not matter
    assert (
        repeats[0].message == 'line 3 repeats line 1 exactly ({"output": "y", "input": "x"}): dropped, line 1 is used'
    )
    assert repeats[0].where == f"{path}:3"
    with pytest.warns(UserWarning) as caught:
        assert len(load_items(path)) == 3
    assert [str(w.message) for w in caught] == [f"{r.message} - {r.where} - {r.fix}" for r in repeats]


def test_one_id_on_two_different_records_is_an_error_naming_both_lines(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "input": "x", "output": "y"},
        {"id": "b", "input": "z", "output": "y"},
        {"id": "a", "input": "x", "output": "n"},
    ]
    with pytest.raises(DataError, match="duplicate id 'a' on lines 1 and 3, with different content") as info:
        load_items(write_jsonl(tmp_path / "d.jsonl", rows))
    assert "d.jsonl:3 and" in str(info.value) and "d.jsonl:1" in str(info.value)


@pytest.mark.parametrize(
    "record, message",
    [
        ({"messages": [{"role": "user", "content": "q"}]}, "must end with a user message"),
        (
            {"messages": [{"role": "robot", "content": "q"}, {"role": "assistant", "content": "a"}]},
            "unknown role .robot.",
        ),
        ({"prompt": "q", "completion": 3}, "non-string 'completion'"),
        ({"input": "q"}, "missing output field 'output'"),
        ({"id": "", "input": "q", "output": "a"}, "invalid id"),
        ({"input": "q", "output": "a", "doc_ids": 5}, "doc_ids must be a list"),
    ],
)
def test_bad_records(tmp_path: Path, record: dict, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        load_items(write_jsonl(tmp_path / "d.jsonl", [record]))
    assert "d.jsonl:1" in str(info.value)


def test_template_rendering_and_escapes() -> None:
    template = Template('Reply {{"a": 1}} about {topic} ({n})')
    assert template.fields() == ("topic", "n")
    assert template.render({"topic": "cats", "n": 3}) == 'Reply {"a": 1} about cats (3)'


@pytest.mark.parametrize("source", ["{x.__class__}", "{x[0]}", "{x!r}", "{}", "{ x }", "unbalanced {"])
def test_template_refuses_anything_but_plain_names(source: str) -> None:
    with pytest.raises(ConfigError, match="bad placeholder"):
        Template(source).fields()


def test_demo_suite_loads_and_is_big_enough() -> None:
    suite = load_suite(Path(__file__).resolve().parents[1] / "suites" / "support-triage")
    assert len(suite.eval_items) >= 120 and len(suite.train_items) >= 300
    assert suite.schema is not None and all(item.doc_ids for item in suite.eval_items)
    train_inputs = {(i.fields["subject"], i.fields["body"]) for i in suite.train_items}
    assert not any((i.fields["subject"], i.fields["body"]) in train_inputs for i in suite.eval_items)


def test_metric_field_needs_json_extraction(tiny_suite: Path) -> None:
    toml = tiny_suite / "suite.toml"
    toml.write_text(toml.read_text().replace('extract = "json"', 'extract = "text"'))
    with pytest.raises(ConfigError, match="set extract = 'json'"):
        load_suite(tiny_suite)


def test_metric_needing_schema(tiny_suite: Path) -> None:
    toml = tiny_suite / "suite.toml"
    text = toml.read_text()
    toml.write_text(text[: text.index("schema =")] + text[text.index("[answer]") :])
    with pytest.raises(ConfigError, match="needs a JSON schema"):
        load_suite(tiny_suite)
