"""Reading one JSON object in a plain layout, for data given as files rather than as a suite.

Layouts: chat `{"messages": [...]}`, completion `{"prompt", "completion"}`, preference pairs
`{"prompt", "chosen", "rejected"}` and `fields` (`input` / `output`). Each field is checked, and
every problem becomes a finding on the record's line.
"""

from __future__ import annotations

import json
from typing import Any

from harness.core.errors import did_you_mean
from harness.core.types import ROLES
from harness.datacheck.records import Line, Record, normalize

LAYOUTS = ("auto", "chat", "completion", "preference", "fields")


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
