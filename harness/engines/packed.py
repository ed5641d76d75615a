"""Log-likelihoods with the least forward work: requests packed into prefix trees, padded batches of trees.

Where the time goes when each (context, continuation) is its own sequence (docs/engine-notes.md, "Where
log-likelihood time goes"): a 4-ending HellaSwag item computes its context four times, a 5-shot MMLU
subject computes the same five examples for every question, and the output head runs over every
position although only the continuation's are read. Here the requests are sorted by their tokens, so
those sharing a prefix sit side by side, and laid out as a token tree: each shared prefix appears once,
each token attends only to its ancestors (a 4-D attention mask) at its depth in the tree (position ids),
so every score equals the one of the full sequence alone, up to float rounding. The output head and
log-softmax run only at the positions that predict a continuation token.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

TokenPair = tuple[Sequence[int], Sequence[int]]  # (context, continuation) token ids

# Attention over a row costs its length squared (a dense mask: no flash kernel), its layers its length.
# In units of one token through the layers, one (query, key) pair costs about 2 * hidden * layers /
# parameters (2.6e-4 for the embedded 135M model; 2.3e-4 measured on the 2-core EPYC): rows hold what
# shares a prefix, and a sequence that shares little starts a row of its own.
PAIR_COST = 2.5e-4  # when the model's config does not say
ROW_TOKENS = 2048  # at most, per row (a longer request gets a row of its own)
BATCH_TOKENS = 2048  # rows padded into one forward: enough work per matmul to keep the cores busy
# Head positions per chunk: the float32 logits of 1,000 HellaSwag items' endings at once are 2.8 GB (a 49k
# vocabulary); 64 positions are 12.6 MB, and the argmax and log-softmax passes over them ran ~1.4x faster
# on the 2-core AMX Xeon (numbers unchanged: the same ops, row by row).
HEAD_CHUNK = 64


@dataclass(frozen=True)
class PackedRow:
    """One forward pass: a prefix tree of `requests` (indexes into the caller's pairs)."""

    requests: tuple[int, ...]
    tokens: tuple[int, ...]  # one per tree node, in depth-first order
    parents: tuple[int, ...]  # each node's parent node, -1 for a root
    depths: tuple[int, ...]  # each node's position in its own sequence
    # per request, the nodes of its context + continuation (the last token is never an input)
    paths: tuple[tuple[int, ...], ...]


def pack(pairs: Sequence[TokenPair], pair_cost: float = PAIR_COST, row_tokens: int = ROW_TOKENS) -> list[PackedRow]:
    """Prefix-tree rows: a sequence joins the current row when the nodes it adds there (its unshared
    tail, plus the attention it adds over the whole row) cost less than a row of its own."""
    inputs = [(*context, *continuation)[:-1] for context, continuation in pairs]
    order = sorted(range(len(pairs)), key=lambda i: inputs[i])
    rows: list[PackedRow] = []
    builder = _RowBuilder()
    previous: tuple[int, ...] = ()
    for index in order:
        sequence = inputs[index]
        shared = _common_prefix(previous, sequence)
        size, added = len(builder.tokens), len(sequence) - shared
        joined = added + pair_cost * ((size + added) ** 2 - size**2)
        alone = len(sequence) + pair_cost * len(sequence) ** 2
        if builder.requests and (size + added > row_tokens or joined > alone):
            rows.append(builder.row())
            builder, shared = _RowBuilder(), 0
        builder.add(index, sequence, shared)
        previous = sequence
    if builder.requests:
        rows.append(builder.row())
    return rows


def batches(rows: Sequence[PackedRow], batch_tokens: int = BATCH_TOKENS) -> list[list[PackedRow]]:
    """Rows of similar length together, as many as fit `batch_tokens` padded (at least one)."""
    ordered = sorted(rows, key=lambda row: -len(row.tokens))
    groups: list[list[PackedRow]] = []
    for row in ordered:  # longest first: a group's first row sets its padded width
        if groups and len(groups[-1][0].tokens) * (len(groups[-1]) + 1) <= batch_tokens:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


def pair_cost_of(model: Any) -> float:
    """One attention (query, key) pair's cost in tokens through the layers, from the model's shape."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    hidden, layers = getattr(config, "hidden_size", None), getattr(config, "num_hidden_layers", None)
    if not isinstance(hidden, int) or not isinstance(layers, int):
        return PAIR_COST
    parameters = sum(p.numel() for p in model.parameters())
    return 2 * hidden * layers / max(parameters, 1)


class _RowBuilder:
    def __init__(self) -> None:
        self.requests: list[int] = []
        self.tokens: list[int] = []
        self.parents: list[int] = []
        self.depths: list[int] = []
        self.paths: list[tuple[int, ...]] = []
        self.path: list[int] = []  # the nodes of the last sequence added

    def add(self, index: int, sequence: Sequence[int], shared: int) -> None:
        """Sorted order makes the previous sequence the one sharing the longest prefix with this one."""
        del self.path[shared:]
        for depth in range(shared, len(sequence)):
            self.parents.append(self.path[-1] if self.path else -1)
            self.depths.append(depth)
            self.tokens.append(sequence[depth])
            self.path.append(len(self.tokens) - 1)
        self.requests.append(index)
        self.paths.append(tuple(self.path))

    def row(self) -> PackedRow:
        return PackedRow(
            tuple(self.requests), tuple(self.tokens), tuple(self.parents), tuple(self.depths), tuple(self.paths)
        )


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def ancestor_mask(row: PackedRow, width: int | None = None) -> Any:
    """[width, width] booleans: node i sees node j when j is i or one of its ancestors; padding past the
    row's nodes sees only itself (a row of nothing would be NaN)."""
    import numpy as np

    size = len(row.tokens)
    width = width or size
    mask = np.zeros((width, width), dtype=bool)
    for node, parent in enumerate(row.parents):
        if parent >= 0:
            mask[node] = mask[parent]  # depth-first order: the parent's row is complete
        mask[node, node] = True
    mask[np.arange(size, width), np.arange(size, width)] = True
    return mask


def score_packed(
    model: Any,
    pairs: Sequence[TokenPair],
    device: str,
    row_tokens: int = ROW_TOKENS,
    batch_tokens: int = BATCH_TOKENS,
) -> Iterator[tuple[int, float, bool]]:
    """(request index, sum of the continuation's log-probs, whether each token was the argmax), batch by
    batch.

    `model` is a transformers causal LM (a PeftModel too): its decoder runs the trees, its output head only
    the continuation positions."""
    import numpy as np
    import torch

    decoder, head = model.get_decoder(), model.get_output_embeddings()
    for group in batches(pack(pairs, pair_cost_of(model), row_tokens), batch_tokens):
        width = len(group[0].tokens)
        pad = [0] * width
        ids = [list(row.tokens) + pad[len(row.tokens) :] for row in group]
        positions = [list(row.depths) + pad[len(row.depths) :] for row in group]
        mask = np.stack([ancestor_mask(row, width) for row in group])
        hidden = decoder(
            input_ids=torch.tensor(ids, device=device),
            position_ids=torch.tensor(positions, device=device),
            attention_mask=torch.from_numpy(mask).to(device)[:, None],
            use_cache=False,
        ).last_hidden_state.reshape(len(group) * width, -1)
        positions_read: dict[int, int] = {}  # flat position -> its row in the head's input (endings share one)
        reads: list[int] = []
        targets: list[int] = []
        spans: list[tuple[int, int, int]] = []
        for offset, row in enumerate(group):
            for index, path in zip(row.requests, row.paths):
                context, continuation = pairs[index]
                # node t predicts token t + 1: the continuation is read from the context's last node on
                nodes = path[len(context) - 1 : len(context) - 1 + len(continuation)]
                spans.append((index, len(reads), len(nodes)))
                reads.extend(positions_read.setdefault(offset * width + node, len(positions_read)) for node in nodes)
                targets.extend(continuation)
        read, target = torch.tensor(reads, device=device), torch.tensor(targets, device=device)
        chosen_t, greedy_t = _read_logprobs(
            head, hidden[torch.tensor(list(positions_read), device=device)], read, target
        )
        chosen, greedy = chosen_t.tolist(), greedy_t.tolist()
        for index, start, length in spans:
            yield index, float(sum(chosen[start : start + length])), all(greedy[start : start + length])


def _read_logprobs(head: Any, hidden: Any, read: Any, target: Any) -> tuple[Any, Any]:
    """(log-prob of each target token, whether it is the argmax) at its head position (`read` indexes
    `hidden`'s rows): the output head, log-softmax and argmax over a chunk of positions at a time."""
    import torch

    chosen = torch.empty(len(read), dtype=torch.float32, device=hidden.device)
    greedy = torch.empty(len(read), dtype=torch.bool, device=hidden.device)
    for start in range(0, hidden.shape[0], HEAD_CHUNK):
        logits = head(hidden[start : start + HEAD_CHUNK]).float()
        normalizer, greedy_tokens = logits.logsumexp(-1), logits.argmax(-1)
        here = ((read >= start) & (read < start + len(logits))).nonzero()[:, 0]
        rows = read[here] - start
        chosen[here] = logits[rows, target[here]] - normalizer[rows]
        greedy[here] = greedy_tokens[rows] == target[here]
    return chosen, greedy
