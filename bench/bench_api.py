"""The `api` variant's engine against raw async `openai` calls: the same server, prompts, request bodies and
concurrency. Goal: wall time within 5% of the raw client (ratio <= 1.05) at every concurrency.

The harness side is what a run does: a fresh `ApiEngine` per run (so its first request goes alone until the
server accepts it), fed batches one after another, as the runner feeds `ApiVariant.generate` (of
`[run] batch_size`, at least ROUNDS_PER_BATCH x concurrency: ApiVariant.batch_size) and the variant calls
`engine.generate(batch)`; and the same with every request in one
batch, which separates what the batches cost (the next starts when the last is answered) from what the
client costs. The raw side is what a user would write: one `openai.AsyncOpenAI`, every request at once under
an `asyncio.Semaphore(concurrency)`, streamed with `include_usage`. The sides take turns within each round
(these machines are noisy); the best of the rounds is printed (load from elsewhere only ever adds time).

By default both talk to a stub server this script starts on 127.0.0.1 in a child process
(bench/openai_stub.py: a free port, each answer after --latency-ms in --chunks chunks), so what differs is
the client, not a model; the CPU columns are then the clients' own:

    .venv/bin/python bench/bench_api.py [--latency-ms 50] [--requests 128] [--concurrency 1,4,16]
                                        [--batch-size 64] [--rounds 3] [--jitter-ms 0]

Against a real server instead (e.g. `vllm serve MODEL --port 8000` on loopback; the key, if it needs one,
in the variable --api-key-env names):

    .venv/bin/python bench/bench_api.py --base-url http://127.0.0.1:8000/v1 --model MODEL [--max-tokens 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # openai_stub, beside this script

from harness.core.types import GenerationParams, Message, Request  # noqa: E402
from harness.engines.api_engine import ApiEngine, Endpoint  # noqa: E402
from harness.variants.api import ROUNDS_PER_BATCH  # noqa: E402

GOAL = 1.05
PER_SLOT = 32  # requests per run and unit of concurrency, at most
TIMEOUT_S = 120.0


def requests_for(count: int, max_tokens: int) -> list[Request]:
    params = GenerationParams(max_tokens=max_tokens, temperature=0.0)
    return [
        Request(
            f"q{i}",
            (
                Message("system", "Answer in one short sentence."),
                Message("user", f"Question {i}: which city is the capital of country number {i}?"),
            ),
            params,
        )
        for i in range(count)
    ]


@dataclass(frozen=True)
class Side:
    wall_s: float
    cpu_s: float  # this process's: the client's own (the stub runs in a child process)
    texts: list[str]


def harness_run(endpoint: Endpoint, key: str, requests: list[Request], batch_size: int) -> Side:
    """One run's worth: a fresh engine, batches one after another (harness.run.runner.generate_all)."""
    engine = ApiEngine(endpoint, key)
    texts: list[str] = []
    started, cpu = time.perf_counter(), time.process_time()
    try:
        for start in range(0, len(requests), batch_size):
            texts += [g.text for g in engine.generate(requests[start : start + batch_size])]
    finally:
        engine.close()  # timed, as the raw side's client.close() and loop shutdown are
    return Side(time.perf_counter() - started, time.process_time() - cpu, texts)


def raw_run(endpoint: Endpoint, key: str, bodies: list[dict[str, Any]]) -> Side:
    """The same bodies through openai.AsyncOpenAI directly, `concurrency` in flight, no batches."""
    import openai

    async def everything() -> list[str]:
        client = openai.AsyncOpenAI(
            api_key=key or "no-key", base_url=endpoint.base_url, max_retries=0, timeout=endpoint.timeout_s
        )
        gate = asyncio.Semaphore(endpoint.concurrency)

        async def one(body: dict[str, Any]) -> str:
            async with gate:
                parts, usage = [], None
                stream = await client.chat.completions.create(**body)
                async with stream:
                    async for chunk in stream:
                        usage = chunk.usage or usage  # read as the engine reads it
                        for choice in chunk.choices:
                            if choice.delta is not None and choice.delta.content:
                                parts.append(choice.delta.content)
                return "".join(parts)

        try:
            return await asyncio.gather(*(one(b) for b in bodies))
        finally:
            await client.close()

    started, cpu = time.perf_counter(), time.process_time()
    texts = asyncio.run(everything())
    return Side(time.perf_counter() - started, time.process_time() - cpu, texts)


