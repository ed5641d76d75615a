"""`api`: a model behind an OpenAI-compatible chat-completions endpoint (a hosted model, or `vllm serve`),
compared beside the local variants on the same items, priced by its own token prices.

    [variants.gpt4o-mini]
    kind = "api"
    base_url = "https://api.openai.com/v1"
    model = "gpt-4o-mini"
    api_key_env = "OPENAI_API_KEY"

Why a variant of its own rather than a backend behind EnginePool: the pool keys engines by local weights
(a resolved model directory or HF id, started with [engine] settings), and its cache wrapper
(harness.engines.cache.CachedEngine) commits a batch only once the whole call has returned, so a request
failing after its retries would take the answers of the same batch with it. Here every answer is stored in
the generation cache the moment it arrives (keyed by base_url, model and the request, never the key): a
`--resume` after a failure re-sends only what was not answered. The variant registers with the pool's
`uncached()` switch, so the latency probe measures the endpoint, not the cache.

Wrappers: a rag or hybrid names it as `inner`; a base or prompted variant runs on it with
`backend = "api"` and `model = "<this variant's name>"` (BuildContext.engine hands out this variant as the
engine, the same object for every user). No weights stand behind it here: forgetting checks and the engine
self-test skip it.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from harness.config.guards import shown
from harness.core.errors import ConfigError, MissingDependencyError, did_you_mean
from harness.core.ranges import ranged
from harness.core.types import Constraint, Generation, Request, VariantBase
from harness.engines.api_engine import (
    DEFAULT_BACKOFF_S,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT_S,
    ApiEngine,
    Endpoint,
)
from harness.engines.cache import decode_generation, encode_generation, request_payload
from harness.variants.constrain import ConstrainSetting, decode, suite_constraint

if TYPE_CHECKING:
    from harness.engines.cache import GenerationCache
    from harness.variants import BuildContext

# what a chat-completions request can state: response_format json_schema (for "tools", each request's own
# call-or-reply schema, with the tools sent beside it)
API_CONSTRAINTS = ("none", "schema", "tools")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ROUNDS_PER_BATCH = 16  # requests per generate call, in units of concurrency (batch_size)
_RESOURCE = "api:"  # BuildContext.resources key prefix: one endpoint object per api variant per run


class ApiVariant(VariantBase):
    """An OpenAI-compatible chat-completions endpoint (hosted, or vllm serve), by base_url and model."""

    @dataclass(frozen=True)
    class Config:
        base_url: str  # e.g. https://api.openai.com/v1, or http://127.0.0.1:8000/v1 for vllm serve
        model: str  # the model name the server knows (a vllm serve --lora-modules NAME, too)
        api_key_env: str = ""  # the environment variable holding the key; "" for a server without keys
        concurrency: int = ranged(DEFAULT_CONCURRENCY, 1, 1000, example="8")  # requests in flight at once
        timeout_s: float = ranged(DEFAULT_TIMEOUT_S, 0, 3600, low_open=True, example="120")  # per request, whole
        max_retries: int = ranged(DEFAULT_MAX_RETRIES, 0, 100, example="5")
        backoff_s: float = ranged(DEFAULT_BACKOFF_S, 0, 600, example="1.0")  # the first retry's wait, at most
        input_per_mtok: float | None = ranged(None, 0, example="0.15")  # price per million prompt tokens
        output_per_mtok: float | None = ranged(None, 0, example="0.60")  # per million completion tokens
        constrain: ConstrainSetting = "none"  # "schema": response_format json_schema with the suite's schema

    backend = "api"  # what describe_engine and the wrappers read of an engine

    def __init__(
        self,
        name: str,
        engine: ApiEngine,
        config: ApiVariant.Config,
        constraint: Constraint | None = None,
        cache: GenerationCache | None = None,
    ) -> None:
        self.name = name
        self.engine = engine
        self.config = config
        self.constraint = constraint
        self.cache = cache
        self.model = engine.endpoint  # .name and .identity, as a wrapper's describe_engine reads them
        self.caching = True  # EnginePool.uncached() turns it off while the latency probe measures
        self.seen_: dict[str, set[str]] = {"response_models": set(), "system_fingerprints": set()}

    @classmethod
    def check(cls, name: str, config: ApiVariant.Config, context: BuildContext) -> None:
        """Run at load for every declared variant, selected or not: no request, no key needed."""
        where = f"{context.where} [variants.{name}]"
        _check_url(config.base_url, f"{where} base_url")
        if not config.model.strip():
            raise ConfigError(
                "model is empty", f"{where} model", 'name the model the server serves, e.g. "gpt-4o-mini"'
            )
        if config.api_key_env and not _ENV_NAME.fullmatch(config.api_key_env):
            raise ConfigError(  # perhaps the key itself: never quote it
                "api_key_env must be the name of an environment variable, not its value",
                f"{where} api_key_env",
                'e.g. api_key_env = "OPENAI_API_KEY", with the key exported in that variable',
            )
        check_api_constraint(config.constrain, where)
        suite_constraint(config.constrain, (), context.suite, where)

    @classmethod
    def from_config(cls, name: str, config: ApiVariant.Config, context: BuildContext) -> ApiVariant:
        shared = context.resources.get(_RESOURCE + name)
        if shared is not None:  # also the engine of a prompted variant over it
            return shared
        cls.check(name, config, context)
        where = f"{context.where} [variants.{name}]"
        if importlib.util.find_spec("openai") is None:
            raise MissingDependencyError(
                "the api variant kind needs the openai package", where, "pip install 'harness[api]' (or openai)"
            )
        endpoint = Endpoint(
            config.base_url.rstrip("/"),
            config.model,
            config.api_key_env,
            config.concurrency,
            config.timeout_s,
            config.max_retries,
            config.backoff_s,
            where,
        )
        constraint = suite_constraint(config.constrain, (), context.suite, where)
        variant = cls(name, ApiEngine(endpoint, _api_key(config.api_key_env, where)), config, constraint, context.cache)
        context.resources[_RESOURCE + name] = variant  # closed with the run's other resources
        if context.cache is not None:
            context.engines.caching.append(variant)
        return variant

    def generate(self, requests: Sequence[Request], adapter: Any = None) -> list[Generation]:
        """`adapter`: the engine interface's, for a wrapper calling it as its engine (always None here)."""
        if adapter is not None:
            raise ConfigError(
                "an api endpoint cannot load a local adapter",
                f"[variants.{self.name}]",
                "serve it with `vllm serve --enable-lora --lora-modules NAME=PATH` and set model = NAME",
            )
        generations = decode(self._answer, requests, self.constraint, self.name)
        for g in generations:
            for key, field in (("response_models", "response_model"), ("system_fingerprints", "system_fingerprint")):
                if g.metadata.get(field):
                    self.seen_[key].add(str(g.metadata[field]))
        return generations

    def _answer(self, requests: list[Request]) -> list[Generation]:
        cache = self.cache
        if cache is None or not self.caching:
            return self.engine.generate(requests)
        identity = self.engine.endpoint.cache_identity()
        payloads = [request_payload(r) for r in requests]

        def send(missing: list[int]) -> list[Generation]:
            def keep(j: int, answer: Generation) -> None:  # stored as it arrives: a later failure loses none
                cache.store("generate", identity, payloads[missing[j]], encode_generation(answer))

            return self.engine.generate([requests[i] for i in missing], on_answer=keep)

        return cache.through("generate", identity, payloads, send, encode_generation, decode_generation)

    def describe(self) -> dict[str, object]:
        endpoint = self.engine.endpoint
        described: dict[str, object] = {"backend": "api", "model": endpoint.model, "model_identity": endpoint.identity}
        described.update(self.describe_endpoint())
        if self.constraint is not None:
            described["constrain"] = self.constraint.to_dict()
        return described

    def describe_endpoint(self) -> dict[str, object]:
        """What a run records of the endpoint, for this variant and any wrapper over it: the prices its
        cost is computed with, and the models and fingerprints the server said answered."""
        return {
            "base_url": self.engine.endpoint.base_url,
            "prices": {"input_per_mtok": self.config.input_per_mtok, "output_per_mtok": self.config.output_per_mtok},
            **{key: sorted(values) for key, values in self.seen_.items()},
        }

    def batch_size(self, run_batch_size: int) -> int:
        """At least ROUNDS_PER_BATCH x concurrency: a batch's last round leaves slots idle while the slowest
        answers finish (bench/bench_api.py measured 1.2x the raw client's time at 4 rounds, par at 16).
        Answers are cached as they arrive, so a larger batch loses none when a request fails (with --no-cache,
        --resume sends that batch's answered requests again)."""
        return max(run_batch_size, ROUNDS_PER_BATCH * self.config.concurrency)

    def count_tokens(self, texts: Sequence[str]) -> list[int | None]:
        return [None] * len(texts)  # the server's tokenizer is not here

    def close(self) -> None:
        self.engine.close()

    @staticmethod
    def endpoint(name: str | None, context: BuildContext) -> ApiVariant:
        """The api variant a `backend = "api"` variant runs on (its `model` names it; checked at load)."""
        from harness.variants import build_variant

        if name is None or context.tables.get(name, {}).get("kind") != "api":  # a context built in code
            raise ConfigError(
                'backend = "api" needs model = the name of an api variant',
                context.where,
                'declare [variants.NAME] kind = "api", then model = "NAME"',
            )
        return build_variant(name, context)  # type: ignore[return-value]

    @staticmethod
    def check_over(name: str, kind: str, config: Any, context: BuildContext) -> None:
        """A base or prompted variant with backend = "api": its `model` must name an api variant."""
        where = f"{context.where} [variants.{name}]"
        if kind not in ("base", "prompted"):
            raise ConfigError(
                f'backend = "api" on a {kind} variant',
                f"{where} backend",
                "serve the adapter with `vllm serve --enable-lora --lora-modules NAME=PATH` and declare an api"
                " variant with model = NAME",
            )
        apis = [n for n, t in context.tables.items() if t.get("kind") == "api"]
        if config.model not in apis:
            found = shown(config.model) if isinstance(config.model, str) else "nothing"
            raise ConfigError(
                f'backend = "api" needs model = the name of an api variant; {found} is not one',
                f"{where} model",
                did_you_mean(str(config.model), apis)
                if apis
                else 'declare [variants.NAME] kind = "api", then model = "NAME"',
            )
        check_api_constraint(config.constrain, where)


def check_api_constraint(setting: str, where: str) -> None:
    if setting not in API_CONSTRAINTS:
        raise ConfigError(
            f'constrain = "{setting}": an api endpoint decodes only under "schema", "tools" or "none"',
            f"{where} constrain",
            'use constrain = "schema" (sent as response_format json_schema with the suite\'s schema), "tools" or "none"',
        )


def _check_url(url: str, where: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"base_url {shown(url)} is not an http(s) URL", where, 'e.g. base_url = "https://api.openai.com/v1"'
        )
    if parts.username or parts.password:  # it would be written to run.json: refused unquoted
        raise ConfigError(
            "base_url holds credentials", where, "drop user:password@ from it and put the key in api_key_env"
        )


def _api_key(env: str, where: str) -> str:
    """The key, read when the run starts (before any request); "" for a server without keys."""
    if not env:
        return ""
    key = os.environ.get(env, "")
    if not key.strip():
        raise ConfigError(
            f"environment variable {env} is not set", f"{where} api_key_env", f"export {env}=<your key> and run again"
        )
    return key.strip()
