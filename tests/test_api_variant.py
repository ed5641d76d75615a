"""The `api` variant kind against a chat-completions server of the test's own (aiohttp, 127.0.0.1, a free
port): streamed answers with a final usage chunk, scripted faults (429 with Retry-After, 500, a stall past
timeout_s, a reset connection, a malformed chunk), a wrong key, an unknown model, retries exhausted and
`--resume`. Every run goes through the CLI; every test ends by grepping all it wrote for the key."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
from pathlib import Path

import pytest
from aiohttp import web

from harness.cli import main
from harness.run.progress import PROGRESS_DIR

KEY = "sk-test-DO-NOT-LEAK-1234"
ENV = "HARNESS_TEST_API_KEY"
MODEL = "test-model"
FINGERPRINT = "fp_test_1"
CAPITALS = {"France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Portugal": "Lisbon"}
COMPLETION_TOKENS = 4
RETRY_AFTER_S = 0.2
TIMEOUT_S = 0.5


class ChatServer:
    """OpenAI chat completions, streamed: SSE `data: {...}` chunks, a usage chunk, `data: [DONE]`. Records
    every request; `faults[country]` lists what successive requests for that item get, and every request
    for a country in `broken` gets a 500."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.faults: dict[str, list[str]] = {}
        self.broken: set[str] = set()
        self.key = KEY
        self.delay_s = 0.0  # before each answer: requests overlap, and concurrency shows
        self.inflight = self.max_inflight = 0

    def countries(self) -> list[str]:
        return [r["country"] for r in self.received]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            return await self._answer(request)
        finally:
            self.inflight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        country = re.sub(r".* of (\w+)\?$", r"\1", body["messages"][-1]["content"])
        auth = request.headers.get("Authorization", "")
        self.received.append({"body": body, "auth": auth, "country": country, "at": time.monotonic()})
        if auth != f"Bearer {self.key}":  # a hostile server: it quotes the key it was sent
            return web.json_response({"error": {"message": f"Incorrect API key provided: {auth}"}}, status=401)
        if body["model"] != MODEL:
            message = f"The model {body['model']} does not exist ({auth})"
            return web.json_response({"error": {"message": message}}, status=404)
        fault = self.faults.get(country, []).pop(0) if self.faults.get(country) else ""
        if fault == "429":
            return web.json_response({"error": {"message": "slow down"}}, status=429, headers={"Retry-After": "0.2"})
        if fault == "500" or country in self.broken:
            return web.json_response({"error": {"message": f"boom ({auth})"}}, status=500)
        if fault == "reset":
            request.transport.abort()
            return web.Response()
        if fault == "sleep":
            await asyncio.sleep(TIMEOUT_S * 2)
        await asyncio.sleep(self.delay_s)
        return await self._stream(request, body, country, fault == "malformed")

    async def _stream(self, request: web.Request, body: dict, country: str, malformed: bool) -> web.StreamResponse:
        answer = json.dumps({"capital": CAPITALS.get(country, "Salzburg")})
        words = sum(len(m["content"].split()) for m in body["messages"])
        base = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
        chunks = [
            {
                **base,
                "system_fingerprint": FINGERPRINT,
                "choices": [_choice({"role": "assistant", "content": answer[:5]})],
            },
            {**base, "choices": [_choice({"content": answer[5:]}, "stop")]},
            {**base, "choices": [], "usage": _usage(words)},
        ]
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i, chunk in enumerate(chunks):
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if malformed and i == 0:
                await response.write(b'data: {"id": "c1", "choices": [\n\n')
        await response.write(b"data: [DONE]\n\n")
        return response

    def __enter__(self) -> ChatServer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        runner = web.AppRunner(app, handle_signals=False)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.SockSite(runner, sock).start())
        self.runner = runner
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.run_until_complete(self.runner.cleanup())
        self.loop.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def _choice(delta: dict, finish: str | None = None) -> dict:
    return {"index": 0, "delta": delta, "finish_reason": finish}


