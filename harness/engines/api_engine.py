"""An OpenAI-compatible chat-completions endpoint as an engine: a hosted model, or a `vllm serve` deployment.

`ApiEngine.generate(requests)` answers a batch as the in-process engines do (a list of the same length and
order), each request streamed (time to first token; token usage from the final usage chunk), at most
`concurrency` in flight. The first request of a run goes alone until the server accepts it (a 2xx status,
which arrives before the answer streams): a wrong key, model or URL then costs one request, not
`concurrency` of them, and a good one holds the rest back no longer than that.

Retries are the harness's own (the client's are off, so this policy is the one that runs and is tested):
on 408, 409, 429, 5xx, a timeout, a dropped connection or a malformed chunk, wait `Retry-After` (seconds)
when the server sends it, else a random time up to `backoff_s * 2**attempt` (exponential backoff, full
jitter), at most `max_retries` times. What retrying cannot fix fails at once as one ConfigError line: a
refused key (401/403), an unknown model (404), a request the server rejects (other 4xx). A request still
failing after its retries raises `ApiRequestFailed`; the runner keeps what was answered and says how to
--resume. Nothing is ever turned into an empty answer.

A request's tools go as `tools` (and `parallel_tool_calls` where the item sets it); the calls the model
streams back (`delta.tool_calls`, in fragments) are joined and written into the answer's text as
<tool_call> blocks after its content (harness.core.tools.call_text), the form every engine's answer is
scored in.

The caller passes the key (read from the variable `api_key_env` names when the run starts); it lives in the
client's headers only, and every message built from a server's reply is scrubbed of it.

`openai` is imported on the first request.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.core.errors import ConfigError, HarnessError
from harness.core.redact import REDACTED, redact_secrets
from harness.core.tools import call_text
from harness.core.types import Constraint, Generation, Request, ToolCall

DEFAULT_CONCURRENCY = 8
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_MAX_RETRIES = 5
DEFAULT_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0  # the backoff's cap: beyond it, waiting longer only slows the run
MAX_RETRY_AFTER_S = 600.0  # a Retry-After beyond this is a server's mistake, not a plan
RETRIED_STATUSES = frozenset({408, 409, 429})  # and every 5xx: what the official clients retry too
NO_KEY = "no-key"  # sent to a server without keys: the client refuses to start with none
SERVER_MESSAGE_CHARS = 200


@dataclass(frozen=True)
class Endpoint:
    """Where requests go and how they are sent; `where` is the config table that declared it (errors
    point there). Never holds the key: this is what describe() and the cache see."""

    base_url: str
    model: str
    api_key_env: str = ""
    concurrency: int = DEFAULT_CONCURRENCY
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_retries: int = DEFAULT_MAX_RETRIES
    backoff_s: float = DEFAULT_BACKOFF_S
    where: str = ""

    @property
    def name(self) -> str:
        return self.model

    @property
    def identity(self) -> str:
        return f"api:{self.base_url}#{self.model}"

    def cache_identity(self) -> dict[str, Any]:
        """What a cached answer is keyed by besides the request: the server and the model (not the key,
        nor the retry settings, which change no answer)."""
        return {"backend": "api", "protocol": "chat.completions", "base_url": self.base_url, "model": self.model}


class ApiRequestFailed(RuntimeError):
    """A request that still failed after its retries (the runner reports it with how to --resume)."""


@dataclass(frozen=True)
class _Failure:
    why: str  # one line, scrubbed of the key
    wait_s: float | None = None  # what the server's Retry-After asked for


class ApiEngine:
    """Requests to one endpoint; the event loop and the client start on the first generate."""

    backend = "api"

    def __init__(self, endpoint: Endpoint, api_key: str) -> None:
        self.endpoint = endpoint
        self._api_key = api_key
        self.proven_ = False  # the server has accepted a request: the rest may go `concurrency` at a time
        self.accepted_: asyncio.Event | None = None  # set with proven_, for the batch waiting on it
        self.loop_: asyncio.AbstractEventLoop | None = None
        self.client_: Any = None

    def __repr__(self) -> str:  # never the key
        return f"ApiEngine({self.endpoint.identity})"

    def generate(
        self,
        requests: Sequence[Request],
        adapter: Any = None,
        on_answer: Callable[[int, Generation], None] | None = None,
    ) -> list[Generation]:
        """One Generation per request, in order. `on_answer(i, generation)` sees each answer as it arrives,
        so a caller can keep it even when another request of the batch then fails."""
        if adapter is not None:
            raise ConfigError(
                "an api endpoint cannot load a local adapter",
                self.endpoint.where,
                "serve it with `vllm serve --enable-lora --lora-modules NAME=PATH` and set model = NAME",
            )
        if not requests:
            return []
        body = [self._body(r) for r in requests]  # refuses a constraint it cannot send before any request
        if self.loop_ is None:
            self.loop_ = asyncio.new_event_loop()  # one per engine: connections are reused across batches
        return self.loop_.run_until_complete(self._all(list(requests), body, on_answer))

    async def _all(
        self, requests: list[Request], bodies: list[dict[str, Any]], on_answer: Callable[[int, Generation], None] | None
    ) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        failures: list[Exception] = []
        gate = asyncio.Semaphore(self.endpoint.concurrency)

        async def one(i: int) -> None:
            async with gate:
                if failures:
                    return  # one request failed for good: send no more, let those in flight finish
                try:
                    answer = await self._with_retries(requests[i].id, bodies[i])
                except Exception as exc:
                    failures.append(exc)
                    return
            results[i] = answer
            if on_answer is not None:
                on_answer(i, answer)

        rest = range(len(requests))
        first: list[asyncio.Future[None]] = []  # the run's first request, sent ahead of the rest
        if not self.proven_:
            # Waiting for the whole first answer instead would cost every run one answer's time.
            self.accepted_ = asyncio.Event()
            first = [asyncio.ensure_future(one(0))]
            accepted = asyncio.ensure_future(self.accepted_.wait())
            await asyncio.wait([first[0], accepted], return_when=asyncio.FIRST_COMPLETED)
            accepted.cancel()
            rest = range(1, len(requests))  # after a failure, these return without a request
        await asyncio.gather(*first, *(one(i) for i in rest))
        if failures:
            # the user's mistake (a key, a model) before a transient failure: that is what to fix first
            raise next((f for f in failures if isinstance(f, HarnessError)), failures[0])
        return [r for r in results if r is not None]

    async def _with_retries(self, request_id: str, body: dict[str, Any]) -> Generation:
        for attempt in itertools.count():
            try:
                # The whole request, first byte to last, within timeout_s: a stalled stream counts too.
                return await asyncio.wait_for(self._stream(body), self.endpoint.timeout_s)
            except Exception as exc:
                failure = self._retryable(exc)  # raises what retrying cannot fix
                if failure is None:
                    raise  # not the server's doing: a bug here, with its traceback
                if attempt >= self.endpoint.max_retries:
                    raise ApiRequestFailed(
                        f"request '{request_id}' to {self.endpoint.base_url} failed {attempt + 1} times"
                        f" (max_retries = {self.endpoint.max_retries}); last: {failure.why}"
                    ) from None  # the client's exception quotes the server's reply: never printed whole
                await asyncio.sleep(self._wait_s(attempt, failure))
        raise AssertionError("unreachable")

    async def _stream(self, body: dict[str, Any]) -> Generation:
        client = self._client()
        started = time.perf_counter()
        first: float | None = None
        parts: list[str] = []
        calls: dict[int, dict[str, str]] = {}  # streamed tool calls by index: id, name, arguments so far
        usage = fingerprint = model = finish = None
        stream = await client.chat.completions.create(**body)  # returns on a 2xx status; raises on others
        self.proven_ = True  # the key, the model and the URL are good
        if self.accepted_ is not None:
            self.accepted_.set()
        async with stream:
            async for chunk in stream:
                fingerprint = getattr(chunk, "system_fingerprint", None) or fingerprint
                model = getattr(chunk, "model", None) or model
                usage = getattr(chunk, "usage", None) or usage
                for choice in getattr(chunk, "choices", None) or ():
                    content = getattr(choice.delta, "content", None) if choice.delta is not None else None
                    if content:
                        first = time.perf_counter() - started if first is None else first
                        parts.append(content)
                    fragments = getattr(choice.delta, "tool_calls", None) if choice.delta is not None else None
                    if fragments:
                        first = time.perf_counter() - started if first is None else first
                        add_call_fragments(calls, fragments)
                    finish = choice.finish_reason or finish
        metadata: dict[str, Any] = {"response_model": model, "finish_reason": finish}
        if fingerprint:
            metadata["system_fingerprint"] = fingerprint
        text = "".join(parts)
        if calls:  # written as text, the form scoring reads (harness.core.tools.parse_calls)
            text = call_text([ToolCall(c["name"], c["arguments"], c["id"]) for _, c in sorted(calls.items())], text)
        return Generation(
            text=text,
            prompt_tokens=getattr(usage, "prompt_tokens", None),
            completion_tokens=getattr(usage, "completion_tokens", None),
            ttft_s=first,
            latency_s=time.perf_counter() - started,
            metadata=metadata,
        )

    def _body(self, request: Request) -> dict[str, Any]:
        params = request.params
        body: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": [m.to_dict() for m in request.messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if request.constraint is not None:
            body["response_format"] = response_format(request.constraint)
        if request.tools:  # the messages' to_dict is already the wire form: calls with JSON-string arguments
            body["tools"] = [tool.to_dict() for tool in request.tools]
            if "parallel_tool_calls" in request.metadata:
                body["parallel_tool_calls"] = bool(request.metadata["parallel_tool_calls"])
        return body

    def _retryable(self, exc: Exception) -> _Failure | None:
        """How a failed attempt is retried; raises a ConfigError for what retrying cannot fix; None for an
        exception that is not the server's or the network's."""
        import openai

        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status in RETRIED_STATUSES or status >= 500:
                return _Failure(f"HTTP {status}{self._said(exc)}", retry_after_s(exc.response.headers))
            raise self._refused(status, exc) from None
        if isinstance(exc, asyncio.TimeoutError | openai.APITimeoutError):
            return _Failure(f"no complete answer within timeout_s = {self.endpoint.timeout_s:g}")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return _Failure(f"connection failed ({self._scrub(f'{type(cause).__name__}: {cause}')[:120]})")
        if isinstance(exc, ValueError):  # a chunk whose JSON does not parse, or not as a chunk
            return _Failure(f"malformed reply ({type(exc).__name__}: {self._scrub(str(exc))[:120]})")
        if isinstance(exc, openai.APIError):  # an error event in the middle of the stream
            return _Failure(f"error mid-stream ({self._scrub(str(exc))[:120]})")
        return None

    def _refused(self, status: int, exc: Any) -> ConfigError:
        e = self.endpoint
        if status in (401, 403):
            held = f"the key in {e.api_key_env}" if e.api_key_env else "no key (api_key_env is not set)"
            return ConfigError(
                f"{e.base_url} refused {held} for model '{e.model}' (HTTP {status})",
                f"{e.where} api_key_env",
                f"set {e.api_key_env} to a valid key for {e.base_url}"
                if e.api_key_env
                else "set api_key_env to the name of the environment variable that holds the key",
            )
        if status == 404:
            return ConfigError(
                f"model '{e.model}' not found at {e.base_url} (HTTP 404{self._said(exc)})",
                f"{e.where} model",
                "check model and base_url (it ends where the API's paths start, often /v1);"
                f" GET {e.base_url}/models lists what the server serves",
            )
        return ConfigError(
            f"{e.base_url} rejected the request for model '{e.model}' (HTTP {status}{self._said(exc)})",
            e.where,
            "check the variant's settings (model, constrain, [generation]) against what the server accepts",
        )

    def _said(self, exc: Any) -> str:
        """The server's own message, short and scrubbed: ": <message>", or ""."""
        body = getattr(exc, "body", None)
        message = body.get("message") if isinstance(body, dict) else body
        if isinstance(message, dict):
            message = message.get("message")
        text = " ".join(str(message).split()) if message else ""
        return f": {self._scrub(text)[:SERVER_MESSAGE_CHARS]}" if text else ""

    def _scrub(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, REDACTED)  # a server that echoes the key it was sent
        return redact_secrets(text)

    def _wait_s(self, attempt: int, failure: _Failure) -> float:
        if failure.wait_s is not None:
            return min(failure.wait_s, MAX_RETRY_AFTER_S)
        return random.uniform(0.0, min(MAX_BACKOFF_S, self.endpoint.backoff_s * 2**attempt))

    def _client(self) -> Any:
        if self.client_ is None:
            import openai

            self.client_ = openai.AsyncOpenAI(
                api_key=self._api_key or NO_KEY,
                base_url=self.endpoint.base_url,
                max_retries=0,  # the harness retries (above); two policies stacked would multiply the waits
                timeout=self.endpoint.timeout_s,
            )
        return self.client_

    def close(self) -> None:
        loop, self.loop_ = self.loop_, None
        if loop is None:
            return
        pending = asyncio.all_tasks(loop)  # left by an interrupt (Ctrl-C) in the middle of a batch
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        if self.client_ is not None:
            loop.run_until_complete(self.client_.close())
            self.client_ = None
        loop.close()


