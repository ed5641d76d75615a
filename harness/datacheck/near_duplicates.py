"""Near-duplicate inputs within a pool (warning) and near leakage between train and eval (error).

Near duplicates are TF-IDF vectors over word uni- and bigrams (scikit-learn) compared by sparse
products in row chunks (with the AllPairs prefix filter, so that common words do not make the products
dense), keeping only each row's best match: no pairwise Python loops, and memory bounded however
similar the data is. Equal normalized texts are left to the exact checks (harness.datacheck.checks).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from harness.datacheck.findings import Findings, file_of
from harness.datacheck.pool import Pool, places
from harness.datacheck.records import normalize, text_key

SIMILARITY = 0.9  # cosine of TF-IDF word 1-2 grams from which two inputs are near duplicates
SIMILARITY_CHARS = 20_000  # only the start of a long input is vectorized
_PAIRS_PER_BATCH = 200_000


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
            f"{places(records[1:], file_of(records[0].where))}{note}",
            records[0].where,
            "drop or rewrite the copies: they over-weight one example",
        )
