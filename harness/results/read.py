"""Reading result directories back (docs/results-format.md): what `harness compare` and `harness diff`
work from, without regenerating anything."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import DataError, HarnessError

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RunResult:
    """One run directory: run.json and every variant's samples, keyed by item id."""

    dir: Path
    run: dict[str, Any]
    samples: dict[str, dict[str, dict[str, Any]]]  # variant -> item id -> sample

    @property
    def variants(self) -> list[str]:
        """In the order the suite declared them (`variant_order`); runs written before that key was
        recorded have only run.json's sorted keys, so theirs come alphabetically."""
        names = list(self.run.get("variants", {}))
        order = self.run.get("variant_order")
        if not isinstance(order, list) or not all(isinstance(v, str) for v in order):
            order = []
        declared = [v for v in dict.fromkeys(order) if v in names]
        return declared + [v for v in names if v not in declared]

    @property
    def suite_name(self) -> str:
        return str(self.run.get("suite", {}).get("name", "?"))

    def metric_names(self, variant: str) -> list[str]:
        return list(self.run.get("metrics", {}).get(variant, {}))

    def scores(self, variant: str, metric: str) -> dict[str, float | None]:
        """Per-item values of one metric (None where undefined for that item)."""
        return {item: sample.get("scores", {}).get(metric) for item, sample in self.samples[variant].items()}

    def kind(self, variant: str) -> str:
        return str(self.run["variants"][variant].get("kind", "?"))


def load_run(path: str | Path) -> RunResult:
    """Load a result directory written by `harness run`; a broken one is a one-line error."""
    folder = Path(path)
    run_json = folder / "run.json"
    if not run_json.is_file() and (folder / "progress").is_dir():
        raise HarnessError(
            f"{folder} is an interrupted run (no run.json yet)",
            str(folder),
            f"finish it with `harness run SUITE --resume {folder}`",
        )
    if not run_json.is_file():
        raise HarnessError(
            f"not a result directory: {folder} has no run.json", str(folder), "pass a folder written by `harness run`"
        )
    try:
        run = json.loads(run_json.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataError(
            f"run.json is not valid JSON ({exc})", str(run_json), "restore it from the run, or rerun"
        ) from None
    if not isinstance(run, dict) or run.get("schema_version") != SCHEMA_VERSION:
        found = run.get("schema_version") if isinstance(run, dict) else None
        raise DataError(
            f"unsupported result schema_version {found!r} (expected {SCHEMA_VERSION})",
            str(run_json),
            "rerun with this harness version",
        )
    samples = {}
    for variant, described in run.get("variants", {}).items():
        samples[variant] = _read_samples(folder / described.get("samples", f"samples/{variant}.jsonl"))
    return RunResult(folder, run, samples)


def _read_samples(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        raise DataError("samples file missing", str(path), "the result directory is incomplete: rerun")
    samples: dict[str, dict[str, Any]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 (byte {exc.start})", str(path), "the result directory is damaged: rerun") from None
    for line_number, line in enumerate(text.splitlines(), start=1):
        try:
            sample = json.loads(line)
            samples[str(sample["id"])] = sample
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"invalid sample line ({exc})", f"{path}:{line_number}", "the result directory is damaged: rerun"
            ) from None
    return samples
