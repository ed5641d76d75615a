"""Resume after a kill: a run killed with SIGKILL at random points and run again loses nothing, repeats
nothing, and ends with sample files byte-identical to an uninterrupted run's (fake variants, for speed;
tests/test_cache_real.py kills a run on the real engine)."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest

from harness import FakeVariant, RunOptions, load_suite, run_suite
from harness.cli import main
from harness.run.progress import PROGRESS_DIR

ITEMS = 40
TRIALS = 20


@pytest.fixture
def slow_suite(tmp_path: Path) -> Path:
    """40 items answered in batches of 4 by two slow fakes and the echo baseline (~0.6 s of generation)."""
    suite = tmp_path / "slow"
    suite.mkdir()
    countries = [f"country-{i:02d}" for i in range(ITEMS)]
    lines = [
        json.dumps({"id": f"q{i:02d}", "input": f"Capital of {c}?", "output": f"city-{i:02d}"})
        for i, c in enumerate(countries)
    ]
    (suite / "eval.jsonl").write_text("\n".join(lines) + "\n")
    answers = [json.dumps({"id": f"q{i:02d}", "output": f"city-{i:02d}" if i % 3 else "wrong"}) for i in range(ITEMS)]
    (suite / "answers.jsonl").write_text("\n".join(answers) + "\n")
    (suite / "suite.toml").write_text(
        """name = "slow"
