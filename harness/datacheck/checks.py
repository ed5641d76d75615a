"""The checks over sets of records: duplicates, contradictions, leakage, label balance, lengths, size.

A `Pool` is the records of one role (all train files, all eval files, or one file of unknown role).
Exact checks group by a hash of the normalized input, in one pass. Near duplicates are TF-IDF vectors
over word uni- and bigrams (scikit-learn) compared by sparse products in row chunks (with the AllPairs
prefix filter, so that common words do not make the products dense), keeping only each row's best
match: no pairwise Python loops, and memory bounded however similar the data is.

Severity rules (docs/check-data.md): anything that makes eval numbers wrong or a run fail is an
error (leakage, contradictory eval references, eval prompts over the context); what weakens training or
blurs scores is a warning; guidance is info.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.datacheck.findings import Finding, Findings, Severity, file_of
from harness.datacheck.reading import (
    Record,
    normalize,
    records_of,
    suite_layout,
    text_key,
)

if TYPE_CHECKING:
    from harness.suite.load import Suite

SIMILARITY = 0.9  # cosine of TF-IDF word 1-2 grams from which two inputs are near duplicates
SIMILARITY_CHARS = 20_000  # only the start of a long input is vectorized
LORA_MIN, LORA_COMFORTABLE, FULL_FINETUNE_MIN = 50, 100, 500
RARE_CLASS, IMBALANCE_RATIO = 5, 0.1
MAX_CLASSES = 20  # outputs with at most this many distinct values are treated as class labels
OUTLIER_IQRS = 5.0  # a length beyond median + 5 * IQR is an outlier
_SHOWN = 5
_PAIRS_PER_BATCH = 200_000


@dataclass
class Pool:
    """The records of one role; token counts are filled in before the length checks."""

    role: str  # "train", "eval" or "data"
    file: str  # where findings about the pool as a whole are listed
    records: list[Record]
    keys: list[bytes] = field(default_factory=list)  # normalized input hashes
    tokens_in: Any = None  # numpy int arrays, one count per record
    tokens_out: Any = None

    def __post_init__(self) -> None:
        if not self.keys:
            self.keys = [text_key(record.input) for record in self.records]


@dataclass(frozen=True)
class Limits:
    """How many tokens an eval prompt and a training example may have, and why."""

    eval_tokens: int
    train_tokens: int
    eval_reason: str
    train_reason: str


def estimate_tokens(texts: list[str]) -> np.ndarray:
    return np.fromiter(((len(text) + 3) // 4 for text in texts), dtype=np.int64, count=len(texts))


def _places(records: list[Record], file: str) -> str:
    return _some_of([f"line {r.where.rpartition(':')[2]}" if file_of(r.where) == file else r.where for r in records])


def exact_checks(pool: Pool, out: Findings) -> None:
    """Same normalized input twice: a duplicate (same output) or a contradiction (different outputs)."""
    groups: dict[bytes, list[int]] = defaultdict(list)
    for index, key in enumerate(pool.keys):
        groups[key].append(index)
    for indexes in groups.values():
        if len(indexes) > 1:
            _same_input(pool, [pool.records[i] for i in indexes], out)


def _same_input(pool: Pool, records: list[Record], out: Findings) -> None:
    first, file = records[0], file_of(records[0].where)
    by_answer: dict[tuple[bytes, bytes], list[Record]] = defaultdict(list)
    for record in records:
        by_answer[(text_key(record.output), text_key(record.rejected or ""))].append(record)
    for copies in by_answer.values():
        if len(copies) > 1:
            out.add(
                "warning",
                "duplicate",
                f"duplicate (same normalized input and output): also at {_places(copies[1:], file)}",
                copies[0].where,
                "drop the copies: they over-weight one example in training and in scores",
            )
    if first.rejected is not None:  # preference data: several pairs per prompt are normal
        chosen = {text_key(r.output) for r in records}
        if chosen & {text_key(r.rejected or "") for r in records}:
            out.add(
                "warning",
                "preference_conflict",
                f"an answer is chosen in one pair and rejected in another for this prompt "
                f"(pairs at {_places(records, file)})",
                first.where,
                "decide which answer is preferred",
            )
        return
    outputs = {text_key(r.output) for r in records}
    if len(outputs) > 1:
        evaluating = pool.role == "eval"
        fix = "keep one reference per input: " + ("no answer can match both" if evaluating else "training learns noise")
        out.add(
            "error" if evaluating else "warning",
            "contradiction",
            f"the same input has {len(outputs)} different outputs (also at {_places(records[1:], file)})",
            first.where,
            fix,
        )


def leakage_exact(train: Pool, eval_pool: Pool, out: Findings) -> None:
    """Eval inputs that also appear (normalized) in the training data."""
    seen: dict[bytes, int] = {}
    for index, key in enumerate(train.keys):
        seen.setdefault(key, index)
    for record, key in zip(eval_pool.records, eval_pool.keys, strict=True):
        if key in seen:
            other = train.records[seen[key]]
            same = "same" if text_key(other.output) == text_key(record.output) else "a different"
            out.add(
                "error",
                "leakage",
                f"input also in the train data, with {same} output, at {other.where}",
                record.where,
                "remove it from the train data (or from eval): eval scores would reward memorisation",
            )


def near_checks(
    pools: list[Pool], train: Pool | None, eval_pool: Pool | None, out: Findings, threshold: float = SIMILARITY
) -> None:
    """Near-duplicate inputs inside each pool (warning) and between train and eval (leakage, error)."""
    texts = [record.input for pool in pools for record in pool.records]
    if len(texts) < 2:
        return
    vectors = _vectors(texts)
    rows: dict[int, Any] = {}
    start = 0
    for pool in pools:
        rows[id(pool)] = vectors[start : start + len(pool.records)]
        start += len(pool.records)
    for pool in pools:
        _near_in_pool(pool, rows[id(pool)], out, threshold)
    if train is not None and eval_pool is not None and train.records and eval_pool.records:
        matches = _best_matches(
            rows[id(eval_pool)], rows[id(train)], _ints(eval_pool.keys), _ints(train.keys), threshold
        )
        for row, col, score in matches:
            record, other = eval_pool.records[row], train.records[col]
            out.add(
                "error",
                "near_leakage",
                f"input nearly identical (cosine {score:.2f}) to train data at {other.where}",
                record.where,
                "remove or rewrite one of them: eval scores would reward memorisation",
            )


def _vectors(texts: list[str]) -> Any:
    """Unit TF-IDF rows, columns ordered from the most to the least common feature (for _split)."""
    from scipy.sparse import csr_matrix
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

    hashed = HashingVectorizer(
        preprocessor=lambda text: normalize(text[:SIMILARITY_CHARS]),
        ngram_range=(1, 2),
        n_features=1 << 20,
        alternate_sign=False,
        norm=None,
        dtype=np.float32,
    ).transform(texts)
    vectors = TfidfTransformer(sublinear_tf=True).fit_transform(hashed).tocsr()
    rank = np.empty(vectors.shape[1], dtype=np.int32)
    rank[np.argsort(-np.bincount(vectors.indices, minlength=vectors.shape[1]), kind="stable")] = np.arange(len(rank))
    ordered = csr_matrix((vectors.data, rank[vectors.indices], vectors.indptr), shape=vectors.shape)
    ordered.sort_indices()
    return ordered


def _split(a: Any, alpha: float) -> tuple[Any, Any, np.ndarray]:
    """Each row's leading (most common) features up to a norm below `alpha`, the rest, and that norm.
    Common features make sparse products dense; the prefix part of a dot product is at most its norm,
    so rows whose suffix parts score under threshold - norm cannot reach the threshold (AllPairs, Bayardo 2007)."""
    running = np.cumsum(a.data.astype(np.float64) ** 2)
    before = np.concatenate(([0.0], running))[a.indptr[:-1]]
    within = running - np.repeat(before, np.diff(a.indptr))
    parts = []
    for mask in (within < alpha**2, within >= alpha**2):
        part = a.copy()
        part.data = np.where(mask, a.data, 0.0)
        part.eliminate_zeros()
        parts.append(part)
    norms = np.sqrt(np.asarray(parts[0].multiply(parts[0]).sum(axis=1)).ravel())
    return parts[0], parts[1], norms


def _ints(keys: list[bytes]) -> np.ndarray:
    return np.array([int.from_bytes(key[:8], "little", signed=True) for key in keys], dtype=np.int64)


def _best_matches(
    a: Any, b: Any, key_a: np.ndarray, key_b: np.ndarray, threshold: float
) -> list[tuple[int, int, float]]:
    """For each row of `a`, its most similar row of `b` at >= threshold whose normalized text differs
    (equal texts are the exact checks' business). Exact: candidates come from the rare features, their
    cosines are completed with the common ones. Rows in chunks bound the memory of each product."""
    prefix, suffix, bound = _split(a, threshold / 2)
    b_t = b.T.tocsr()
    step = max(64, 4_000_000 // max(b.shape[0], 1))
    found: list[tuple[int, int, float]] = []
    for start in range(0, a.shape[0], step):
        product = (suffix[start : start + step] @ b_t).tocoo()
        rows, cols, values = product.row + start, product.col, product.data
        keep = (values >= threshold - bound[rows] - 1e-6) & (key_a[rows] != key_b[cols])
        rows, cols, values = rows[keep], cols[keep], values[keep].astype(np.float64)
        for part in range(0, len(rows), _PAIRS_PER_BATCH):  # the common features' share, in bounded batches
            pairs = slice(part, part + _PAIRS_PER_BATCH)
            values[pairs] += np.asarray(prefix[rows[pairs]].multiply(b[cols[pairs]]).sum(axis=1)).ravel()
        keep = values >= threshold - 1e-6
        rows, cols, values = rows[keep], cols[keep], values[keep]
        order = np.lexsort((-values, rows))
        rows, cols, values = rows[order], cols[order], values[order]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = rows[1:] != rows[:-1]
        found.extend(zip(rows[first].tolist(), cols[first].tolist(), values[first].tolist(), strict=True))
    return found


def _near_in_pool(pool: Pool, vectors: Any, out: Findings, threshold: float) -> None:
    keys = _ints(pool.keys)
    parent = list(range(len(pool.records)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for row, col, _ in _best_matches(vectors, vectors, keys, keys, threshold):
        parent[root(row)] = root(col)
    clusters: dict[int, list[int]] = defaultdict(list)
    for index in range(len(pool.records)):
        clusters[root(index)].append(index)
    for members in sorted((m for m in clusters.values() if len(m) > 1), key=lambda m: m[0]):
        records = [pool.records[i] for i in members]
        differ = len({text_key(r.output) for r in records}) > 1
        note = "; their outputs differ, check the labels" if differ else ""
        out.add(
            "warning",
            "near_duplicate",
            f"near-duplicate input (cosine >= {threshold:g}): also at "
            f"{_places(records[1:], file_of(records[0].where))}{note}",
            records[0].where,
            "drop or rewrite the copies: they over-weight one example",
        )


def balance(pool: Pool, out: Findings) -> None:
    """Labels (or classification-like outputs): a class under 10% of the largest, or under 5 examples."""
    labels = [r.label for r in pool.records if r.label is not None]
    source = "label"
    if len(labels) < len(pool.records) / 2:
        labels, source = [r.output.strip() for r in pool.records], "output"
        if not 2 <= len(set(labels)) <= min(MAX_CLASSES, len(labels) // 4):
            return
    counts = Counter(labels)
    if len(counts) < 2:
        return
    (big, most), (small, least) = counts.most_common()[0], counts.most_common()[-1]
    if least < IMBALANCE_RATIO * most:
        out.add(
            "warning",
            "label_imbalance",
            f"{source}s are imbalanced: '{_cut(small)}' has {_n(least, 'item')}, '{_cut(big)}' {most}",
            pool.file,
            "add examples of the rare classes; judge eval by per-class metrics (macro F1)",
            pool.file,
        )
    rare = [(label, n) for label, n in sorted(counts.items(), key=lambda kv: (kv[1], kv[0])) if n < RARE_CLASS]
    if rare:
        shown = _some_of([f"'{_cut(label)}' ({n})" for label, n in rare])
        out.add(
            "warning",
            "rare_label",
            f"{len(rare)} {source} value(s) with fewer than {RARE_CLASS} examples: {shown}",
            pool.file,
            "add examples, or merge rare classes: a few items say little",
            pool.file,
        )


def unseen_labels(train: Pool, eval_pool: Pool, out: Findings) -> None:
    known = {r.label for r in train.records if r.label is not None}
    missing = Counter(r.label for r in eval_pool.records if r.label is not None and r.label not in known)
    if known and missing:
        shown = _some_of([f"'{_cut(label)}' ({n})" for label, n in missing.most_common()])
        out.add(
            "warning",
            "unseen_label",
            f"{len(missing)} eval label(s) never seen in the train data: {shown}",
            eval_pool.file,
            "add train examples of them, or expect fine-tuning to miss them",
            eval_pool.file,
        )


def _some_of(names: list[str]) -> str:
    """The first few of a list, then how many more: a count and the names listed always agree."""
    more = len(names) - _SHOWN
    return ", ".join(names[:_SHOWN]) + (f" and {more} more" if more > 0 else "")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _cut(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def length_checks(pool: Pool, limits: Limits, measured: bool, out: Findings) -> None:
    """Near-empty inputs, length outliers (median + 5 IQR) and items beyond the context."""
    for record in pool.records:
        if len(record.input.strip()) < 3:
            out.add(
                "warning",
                "near_empty",
                f"input is only {record.input.strip()!r}",
                record.where,
                "check the record: there is next to nothing to answer",
            )
    unit = "tokens" if measured else "tokens (estimated)"
    for part, counts in (("input", pool.tokens_in), ("output", pool.tokens_out)):
        if len(counts) < 8:
            continue
        low, median, high = np.percentile(counts, [25, 50, 75])
        cutoff = median + OUTLIER_IQRS * max(high - low, 1.0)
        for index in np.flatnonzero(counts > cutoff)[:1000]:
            out.add(
                "warning",
                "length_outlier",
                f"{part} of {counts[index]} {unit}, far above the typical {median:.0f} (cutoff {cutoff:.0f})",
                pool.records[index].where,
                "check for pasted logs, concatenated records or a runaway output",
            )
    _context(pool, limits, measured, out)


def _context(pool: Pool, limits: Limits, measured: bool, out: Findings) -> None:
    evaluating = pool.role == "eval"
    budget = limits.eval_tokens if evaluating else limits.train_tokens
    totals = pool.tokens_in if evaluating else pool.tokens_in + pool.tokens_out
    severity: Severity = "error" if evaluating and measured else "warning"
    sign = "" if measured else "~"
    over = np.flatnonzero(totals > budget)
    if len(over) > 1000:  # counted, not worded: only the first MAX_PER_KIND are listed anyway
        out.add_unlisted(severity, "too_long", pool.file, len(over) - 1000)
    for index in over[:1000]:
        if evaluating:
            message = f"prompt of {sign}{totals[index]} tokens is over the {budget}-token budget ({limits.eval_reason})"
            fix = "shorten it, or raise [engine] max_model_len (or --max-len)"
        else:
            message = (
                f"example of {sign}{totals[index]} tokens is over {budget} ({limits.train_reason}): it gets truncated"
            )
            fix = "shorten it or drop it: truncation can cut off the answer the model should learn"
        out.add(severity, "too_long", message, pool.records[index].where, fix)


def size_guidance(pool: Pool, out: Findings) -> None:
    """How many examples the fine-tuning guides want; how wide an eval set's confidence intervals are."""
    n = len(pool.records)
    if pool.role == "train":
        if n < LORA_MIN:
            out.add(
                "warning",
                "too_few_for_lora",
                f"{n} training examples: too few for LoRA (the guides want {LORA_MIN}-{LORA_COMFORTABLE}+)",
                pool.file,
                "collect more, or prefer few-shot prompting or RAG",
                pool.file,
            )
        elif n < LORA_COMFORTABLE:
            out.add(
                "info",
                "few_for_lora",
                f"{n} training examples: enough to try LoRA; {LORA_COMFORTABLE}+ is safer",
                pool.file,
                "",
                pool.file,
            )
        if LORA_MIN <= n < FULL_FINETUNE_MIN:
            out.add(
                "info",
                "small_for_full_finetune",
                f"{n} training examples: full fine-tuning usually wants {FULL_FINETUNE_MIN}+",
                pool.file,
                "prefer LoRA at this size",
                pool.file,
            )
    elif pool.role == "eval" and 0 < n < 100:
        half = 100 * 1.96 * math.sqrt(0.25 / n)
        out.add(
            "info",
            "small_eval",
            f"{n} eval items: an accuracy near 50% has a 95% CI of about +/-{half:.0f} points",
            pool.file,
            "add items to tell variants apart",
            pool.file,
        )


def suite_limits(config: Any, max_len: int | None = None) -> Limits:
    """Token budgets from a SuiteConfig: [engine] max_model_len minus [generation] max_tokens for eval
    prompts; for training examples the same context, capped by `harness finetune`'s max_length."""
    from harness.finetune import FinetuneConfig

    context = max_len or config.engine.max_model_len
    source = "--max-len" if max_len else "max_model_len"
    max_tokens = config.generation.max_tokens
    train = FinetuneConfig().max_length
    return Limits(
        context - max_tokens,
        min(context, train),
        f"{source} {context} - max_tokens {max_tokens}",
        f"harness finetune max_length {train}" if train < context else f"{source} {context}",
    )


def fast_checks(suite: Suite) -> list[Finding]:
    """The cheap checks, for `harness run` before it generates: exact duplicates, contradictions and
    leakage by normalized-input hash, empty fields, size guidance and context length by a characters/4
    estimate. No tokenizer, no scikit-learn: well under a second for 10k items."""
    layout = suite_layout(suite.config)
    config, out = suite.config, Findings()
    pools = []
    for role, items, name in (
        ("eval", suite.eval_items, config.data.eval),
        ("train", suite.train_items, config.data.train),
    ):
        if name is None:
            continue
        file = file_of(items[0].source) if items and items[0].source else str(Path(suite.dir) / name)
        for item in items:
            empty = [
                key
                for key in layout.template.fields()
                if isinstance(item.fields.get(key), str) and not item.fields[key].strip()
            ]
            if empty or not item.reference.strip():
                what = f"'{empty[0]}'" if empty else "the reference"
                out.add(
                    "error",
                    "empty_field",
                    f"{what} is empty or whitespace",
                    item.source,
                    "fill it in or drop the record",
                )
        pool = Pool(role, file, records_of(items, layout))
        pool.tokens_in = estimate_tokens([r.prompt_text for r in pool.records])
        pool.tokens_out = estimate_tokens([r.output for r in pool.records])
        exact_checks(pool, out)
        size_guidance(pool, out)
        _context(pool, suite_limits(config), False, out)
        pools.append(pool)
    if len(pools) == 2:
        leakage_exact(pools[1], pools[0], out)
    return out.result()
