"""Index build time and query latency of BM25 (bm25s) and dense retrieval (sentence-transformers with the
embedded all-MiniLM-L6-v2, exact search; FAISS when installed and >= 50k chunks), at 10k and 100k chunks
of a synthetic corpus. The dense build is embedding every chunk on the CPU: minutes at 100k. Queries are searched one at a time, as a RAG variant does. Goal: BM25 p50 <= 5 ms
at 100k chunks.

    .venv/bin/python bench/bench_retrieval.py [--sizes 10000,100000] [--queries 200] [--skip-dense]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.retrieval.index import build_index  # noqa: E402
from harness.retrieval.knowledge import Chunk  # noqa: E402

GOAL_BM25_P50_MS = 5.0


def corpus(n: int, seed: int) -> list[Chunk]:
    """Chunks of 20-40 words drawn Zipf-style from the whole words of the embedding model's own
    vocabulary (so each word is one token for it, as in real English text)."""
    from harness.retrieval.index import default_embedding_dir

    rng = random.Random(seed)
    words = [w for w in (default_embedding_dir() / "vocab.txt").read_text().split() if w.isalpha() and len(w) > 2]
    rng.shuffle(words)
    vocabulary = words[:20_000]
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    chunks = []
    for i in range(n):
        text = " ".join(rng.choices(vocabulary, weights, k=rng.randint(20, 40)))
        chunks.append(Chunk(f"doc{i}#0", f"doc{i}", text))
    return chunks


def queries(chunks: list[Chunk], n: int, seed: int) -> list[tuple[str, str]]:
    """(query, doc id): six words taken from one chunk."""
    rng = random.Random(seed + 1)
    picked = rng.sample(chunks, n)
    return [(" ".join(rng.sample(c.text.split(), 6)), c.doc_id) for c in picked]


def measure(kind: str, chunks: list[Chunk], qs: list[tuple[str, str]]) -> dict[str, float]:
    started = time.perf_counter()
    index, _ = build_index(kind, chunks)  # type: ignore[arg-type]
    build_s = time.perf_counter() - started
    index.search(qs[0][0], 5)  # warm-up
    latencies, hits = [], 0
    for query, doc_id in qs:
        started = time.perf_counter()
        found = index.search(query, 5)
        latencies.append(time.perf_counter() - started)
        hits += any(h.doc_id == doc_id for h in found)
    p50, p95 = (float(x) * 1000 for x in np.percentile(latencies, [50, 95]))
    return {"build_s": build_s, "p50_ms": p50, "p95_ms": p95, "recall@5": hits / len(qs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--skip-dense", action="store_true")
    args = parser.parse_args()
    import os

    with tempfile.TemporaryDirectory() as cache:
        os.environ["HARNESS_CACHE_DIR"] = cache  # a cold cache: build times are real builds
        print(f"{'retriever':<8}{'chunks':>9}{'build s':>10}{'p50 ms':>9}{'p95 ms':>9}{'recall@5':>10}")
        for size in (int(s) for s in args.sizes.split(",")):
            chunks = corpus(size, seed=size)
            qs = queries(chunks, args.queries, seed=size)
            for kind in ("bm25", *(() if args.skip_dense else ("dense",))):
                r = measure(kind, chunks, qs)
                print(
                    f"{kind:<8}{size:>9}{r['build_s']:>10.1f}{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}{r['recall@5']:>10.3f}",
                    flush=True,
                )
                if kind == "bm25" and size >= 100_000:
                    met = "met" if r["p50_ms"] <= GOAL_BM25_P50_MS else "NOT met"
                    print(f"  goal: BM25 p50 <= {GOAL_BM25_P50_MS} ms at {size} chunks: {met}", flush=True)


if __name__ == "__main__":
    main()
