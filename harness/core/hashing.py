"""Content hashes of data files, model weights and adapters: what a run records to say exactly what
it evaluated, and what the generation cache keys answers by.

Hashing a model's weights takes seconds per GiB, so the hash of a large file is remembered (in the
harness cache folder) by its resolved path, size and modification time, and computed again only when one
of those changes.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

REMEMBER_FROM_BYTES = 1 << 20  # smaller files hash faster than a database lookup
HASHES_FILE = "file-hashes.sqlite"


def file_sha256(path: Path) -> str:
    path = Path(path)
    stat = path.stat()
    if stat.st_size < REMEMBER_FROM_BYTES:
        return _compute(path)
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    remembered = _recall(key)
    if remembered is not None:
        return remembered
    digest = _compute(path)
    _remember(key, digest)
    return digest


def directory_sha256(path: Path) -> str:
    """One hash over every file's relative name and content, in sorted order."""
    digest = hashlib.sha256()
    root = Path(path)
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        digest.update(file_sha256(file).encode() + b"\0")
    return digest.hexdigest()


def _compute(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _database() -> sqlite3.Connection | None:
    from harness.core.paths import cache_root

    try:
        root = cache_root()
        root.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(root / HASHES_FILE, timeout=30)
        db.execute(
            "CREATE TABLE IF NOT EXISTS hashes (path TEXT, size INTEGER, mtime_ns INTEGER, sha256 TEXT, PRIMARY KEY (path, size, mtime_ns))"
        )
        return db
    except (OSError, sqlite3.Error):
        return None  # an unwritable cache folder only costs the time of hashing again


def _recall(key: tuple[str, int, int]) -> str | None:
    db = _database()
    if db is None:
        return None
    try:
        row = db.execute("SELECT sha256 FROM hashes WHERE path = ? AND size = ? AND mtime_ns = ?", key).fetchone()
    except sqlite3.Error:
        row = None
    finally:
        db.close()
    return row[0] if row else None


def _remember(key: tuple[str, int, int], digest: str) -> None:
    db = _database()
    if db is None:
        return
    try:
        with db:
            db.execute("DELETE FROM hashes WHERE path = ?", key[:1])  # one entry per file: its latest state
            db.execute("INSERT INTO hashes VALUES (?, ?, ?, ?)", (*key, digest))
    except sqlite3.Error:
        pass
    finally:
        db.close()