metrics = ["exact_match", "token_f1"]
[data]
eval = "eval.jsonl"
[run]
batch_size = 4
bootstrap = 50
[variants.first]
kind = "fake"
outputs = "answers.jsonl"
delay_s = 0.006
[variants.echo]
kind = "echo"
[variants.second]
kind = "fake"
default = "city-00"
delay_s = 0.006
"""
    )
    return suite


def _run_cli(argv: list[str]) -> None:
    # A lock of the child's own for tqdm: the forked child inherits the parent's process-shared one (a
    # semaphore), and a SIGKILL that lands while the child holds it would leave the parent's next
    # progress bar waiting forever (seen once in CI). A user's `kill -9` takes the whole process.
    import threading

    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    os._exit(main(argv))


def _samples(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run_dir / "samples").glob("*.jsonl"))}


def _progress_ids(run_dir: Path) -> dict[str, list[str]]:
    """Every complete line in the progress files, by variant: what a resume starts from."""
    found = {}
    for path in (run_dir / PROGRESS_DIR).glob("*.jsonl"):
        lines = path.read_bytes().split(b"\n")[:-1]  # a torn last line has no newline
        ids = []
        for line in lines:
            try:
                ids.append(json.loads(line)["id"])
            except ValueError:
                pass
        found[path.stem] = ids
    return found


def test_kill_nine_at_random_points_then_resume(slow_suite: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    assert main(["run", str(slow_suite), "--out", str(reference), "--quiet"]) == 0
    expected = _samples(reference)
    assert len(expected) == 3

    fork = multiprocessing.get_context("fork")
    rng = random.Random(7)
    stages = {"before any sample": 0, "mid-generation": 0, "after generation": 0}
    for trial in range(TRIALS):
        out = tmp_path / f"trial-{trial:02d}"
        argv = ["run", str(slow_suite), "--out", str(out), "--quiet"]
        child = fork.Process(target=_run_cli, args=(argv,))
        child.start()
        time.sleep(rng.uniform(0.0, 1.0))
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        assert child.exitcode in (-signal.SIGKILL, 0)

        if (out / "run.json").exists():  # finished before the kill
            stages["after generation"] += 1
            assert _samples(out) == expected
            continue
        done = _progress_ids(out) if (out / PROGRESS_DIR).is_dir() else {}
        for variant, ids in done.items():
            assert len(ids) == len(set(ids)), f"trial {trial}: duplicated samples in {variant}"
        finished = sum(len(ids) for ids in done.values())
        stages[
            "before any sample" if finished == 0 else "mid-generation" if finished < 3 * ITEMS else "after generation"
        ] += 1

        # The same command again carries on where the killed run stopped.
        assert main(argv) == 0, f"trial {trial}: resume failed"
        assert _samples(out) == expected, f"trial {trial}: samples differ from the uninterrupted run"
        assert not (out / PROGRESS_DIR).exists()
        assert not [p for p in out.rglob(".*.tmp")], "temporary files left behind"
        assert (
            json.loads((out / "run.json").read_text())["metrics"]
            == json.loads((reference / "run.json").read_text())["metrics"]
        )
    print("kill points:", stages)
    assert stages["mid-generation"] >= 5  # the kills did land while samples were being produced


def test_resume_generates_only_what_is_missing(tiny_suite: Path, tmp_path: Path) -> None:
    suite = load_suite(tiny_suite)
    out = tmp_path / "run"

    def dies_at_pt(request):  # noqa: ANN001, ANN202
        if request.id == "pt":
            raise RuntimeError("engine died")
        return request.id.upper()

    dying = FakeVariant("fake", fn=dies_at_pt)
    with pytest.raises(Exception, match="variant 'fake' failed after 4 of 6 samples: RuntimeError: engine died"):
        run_suite(suite, RunOptions(variants=("fake",), out=out, progress=False), {"fake": dying})
    assert _progress_ids(out) == {"fake": ["fr", "de", "it", "es"]}  # the first batch was kept

    fresh = FakeVariant("fake", fn=lambda r: r.id.upper())
    run_suite(suite, RunOptions(variants=("fake",), resume=out, progress=False), {"fake": fresh})
    assert [[r.id for r in call] for call in fresh.calls] == [["pt", "at"]]
    outputs = {
        json.loads(line)["id"]: json.loads(line)["output"]
        for line in (out / "samples" / "fake.jsonl").read_text().splitlines()
    }
    assert outputs == {i: i.upper() for i in ["fr", "de", "it", "es", "pt", "at"]}


def test_engine_death_names_the_variant_and_keeps_samples(
    slow_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the CLI: the cause's traceback (not the user's mistake), then one line naming the variant
    and how to resume; the batches finished before are kept and the resume finishes the run."""
    original = FakeVariant.generate

    def dies_on_third_batch(self, requests):  # noqa: ANN001, ANN202
        if self.name == "second" and len(self.calls) == 2:
            raise RuntimeError("EngineDeadError: the engine process exited unexpectedly")
        return original(self, requests)

    monkeypatch.setattr(FakeVariant, "generate", dies_on_third_batch)
    out = tmp_path / "run"
    argv = ["run", str(slow_suite), "--out", str(out), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: variant 'second' failed after 8 of 40 samples: RuntimeError: EngineDeadError")
    assert f"--resume {out}" in last and "Traceback" in err
    assert {k: len(v) for k, v in _progress_ids(out).items()} == {"first": 40, "echo": 40, "second": 8}
    monkeypatch.setattr(FakeVariant, "generate", original)
    assert main(["run", str(slow_suite), "--resume", str(out), "--quiet"]) == 0
    reference = tmp_path / "reference"
    assert main(["run", str(slow_suite), "--out", str(reference), "--quiet"]) == 0
    assert _samples(out) == _samples(reference)


def test_resume_refuses_a_changed_setup(tiny_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    progress = out / PROGRESS_DIR
    suite = load_suite(tiny_suite)

    def stop(request):  # noqa: ANN001, ANN202
        if request.id == "pt":  # Ctrl-C during the second batch: the first one is kept
            raise KeyboardInterrupt
        return request.id

    with pytest.raises(KeyboardInterrupt):
        run_suite(
            suite, RunOptions(variants=("fake",), out=out, progress=False), {"fake": FakeVariant("fake", fn=stop)}
        )
    assert (progress / "plan.json").is_file()
    toml = tiny_suite / "suite.toml"
    toml.write_text(toml.read_text().replace("max_tokens = 32", "max_tokens = 33"))
    code = main(["run", str(tiny_suite), "--variants", "echo", "--resume", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot resume" in err and "different suite config, variant tables, variants -" in err
    assert "Traceback" not in err and (progress / "plan.json").is_file()  # nothing lost


def test_resume_errors(tiny_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = tmp_path / "done"
    assert main(["run", str(tiny_suite), "--variants", "echo", "--out", str(done), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["run", str(tiny_suite), "--variants", "echo", "--resume", str(done)]) == 2
    assert "is a complete run: nothing to resume" in capsys.readouterr().err
    assert main(["run", str(tiny_suite), "--variants", "echo", "--resume", str(tmp_path / "nowhere")]) == 2
    assert "holds no interrupted run" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    assert main(["run", str(tiny_suite), "--variants", "echo", "--out", str(tmp_path / "busy")]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    assert main(["compare", str(tmp_path / "nowhere")]) == 2


def test_a_run_stopped_before_its_first_sample_starts_afresh(
    tiny_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing to keep: the same command, with the settings fixed, simply runs (no 'cannot resume')."""
    out = tmp_path / "run"

    def stop(request):  # noqa: ANN001, ANN202
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_suite(
            load_suite(tiny_suite),
            RunOptions(variants=("fake",), out=out, progress=False),
            {"fake": FakeVariant("fake", fn=stop)},
        )
    assert not out.exists()  # nothing was completed: no folder left behind
    (out / PROGRESS_DIR).mkdir(parents=True)  # a start killed with SIGKILL (no cleanup) leaves a plan only
    (out / PROGRESS_DIR / "plan.json").write_text(
        '{"fingerprint": {}, "fingerprint_sha256": "x", "run_id": "run", "created_at": "x"}'
    )
    assert main(["run", str(tiny_suite), "--variants", "echo", "--out", str(out), "--quiet"]) == 0
    assert (out / "run.json").exists() and not (out / PROGRESS_DIR).exists()


def test_a_torn_last_line_is_cut_off_before_new_samples_are_appended(tmp_path: Path) -> None:
    """A kill mid-append leaves a line without its newline. Resume must cut it off the file: appending
    after it would glue the next sample onto the torn bytes, and a later resume would lose that sample."""
    from harness.core.types import Generation
    from harness.run.progress import RunProgress

    progress = RunProgress(tmp_path / "run")
    progress.start("run-1", "2026-01-01T00:00:00+00:00", {"suite": "x"})
    progress.append("v", ["a", "b"], [Generation("A", 1, 1), Generation("B", 1, 1)])
    samples = progress.dir / "v.jsonl"
    whole = samples.read_bytes()
    with samples.open("ab") as handle:
        handle.write(b'{"id": "c", "text": "C", "prom')  # the kill came here
    assert set(progress.completed("v")) == {"a", "b"}
    assert samples.read_bytes() == whole  # the torn bytes are gone
    progress.append("v", ["c"], [Generation("C", 1, 1)])
    done = progress.completed("v")
    assert set(done) == {"a", "b", "c"} and done["c"].text == "C"
