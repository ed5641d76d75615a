"""The generation cache: keyed by weights, adapter, request and engine; an unchanged rerun generates nothing
and starts no engine, and one changed adapter byte regenerates exactly the variants over that adapter.

A counting engine registered as a backend stands in for vLLM here (fast); tests/test_cache_real.py does the
same on the real engine.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.cli import main
from harness.config.settings import EngineSettings
from harness.core.hashing import file_sha256
from harness.core.paths import cache_root
from harness.core.types import Generation, GenerationParams, Request
from harness.engines import BACKENDS, EngineHandle, EnginePool
from harness.engines.cache import CACHE_FILE, CachedEngine, GenerationCache, engine_identity, entry_key, params_payload
from harness.engines.models import ResolvedModel

ROOT = Path(__file__).resolve().parents[1]
ADAPTER = ROOT / "suites" / "support-triage" / "adapters" / "smollm2-135m-instruct-lora"


class CountingEngine:
    """Answers with the adapter's hash and the question; counts every request it really answers."""

    generated = 0
    started = 0
    batches: list[int] = []  # requests per call

    def __init__(self, model, settings, max_lora_rank=0) -> None:  # noqa: ANN001
        self.backend = "counting"
        CountingEngine.started += 1

    def generate(self, requests: Sequence[Request], adapter=None) -> list[Generation]:  # noqa: ANN001
        CountingEngine.generated += len(requests)
        CountingEngine.batches.append(len(requests))
        tag = adapter.sha256[:8] if adapter else "base"
        return [
            Generation(f'{{"capital": "{tag}-{r.messages[-1].content[-12:]}"}}', 3, 5, 0.01, 0.02) for r in requests
        ]

    def close(self) -> None:
        pass


@pytest.fixture
def counting_suite(tiny_suite: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # A cache of this test's own (sharing only the converted model): tests must not see each other's answers.
    own = tiny_suite.parent / "cache"
    own.mkdir()
    (own / "models").symlink_to(cache_root() / "models", target_is_directory=True)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(own))
    monkeypatch.setitem(BACKENDS, "counting", f"{__name__}:CountingEngine")
    monkeypatch.setattr(CountingEngine, "generated", 0)
    monkeypatch.setattr(CountingEngine, "started", 0)
    monkeypatch.setattr(CountingEngine, "batches", [])
    shutil.copytree(ADAPTER, tiny_suite / "adapter")
    toml = tiny_suite / "suite.toml"
    toml.write_text(
        toml.read_text()
        + """
[engine]
backend = "counting"

[variants.base]
kind = "base"

[variants.prompted]
kind = "prompted"
few_shot = 2

[variants.tuned]
kind = "finetuned"
adapter = "adapter"
"""
    )
    return tiny_suite


def _run(suite: Path, out: Path, *extra: str, self_test: str | None = "--no-self-test") -> dict:
    """A run of three variants on one engine, LoRA and not. The self-test (on by default there) is off
    unless asked for, so that the counts below are the run's own requests."""
    flags = [self_test] if self_test else []
    assert (
        main(["run", str(suite), "--variants", "base,prompted,tuned", "--out", str(out), "--quiet", *extra, *flags])
        == 0
    )
    return json.loads((out / "run.json").read_text())


def test_self_test_replays_outside_the_cache_and_not_on_an_unchanged_rerun(
    counting_suite: Path, tmp_path: Path
) -> None:
    first = _run(counting_suite, tmp_path / "first", self_test="--self-test")
    # three requests per variant replayed in a call of their own, on top of the run's own 6 x 3 + 12
    # (canary) requests
    assert CountingEngine.generated == 6 * 3 + 12 + 3 * 3
    assert CountingEngine.batches[-3:] == [3, 3, 3]  # the replays: one call per variant, after the run
    assert first["self_test"]["status"] == "equal"
    assert {v: first["self_test"]["variants"][v]["equal"] for v in ("base", "prompted", "tuned")} == {
        "base": 3,
        "prompted": 3,
        "tuned": 3,
    }
    assert first["variants"]["base"]["cache"] == {"hits": 0, "misses": 6}  # replays are neither hits nor stored
    # By default (LoRA and base on one engine) it runs over answers generated in this run only: an
    # unchanged rerun starts no engine, and says why nothing was replayed.
    second = _run(counting_suite, tmp_path / "second", self_test=None)
    assert (
        CountingEngine.generated == 39 and second["engine"]["loads"] == 0 and second["self_test"]["status"] == "skipped"
    )
    third = _run(counting_suite, tmp_path / "third", "--no-cache", self_test=None)
    assert CountingEngine.generated == 39 + 30 + 9 and third["self_test"]["status"] == "equal"
    assert "Engine self-test" in (tmp_path / "third" / "summary.md").read_text()


def _samples(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "samples").glob("*.jsonl"))}


def _flip_a_weight_byte(adapter: Path) -> None:
    """One byte of tensor data (after the safetensors header): still a valid adapter, different weights."""
    weights = adapter / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    header = int.from_bytes(data[:8], "little")
    data[8 + header + 100] ^= 0x01
    weights.write_bytes(bytes(data))