def add_call_fragments(calls: dict[int, dict[str, str]], fragments: Any) -> None:
    """Add one chunk's `delta.tool_calls` to the calls so far: a call's fragments share its `index`; its id,
    name and argument text arrive in pieces and are joined, as the openai client's own accumulator does."""
    for fragment in fragments:
        call = calls.setdefault(int(getattr(fragment, "index", None) or 0), {"id": "", "name": "", "arguments": ""})
        call["id"] += getattr(fragment, "id", None) or ""
        function = getattr(fragment, "function", None)
        if function is not None:
            call["name"] += getattr(function, "name", None) or ""
            call["arguments"] += getattr(function, "arguments", None) or ""


def response_format(constraint: Constraint) -> dict[str, Any]:
    """A constraint as a chat-completions request states it: a JSON schema only (`response_format`); the
    protocol has no standard form for a regex or a choice."""
    if constraint.kind != "schema":
        raise ConfigError(
            f'an api endpoint cannot decode under a "{constraint.kind}" constraint',
            "",
            'use constrain = "schema" (sent as response_format json_schema) or "none"',
        )
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": json.loads(constraint.schema)}}


def retry_after_s(headers: Any) -> float | None:
    """Seconds a reply asks the client to wait (`retry-after-ms`, or `Retry-After` in seconds; an HTTP date
    is left to the backoff)."""
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        try:
            seconds = float(value) / scale
        except (TypeError, ValueError):
            continue
        if seconds >= 0 and seconds == seconds:  # not NaN
            return seconds
    return None
