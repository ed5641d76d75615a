"""A full disk or an unwritable results folder: one clear line, no corrupt file, and (once there is space
again) the run resumes to the same files. The disk fills for real: writes go to /dev/full (ENOSPC)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import FakeVariant, RunOptions, load_suite, run_suite
from harness.cli import main
from harness.core.errors import HarnessError

FULL = Path("/dev/full")
pytestmark = pytest.mark.skipif(not FULL.exists() and not os.environ.get("CI"), reason="needs /dev/full (Linux)")


def _samples(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "samples").glob("*.jsonl"))}


def _no_temporary_files(out: Path) -> None:
    assert not [p for p in out.rglob("*.tmp")], "a half-written temporary file was left behind"


def test_disk_full_while_appending_samples(tiny_suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.run.progress

    suite = load_suite(tiny_suite)
    out = tmp_path / "run"
    original = harness.run.progress._write_synced
    appended = []

    def disk_fills_after_the_first_batch(path: Path, text: str, mode: str, atomic: bool = False) -> None:
        if path.name == "fake.jsonl":
            appended.append(text)
            if len(appended) > 1:
                path = FULL  # the kernel answers ENOSPC, as a full disk does
        original(path, text, mode, atomic)

    monkeypatch.setattr(harness.run.progress, "_write_synced", disk_fills_after_the_first_batch)
    with pytest.raises(HarnessError) as raised:
        run_suite(
            suite,
            RunOptions(variants=("fake",), out=out, progress=False),
            {"fake": FakeVariant("fake", fn=lambda r: r.id.upper())},
        )
    message = str(raised.value)
    assert message.startswith("cannot write results: No space left on device") and f"--resume {out}" in message
    assert not (out / "run.json").exists()
    _no_temporary_files(out)
    assert (out / "progress" / "fake.jsonl").read_text() == appended[0]  # the batch written before is intact

    # Space again: the run resumes from the kept batch and ends as an uninterrupted run does.
    monkeypatch.setattr(harness.run.progress, "_write_synced", original)
    resumed = FakeVariant("fake", fn=lambda r: r.id.upper())
    run_suite(suite, RunOptions(variants=("fake",), resume=out, progress=False), {"fake": resumed})
    assert [[r.id for r in call] for call in resumed.calls] == [["pt", "at"]]
    reference = run_suite(
        suite,
        RunOptions(variants=("fake",), out=tmp_path / "ref", progress=False),
        {"fake": FakeVariant("fake", fn=lambda r: r.id.upper())},
    )
    assert _samples(out) == _samples(reference)


def test_disk_full_while_writing_final_files(
    tiny_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    original = FakeVariant.generate

    def fill_before_summary(self, requests):  # noqa: ANN001, ANN202
        temporary = out / f".summary.md.{os.getpid()}.tmp"  # the name harness.core.files writes summary.md through
        if not temporary.is_symlink():
            temporary.symlink_to(FULL)  # summary.md will be written through a full disk
        return original(self, requests)

    monkeypatch.setattr(FakeVariant, "generate", fill_before_summary)
    code = main(["run", str(tiny_suite), "--variants", "canned", "--out", str(out), "--quiet"])
    monkeypatch.setattr(FakeVariant, "generate", original)
    err = capsys.readouterr().err
    assert code == 2 and "error: cannot write results: No space left on device" in err and "Traceback" not in err
    assert not (out / "run.json").exists() and not (out / "summary.md").exists()
    _no_temporary_files(out)
    assert main(["run", str(tiny_suite), "--variants", "canned", "--out", str(out), "--quiet"]) == 0
    assert (out / "run.json").exists() and not (out / "progress").exists()


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
def test_unwritable_results_folder(
    tiny_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    if where == "under-a-file":
        (tmp_path / "a-file").write_text("not a folder")
        out = tmp_path / "a-file" / "run"
    else:
        out = Path("/proc/harness-cannot-write-here/run")
    code = main(["run", str(tiny_suite), "--variants", "echo", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert (
        code == 2
        and err.startswith("error: cannot write results:")
        and str(out) in err
        and len(err.strip().splitlines()) == 1
    )
    if where == "under-a-file":
        assert (tmp_path / "a-file").read_text() == "not a folder"
