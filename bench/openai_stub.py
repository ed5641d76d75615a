"""A small OpenAI-compatible chat-completions server on 127.0.0.1, for measuring clients, not models.

Each request is answered after a fixed simulated latency, so what a benchmark measures is the client's
overhead and how well it keeps requests in flight. A streamed request (`"stream": true`) gets its headers at
once, as `vllm serve` sends them, then `chunks` content chunks spread evenly over the latency, a final usage
chunk when `stream_options.include_usage` asks for one, and `data: [DONE]`; a plain request gets one JSON
answer after the latency. The answer is the same for the same messages (a few words derived from the last
message), so two clients can be checked to have received the same texts.

    from openai_stub import StubProcess, StubServer
    with StubServer(latency_ms=50) as server:   # a free port; server.base_url = "http://127.0.0.1:PORT/v1"
        ...                                     # server.requests: requests answered; server.max_inflight
    with StubProcess(latency_ms=50) as server:  # the same in a child process (GET /stub/stats behind
        ...                                     # .requests and .max_inflight; POST /stub/reset)

StubServer runs on a thread of the caller's process, so its work shares the caller's GIL: StubProcess keeps
it off a client being measured. Standalone, for pointing a harness run at it (`kind = "api"`,
`base_url = "http://127.0.0.1:8000/v1"`):

    .venv/bin/python bench/openai_stub.py [--port 8000] [--latency-ms 50] [--chunks 4] [--model stub-model]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from typing import Any

from aiohttp import web

WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett")


class StubServer:
    """The server on its own thread and event loop; `start()`/`stop()`, or use it as a context manager."""

    def __init__(
        self,
        latency_ms: float = 50.0,
        chunks: int = 4,
        model: str = "stub-model",
        jitter_ms: float = 0.0,
        port: int = 0,
    ) -> None:
        self.latency_s = latency_ms / 1000
        self.jitter_s = jitter_ms / 1000  # a uniform extra wait up to this: answers of unequal length
        self.chunks = max(1, chunks)
        self.model = model
        self.port = port  # 0: a free one, chosen at start
        self.requests = 0  # answered (counted when the answer is complete)
        self.inflight = self.max_inflight = 0
        self._random = random.Random(0)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self) -> None:
        """Zero the counters (between two measurements)."""
        self.requests = self.max_inflight = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            body = await request.json()
            latency = self.latency_s + (self._random.uniform(0, self.jitter_s) if self.jitter_s else 0.0)
            if body.get("stream"):
                response = await self._stream(request, body, latency)
            else:
                await asyncio.sleep(latency)
                response = web.json_response(self._completion(body))
            self.requests += 1
            return response
        finally:
            self.inflight -= 1

    async def _stream(self, request: web.Request, body: dict[str, Any], latency: float) -> web.StreamResponse:
        parts = _answer(body, self.chunks)
        base = {
            "id": "chatcmpl-stub",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
        }
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)  # the headers now: a client learns at once that key and model are good
        for i, part in enumerate(parts):
            await asyncio.sleep(latency / len(parts))
            delta = {"role": "assistant", "content": part} if i == 0 else {"content": part}
            finish = "stop" if i == len(parts) - 1 else None
            chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {**base, "choices": [], "usage": _usage(body, len(parts))}
            await response.write(f"data: {json.dumps(usage)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        return response

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        parts = _answer(body, self.chunks)
        message = {"role": "assistant", "content": "".join(parts)}
        return {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": _usage(body, len(parts)),
        }

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"object": "list", "data": [{"id": self.model, "object": "model", "owned_by": "stub"}]}
        )

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": self.requests, "max_inflight": self.max_inflight})

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({})

    def start(self) -> StubServer:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/stub/stats", self._stats)
        app.router.add_post("/stub/reset", self._reset)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.SockSite(self._runner, sock, backlog=1024).start())
        self._thread = threading.Thread(target=self._loop.run_forever, name="openai-stub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class StubProcess:
    """StubServer in a child process (`python openai_stub.py --port 0`), with the same counters, read
    over HTTP."""

    def __init__(self, latency_ms: float = 50.0, chunks: int = 4, model: str = "stub-model", jitter_ms: float = 0.0):
        self.argv = [sys.executable, __file__, "--port", "0", "--latency-ms", str(latency_ms)]
        self.argv += ["--chunks", str(chunks), "--model", model, "--jitter-ms", str(jitter_ms)]
        self.base_url = ""

    def start(self) -> StubProcess:
        self.process = subprocess.Popen(self.argv, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline() if self.process.stdout else ""  # "serving MODEL at URL ..."
        if " at http" not in line:
            self.process.kill()
            raise RuntimeError(f"the stub server did not start: {line!r}")
        self.base_url = line.split(" at ")[1].split()[0]
        return self

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def _call(self, method: str, path: str) -> dict[str, Any]:
        root = self.base_url.removesuffix("/v1")
        with urllib.request.urlopen(urllib.request.Request(root + path, method=method, data=None), timeout=10) as r:
            return json.loads(r.read())

    @property
    def requests(self) -> int:
        return int(self._call("GET", "/stub/stats")["requests"])

    @property
    def max_inflight(self) -> int:
        return int(self._call("GET", "/stub/stats")["max_inflight"])

    def reset(self) -> None:
        self._call("POST", "/stub/reset")

    def __enter__(self) -> StubProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _answer(body: dict[str, Any], chunks: int) -> list[str]:
    """`chunks` words chosen by a hash of the messages: the same request, the same answer."""
    digest = hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).digest()
    return [("" if i == 0 else " ") + WORDS[digest[i % len(digest)] % len(WORDS)] for i in range(chunks)]


def _usage(body: dict[str, Any], completion: int) -> dict[str, int]:
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or ())
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="0: a free one (printed)")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--model", default="stub-model")
    args = parser.parse_args()
    with StubServer(args.latency_ms, args.chunks, args.model, args.jitter_ms, args.port) as server:
        print(f"serving {args.model} at {server.base_url} (Ctrl-C stops)", flush=True)
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())  # StubProcess.stop: a clean exit
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
