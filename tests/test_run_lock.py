"""Two runs on one folder: real `harness run` processes racing for one --out. The second is refused
with one line naming the first's pid, before it reads the folder; the first finishes untouched; a lock
left by a killed run is taken over. Fake variants (a slow one), so the file runs in seconds."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.errors import HarnessError
from harness.run.lock import RunLock

ITEMS = 24


@pytest.fixture
def slow_suite(tmp_path: Path) -> Path:
    """24 items answered by a fake that takes 0.25 s per request: about 6 s of generation, so that a
    second process (whose start alone can take seconds on a loaded machine) meets the first mid-run."""
    suite = tmp_path / "slow"
    suite.mkdir()
    rows = [{"id": f"q{i:02d}", "input": f"Capital of country {i}?", "output": f"city-{i:02d}"} for i in range(ITEMS)]
    (suite / "eval.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (suite / "suite.toml").write_text(
        'name = "slow"\nmetrics = ["exact_match"]\n[data]\neval = "eval.jsonl"\n[run]\nbatch_size = 2\nbootstrap = 20\n'
        '[variants.slow]\nkind = "fake"\ndefault = "city-00"\ndelay_s = 0.25\n'
    )
    return suite


def harness(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "harness", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def wait_for(condition, timeout: float = 60.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def progress_ids(out: Path) -> list[str]:
    path = out / "progress" / "slow.jsonl"
    lines = path.read_bytes().split(b"\n")[:-1] if path.is_file() else []
    return [json.loads(line)["id"] for line in lines]


def test_a_second_run_on_a_live_folder_is_refused_naming_the_pid(slow_suite: Path, tmp_path: Path) -> None:
    out = tmp_path / "results" / "run"
    first = harness("run", str(slow_suite), "--out", str(out), "--quiet")
    wait_for(lambda: len(progress_ids(out)) >= 2)  # the first is mid-generation
    second = harness("run", str(slow_suite), "--out", str(out), "--quiet")
    _, err = second.communicate(timeout=120)
    assert second.returncode == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert f"being written by another harness run (pid {first.pid} on {socket.gethostname()}" in lines[0]
    assert "resuming" not in err and "Traceback" not in err
    assert first.wait(timeout=120) == 0, first.stderr.read() if first.stderr else ""
    ids = [json.loads(line)["id"] for line in (out / "samples" / "slow.jsonl").read_text().splitlines()]
    assert ids == sorted(f"q{i:02d}" for i in range(ITEMS))  # each once: nothing of the second's
    assert json.loads((out / "run.json").read_text())["metrics"]["slow"]["exact_match"]["n"] == ITEMS
    assert not (out.parent / ".run.lock").exists()  # released on exit
    first.stdout.close(), first.stderr.close(), second.stdout.close(), second.stderr.close()  # type: ignore[union-attr]


def test_many_runs_started_at_once_one_writes(slow_suite: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    runs = [harness("run", str(slow_suite), "--out", str(out), "--quiet") for _ in range(4)]
    results = [(run.wait(timeout=180), run.stderr.read()) for run in runs]  # type: ignore[union-attr]
    for run in runs:
        run.stdout.close(), run.stderr.close()  # type: ignore[union-attr]
    codes = sorted(code for code, _ in results)
    # Exactly one run wrote the folder; each other one was refused while it ran, or found it complete.
    assert codes == [0, 2, 2, 2], results
    for code, err in results:
        if code == 2:
            assert "being written by another harness run" in err or "already holds a run" in err, err
            assert "resuming" not in err
    ids = [json.loads(line)["id"] for line in (out / "samples" / "slow.jsonl").read_text().splitlines()]
    assert len(ids) == ITEMS == len(set(ids))


def test_a_killed_runs_lock_is_taken_over_and_the_run_resumes(slow_suite: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    first = harness("run", str(slow_suite), "--out", str(out), "--quiet")
    wait_for(lambda: len(progress_ids(out)) >= 2)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    first.stdout.close(), first.stderr.close()  # type: ignore[union-attr]
    lock = out.parent / ".run.lock"
    assert json.loads(lock.read_text())["pid"] == first.pid  # the stale lock file is still there
    assert main(["run", str(slow_suite), "--out", str(out), "--quiet"]) == 0
    assert "resuming the interrupted run" in capsys.readouterr().err
    assert not lock.exists()
    assert (out / "run.json").is_file()


def test_a_lock_held_for_a_dead_pid_is_taken_over(tmp_path: Path) -> None:
    # A killed run's child (an engine worker) can keep the flock alive after the run itself died.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock_file = tmp_path / ".run.lock"
    lock_file.write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": "then"}))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1]); fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
            str(lock_file),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"  # type: ignore[union-attr]
        with RunLock() as lock:
            lock.acquire(tmp_path / "run")
            assert json.loads(lock_file.read_text())["pid"] == os.getpid()
        assert not lock_file.exists()
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]


def test_a_lock_held_by_a_live_process_refuses_in_process(tmp_path: Path) -> None:
    with RunLock() as first:
        first.acquire(tmp_path / "run")
        with RunLock() as second, pytest.raises(HarnessError) as raised:
            second.acquire(tmp_path / "run")
        assert f"(pid {os.getpid()} on " in raised.value.what and raised.value.where == str(tmp_path / ".run.lock")
        assert "choose another --out" in raised.value.fix
        assert (tmp_path / ".run.lock").exists()  # the refused one did not remove the holder's lock
    assert not (tmp_path / ".run.lock").exists()


def test_a_failed_start_leaves_no_lock_and_no_folder(tiny_suite: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "results" / "run"
    (tiny_suite / "canned.jsonl").write_text("not json\n")
    assert main(["run", str(tiny_suite), "--variants", "canned", "--out", str(out), "--quiet"]) == 2
    assert "error: " in capsys.readouterr().err
    assert not (tmp_path / "results").exists()  # neither the lock file nor the folders made for it