def _usage(prompt: int) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": COMPLETION_TOKENS, "total_tokens": prompt + COMPLETION_TOKENS}


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(ENV, KEY)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))  # this test's answers only
    with ChatServer() as running:
        yield running


def config(tmp_path: Path, server: ChatServer, extra: str = "", **settings: object) -> Path:
    """A run config: an echo baseline and an api variant `remote` on the server (tiny retries and backoff)."""
    values = {
        "base_url": server.base_url,
        "model": MODEL,
        "api_key_env": ENV,
        "concurrency": 2,
        "timeout_s": 10.0,  # the stall test sets TIMEOUT_S: a loaded machine must not time out the rest
        "max_retries": 3,
        "backoff_s": 0.01,
        "input_per_mtok": 2.5,
        "output_per_mtok": 10.0,
        **settings,
    }
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
    path = tmp_path / "run.toml"
    path.write_text(f'[variants.echo]\nkind = "echo"\n\n[variants.remote]\nkind = "api"\n{lines}{extra}')
    return path


def run(capsys: pytest.CaptureFixture[str], suite: Path, cfg: Path, *args: str) -> tuple[int, str]:
    code = main(["run", str(suite), "--config", str(cfg), "--quiet", *args])
    captured = capsys.readouterr()
    assert KEY not in captured.out + captured.err
    return code, captured.err


def one_error(code: int, err: str, *needles: str) -> str:
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert all(needle in errors[0] for needle in needles), errors[0]
    return errors[0]


def samples(out: Path, variant: str = "remote") -> dict[str, dict]:
    rows = [json.loads(line) for line in (out / "samples" / f"{variant}.jsonl").read_text().splitlines()]
    return {row["id"]: row for row in rows}


def assert_no_key(root: Path) -> None:
    """The key is in no file the runs wrote: results, progress, engine.log, the cache, configs."""
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files
    leaked = [p for p in files if KEY.encode() in p.read_bytes()]
    assert not leaked, leaked


