"""harness: run evals before and after, on one held-out set, and compare the numbers.

The public API is what this module exports; everything else is internal and may change. Names load on first
use (PEP 562), so `import harness` or `import harness.core` costs the core types only, never the runner or
an engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from harness.core.errors import ConfigError, DataError, HarnessError, MissingDependencyError, UnknownNameError
from harness.core.types import Generation, GenerationParams, Message, Request, Variant

if TYPE_CHECKING:
    from harness.run.plan import RunOptions
    from harness.run.runner import run_suite
    from harness.scoring.metrics import Metric, MetricInput, register_metric
    from harness.scoring.scores import ScoringSample, score
    from harness.suite.load import Suite
    from harness.variants import load_suite
    from harness.variants.fake import EchoVariant, FakeVariant

__version__ = "0.1.0"

# Public name -> the module that defines it, imported when the name is first read.
_LAZY = {
    "EchoVariant": "harness.variants.fake",
    "FakeVariant": "harness.variants.fake",
    "Metric": "harness.scoring.metrics",
    "MetricInput": "harness.scoring.metrics",
    "RunOptions": "harness.run.plan",
    "ScoringSample": "harness.scoring.scores",
    "Suite": "harness.suite.load",
    "load_suite": "harness.variants",
    "register_metric": "harness.scoring.metrics",
    "run_suite": "harness.run.runner",
    "score": "harness.scoring.scores",
}

__all__ = [
    "ConfigError",
    "DataError",
    "EchoVariant",
    "FakeVariant",
    "Generation",
    "GenerationParams",
    "HarnessError",
    "Message",
    "Metric",
    "MetricInput",
    "MissingDependencyError",
    "Request",
    "RunOptions",
    "ScoringSample",
    "Suite",
    "UnknownNameError",
    "Variant",
    "load_suite",
    "register_metric",
    "run_suite",
    "score",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # once: later reads are plain attribute lookups
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