def test_unchanged_rerun_generates_nothing_and_starts_no_engine(counting_suite: Path, tmp_path: Path) -> None:
    first = _run(counting_suite, tmp_path / "first")
    generated = CountingEngine.generated
    assert generated == 6 * 3 + 12  # every item for three variants, plus the adapter canary (6 prompts, twice)
    assert first["variants"]["base"]["cache"] == {"hits": 0, "misses": 6}

    second = _run(counting_suite, tmp_path / "second")
    assert CountingEngine.generated == generated and second["engine"]["loads"] == 0
    assert {v: second["variants"][v]["cache"]["misses"] for v in ("base", "prompted", "tuned")} == {
        "base": 0,
        "prompted": 0,
        "tuned": 0,
    }
    assert _samples(tmp_path / "second") == _samples(tmp_path / "first")


def test_one_adapter_byte_regenerates_that_variant_only(counting_suite: Path, tmp_path: Path) -> None:
    first = _run(counting_suite, tmp_path / "first")
    before = CountingEngine.generated
    _flip_a_weight_byte(counting_suite / "adapter")
    changed = _run(counting_suite, tmp_path / "changed")
    cache = {v: changed["variants"][v]["cache"] for v in ("base", "prompted", "tuned")}
    assert cache["base"] == {"hits": 6, "misses": 0} and cache["prompted"] == {"hits": 6, "misses": 0}
    assert cache["tuned"] == {"hits": 6, "misses": 12}  # canary: base side cached, adapter side and items new
    assert CountingEngine.generated - before == 12
    sha = lambda run: run["variants"]["tuned"]["engine"]["adapter"]["sha256"]  # noqa: E731
    assert sha(first) != sha(changed)
    old, new = (
        json.loads(line)["output"]
        for line in (
            (tmp_path / d / "samples" / "tuned.jsonl").read_text().splitlines()[0] for d in ("first", "changed")
        )
    )
    assert old != new  # never the old adapter's answers for the new adapter


@pytest.mark.parametrize("name", ["adapter_config.json", "training.json"])
def test_any_adapter_file_is_part_of_the_key(counting_suite: Path, tmp_path: Path, name: str) -> None:
    """Not only the weights: a changed lora_alpha scales every LoRA update (same tensors, other answers),
    so an adapter's config, and any file beside it, must change the key."""
    _run(counting_suite, tmp_path / "first")
    before = CountingEngine.generated
    path = counting_suite / "adapter" / name
    content = json.loads(path.read_text())
    if name == "adapter_config.json":
        content["lora_alpha"] = 2 * content["lora_alpha"]
    else:
        content["note"] = "edited"
    path.write_text(json.dumps(content))
    changed = _run(counting_suite, tmp_path / "changed")
    assert changed["variants"]["tuned"]["cache"] == {"hits": 6, "misses": 12}  # as for a changed weight byte
    assert changed["variants"]["base"]["cache"] == {"hits": 6, "misses": 0}
    assert CountingEngine.generated - before == 12


def test_no_cache_sends_everything_to_the_engine(counting_suite: Path, tmp_path: Path) -> None:
    _run(counting_suite, tmp_path / "first")
    before = CountingEngine.generated
    run = _run(counting_suite, tmp_path / "again", "--no-cache")
    assert CountingEngine.generated - before == 6 * 3 + 12 and "cache" not in run["variants"]["base"]


def test_the_key_covers_weights_adapter_request_and_engine() -> None:
    engine = {
        "backend": "vllm",
        "packages": {"vllm": "1"},
        "weights": "sha256:aa",
        "adapter": None,
        "dtype": "auto",
        "max_model_len": 2048,
        "seed": 0,
    }
    payload = {"messages": [{"role": "user", "content": "hi"}], "params": {"max_tokens": 8}}
    key = entry_key("generate", engine, payload)
    for change in ({"weights": "sha256:ab"}, {"adapter": "sha256:cd"}, {"packages": {"vllm": "2"}}, {"backend": "hf"}):
        assert entry_key("generate", {**engine, **change}, payload) != key, change
    assert entry_key("generate", engine, {**payload, "params": {"max_tokens": 9}}) != key
    assert entry_key("loglikelihood", engine, payload) != key
    assert entry_key("generate", dict(reversed(engine.items())), payload) == key  # order does not matter


def test_large_file_hashes_are_remembered_by_path_size_and_mtime(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"a" * (2 << 20))
    first = file_sha256(weights)
    stat = weights.stat()
    weights.write_bytes(b"b" * (2 << 20))  # same size; put the old mtime back: the remembered hash answers
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file_sha256(weights) == first
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # a new mtime: hashed again
    assert file_sha256(weights) != first


