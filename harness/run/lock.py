"""An exclusive lock on a run folder: two `harness run ... --out DIR` never write one folder.

The lock is the file `.DIR.lock` beside the folder (not inside it, so the folder holds only results),
holding the owner's pid, host and start time, and locked with `fcntl.flock`. The kernel drops a flock
when its process dies, however it dies, so a lock left by a killed run is simply taken over; a lock
still held on this host by a pid that is gone (a child process of a killed run keeps the descriptor)
is taken over too. The runner takes the lock before it looks at the folder (fresh, resumable, or
complete) and releases it after the last file is written.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.core.errors import HarnessError
from harness.core.files import pid_alive

_ATTEMPTS = 5  # a lock file replaced between our open and our flock: look again


class RunLock:
    """`with RunLock() as lock: lock.acquire(out_dir)`: held until the block ends; acquire at most once."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self._fd: int | None = None
        self._made: list[Path] = []  # folders made for the lock file, removed again if left empty

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def acquire(self, out_dir: Path) -> None:
        out_dir = Path(out_dir)
        path = out_dir.parent / f".{out_dir.name}.lock"
        try:
            self._make_parent(path.parent)
            for _ in range(_ATTEMPTS):
                if self._try(path, out_dir):
                    self.path = path
                    return
        except OSError as exc:
            self.release()
            raise HarnessError(
                f"cannot write results: {exc.strerror or exc}", str(out_dir), "choose a writable --out"
            ) from None
        raise HarnessError(
            f"cannot lock {out_dir}: its lock file keeps changing", str(path), "run one harness at a time on it"
        )

    def release(self) -> None:
        if self._fd is not None:
            if self.path is not None:
                with contextlib.suppress(OSError):
                    self.path.unlink()  # while still locked: a waiting run then finds no stale file
            os.close(self._fd)
            self._fd, self.path = None, None
        for folder in reversed(self._made):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: the run never started, leave no folder
        self._made = []

    def _try(self, path: Path, out_dir: Path) -> bool:
        """Lock `path` and write our identity into it; False when the file was replaced meanwhile."""
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(fd)
            os.close(fd)
            if _orphaned(owner):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # its owner is dead; a child it left holds the flock but writes nothing
                return False
            raise _busy(out_dir, path, owner) from None
        if not _same_file(fd, path):  # released and removed by its owner between our open and flock
            os.close(fd)
            return False
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(owner, sort_keys=True) + "\n").encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return True

    def _make_parent(self, folder: Path) -> None:
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        self._made = list(reversed(missing))  # outermost first; released innermost first


def _read_owner(fd: int) -> dict[str, Any]:
    try:
        owner = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except ValueError:
        return {}
    return owner if isinstance(owner, dict) else {}


def _orphaned(owner: dict[str, Any]) -> bool:
    pid = owner.get("pid")
    return owner.get("host") == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid)


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _busy(out_dir: Path, path: Path, owner: dict[str, Any]) -> HarnessError:
    who = f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}, started {owner.get('started', '?')}"
    return HarnessError(
        f"{out_dir} is being written by another harness run ({who})",
        str(path),
        "wait for that run to finish (or stop it), or choose another --out",
    )
