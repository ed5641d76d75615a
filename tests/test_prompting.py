"""The prompted variant's stronger settings without an engine: similar-example few-shot (which examples,
never the eval split) and reasoning prompts (what is scored, what is kept). Real engine: test_rag.py."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.core.errors import ConfigError
from harness.core.types import Generation, Request
from harness.engines import Adapter
from harness.engines.models import ResolvedModel
from harness.suite.prompts import build_request
from harness.variants import BuildContext, build_variant, check_variants, load_suite
from harness.variants.reasoning import INSTRUCTION

TOPICS = {
    "t-router": "my router keeps dropping the wifi connection at night",
    "t-refund": "I want a refund for the camera I returned last week",
    "t-invoice": "please send the invoice for my business order again",
    "t-password": "I forgot the password of my account and cannot log in",
    "t-delivery": "the delivery of my parcel is late by three days",
}


class ScriptedEngine:
    backend = "fake"
    model = ResolvedModel("m", "m", "hash:m")

    def __init__(self, text: str = "ok") -> None:
        self.sent: list[Request] = []
        self.text = text

    def generate(self, requests: Sequence[Request], adapter: Adapter | None = None) -> list[Generation]:
        self.sent.extend(requests)
        return [Generation(self.text, completion_tokens=9) for _ in requests]


def _write_suite(root: Path, eval_rows: list[dict], train_rows: list[dict]) -> Path:
    root.mkdir()
    (root / "suite.toml").write_text(
        'name = "s"\nmetrics = ["exact_match"]\n[data]\neval = "eval.jsonl"\ntrain = "train.jsonl"\n'
        '[prompt]\ntemplate = "Ticket: {text}"\nquery = "{text}"\n'
    )
    for name, rows in (("eval", eval_rows), ("train", train_rows)):
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture
def ticket_suite(tmp_path: Path) -> Path:
    train = [{"id": i, "text": t, "output": i.removeprefix("t-")} for i, t in TOPICS.items()]
    evals = [
        {"id": "e-router", "text": "wifi on the router drops every night", "output": "router"},
        {"id": "e-invoice", "text": "send my business invoice again please", "output": "invoice"},
        # the very text of a train item: showing that item would show the model its answer
        {"id": "e-copy", "text": TOPICS["t-refund"], "output": "refund"},
    ]
    return _write_suite(tmp_path / "tickets", evals, train)


def _build(suite_dir: Path, table: dict, engine: ScriptedEngine):
    suite = load_suite(suite_dir)
    context = BuildContext(suite, {"p": table}, "suite.toml", suite.dir)
    context.engine = lambda model=None, backend=None: engine  # type: ignore[method-assign]
    requests = [build_request(item, suite.prompt, suite.params) for item in suite.eval_items]
    return suite, build_variant("p", context), requests


def test_similar_few_shot_shows_each_item_its_nearest_train_examples(ticket_suite: Path) -> None:
    engine = ScriptedEngine()
    table = {"kind": "prompted", "few_shot": 2, "few_shot_select": "similar"}
    suite, variant, requests = _build(ticket_suite, table, engine)
    generations = variant.generate(requests)
    shown = {g_request.id: g.metadata["few_shot_ids"] for g_request, g in zip(requests, generations)}
    assert shown["e-router"][-1] == "t-router"  # the nearest sits next to the question
    assert shown["e-invoice"][-1] == "t-invoice"
    assert all(len(ids) == 2 for ids in shown.values())
    sent = {r.id: r for r in engine.sent}
    # the examples are in the prompt as user/assistant turns, in the order recorded
    assert [m.content for m in sent["e-router"].messages if m.role == "user"][:2] == [
        f"Ticket: {TOPICS[i]}" for i in shown["e-router"]
    ]
    assert variant.describe()["few_shot_select"] == "similar"


def test_similar_few_shot_never_shows_an_eval_item_or_its_own_copy(ticket_suite: Path) -> None:
    """Leakage: every example comes from the train split, and a train item with the eval item's own
    text is never its example."""
    engine = ScriptedEngine()
    suite, variant, requests = _build(
        ticket_suite, {"kind": "prompted", "few_shot": 4, "few_shot_select": "similar"}, engine
    )
    generations = variant.generate(requests)
    train_ids = {item.id for item in suite.train_items}
    eval_ids = {item.id for item in suite.eval_items}
    for request, generation in zip(requests, generations):
        ids = generation.metadata["few_shot_ids"]
        assert set(ids) <= train_ids and not set(ids) & eval_ids
        own = request.messages[-1].content
        assert own not in [m.content for m in engine.sent[requests.index(request)].messages[:-1]]
    copy = dict(zip([r.id for r in requests], generations))["e-copy"]
    assert "t-refund" not in copy.metadata["few_shot_ids"]


def test_random_few_shot_records_the_same_ids_for_every_item(ticket_suite: Path) -> None:
    _, variant, requests = _build(ticket_suite, {"kind": "prompted", "few_shot": 2}, ScriptedEngine())
    ids = {tuple(g.metadata["few_shot_ids"]) for g in variant.generate(requests)}
    assert len(ids) == 1 and len(next(iter(ids))) == 2


def test_an_unknown_selection_is_refused_at_load(ticket_suite: Path) -> None:
    suite = load_suite(ticket_suite)
    with pytest.raises(ConfigError) as caught:
        check_variants(suite, {"p": {"kind": "prompted", "few_shot_select": "nearest"}}, "suite.toml", suite.dir)
    assert "few_shot_select" in str(caught.value)


def test_reasoning_scores_the_final_answer_and_keeps_the_reasoning(ticket_suite: Path) -> None:
    engine = ScriptedEngine("The wifi drops at night, so it is the router.\nAnswer: router")
    table = {"kind": "prompted", "few_shot": 0, "reasoning": True, "reasoning_max_tokens": 300}
    _, variant, requests = _build(ticket_suite, table, engine)
    generation = variant.generate(requests[:1])[0]
    assert generation.text == "router"
    assert generation.metadata["reasoning"] == "The wifi drops at night, so it is the router."
    assert generation.metadata["final_answer_found"] is True
    assert generation.completion_tokens == 9  # the reasoning's tokens stay counted, and costed
    sent = engine.sent[0]
    assert sent.messages[0].role == "system" and INSTRUCTION in sent.messages[0].content
    assert sent.params.max_tokens == 300
    assert variant.describe()["reasoning"] == {"max_tokens": 300}


def test_reasoning_without_a_final_answer_is_an_empty_answer(ticket_suite: Path) -> None:
    """A ramble that never gives the answer line is a miss, even if it mentions the right word."""
    _, variant, requests = _build(
        ticket_suite, {"kind": "prompted", "few_shot": 0, "reasoning": True}, ScriptedEngine("maybe the router")
    )
    generation = variant.generate(requests[:1])[0]
    assert generation.text == "" and generation.metadata["final_answer_found"] is False
    assert generation.metadata["reasoning"] == "maybe the router"


def test_reasoning_reads_the_last_answer_line(ticket_suite: Path) -> None:
    text = "Answer: refund? No.\nIt drops at night.\nAnswer: router\n"
    _, variant, requests = _build(
        ticket_suite, {"kind": "prompted", "few_shot": 0, "reasoning": True}, ScriptedEngine(text)
    )
    assert variant.generate(requests[:1])[0].text == "router"
