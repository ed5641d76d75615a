"""The training examples of `harness finetune`: each train item as the eval conversation plus its reference,
with `--with-retrieval` as a rag or hybrid variant sends it (its index, templates and code); a tool-calling
item in the chat template's tool format (`example`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from harness.core.errors import ConfigError, MissingDependencyError, UnknownNameError, did_you_mean
from harness.core.tools import CALL_OPEN, chat_messages, parse_calls, template_knows_tools
from harness.core.types import Request
from harness.retrieval.index import Hit
from harness.suite.items import Item
from harness.suite.load import SUITE_FILE, Suite
from harness.suite.prompts import Template, build_request
from harness.variants import BuildContext, parse_variant
from harness.variants.rag import RETRIEVING_KINDS, RagVariant, render_context, with_context


@dataclass(frozen=True)
class TrainRetrieval:
    """What `--with-retrieval` puts into the train prompts: one rag/hybrid variant's settings and its index."""

    variant: str
    config: RagVariant.Config
    index: Any  # harness.retrieval.index.Index
    index_info: dict[str, Any]


@dataclass(frozen=True)
class TrainRow:
    item: Item
    request: Request  # what the model is trained on: the eval conversation, context included
    hits: tuple[Hit, ...] = ()


def training_examples(
    suite: Suite, limit: int | None = None, retrieval: TrainRetrieval | None = None, native: bool = False
) -> list[dict[str, Any]]:
    """Prompt-completion conversations, built exactly as the eval requests are (with `retrieval`: as that
    variant sends them); `native`: the chat template renders tools (`example`)."""
    return [example(row, native) for row in train_rows(suite, limit, retrieval)]


def train_rows(suite: Suite, limit: int | None = None, retrieval: TrainRetrieval | None = None) -> list[TrainRow]:
    """Each train item's request as `build_request` makes it for eval; with `retrieval`, its query's top-k
    hits wrapped into the last user message by the rag variant's own functions."""
    items = suite.train_items[:limit] if limit else suite.train_items
    rows = []
    for item in items:
        request = build_request(item, suite.prompt, suite.params)
        if retrieval is None:
            rows.append(TrainRow(item, request))
            continue
        hits = tuple(retrieval.index.search(request.query, retrieval.config.top_k))
        context = render_context(hits, Template(retrieval.config.chunk_template))
        rows.append(TrainRow(item, with_context(request, context, Template(retrieval.config.template)), hits))
    return rows


def example(row: TrainRow, native: bool = False) -> dict[str, Any]:
    """A prompt-completion conversation; the loss falls on the completion, the assistant turn, only.

    A tool-calling item trains on the chat template's tool format: where the template knows tools
    (`native`, template_knows_tools), the prompt's messages as it takes them, the reference parsed back
    into the assistant message's `tool_calls`, and a `tools` column, which TRL passes to the template
    (as JSON text: one Arrow column cannot hold every tool list's schema); otherwise the tools in the system
    prompt and the reference's <tool_call> text as the answer (harness.core.tools.chat_messages).
    """
    messages, tools = chat_messages(row.request, native)
    if not tools:  # no tools, or a template that knows none: the answer is the reference text
        return {"prompt": messages, "completion": [{"role": "assistant", "content": row.item.reference}]}
    return {"prompt": messages, "completion": [native_answer(row.item.reference)], "tools": json.dumps(tools)}


