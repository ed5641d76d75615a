"""Which train examples a prompted variant shows: k drawn once with a seed (one shared prefix, which the
engine's prefix cache reuses), or per item the k train items nearest to it (`few_shot_select = "similar"`).

Similar examples come from an index over the train split's retrieval queries only, never the eval split;
a train item whose query is the eval item's own is skipped (an exact copy across splits would show the
model its answer). Each sample records the ids it was shown.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from harness.core.types import Message, Request
from harness.suite.items import Item
from harness.suite.prompts import PromptSpec, build_request, example_turns

if TYPE_CHECKING:
    from harness.variants import BuildContext

FewShotSelect = Literal["random", "similar"]
SelectRetriever = Literal["bm25", "dense"]


@dataclass(frozen=True)
class Shots:
    """The examples shown to one request: their (user, assistant) turns and their train ids."""

    turns: tuple[Message, ...]
    ids: tuple[str, ...]


def shots_of(items: Sequence[Item], prompt: PromptSpec) -> Shots:
    return Shots(tuple(turn for item in items for turn in example_turns(item, prompt)), tuple(i.id for i in items))


class FixedShots:
    """The same k examples for every item, drawn once with a seed."""

    def __init__(self, train: Sequence[Item], prompt: PromptSpec, k: int, seed: int) -> None:
        self.shots = shots_of(random.Random(seed).sample(list(train), k), prompt)

    def choose(self, request: Request) -> Shots:
        return self.shots


class SimilarShots:
    """Per item, the k train items whose retrieval query is nearest to the item's (most similar last,
    next to the question). Where fewer than k share a term with it (BM25 has no order among those), the
    rest are drawn in a seeded order, so every item is shown k examples."""

    def __init__(
        self, train: Sequence[Item], prompt: PromptSpec, k: int, index: Any, queries: dict[str, str], seed: int
    ) -> None:
        self.by_id = {item.id: item for item in train}
        self.prompt = prompt
        self.k = k
        self.index = index
        self.queries = queries
        self.fill = list(self.by_id)
        random.Random(seed).shuffle(self.fill)

    def choose(self, request: Request) -> Shots:
        if self.k == 0:
            return Shots((), ())
        own = request.query.strip()
        # one extra per possible copy of the item itself; the index never holds eval items
        hits = self.index.search(request.query, min(len(self.by_id), self.k + 1))
        picked = [h.doc_id for h in hits if self.queries[h.doc_id].strip() != own][: self.k]
        extra = [i for i in self.fill if i not in picked and self.queries[i].strip() != own][: self.k - len(picked)]
        return shots_of([self.by_id[i] for i in extra + picked[::-1]], self.prompt)


def train_queries(train: Sequence[Item], prompt: PromptSpec, params: Any) -> dict[str, str]:
    """Each train item's retrieval query, built as an eval item's is."""
    return {item.id: build_request(item, prompt, params).query for item in train}


def similar_shots(k: int, retriever: SelectRetriever, seed: int, context: BuildContext) -> SimilarShots:
    """Similar-example selection over the suite's train split, its index built once per run."""
    from harness.retrieval.index import build_index
    from harness.retrieval.knowledge import Chunk

    suite = context.suite
    queries = train_queries(suite.train_items, suite.prompt, suite.params)
    indexes = context.resources.setdefault("train-examples", {})
    if retriever not in indexes:
        chunks = [Chunk(id=item_id, doc_id=item_id, text=query) for item_id, query in queries.items()]
        index, _ = build_index(retriever, chunks, suite.config.knowledge.embedding_model)
        indexes[retriever] = index
    return SimilarShots(suite.train_items, suite.prompt, k, indexes[retriever], queries, seed)
