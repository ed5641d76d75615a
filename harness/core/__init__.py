"""The core: the data types every layer shares (`Request`, `Generation`, the `Variant` interface), the error
tree, content hashes, atomic file writes, paths, escaping and redaction.

Imports nothing from the rest of the harness and no heavy library (no numpy, torch, vllm or lm_eval), so
anything may import it cheaply.
"""
