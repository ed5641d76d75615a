"""Every file the harness writes goes through harness.core.files.write_file: on a full disk (for real:
/dev/full answers ENOSPC), with a folder where a file should be, or with a file where a folder should
be, the command prints one line `error: cannot write ...`, exits 2, and the previous file is intact."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.core.errors import WriteError
from harness.core.files import write_file

FULL = Path("/dev/full")
pytestmark = pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full (Linux)")
PACKAGE = Path(__file__).resolve().parents[1] / "harness"


def fill_disk_for(path: Path) -> None:
    """The next write of `path` from this process goes through a full disk: harness.core.files writes it
    through `.NAME.<pid>.tmp`, here a link to /dev/full."""
    (path.parent / f".{path.name}.{os.getpid()}.tmp").symlink_to(FULL)


def one_error_line(code: int, err: str, *needles: str) -> str:
    assert code == 2 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: cannot write "), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def no_temporary_files(folder: Path) -> None:
    assert not [p for p in folder.rglob("*.tmp")], "a temporary file (or its link) was left behind"


@pytest.fixture
def run_dir(tiny_suite: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    assert main(["run", str(tiny_suite), "--variants", "echo,canned", "--out", str(out), "--quiet"]) == 0
    return out


def test_write_file_full_disk_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    write_file(target, "the complete previous report\n")
    fill_disk_for(target)
    with pytest.raises(WriteError) as raised:
        write_file(target, "x" * 1_000_000)
    assert str(raised.value).startswith(f"cannot write {target}: No space left on device")
    assert "free space" in raised.value.fix
    assert target.read_text() == "the complete previous report\n"
    no_temporary_files(tmp_path)


def test_write_file_text_and_bytes_and_its_folder(tmp_path: Path) -> None:
    write_file(tmp_path / "a" / "b" / "text.md", "é\r\nline\n")
    write_file(tmp_path / "a" / "plot.png", b"\x89PNG\r\n\x00")
    assert (tmp_path / "a" / "b" / "text.md").read_bytes() == "é\r\nline\n".encode()
    assert (tmp_path / "a" / "plot.png").read_bytes() == b"\x89PNG\r\n\x00"


def test_write_file_folder_in_the_way_and_file_in_the_way(tmp_path: Path) -> None:
    (tmp_path / "report.html").mkdir()
    with pytest.raises(WriteError, match="Is a directory") as raised:
        write_file(tmp_path / "report.html", "x")
    assert "a folder is in the way" in raised.value.fix
    (tmp_path / "plain").write_text("keep me")
    with pytest.raises(WriteError, match="a file is in the way"):
        write_file(tmp_path / "plain" / "diff.md", "x")
    assert (tmp_path / "plain").read_text() == "keep me"
    no_temporary_files(tmp_path)


def test_compare_on_a_full_disk_keeps_the_previous_report(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(run_dir), "--baseline", "echo"]) == 0
    before = contents(run_dir)
    assert "report.html" in before and len(before["report.html"]) > 1000
    fill_disk_for(run_dir / "report.html")
    capsys.readouterr()
    code = main(["compare", str(run_dir), "--baseline", "echo"])
    one_error_line(code, capsys.readouterr().err, "report.html: No space left on device", "free space")
    assert contents(run_dir) == before
    no_temporary_files(run_dir)


def test_compare_with_a_folder_where_the_report_goes(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "reports"
    (out / "comparison.csv").mkdir(parents=True)
    code = main(["compare", str(run_dir), "--baseline", "echo", "--out", str(out)])
    one_error_line(code, capsys.readouterr().err, "comparison.csv: Is a directory", "remove or rename it")


def test_diff_out_on_a_full_disk_and_under_a_file(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "diff"
    assert main(["diff", str(run_dir), str(run_dir), "--out", str(out)]) == 0
    before = contents(out)
    fill_disk_for(out / "diff.json")
    capsys.readouterr()
    code = main(["diff", str(run_dir), str(run_dir), "--out", str(out)])
    one_error_line(code, capsys.readouterr().err, "diff.json: No space left on device")
    assert contents(out) == before
    (tmp_path / "a-file").write_text("not a folder")
    code = main(["diff", str(run_dir), str(run_dir), "--out", str(tmp_path / "a-file" / "diff")])
    one_error_line(code, capsys.readouterr().err, "a file is in the way")
    assert (tmp_path / "a-file").read_text() == "not a folder"


def test_check_data_out_on_a_full_disk(tiny_suite: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "check.json"
    assert main(["check-data", str(tiny_suite), "--estimate-tokens", "--out", str(report)]) == 0
    before = report.read_bytes()
    fill_disk_for(report)
    capsys.readouterr()
    code = main(["check-data", str(tiny_suite), "--estimate-tokens", "--out", str(report)])
    err = capsys.readouterr().err
    one_error_line(code, err, "check.json: No space left on device")
    assert report.read_bytes() == before
    no_temporary_files(tmp_path)


def test_history_plot_on_a_full_disk(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "history"
    args = ["history", str(run_dir.parent), "--suite", "tiny", "--out", str(out)]
    assert main(args) == 0
    before = contents(out)
    assert before["history.png"].startswith(b"\x89PNG")
    fill_disk_for(out / "history.png")
    capsys.readouterr()
    one_error_line(main(args), capsys.readouterr().err, "history.png: No space left on device")
    assert contents(out) == before


def test_two_processes_writing_one_file_never_leave_a_torn_one(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    script = (
        "import sys; from harness.core.files import write_file\n"
        "for _ in range(40): write_file(sys.argv[1], sys.argv[2] * 400_000)\n"
    )
    writers = [subprocess.Popen([sys.executable, "-c", script, str(target), mark]) for mark in "ab"]
    while any(w.poll() is None for w in writers):
        if target.exists():
            text = target.read_text()
            assert text in ("a" * 400_000, "b" * 400_000), f"torn file: {len(text)} characters"
    assert [w.returncode for w in writers] == [0, 0]
    assert target.read_text() in ("a" * 400_000, "b" * 400_000)
    no_temporary_files(tmp_path)


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        target = tmp_path / "summary.md"
        left = [tmp_path / f".summary.md.{pid}.tmp" for pid in (dead.pid, alive.pid)]
        for stale in left:
            stale.write_text("half a fi")
        write_file(target, "whole\n")
        assert target.read_text() == "whole\n"
        assert [p.exists() for p in left] == [False, True]  # a live writer's file is its own
    finally:
        alive.kill()
        alive.wait()


# Writes that may bypass write_file: appends to the progress log (fsynced line by line; a torn last
# line is dropped on resume) and files written inside a staging folder that is renamed into place whole.
ALLOWED = {
    "core/files.py": "the helper itself",
    "run/progress.py": "appends to progress/<variant>.jsonl",
    "engines/models.py": "inside a staging folder, renamed whole",
    "retrieval/index.py": "inside a staging folder, renamed whole",
}
WRITES = re.compile(
    r"\.write_text\(|\.write_bytes\(|savefig\((?!buf|image)|open\([^)]*[\"'](?:w|a|x|r\+)[b+]*[\"']|save_file\("
)


def test_every_writer_goes_through_harness_files() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).as_posix() not in ALLOWED
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if WRITES.search(line)
    ]
    assert offenders == [], "write through harness.core.files.write_file:\n" + "\n".join(offenders)


def test_index_cache_write_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.retrieval.index import build_index
    from harness.retrieval.knowledge import Chunk

    chunks = [
        Chunk(f"doc{i}#0", f"doc{i}", f"product {i} has {i} ports and a manual of many words " * 20) for i in range(50)
    ]
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "indexes").write_text("a file where the index folder goes")
    with pytest.raises(WriteError, match="a file is in the way") as raised:
        build_index("bm25", chunks)
    assert "HARNESS_CACHE_DIR" in raised.value.fix
    # A real write failure mid-build (a file-size limit: EFBIG from the kernel), in a process of its own.
    script = (
        "import resource, signal, sys\n"
        "from harness.cli import main\n"
        "from harness.retrieval.knowledge import Chunk\n"
        "from harness.retrieval.index import build_index\n"
        "from harness.core.errors import WriteError\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))\n"
        "chunks = [Chunk(f'doc{i}#0', f'doc{i}', ' '.join(f'w{i}x{j}' for j in range(200))) for i in range(50)]\n"
        "try:\n    build_index('bm25', chunks)\nexcept WriteError as exc:\n    print(exc)\n    sys.exit(3)\n"
    )
    env = {**os.environ, "HARNESS_CACHE_DIR": str(tmp_path / "cache2")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 3, done.stderr
    # numpy reports the short write as "N requested and M written" (no errno): still one line, with the fix
    assert (
        done.stdout.startswith("cannot write ") and done.stdout.count("\n") == 1 and "HARNESS_CACHE_DIR" in done.stdout
    )
    assert not [p for p in (tmp_path / "cache2" / "indexes").iterdir()], "a half-built index was left behind"
