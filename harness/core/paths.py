"""Where the harness keeps what it makes once and reuses: converted models, merged adapters, benchmark
tasks, retrieval indexes and the generation cache."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The harness cache: $HARNESS_CACHE_DIR, else ~/.cache/harness."""
    configured = os.environ.get("HARNESS_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "harness"