def test_a_run_records_answers_tokens_ttft_and_cost(
    tiny_suite: Path, tmp_path: Path, server: ChatServer, capsys
) -> None:
    cfg = config(tmp_path, server, constrain="schema")
    out = tmp_path / "out"
    code, err = run(capsys, tiny_suite, cfg, "--out", str(out), "--latency-probe", "2")
    assert code == 0, err
    assert len(server.received) == 6 + 2  # the probe reaches the server, not the cache
    body = server.received[0]["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True} and body["model"] == MODEL
    assert body["max_tokens"] == 32 and body["temperature"] == 0.0
    assert body["messages"] == [
        {"role": "system", "content": "Answer with JSON."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    schema = {"type": "object", "required": ["capital"], "properties": {"capital": {"type": "string"}}}
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}

    record = json.loads((out / "run.json").read_text())
    remote = record["variants"]["remote"]
    assert remote["kind"] == "api" and remote["config"]["api_key_env"] == ENV
    engine = remote["engine"]
    assert engine["backend"] == "api" and engine["base_url"] == server.base_url and engine["model"] == MODEL
    assert engine["system_fingerprints"] == [FINGERPRINT] and engine["response_models"] == [MODEL]
    assert engine["prices"] == {"input_per_mtok": 2.5, "output_per_mtok": 10.0}
    assert remote["usage"]["prompt_tokens_mean"] == 9 and remote["usage"]["completion_tokens_mean"] == 4
    assert remote["latency_probe"]["n"] == 2
    assert record["metrics"]["remote"]["accuracy[capital]"]["value"] == pytest.approx(5 / 6)
    found = samples(out)
    assert json.loads(found["fr"]["output"]) == {"capital": "Paris"}
    assert found["fr"]["prompt_tokens"] == 9 and found["fr"]["completion_tokens"] == COMPLETION_TOKENS
    assert 0 < found["fr"]["ttft_s"] <= found["fr"]["latency_s"]
    assert found["fr"]["metadata"]["system_fingerprint"] == FINGERPRINT
    assert found["fr"]["metadata"]["constraint"] == "schema"

    # harness compare: the api variant beside the baseline, priced by its own token prices
    assert main(["compare", str(out), "--baseline", "echo"]) == 0
    shown = capsys.readouterr().out
    assert "| remote | api (schema) |" in shown and "| 0.062 |" in shown and "no weights here" in shown, shown
    rows = {r["variant"]: r for r in json.loads((out / "comparison.json").read_text())["rows"]}
    assert rows["remote"]["cost"] == {"per_1k_queries": pytest.approx(0.0625), "basis": "the endpoint's token prices"}
    assert rows["remote"]["kind"] == "api"

    # unchanged: every answer from the generation cache, nothing sent
    again = tmp_path / "again"
    assert run(capsys, tiny_suite, cfg, "--out", str(again))[0] == 0
    assert len(server.received) == 8
    assert {i: s["output"] for i, s in samples(again).items()} == {i: s["output"] for i, s in found.items()}
    assert_no_key(tmp_path)


@pytest.mark.parametrize("fault", ["429", "500", "sleep", "reset", "malformed"])
def test_a_failed_attempt_is_retried(tiny_suite: Path, tmp_path: Path, server: ChatServer, capsys, fault: str) -> None:
    server.faults["France"] = [fault]
    out = tmp_path / "out"
    timeout = {"timeout_s": TIMEOUT_S} if fault == "sleep" else {}
    code, err = run(capsys, tiny_suite, config(tmp_path, server, **timeout), "--out", str(out))
    assert code == 0, err
    assert server.countries().count("France") == 2 and len(server.received) == 7
    assert json.loads(samples(out)["fr"]["output"]) == {"capital": "Paris"}
    if fault == "429":  # the wait Retry-After asked for, not the (tiny) backoff
        first, second = (r["at"] for r in server.received if r["country"] == "France")
        assert second - first >= RETRY_AFTER_S * 0.9
    assert_no_key(tmp_path)


def test_concurrency_after_a_first_request_alone(tiny_suite: Path, tmp_path: Path, server: ChatServer, capsys) -> None:
    """Concurrency 3: the run's first request alone, then 3 in flight, never more."""
    server.delay_s = 0.1
    code, err = run(capsys, tiny_suite, config(tmp_path, server, concurrency=3), "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert server.max_inflight == 3 and server.countries()[0] == "France"
    first, second = (r["at"] for r in server.received[:2])
    assert second - first >= server.delay_s * 0.9  # the second was sent once the first had been answered


def test_an_endpoint_and_a_wrapper_over_it_get_batches_of_many_rounds(
    tiny_suite: Path, tmp_path: Path, server: ChatServer, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suite's batch_size is 4; at concurrency 2 the runner hands the endpoint 16 x 2 = 32 at a time, so
    the 6 items go as one batch for the api variant and for a prompted variant over it (4 + 2 before)."""
    from harness.variants.api import ApiVariant

    sizes: list[int] = []
    send = ApiVariant.generate

    def counted(self: ApiVariant, requests, adapter=None):  # noqa: ANN001, ANN202 - a spy on the real method
        sizes.append(len(requests))
        return send(self, requests, adapter)

    monkeypatch.setattr(ApiVariant, "generate", counted)
    extra = '\n[variants.remote-prompted]\nkind = "prompted"\nbackend = "api"\nmodel = "remote"\nfew_shot = 1\n'
    code, err = run(capsys, tiny_suite, config(tmp_path, server, extra), "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert sizes == [6, 6] and len(server.received) == 12


def test_a_wrong_key_fails_at_once_on_one_request(tiny_suite: Path, tmp_path: Path, server: ChatServer, capsys) -> None:
    server.key = "sk-the-right-one-5678"
    out = tmp_path / "out"
    line = one_error(*run(capsys, tiny_suite, config(tmp_path, server), "--out", str(out)), "HTTP 401", ENV)
    assert "api_key_env" in line and server.base_url in line and "[REDACTED]" not in line
    assert len(server.received) == 1  # no retries, and the first request went alone
    assert not (out / PROGRESS_DIR / "remote.jsonl").exists()  # the echo baseline's samples are kept
    assert_no_key(tmp_path)


def test_an_unknown_model_names_model_and_url(tiny_suite: Path, tmp_path: Path, server: ChatServer, capsys) -> None:
    cfg = config(tmp_path, server, model="gpt-9-nonexistent")
    line = one_error(*run(capsys, tiny_suite, cfg, "--out", str(tmp_path / "out")), "'gpt-9-nonexistent'", "HTTP 404")
    assert f"not found at {server.base_url}" in line and "[variants.remote] model" in line
    assert "Bearer [REDACTED]" in line  # the server's message quoted the key: scrubbed
    assert len(server.received) == 1
    assert_no_key(tmp_path)


def test_a_missing_key_variable_stops_the_run_before_any_request(
    tiny_suite: Path, tmp_path: Path, server: ChatServer, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV)
    out = tmp_path / "out"
    one_error(*run(capsys, tiny_suite, config(tmp_path, server), "--out", str(out)), f"{ENV} is not set", "api_key_env")
    assert server.received == [] and not out.exists()


def test_retries_exhausted_keep_the_answers_and_resume_sends_only_the_rest(
    tiny_suite: Path, tmp_path: Path, server: ChatServer, capsys
) -> None:
    """All six go in one batch (an endpoint's batches hold many rounds of `concurrency`): five are answered
    and `pt` fails three times, so no batch completes and progress/ keeps nothing, but every answer was
    cached as it arrived. The resume sends `pt` alone."""
    server.broken = {"Portugal"}
    cfg = config(tmp_path, server, max_retries=2)
    out = tmp_path / "out"
    code, err = run(capsys, tiny_suite, cfg, "--out", str(out))
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: variant 'remote' failed after 0 of 6 samples: ApiRequestFailed: request 'pt'")
    assert "failed 3 times" in last and "HTTP 500" in last and f"--resume {out}" in last, last
    assert server.countries().count("Portugal") == 3 and len(server.received) == 5 + 3
    assert not (out / "run.json").exists()

    server.broken = set()
    before = len(server.received)
    code, err = run(capsys, tiny_suite, cfg, "--resume", str(out))
    assert code == 0, err
    assert server.countries()[before:] == ["Portugal"]
    assert json.loads(samples(out)["pt"]["output"]) == {"capital": "Lisbon"} and len(samples(out)) == 6
    assert_no_key(tmp_path)


def test_a_prompted_variant_runs_on_the_endpoint(tiny_suite: Path, tmp_path: Path, server: ChatServer, capsys) -> None:
    extra = (
        '\n[variants.remote-prompted]\nkind = "prompted"\nbackend = "api"\nmodel = "remote"\n'
        'system = "You name capitals. Answer with JSON."\nfew_shot = 1\n'
    )
    out = tmp_path / "out"
    code, err = run(capsys, tiny_suite, config(tmp_path, server, extra), "--out", str(out))
    assert code == 0, err
    sent = [r["body"]["messages"] for r in server.received if r["body"]["messages"][0]["content"].startswith("You")]
    assert len(sent) == 6 and [m["role"] for m in sent[0]] == ["system", "user", "assistant", "user"]
    record = json.loads((out / "run.json").read_text())
    engine = record["variants"]["remote-prompted"]["engine"]
    assert engine["backend"] == "api" and engine["base_url"] == server.base_url and engine["few_shot_examples"] == 1
    assert main(["compare", str(out), "--baseline", "echo"]) == 0
    capsys.readouterr()
    rows = {r["variant"]: r for r in json.loads((out / "comparison.json").read_text())["rows"]}
    assert rows["remote-prompted"]["cost"]["basis"] == "the endpoint's token prices"
    assert rows["remote-prompted"]["cost"]["per_1k_queries"] > rows["remote"]["cost"]["per_1k_queries"]
    assert_no_key(tmp_path)


def test_a_rag_variant_retrieves_for_the_endpoint(tiny_suite: Path, tmp_path: Path, server: ChatServer, capsys) -> None:
    (tiny_suite / "knowledge").mkdir()
    (tiny_suite / "knowledge" / "atlas.md").write_text("The capital of France is Paris.\n")
    extra = '\n[variants.remote-rag]\nkind = "rag"\ninner = "remote"\nretriever = "bm25"\ntop_k = 1\n'
    out = tmp_path / "out"
    code, err = run(capsys, tiny_suite, config(tmp_path, server, extra), "--out", str(out), "--variants", "remote-rag")
    assert code == 0, err
    assert len(server.received) == 6 and "[atlas" in server.received[0]["body"]["messages"][-1]["content"]
    assert samples(out, "remote-rag")["fr"]["metadata"]["retrieved"][0]["doc_id"].startswith("atlas")
    assert json.loads((out / "run.json").read_text())["variants"]["remote-rag"]["engine"]["backend"] == "api"


@pytest.mark.parametrize(
    ("table", "needles"),
    [
        (
            'constrain = "regex"\n',
            ('constrain = "regex"', 'only under "schema", "tools" or "none"', "[variants.remote]"),
        ),
        (f'api_key_env = "{KEY}"\n', ("must be the name of an environment variable", "api_key_env")),
        ('base_url = "ftp://example.com"\n', ("is not an http(s) URL", "base_url")),
        ('base_url = "https://me:secret@example.com/v1"\n', ("base_url holds credentials",)),
        ("concurrency = 0\n", ("concurrency must be in [1, 1000]",)),
        ("temperature = 0.5\n", ("unknown key 'temperature'",)),
    ],
)
def test_api_settings_are_checked_at_load(
    tiny_suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, table: str, needles: tuple[str, ...]
) -> None:
    monkeypatch.setenv(ENV, KEY)
    defaults = {"base_url": "http://127.0.0.1:9/v1", "model": MODEL, "api_key_env": ENV}
    key = table.split(" =")[0]
    lines = "".join(f"{k} = {json.dumps(v)}\n" for k, v in defaults.items() if k != key)
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[variants.echo]\nkind = "echo"\n\n[variants.remote]\nkind = "api"\n{lines}{table}')
    line = one_error(*run(capsys, tiny_suite, cfg, "--variants", "echo", "--out", str(tmp_path / "o")), *needles)
    assert "secret" not in line


@pytest.mark.parametrize(
    ("table", "needles"),
    [
        ('kind = "prompted"\nbackend = "api"\nmodel = "remot"\n', ("is not one", "did you mean 'remote'")),
        ('kind = "finetuned"\nadapter = "a"\nbackend = "api"\nmodel = "remote"\n', ("on a finetuned variant",)),
        ('kind = "prompted"\nbackend = "api"\nmodel = "remote"\nconstrain = "choice"\nchoices = ["x"]\n', ("only",)),
    ],
)
def test_variants_over_an_endpoint_are_checked_at_load(
    tiny_suite: Path, tmp_path: Path, capsys, table: str, needles: tuple[str, ...]
) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        '[variants.echo]\nkind = "echo"\n\n[variants.remote]\nkind = "api"\nbase_url = "http://127.0.0.1:9/v1"\n'
        f'model = "m"\n\n[variants.over]\n{table}'
    )
    one_error(*run(capsys, tiny_suite, cfg, "--variants", "echo", "--out", str(tmp_path / "o")), *needles)
