"""Reading one JSON object in a plain layout, for data given as files rather than as a suite.

Layouts: chat `{"messages": [...]}`, completion `{"prompt", "completion"}`, preference pairs
`{"prompt", "chosen", "rejected"}` and `fields` (`input` / `output`). Each field is checked, and
every problem becomes a finding on the record's line. Chat records may call tools (OpenAI's format:
`tool_calls`, `tool` messages, `tools`), read and checked in harness.datacheck.tool_checks.
"""

from __future__ import annotations

import json
from typing import Any

from harness.core.errors import did_you_mean
from harness.core.types import ROLES
from harness.datacheck.records import Line, Record, normalize
from harness.datacheck.tool_checks import Turn, check_conversation, json_kind, label_of, message_calls, read_tools

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
        return kind, _chat_record(obj, line, label), item_id
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
        return None if turns is None else "\n".join(turn.text for turn in turns)
    if key not in obj:
        line.error("missing_field", f"missing field '{key}'", f"add '{key}'")
        return None
    if not isinstance(value, str):
        line.error("missing_field", f"'{key}' must be a string, got {json_kind(value)}", f"write '{key}' as text")
        return None
    if not value.strip():
        line.error("empty_field", f"'{key}' is empty or whitespace", f"fill in '{key}' or drop the record")
        return None
    return value


def _chat_record(obj: dict[str, Any], line: Line, label: str | None) -> Record | None:
    """A conversation: its last message is the assistant reply (text, or the calls it makes as text)."""
    turns = _turns(obj.get("messages"), "messages", line)
    if turns is None:
        return None
    box = read_tools(obj, line)
    calls_ok = box is not None and check_conversation(turns, box, line)
    if not _structure_ok([turn.role for turn in turns], line) or box is None or not calls_ok:
        return None
    before, reply = turns[:-1], turns[-1]
    asked = [turn.text for turn in before if turn.role != "system"]
    text = "\n".join(asked) if asked else "\n".join(turn.text for turn in before)  # no user turn: the system prompt
    prompt = "\n".join([*(turn.text for turn in before), *([box.text] if box.text else [])])
    tool_label = label_of(reply, box) if label is None else None
    source = "tool name" if tool_label is not None else "label"
    return Record(line.where, text, reply.text, prompt, label if label is not None else tool_label, label_source=source)


def _structure_ok(roles: list[str], line: Line) -> bool:
    """The reply is last and answers a user message or a tool result. With no user turn at all (a system
    prompt, then the assistant opening the conversation) it is training data, but no eval input: by role."""
    if roles[-1] != "assistant":
        line.error(
            "last_not_assistant",
            f"the last message is '{roles[-1]}', not 'assistant'",
            "end every conversation with the assistant reply: it is what training learns and eval scores against",
        )
        return False
    if "system" in roles[1:]:
        line.warning("misplaced_system", "a system message after the first turn", "put the system message first")
    if len(roles) >= 2 and set(roles[:-1]) == {"system"}:
        return _no_user_turn(line)
    if len(roles) < 2 or roles[-2] not in ("user", "tool"):
        line.error(
            "no_user_turn",
            "the assistant reply must follow a user message (or a tool result)",
            "add the user message it answers",
        )
        return False
    return True


def _no_user_turn(line: Line) -> bool:
    if line.role == "train":
        line.info(
            "no_user_turn",
            "no user message: the assistant opens the conversation (legal training data: the model learns to open it)",
        )
        return True
    if line.role == "eval":
        line.error(
            "no_user_turn",
            "no user message: eval data needs an input for the model to answer",
            "add the user message the reply answers, or check the file as --train",
        )
        return False
    line.warning(
        "no_user_turn",
        "no user message: as training data the model learns to open the conversation; as eval data it has no input",
        "pass the file as --train FILE if it is training data; for eval, add the user message",
    )
    return True


def _turns(messages: Any, key: str, line: Line) -> list[Turn] | None:
    if not isinstance(messages, list) or not messages:
        line.error(
            "bad_messages",
            f"'{key}' must be a non-empty list of messages",
            'write [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}]',
        )
        return None
    turns = []
    for index, message in enumerate(messages):
        turn = _turn(message, f"{key}[{index}]", line)
        if turn is None:
            return None
        turns.append(turn)
    return turns


def _turn(message: Any, place: str, line: Line) -> Turn | None:
    """One message. An assistant message that calls tools may have null or no content; a legacy `function`
    message (a function's result, named by `name`) is read as a tool message."""
    role = message.get("role") if isinstance(message, dict) else None
    if role not in ROLES and role != "function":
        hint = did_you_mean(str(role), ROLES) if isinstance(role, str) else "use one of: " + ", ".join(ROLES)
        line.error("bad_role", f"{place} has role {role!r}", hint)
        return None
    assert isinstance(message, dict)  # a role was read from it
    calls = message_calls(message, place, line) if role == "assistant" else ()
    if calls is None:
        return None
    content = message.get("content")
    if calls and content is None:
        content = ""
    if not isinstance(content, str):
        fix = "write the content as text" + ("" if role != "assistant" else ", or give the message tool_calls")
        line.error("bad_content", f"{place} content must be a string, got {json_kind(content)}", fix)
        return None
    if not calls and not content.strip():
        line.error("empty_field", f"{place} ({role}) content is empty or whitespace", "fill it in or drop the message")
        return None
    call_id, name = message.get("tool_call_id"), message.get("name")
    return Turn(
        "tool" if role == "function" else role,
        content,
        calls,
        call_id if isinstance(call_id, str) and role == "tool" else "",
        name if isinstance(name, str) and role == "function" else "",
        legacy=bool(calls) and message.get("tool_calls") is None,
    )
