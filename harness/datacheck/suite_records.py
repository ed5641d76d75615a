"""Reading a suite's records as `load_suite` reads them: its parser, prompt template and system prompt.

`SuiteLayout` is what a `SuiteConfig` says about its records; `suite_record` reports everything
`load_suite` would refuse, and `record_from_item` turns a loaded `Item` into the `Record` the checks compare.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from harness.core.errors import DataError
from harness.datacheck.records import Line, Record
from harness.suite import items
from harness.suite.items import FieldNames, Item
from harness.suite.prompts import Template


@dataclass(frozen=True)
class SuiteLayout:
    """How a suite's records are read: the harness's own parser, then its prompt template and system prompt."""

    layout: str
    names: FieldNames
    template: Template
    system: str = ""
    needed: tuple[str, ...] = ()  # fields the template and the retrieval query need


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