def test_a_corrupt_cache_is_a_warning_not_a_failure(
    counting_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = cache_root() / "generations.sqlite"
    database.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    database.write_bytes(b"this is not a database" * 100)
    _run(counting_suite, tmp_path / "run")
    err = capsys.readouterr().err
    assert "warning: generation cache" in err and "goes on without it" in err
    database.unlink()
    _run(counting_suite, tmp_path / "fresh")  # a new cache is made where the broken one was
    assert sqlite3.connect(database).execute("SELECT COUNT(*) FROM generations").fetchone()[0] > 0


def test_params_are_part_of_the_request_payload() -> None:
    from harness.engines.cache import request_payload

    request = Request("a", (), GenerationParams(max_tokens=8, stop=("\n",)))
    assert request_payload(request)["params"] == {
        "max_tokens": 8,
        "temperature": 0.0,
        "top_p": 1.0,
        "stop": ["\n"],
        "seed": 0,
    }
    # ids do not matter
    assert request_payload(Request("b", (), GenerationParams(max_tokens=8, stop=("\n",)))) == request_payload(request)


def test_latency_probe_measures_the_engine_and_is_reused_when_unchanged(counting_suite: Path, tmp_path: Path) -> None:
    first = _run(counting_suite, tmp_path / "first", "--latency-probe", "2")
    assert "cached" not in first["variants"]["base"]["latency_probe"]
    measured = CountingEngine.generated
    assert measured == 6 * 3 + 12 + 2 * 3  # the probe's requests went to the engine, not the cache
    again = _run(counting_suite, tmp_path / "again", "--latency-probe", "2")
    assert again["engine"]["loads"] == 0 and CountingEngine.generated == measured
    assert again["variants"]["base"]["latency_probe"] == {**first["variants"]["base"]["latency_probe"], "cached": True}
    _flip_a_weight_byte(counting_suite / "adapter")
    changed = _run(counting_suite, tmp_path / "changed", "--latency-probe", "2")
    assert (
        changed["variants"]["base"]["latency_probe"].get("cached")
        and "cached" not in changed["variants"]["tuned"]["latency_probe"]
    )


class ScoringEngine:
    """Log-likelihoods and completions, each call counted: the cached engine's two other kinds."""

    calls: list[tuple[str, int]] = []

    def __init__(self, model, settings, max_lora_rank=0) -> None:  # noqa: ANN001
        self.backend = "scoring"

    def loglikelihood(self, pairs, adapter=None) -> list[tuple[float, bool]]:  # noqa: ANN001
        ScoringEngine.calls.append(("loglikelihood", len(pairs)))
        return [(-float(len(continuation)), True) for _, continuation in pairs]

    def complete(self, prompts, params, adapter=None) -> list[str]:  # noqa: ANN001
        ScoringEngine.calls.append(("complete", len(prompts)))
        return [f"{len(prompt)}:{params.max_tokens}" for prompt in prompts]

    def close(self) -> None:
        pass


def test_the_pool_hands_out_cached_engines_that_keep_the_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKENDS, "scoring", f"{__name__}:ScoringEngine")
    monkeypatch.setattr(ScoringEngine, "calls", [])
    settings, model = EngineSettings(backend="scoring"), ResolvedModel("m", str(tmp_path), "sha256:00")
    assert type(EnginePool(settings).handle(model)) is EngineHandle  # no cache: the handle itself
    cache = GenerationCache(tmp_path / CACHE_FILE)
    pool = EnginePool(settings, cache)
    engine = pool.handle(model)
    assert isinstance(engine, CachedEngine) and pool.handle(model) is engine and pool.lora_free(engine) is engine
    engine.require_lora(8)
    free = pool.lora_free(engine)
    assert isinstance(free, CachedEngine) and free.lora_free and free is not engine and pool.lora_free(engine) is free

    pairs, params = [([1, 2], [3]), ([4], [5, 6])], GenerationParams(max_tokens=4)
    assert engine.loglikelihood(pairs) == [(-1.0, True), (-2.0, True)] and engine.complete([[1, 2, 3]], params) == [
        "3:4"
    ]
    assert engine.loglikelihood(pairs[::-1]) == [(-2.0, True), (-1.0, True)]
    assert engine.complete([[1, 2, 3]], params) == ["3:4"] and engine.loglikelihood([]) == []
    assert ScoringEngine.calls == [("loglikelihood", 2), ("complete", 1)] and pool.loads == 1  # the rest: cached
    # Stored under the keys entries were always written under (what an earlier run's cache holds).
    identity = engine_identity(settings, "scoring", model, None)
    assert cache.lookup("loglikelihood", identity, [[4], [5, 6]]) == [-2.0, True]
    assert cache.lookup("complete", identity, {"prompt": [1, 2, 3], "params": params_payload(params)}) == "3:4"

    with pool.uncached():  # straight to the engine, cached or not
        assert engine.loglikelihood(pairs[:1]) == [(-1.0, True)]
    engine.loglikelihood(pairs[:1])  # and the cache answers again after
    assert ScoringEngine.calls[2:] == [("loglikelihood", 1)] and cache.stats.hits == 4
    pool.close()
