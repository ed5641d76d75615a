"""The latency probe: N requests one at a time (concurrency 1), the latency an interactive user feels.

It measures the engine, never the generation cache. For a variant over model weights, the probe of an
unchanged variant (same config, weights, suite, data and requests) on the same kind of machine is reused
from the cache and marked `cached`, so an unchanged rerun starts no engine; --no-cache measures afresh.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

from harness.config.parse import to_plain
from harness.config.settings import plain_suite_config
from harness.core.hardware import machine_kind
from harness.core.types import Request, Variant, variant_describe, variant_weights
from harness.engines.cache import request_payload

if TYPE_CHECKING:
    from harness.suite.load import Suite
    from harness.variants import BuildContext


def latency_probe(variant: Variant, requests: Sequence[Request], n: int) -> dict[str, Any]:
    """p50/p95/p99 wall time (and TTFT where the engine reports it) of N sequential single requests."""
    import numpy as np

    walls, ttfts = [], []
    for index in range(n):
        request = requests[index % len(requests)]
        started = time.perf_counter()
        [generation] = variant.generate([request])
        walls.append(time.perf_counter() - started)
        if generation.ttft_s is not None:
            ttfts.append(generation.ttft_s)
    p50, p95, p99 = (float(x) for x in np.percentile(walls, [50, 95, 99]))
    probe: dict[str, Any] = {"n": n, "latency_s_p50": p50, "latency_s_p95": p95, "latency_s_p99": p99}
    if ttfts:
        probe["ttft_s_p50"], probe["ttft_s_p95"] = (float(x) for x in np.percentile(ttfts, [50, 95]))
    return probe


def cached_latency_probe(
    variant: Variant, requests: Sequence[Request], n: int, context: BuildContext, identity: dict[str, Any]
) -> dict[str, Any]:
    """The probe, measured on the engines themselves (their pool's cache bypassed), or reused for an
    identical variant."""
    pool = context.resources.get("engines")  # none: no engine was asked for, nothing to bypass

    def measure(_missing: list[int]) -> list[dict[str, Any]]:
        with pool.uncached() if pool is not None else nullcontext():
            return [latency_probe(variant, requests, n)]

    if context.cache is None or variant_weights(variant) is None:  # no cache, or no engine to measure
        return measure([])[0]
    payload = {"n": n, "requests": [request_payload(requests[i % len(requests)]) for i in range(n)]}
    [probe] = context.cache.through(
        "latency-probe", identity, [payload], measure, dict, lambda value: {**value, "cached": True}
    )
    return probe


def probe_identity(variant: Variant, table: Mapping[str, Any], suite: Suite) -> dict[str, Any]:
    """What decides a probe's result besides its requests: the variant (its table in the config, and its
    weights), the suite, the machine."""
    return {
        "variant": to_plain(table),
        "described": _without_measurements(to_plain(variant_describe(variant))),
        "suite": plain_suite_config(suite.config),
        "data": suite.data_sha256,
        "machine": {**machine_kind(), "cpus": os.cpu_count()},
    }


def _without_measurements(described: Any) -> Any:
    """A variant's description without what is measured anew each run (index build seconds, cache flags)."""
    if isinstance(described, dict):
        return {
            k: _without_measurements(v)
            for k, v in described.items()
            if k not in ("seconds", "cached") and not k.endswith("_s")
        }
    return described
