"""The generation cache and resume on the real engine (the embedded model on vLLM, a LoRA adapter served
per request): an unchanged rerun starts no engine and returns the same files; a run killed with SIGKILL
after its first variant resumes to the same answers; one flipped adapter byte regenerates that variant only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.core.paths import cache_root
from harness.core.ties import compare_samples

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "suites" / "support-triage"
ADAPTER = DEMO / "adapters" / "smollm2-135m-instruct-lora"
ITEMS = "6"
MEASURED = ("latency_s", "ttft_s")  # timings measured per run; everything else must match exactly


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cache-real")
    shutil.copytree(ADAPTER, folder / "adapter")
    config = folder / "variants.toml"
    config.write_text(
        '[variants.base]\nkind = "base"\n\n[variants.lora]\nkind = "finetuned"\nadapter = "adapter"\nserve = "lora"\n'
    )
    cache = folder / "cache"  # a cache of this module's own; the converted model is shared
    cache.mkdir()
    (cache / "models").symlink_to(cache_root() / "models", target_is_directory=True)
    return {"folder": folder, "config": config, "cache": cache}


def command(setup: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "harness",
        "run",
        str(DEMO),
        "--config",
        str(setup["config"]),
        "--limit",
        ITEMS,
        "--out",
        str(out),
        "--quiet",
        "--no-self-test",
        *extra,
    ]


def harness(setup: dict[str, Path], out: Path, *extra: str, stderr: list[str] | None = None) -> dict:
    """The run's run.json; `stderr`, when given, receives the lines the command wrote there."""
    env = {**os.environ, "HARNESS_CACHE_DIR": str(setup["cache"])}
    done = subprocess.run(command(setup, out, *extra), cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    if stderr is not None:
        stderr.extend(done.stderr.splitlines())
    return json.loads((out / "run.json").read_text())


def samples(out: Path, drop_measured: bool = False) -> dict[str, list[dict]]:
    found = {}
    for path in sorted((out / "samples").glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        if drop_measured:
            for row in rows:
                for key in MEASURED:
                    row.pop(key)
                row["metadata"].pop("decode_tokens_per_s", None)
        found[path.name] = rows
    return found


def assert_same_up_to_ties(resumed: dict[str, list[dict]], uninterrupted: dict[str, list[dict]]) -> None:
    """The resumed part ran on a new engine with another history, so an answer may part from the
    uninterrupted run's at a numerical near-tie (docs/engine-notes.md); anything else must be identical."""
    assert resumed.keys() == uninterrupted.keys()
    ties = 0
    for name in resumed:
        assert [r["id"] for r in resumed[name]] == [r["id"] for r in uninterrupted[name]]
        for a, b in zip(resumed[name], uninterrupted[name]):
            if a == b:
                continue
            assert compare_samples(a, b).verdict == "tie", (name, a["id"], a["output"], b["output"])
            assert a["messages"] == b["messages"] and a["reference"] == b["reference"]
            ties += 1
    print(f"\nresumed vs uninterrupted: {ties} near-ties")


def test_unchanged_rerun_kill_and_resume_then_one_adapter_byte(setup: dict[str, Path]) -> None:
    folder = setup["folder"]
    said: list[str] = []
    cold = harness(setup, folder / "cold", stderr=said)
    assert cold["engine"]["loads"] == 1 and cold["variants"]["base"]["cache"]["misses"] == int(ITEMS)
    # Quiet by default: the engine's start-up talk is in the run's engine.log, the terminal has only the
    # harness's own lines (--quiet: no progress bar).
    assert [line for line in said if not line.startswith(("harness: ", "results: ", "warning: "))] == [], said
    log = (folder / "cold" / "engine.log").read_text()
    assert "vllm." in log and "Loading safetensors checkpoint shards" in log

    # Unchanged: zero generations, no engine, the same sample files byte for byte.
    warm = harness(setup, folder / "warm")
    assert warm["engine"]["loads"] == 0
    assert all(warm["variants"][v]["cache"]["misses"] == 0 for v in ("base", "lora"))
    for name in ("base.jsonl", "lora.jsonl"):
        assert (folder / "warm" / "samples" / name).read_bytes() == (folder / "cold" / "samples" / name).read_bytes()

    # Killed (SIGKILL to the run and its engine processes) once the base variant is done; the same
    # command again finishes it. --no-cache: every answer is generated, before and after the kill.
    killed = folder / "killed"
    env = {**os.environ, "HARNESS_CACHE_DIR": str(setup["cache"])}
    process = subprocess.Popen(
        command(setup, killed, "--no-cache"),
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    while not (killed / "progress" / "base.done.json").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "run.json").exists()
    resumed = harness(setup, killed, "--no-cache")
    assert resumed["run_id"] == "killed" and resumed["variants"]["lora"]["engine"] == cold["variants"]["lora"]["engine"]
    assert_same_up_to_ties(samples(killed, drop_measured=True), samples(folder / "cold", drop_measured=True))
    assert not (killed / "progress").exists()

    # One byte of the adapter's weights: the base variant is answered from the cache, the adapter's anew.
    weights = setup["folder"] / "adapter" / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[8 + int.from_bytes(data[:8], "little") + 64] ^= 0x01
    weights.write_bytes(bytes(data))
    changed = harness(setup, folder / "changed")
    assert changed["variants"]["base"]["cache"] == {"hits": int(ITEMS), "misses": 0}
    assert changed["variants"]["lora"]["cache"]["misses"] >= int(ITEMS) and changed["engine"]["loads"] == 1
    assert (
        changed["variants"]["lora"]["engine"]["adapter"]["sha256"]
        != cold["variants"]["lora"]["engine"]["adapter"]["sha256"]
    )
