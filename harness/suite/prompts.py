"""Prompt templates over record fields, and turning items into requests.

Templates use `{field}` placeholders and `{{` / `}}` for literal braces. Only plain field names are
allowed: no attribute access, indexing or format specs, so a template can never run code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.config.guards import shown
from harness.core.errors import ConfigError, DataError
from harness.core.redact import redact_secrets
from harness.core.types import GenerationParams, Message, Request
from harness.suite.items import Item

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Template:
    source: str

    def fields(self, where: str = "") -> tuple[str, ...]:
        """The field names this template needs, in order of appearance (checked when the suite loads).

        Anything but a plain name is refused: `{input.__class__}`, `{input[0]}`, `{0}`, `{input!r}` and
        `{input:>10}` would be attribute access, indexing or formatting with str.format; here they are
        errors, and rendering never calls str.format at all. `where` names the config key for errors.
        """
        names = []
        for match in _TOKEN.finditer(self.source):
            token = match.group(0)
            if token in ("{{", "}}"):
                continue
            name = match.group(1)
            if name is None or not _NAME.fullmatch(name):
                raise ConfigError(
                    f"bad placeholder {_shown(token)} in template {_shown(self.source)}",
                    where,
                    "use {field_name} for fields and {{ }} for literal braces",
                )
            names.append(name)
        return tuple(dict.fromkeys(names))

    def render(self, fields: Mapping[str, Any], item_id: str = "") -> str:
        def substitute(match: re.Match[str]) -> str:
            token = match.group(0)
            if token in ("{{", "}}"):
                return token[0]
            name = match.group(1)
            if name not in fields:
                raise DataError(
                    f"item {shown(item_id)} has no field '{name}' needed by the prompt template",
                    "",
                    f"add '{name}' to the record or change [prompt] template",
                )
            value = fields[name]
            return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

        return _TOKEN.sub(substitute, self.source)


def _shown(text: str, limit: int = 60) -> str:
    return shown(redact_secrets(text), limit)


@dataclass(frozen=True)
class PromptSpec:
    template: Template
    system: str = ""
    query: Template | None = None  # the retrieval query; None: the rendered user message


def user_message(item: Item, prompt: PromptSpec) -> Message:
    return Message("user", prompt.template.render(item.fields, item.id))


def build_request(item: Item, prompt: PromptSpec, params: GenerationParams) -> Request:
    """The task prompt as it is: optional system prompt, earlier chat turns, the rendered user message.

    The suite's system prompt wins over one carried by a chat record; variants add their own on top.
    """
    user = user_message(item, prompt)
    history = list(item.history)
    system = prompt.system
    if history and history[0].role == "system":
        system = system or history[0].content
        history = history[1:]
    messages = ([Message("system", system)] if system else []) + history + [user]
    return Request(
        id=item.id,
        messages=tuple(messages),
        params=params,
        query=prompt.query.render(item.fields, item.id) if prompt.query else user.content,
        metadata={
            **({"doc_ids": list(item.doc_ids)} if item.doc_ids else {}),
            # stated for every item with tools: an endpoint left without it allows parallel calls (OpenAI)
            **({"parallel_tool_calls": item.parallel_tool_calls} if item.tools else {}),
        },
        tools=item.tools,
    )


def example_turns(item: Item, prompt: PromptSpec) -> tuple[Message, Message]:
    """A train item as a (user, assistant) pair: a few-shot example, or a fine-tuning example."""
    return user_message(item, prompt), Message("assistant", item.reference)
