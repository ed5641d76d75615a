"""A run in progress, on disk, so that a killed run can be resumed: `RUN_DIR/progress/`.

- `plan.json`: the run's identity (id, start time) and a fingerprint of everything that decides its
  answers (suite config, data hashes, variant tables, selected variants, limit, model, forgetting). A
  resume with anything different is refused: mixing answers from two setups would be a silent lie.
- `<variant>.jsonl`: one line per completed sample, appended and flushed (fsync) after every batch. A
  line torn by a kill is dropped on resume; nothing else is ever rewritten.
- `<variant>.done.json`: written once the variant has answered every item (timings, probe, identity).

When the run completes, its final files are written (run.json last) and `progress/` is removed; a folder
with `progress/` and no `run.json` is an interrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.core.codec import generation_from_dict, generation_to_dict
from harness.core.errors import ConfigError, HarnessError
from harness.core.files import write_atomic
from harness.core.types import Generation
from harness.results.read import PROGRESS_DIR

PLAN_FILE = "plan.json"


class RunProgress:
    """The progress folder of one run; every write is flushed to disk before the call returns."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.dir = self.out_dir / PROGRESS_DIR

    @property
    def exists(self) -> bool:
        return (self.dir / PLAN_FILE).is_file()

    @property
    def stillborn(self) -> bool:
        """Only a progress folder without a plan: a run killed before it began (nothing to keep)."""
        return not self.exists and self.dir.is_dir() and [p.name for p in self.out_dir.iterdir()] == [PROGRESS_DIR]

    def start(self, run_id: str, created_at: str, fingerprint: dict[str, Any]) -> None:
        from harness.core.redact import redact_secrets

        # Stored redacted (plan.json must not keep an API key a config carried); compared by the raw digest.
        plan = {
            "run_id": run_id,
            "created_at": created_at,
            "fingerprint": redact_secrets(fingerprint),
            "fingerprint_sha256": _digest(fingerprint),
        }
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            _write_synced(
                self.dir / PLAN_FILE,
                json.dumps(plan, indent=2, sort_keys=True, ensure_ascii=False) + "\n",
                "w",
                atomic=True,
            )
        except OSError as exc:
            raise HarnessError(
                f"cannot write results: {exc.strerror or exc}",
                str(self.out_dir),
                "choose a writable --out, or free space",
            ) from None

    @property
    def has_samples(self) -> bool:
        return any(path.stat().st_size for path in self.dir.glob("*.jsonl"))

    def discard_if_empty(self) -> None:
        """Remove a progress folder that holds no sample (and the run folder, if nothing else is in it)."""
        if self.dir.is_dir() and not self.has_samples:
            self.remove()
            if self.out_dir.is_dir() and not any(self.out_dir.iterdir()):
                self.out_dir.rmdir()

    def plan(self) -> dict[str, Any]:
        try:
            return json.loads((self.dir / PLAN_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"unreadable {self.dir / PLAN_FILE} ({exc})", "", "start a new run with another --out"
            ) from None

    def check_same(self, fingerprint: dict[str, Any]) -> dict[str, Any]:
        """The stored plan, when it was made for exactly this fingerprint; else a one-line error naming what differs."""
        plan = self.plan()
        stored = plan.get("fingerprint", {})
        if plan.get("fingerprint_sha256") != _digest(fingerprint):
            from harness.core.redact import redact_secrets

            fresh = redact_secrets(fingerprint)
            differs = sorted(k for k in {*stored, *fresh} if stored.get(k) != fresh.get(k))
            raise ConfigError(
                f"cannot resume {self.out_dir}: it was started with a different {', '.join(differs) or 'setup'}",
                str(self.dir / PLAN_FILE),
                "rerun with the settings it was started with, or start a new run with another --out",
            )
        return plan

    def completed(self, variant: str) -> dict[str, Generation]:
        """The samples a variant finished, by item id. A trailing line torn by a kill is cut off the file."""
        path = self._samples(variant)
        if not path.is_file():
            return {}
        done: dict[str, Generation] = {}
        good_bytes = 0
        with path.open("rb") as handle:
            for raw in handle:
                try:
                    if not raw.endswith(b"\n"):
                        raise ValueError("torn line")
                    record = json.loads(raw)
                except ValueError:
                    break  # only the last line can be torn: appends happen one batch at a time
                done.setdefault(record["id"], _decode(record))
                good_bytes += len(raw)
        if good_bytes != path.stat().st_size:
            with path.open("r+b") as handle:
                handle.truncate(good_bytes)
        return done

    def append(self, variant: str, ids: Sequence[str], generations: Sequence[Generation]) -> None:
        text = "".join(
            json.dumps(_encode(i, g), sort_keys=True, ensure_ascii=False) + "\n" for i, g in zip(ids, generations)
        )
        path = self._samples(variant)
        try:
            _write_synced(path, text, "a")
        except OSError as exc:
            raise HarnessError(
                f"cannot write results: {exc.strerror or exc}",
                str(path),
                f"free space, then finish the run with --resume {self.out_dir}",
            ) from None

    def finish(self, variant: str, summary: dict[str, Any]) -> None:
        _write_synced(self.dir / f"{variant}.done.json", json.dumps(summary, sort_keys=True) + "\n", "w", atomic=True)

    def finished(self, variant: str) -> dict[str, Any] | None:
        path = self.dir / f"{variant}.done.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def _samples(self, variant: str) -> Path:
        return self.dir / f"{variant}.jsonl"


def fingerprint_of(parts: dict[str, Any]) -> dict[str, Any]:
    """Plain JSON of each part, so that a stored fingerprint compares equal to a fresh one."""
    return json.loads(json.dumps(parts, sort_keys=True, default=str))


def _digest(fingerprint: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()


def _write_synced(path: Path, text: str, mode: str, atomic: bool = False) -> None:
    if atomic:
        write_atomic(path, text)
        return
    with open(path, mode, encoding="utf-8", newline="\n") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _encode(item_id: str, generation: Generation) -> dict[str, Any]:
    return {"id": item_id, **generation_to_dict(generation, messages=True)}


def _decode(record: dict[str, Any]) -> Generation:
    record.pop("id")
    return generation_from_dict(record)
