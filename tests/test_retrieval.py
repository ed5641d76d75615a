"""Retrievers on real libraries (bm25s, sentence-transformers with the embedded MiniLM), fusion, the
index cache, and retrieval metrics against hand-computed rankings."""

from __future__ import annotations

import math

import pytest

from harness.retrieval.index import RRF_K, BM25Index, DenseIndex, Hit, HybridIndex, build_index
from harness.retrieval.knowledge import Chunk
from harness.scoring.metrics import MetricInput
from harness.scoring.metrics.retrieval import CitationAccuracy, MeanReciprocalRank, NdcgAtK, RecallAtK

CORPUS = [
    Chunk("router#0", "router", "The Nimbus router has four gigabit Ethernet ports and WiFi 6."),
    Chunk("plug#0", "plug", "The Spark smart plug measures energy use and switches lamps on a schedule."),
    Chunk("camera#0", "camera", "The Eye outdoor camera records 2K video with colour night vision."),
    Chunk("thermostat#0", "thermostat", "The Climate thermostat learns your heating schedule and saves energy."),
]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_bm25_finds_the_document_sharing_rare_terms(cache) -> None:
    index, info = build_index("bm25", CORPUS)
    assert [h.doc_id for h in index.search("how many ethernet ports does my router have", 2)][0] == "router"
    assert info["cached"] is False and info["chunks"] == 4


def test_dense_finds_the_document_by_meaning(cache) -> None:
    index, _ = build_index("dense", CORPUS)
    hits = index.search("a device that films my garden in the dark", 4)
    assert hits[0].doc_id == "camera"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_top_k_larger_than_the_corpus_returns_the_whole_corpus(cache) -> None:
    index, _ = build_index("dense", CORPUS)
    assert len(index.search("energy", 50)) == 4
    bm25, _ = build_index("bm25", CORPUS)
    assert {h.doc_id for h in bm25.search("energy", 50)} == {"plug", "thermostat"}  # no shared term: no hit


def test_index_is_cached_and_rebuilt_when_a_document_changes(cache) -> None:
    for kind in ("bm25", "dense"):
        _, first = build_index(kind, CORPUS)
        _, again = build_index(kind, CORPUS)
        assert (first["cached"], again["cached"]) == (False, True) and first["key"] == again["key"]
        changed = [*CORPUS[:3], Chunk("thermostat#0", "thermostat", "The Climate thermostat now speaks Matter.")]
        _, rebuilt = build_index(kind, changed)
        assert rebuilt["cached"] is False and rebuilt["key"] != first["key"]
        index, _ = build_index(kind, changed)
        assert any("Matter" in h.text for h in index.search("thermostat matter", 4))
    assert len(list((cache / "indexes").iterdir())) == 4  # two versions of each kind, no temp leftovers


def test_reciprocal_rank_fusion_by_hand() -> None:
    class Fixed:
        def __init__(self, order):
            self.order, self.chunks = order, CORPUS

        def search(self, query, k):
            return [Hit(f"{d}#0", d, 1.0, d) for d in self.order][:k]

    fused = HybridIndex(Fixed(["router", "plug", "camera"]), Fixed(["camera", "router"])).search("q", 3)  # type: ignore[arg-type]
    # router: 1/61 + 1/62; camera: 1/63 + 1/61; plug: 1/62
    assert [h.doc_id for h in fused] == ["router", "camera", "plug"]
    assert fused[0].score == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))


def sample(retrieved, gold, output=""):
    return MetricInput(
        output, "", "", "", retrieved=tuple(retrieved) if retrieved is not None else None, gold_docs=tuple(gold)
    )


def values(metric, samples):
    return [None if math.isnan(v) else round(v, 9) for v in metric().stats(samples, {})[:, 0]]


def test_retrieval_metrics_by_hand() -> None:
    samples = [
        sample(["a", "b", "c"], ["b"]),  # gold at rank 2
        sample(["a", "a", "b"], ["b", "z"]),  # duplicate chunks of a: documents a, b; one of two gold found
        sample(["x", "y", "z"], ["q"]),  # miss
        sample(["a"], []),  # no gold: undefined
        sample(None, ["a"]),  # no retrieval: undefined
    ]
    assert values(RecallAtK, samples) == [1.0, 0.5, 0.0, None, None]
    assert values(MeanReciprocalRank, samples) == [0.5, 0.5, 0.0, None, None]
    # nDCG: [a,b,c] gold b -> (1/log2 3) / 1; [a,b] gold {b,z}, k=3 -> (1/log2 3) / (1 + 1/log2 3)
    ndcg2 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert values(NdcgAtK, samples) == [round(1 / math.log2(3), 9), round(ndcg2, 9), 0.0, None, None]


def test_citation_accuracy_by_hand() -> None:
    samples = [
        sample(["a"], ["p-1"], "Per [p-1] and [p-2], yes."),  # 1 of 2 citations gold
        sample(["a"], ["p-1"], '{"ids": ["p-1"]}'),  # a JSON array is not a citation: undefined
        sample(["a"], ["p-1"], "[p-1]"),
    ]
    assert values(CitationAccuracy, samples) == [0.5, None, 1.0]


def test_indexes_satisfy_the_search_contract(cache) -> None:
    for index in (build_index("bm25", CORPUS)[0], build_index("dense", CORPUS)[0]):
        assert isinstance(index, BM25Index | DenseIndex)
        hits = index.search("router ports", 2)
        assert len(hits) <= 2 and all(isinstance(h, Hit) and h.chunk_id.startswith(h.doc_id) for h in hits)