def native_answer(reference: str) -> dict[str, Any]:
    """The assistant message a reference is the text of: its content and calls (arguments as JSON values,
    as the templates render them); a reference that calls nothing is plain content (a rejection)."""
    calls = [call for call in parse_calls(reference) if call.valid]
    if not calls:
        return {"role": "assistant", "content": reference}
    content = reference.split(CALL_OPEN, 1)[0].strip()
    tool_calls = [{"type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls]
    return {"role": "assistant", "content": content, "tool_calls": tool_calls}


def template_native(tokenizer: Any) -> bool:
    """Whether a tokenizer's chat template renders tools (the `native` of `example`)."""
    return template_knows_tools(getattr(tokenizer, "chat_template", None))


def training_dataset(examples: Sequence[dict[str, Any]]) -> Any:
    """The examples as the datasets.Dataset the trainer reads. Arrow gives a column one type for all rows, so
    the argument objects of different tools would be merged into one struct, each call gaining the others'
    keys as nulls: conversations with tool calls are stored as JSON instead (datasets' Json feature)."""
    from datasets import Dataset

    if not any("tools" in e for e in examples):
        return Dataset.from_list(list(examples))  # as it always was
    try:
        from datasets import Features, Json, Value
    except ImportError:  # a recent feature: pyproject allows datasets releases older than it
        import datasets

        raise MissingDependencyError(
            f"training tool calls natively needs datasets' Json feature (datasets {datasets.__version__} has none)",
            "",
            "pip install -U datasets",
        ) from None

    rows = [{"prompt": e["prompt"], "completion": e["completion"], "tools": e.get("tools")} for e in examples]
    return Dataset.from_list(
        rows, features=Features({"prompt": Json(), "completion": Json(), "tools": Value("string")})
    )


def retrieval_variant(suite: Suite, name: str | None = None) -> tuple[str, RagVariant.Config]:
    """The rag/hybrid variant whose prompts `--with-retrieval` trains on: `name`, or the suite's only hybrid."""
    tables = suite.config.variants
    where = str(suite.dir / SUITE_FILE)
    if name is None:
        hybrids = [n for n, table in tables.items() if table.get("kind") == "hybrid"]
        if len(hybrids) != 1:
            raise ConfigError(
                f"--with-retrieval: the suite declares {len(hybrids) or 'no'} hybrid variants"
                + (f" ({', '.join(hybrids)})" if hybrids else ""),
                f"{where} [variants]",
                f"name one: --with-retrieval {hybrids[0]}" if hybrids else "declare one, or name a rag variant",
            )
        name = hybrids[0]
    if name not in tables:
        raise UnknownNameError(f"--with-retrieval: unknown variant '{name}'", where, did_you_mean(name, tables))
    kind = tables[name].get("kind")
    if kind not in RETRIEVING_KINDS:
        retrieving = [n for n, table in tables.items() if table.get("kind") in RETRIEVING_KINDS]
        raise ConfigError(
            f"--with-retrieval: variant '{name}' is kind '{kind}', not rag or hybrid",
            f"{where} [variants.{name}]",
            f"name one of {', '.join(retrieving)}" if retrieving else "declare a rag or hybrid variant",
        )
    _, config = parse_variant(name, tables[name], where, suite.dir, warn=False)
    return name, config


@contextmanager
def open_retrieval(suite: Suite, name: str | None = None) -> Iterator[TrainRetrieval]:
    """The variant's index over the suite's knowledge base (built or read from the cache as a run does),
    closed when the block ends."""
    variant, config = retrieval_variant(suite, name)
    context = BuildContext(suite, suite.config.variants, str(suite.dir / SUITE_FILE), suite.dir)
    try:
        index, info = context.retrieval_index(config.retriever)
        yield TrainRetrieval(variant, config, index, info)
    finally:
        context.close()


def retrieval_record(retrieval: TrainRetrieval, rows: Sequence[TrainRow]) -> dict[str, Any]:
    """training.json `retrieval`: what the adapter saw, and how often its gold documents were in it (recall@k
    as the eval metric defines it, over the train items that carry doc_ids; None when none do)."""
    recalls = [
        len(set(row.item.doc_ids) & {h.doc_id for h in row.hits}) / len(set(row.item.doc_ids))
        for row in rows
        if row.item.doc_ids
    ]
    return {
        "variant": retrieval.variant,
        "retriever": retrieval.config.retriever,
        "top_k": retrieval.config.top_k,
        "template": retrieval.config.template,
        "chunk_template": retrieval.config.chunk_template,
        "index": retrieval.index_info,
        "items_with_doc_ids": len(recalls),
        "train_recall_at_k": round(sum(recalls) / len(recalls), 4) if recalls else None,
    }


def check_lengths(lengths: Sequence[int], max_length: int) -> None:
    """Refuse examples longer than max_length: the trainer keeps their start and cuts the completion, the
    only part with a loss, so they would train on nothing (retrieved context makes prompts that long)."""
    longer = [n for n in lengths if n > max_length]
    if longer:
        raise ConfigError(
            f"{len(longer)} of {len(lengths)} train examples are longer than max_length {max_length} tokens "
            f"(longest {max(longer)}): their completions would be cut off",
            "harness finetune options key 'max_length'",
            f"pass --max-length {-(-(max(longer) + 8) // 64) * 64}, or retrieve fewer or shorter chunks",
        )


def token_count(tokenizer: Any, example: dict[str, Any]) -> int:
    conversation = example["prompt"] + example["completion"]
    tools = example.get("tools")
    extra = {"tools": json.loads(tools) if isinstance(tools, str) else tools} if tools else {}  # as TRL passes it
    return len(tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True, **extra)["input_ids"])
