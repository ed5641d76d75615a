"""Writing files. Every file the harness writes (results, reports, diffs, check-data and history
outputs, plots, training records) goes through `write_file`, so that none is ever left half-written:

    write_file(path, text_or_bytes)     temporary file in the same folder, fsync, os.replace
    make_folder(path)                   mkdir -p, with the same one-line errors

A full disk, a read-only or unwritable folder, or a folder where the file should be is a `WriteError`
(`error: cannot write PATH: No space left on device - PATH - free space ...`), and the previous file,
if any, is untouched: readers see the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
from pathlib import Path

from harness.core.errors import WriteError

_FIXES = {
    errno.ENOSPC: "free space on that disk, then run the command again",
    errno.EDQUOT: "free space (disk quota exceeded), then run the command again",
    errno.EACCES: "make the folder writable, or write somewhere else (--out)",
    errno.EPERM: "make the folder writable, or write somewhere else (--out)",
    errno.EROFS: "the file system is read-only: write somewhere else (--out)",
    errno.EISDIR: "a folder is in the way of the file: remove or rename it, or write somewhere else (--out)",
    errno.ENOTDIR: "a file is in the way of a folder on that path: remove or rename it, or write somewhere else (--out)",
    errno.EEXIST: "a file is in the way of a folder on that path: remove or rename it, or write somewhere else (--out)",
}


def write_file(path: str | Path, data: str | bytes, fix: str = "") -> None:
    """Write `data` (text as UTF-8 with \\n newlines, or bytes) to `path`, creating its folder.
    Raises WriteError, with `fix` (else a fix for the cause) as its last part."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
    except OSError as exc:
        raise write_error(exc, path, fix) from None


def make_folder(path: str | Path, fix: str = "") -> Path:
    """mkdir -p `path`; a file in the way or a folder that cannot be created is a WriteError."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, path, fix) from None
    return path


def write_error(exc: OSError, path: Path, fix: str = "") -> WriteError:
    reason = exc.strerror or str(exc)
    if isinstance(exc, FileExistsError):
        reason = "a file is in the way of a folder"
    return WriteError(f"cannot write {path}: {reason}", str(path), fix or _FIXES.get(exc.errno or 0, "check the path"))


def write_atomic(path: Path, data: str | bytes) -> None:
    """The low-level write: raises OSError, and removes its temporary file whatever happens.

    The temporary name carries the pid, so that two processes writing one file never share a
    temporary file (the last rename wins, with a whole file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if isinstance(data, str):
            handle = open(tmp, "w", encoding="utf-8", newline="\n")
        else:
            handle = open(tmp, "wb")
        with handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
        raise
    _sync_folder(path.parent)
    _remove_stale_temporaries(path)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (a process of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_temporaries(path: Path) -> None:
    """Temporary files of this target left by a killed process (kill -9 mid-write): the next write of
    the target, whoever makes it, removes them. A live writer's temporary file is left alone."""
    prefix = f".{path.name}."
    for candidate in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = candidate.name[len(prefix) : -len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            with contextlib.suppress(OSError):
                candidate.unlink()


def _sync_folder(folder: Path) -> None:
    """fsync the folder, so that the rename itself survives a power cut (where the OS allows it)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems refuse fsync on a folder; the rename is still atomic
    finally:
        os.close(descriptor)
