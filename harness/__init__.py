"""harness: run evals before and after, on one held-out set, and compare the numbers.

The public API is what this module exports; everything else is internal and may change.
"""

from harness.core.errors import ConfigError, DataError, HarnessError, MissingDependencyError, UnknownNameError
from harness.core.types import Generation, GenerationParams, Message, Request, Variant
from harness.run.runner import RunOptions, run_suite
from harness.scoring.metrics import Metric, MetricInput, register_metric
from harness.scoring.scores import ScoringSample, score
from harness.suite.load import Suite, load_suite
from harness.variants.fake import EchoVariant, FakeVariant

__version__ = "0.1.0"

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
    "Suite",
    "UnknownNameError",
    "Variant",
    "load_suite",
    "register_metric",
    "run_suite",
    "score",
    "ScoringSample",
]
