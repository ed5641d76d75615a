"""Retrieval: a suite's knowledge base as documents and chunks (`knowledge`) and the BM25, dense and hybrid
indexes over it (`index`).

May import harness.engines (model files, offline settings) and the layers below it; RAG variants, one
layer up, use it.
"""