def measure(args: argparse.Namespace, base_url: str, model: str, key: str, server: Any) -> list[dict[str, Any]]:
    """Per concurrency: each side's best wall time and CPU time over the rounds."""
    import openai  # noqa: F401  (imported here, not inside the first timed run: the engine imports it lazily)

    rows = []
    for concurrency in args.concurrency:
        # One at a time, 128 requests would take 8 s a run and say no more than 32 do: at most 32 per slot.
        requests = requests_for(min(args.requests, PER_SLOT * concurrency), args.max_tokens)
        endpoint = Endpoint(base_url, model, concurrency=concurrency, timeout_s=TIMEOUT_S, max_retries=0)
        # The engine's own bodies, so both sides send byte for byte the same requests.
        bodies = [ApiEngine(endpoint, key)._body(r) for r in requests]
        # "one batch": the same engine handed every request at once, which tells what the batches cost
        # (the next starts when the last is answered) from what the client costs.
        sides = {"harness": max(args.batch_size, ROUNDS_PER_BATCH * concurrency), "one batch": len(requests), "raw": 0}
        runs: dict[str, list[Side]] = {side: [] for side in sides}
        for round_ in range(args.rounds):
            order = list(sides)[round_ % 3 :] + list(sides)[: round_ % 3]  # each side first in turn
            for side in order:
                if server is not None:
                    server.reset()
                if sides[side]:
                    runs[side].append(harness_run(endpoint, key, requests, sides[side]))
                else:
                    runs[side].append(raw_run(endpoint, key, bodies))
                if server is not None:  # every request answered once, never more than `concurrency` at a time
                    assert server.requests == len(requests), (side, server.requests)
                    assert server.max_inflight <= concurrency, (side, server.max_inflight)
        if server is not None and runs["harness"][-1].texts != runs["raw"][-1].texts:
            sys.exit(f"the two clients received different answers at concurrency {concurrency}")
        row: dict[str, Any] = {"concurrency": concurrency, "requests": len(requests)}
        for side, done in runs.items():
            row[side] = min(r.wall_s for r in done)
            row[f"{side} cpu"] = min(r.cpu_s for r in done)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=50.0, help="the stub's time per answer")
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="the stub's extra random time per answer, up to")
    parser.add_argument("--chunks", type=int, default=4, help="content chunks per streamed answer (stub)")
    parser.add_argument("--requests", type=int, default=128, help="requests per run (at most 32 x concurrency)")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated levels")
    parser.add_argument("--batch-size", type=int, default=64, help="the harness's [run] batch_size")
    parser.add_argument("--rounds", type=int, default=3, help="runs per side and level (the best counts)")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--base-url", help="a real server instead of the stub, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="stub-model", help="the model name the server serves")
    parser.add_argument("--api-key-env", default="", help="the variable holding the real server's key, if any")
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    key = os.environ.get(args.api_key_env, "") if args.api_key_env else ""

    if args.base_url:
        print(f"server: {args.base_url} model {args.model}")
        rows = measure(args, args.base_url.rstrip("/"), args.model, key, None)
    else:
        from openai_stub import StubProcess

        # In a child process: the stub's work would otherwise share this process's GIL with the clients.
        with StubProcess(args.latency_ms, args.chunks, args.model, args.jitter_ms) as server:
            print(
                f"server: stub on {server.base_url}, {args.latency_ms:g} ms per answer"
                + (f" (+ up to {args.jitter_ms:g} ms)" if args.jitter_ms else "")
                + f" in {args.chunks} chunks"
            )
            rows = measure(args, server.base_url, args.model, key, server)
    print(
        f"harness: batches as a run sends them ([run] batch_size {args.batch_size}, at least {ROUNDS_PER_BATCH} x"
        f" concurrency), and one batch; best of {args.rounds} rounds"
    )
    print(
        f"{'concurrency':>11} {'requests':>8} {'harness s':>10} {'one batch s':>12} {'raw s':>7} {'ratio':>6}"
        f" {'one batch':>10} {'harness req/s':>14} {'raw req/s':>10} {'cpu ms/req harness':>19} {'raw':>5}"
    )
    for row in rows:
        harness, one, raw, n = row["harness"], row["one batch"], row["raw"], row["requests"]
        print(
            f"{row['concurrency']:11d} {n:8d} {harness:10.3f} {one:12.3f} {raw:7.3f} {harness / raw:6.3f}"
            f" {one / raw:10.3f} {n / harness:14.1f} {n / raw:10.1f}"
            f" {1000 * row['harness cpu'] / n:19.2f} {1000 * row['raw cpu'] / n:5.2f}"
        )
    for side in ("harness", "one batch"):
        print(f"worst ratio, {side}: {max(row[side] / row['raw'] for row in rows):.3f} (goal <= {GOAL})")


if __name__ == "__main__":
    main()
