"""Reading result directories back (docs/results-format.md): what `harness compare` and `harness diff`
work from, without regenerating anything."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.core.errors import DataError, HarnessError

SCHEMA_VERSION = 1  # of run.json; harness.results.write records it
PROGRESS_DIR = "progress"  # a run still being written keeps its progress here (harness.run.progress)


@dataclass(frozen=True)
class RunJson:
    """run.json, typed for what reads it (compare, diff, history). A table a hand-made or older run.json
    lacks (or holds as null) reads as empty. Nothing is looked at before it is asked for, so that history,
    which reads only run.json, still loads a thousand runs in about a second."""

    raw: Any  # the parsed document, whatever it holds

    @property
    def schema_version(self) -> Any:
        return self.raw.get("schema_version") if isinstance(self.raw, dict) else None

    @property
    def has_metrics(self) -> bool:
        """Whether it holds a metrics table (else it is no run.json of any version)."""
        return isinstance(self.raw, dict) and isinstance(self.raw.get("metrics"), dict)

    @property
    def run_id(self) -> Any:
        return self.raw.get("run_id")

    @property
    def created_at(self) -> Any:
        return self.raw.get("created_at")

    @property
    def created(self) -> datetime:
        """created_at as an aware datetime (UTC where it names no zone); KeyError or ValueError without one."""
        created = datetime.fromisoformat(str(self.raw["created_at"]).replace("Z", "+00:00"))
        return created if created.tzinfo else created.replace(tzinfo=timezone.utc)

    @property
    def status(self) -> Any:
        return self.raw.get("status")

    @property
    def suite(self) -> Mapping[str, Any]:
        return self._table("suite")

    @property
    def suite_config(self) -> Mapping[str, Any]:
        return self.suite.get("config") or {}

    @property
    def data(self) -> Mapping[str, Any]:
        return self._table("data")

    @property
    def variants(self) -> Mapping[str, Mapping[str, Any]]:
        return self._table("variants")

    @property
    def variant_order(self) -> list[str]:
        """The declared order of the variants; [] where run.json predates it (or it is damaged)."""
        order = self.raw.get("variant_order")
        return order if isinstance(order, list) and all(isinstance(v, str) for v in order) else []

    @property
    def metrics(self) -> Mapping[str, Mapping[str, Mapping[str, Any]]]:
        return self._table("metrics")

    def metric(self, variant: str, name: str) -> Mapping[str, Any]:
        """One metric's summary (value, ci_low, ci_high, interval, n, higher_is_better); {} where absent."""
        return (self.metrics.get(variant) or {}).get(name) or {}

    @property
    def timings(self) -> Mapping[str, Any]:
        return self._table("timings")

    @property
    def environment(self) -> Mapping[str, Any]:
        return self._table("environment")

    @property
    def forgetting(self) -> Mapping[str, Any]:
        return self._table("forgetting")

    def _table(self, key: str) -> Mapping[str, Any]:
        return self.raw.get(key) or {}


def read_run_json(path: Path) -> RunJson:
    """A run.json of any schema version (load_run checks the version). Raises OSError, UnicodeDecodeError
    or ValueError (not JSON), for the caller to word."""
    return RunJson(json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True)
class RunResult:
    """One run directory: run.json and every variant's samples, keyed by item id."""

    dir: Path
    run_json: RunJson
    samples: dict[str, dict[str, dict[str, Any]]]  # variant -> item id -> sample

    @property
    def run(self) -> dict[str, Any]:
        """run.json as parsed, for what RunJson does not name."""
        return self.run_json.raw

    @property
    def variants(self) -> list[str]:
        """In the order the suite declared them (`variant_order`); runs written before that key was
        recorded have only run.json's sorted keys, so theirs come alphabetically."""
        names = list(self.run_json.variants)
        declared = [v for v in dict.fromkeys(self.run_json.variant_order) if v in names]
        return declared + [v for v in names if v not in declared]

    @property
    def suite_name(self) -> str:
        return str(self.run_json.suite.get("name", "?"))

    def metric_names(self, variant: str) -> list[str]:
        return list(self.run_json.metrics.get(variant, {}))

    def paired_binary(self, metric: str) -> bool | None:
        """compare_paired's `binary` for this metric: False where the run recorded its intervals as other than
        Wilson's (a metric that is never a proportion, as the judge's 1-5 grades and people's ratings, then
        gets the paired t-test even when every value happens to be 1); None (decide from the values) where it
        recorded Wilson's, or no interval at all (runs written before intervals were named)."""
        recorded = [found["interval"] for v in self.variants if "interval" in (found := self.run_json.metric(v, metric))]
        return False if recorded and "wilson" not in recorded else None

    def scores(self, variant: str, metric: str) -> dict[str, float | None]:
        """Per-item values of one metric (None where undefined for that item)."""
        return {item: sample.get("scores", {}).get(metric) for item, sample in self.samples[variant].items()}

    def kind(self, variant: str) -> str:
        return str(self.run_json.variants[variant].get("kind", "?"))


def load_run(path: str | Path) -> RunResult:
    """Load a result directory written by `harness run`; a broken one is a one-line error."""
    folder = Path(path)
    run_json = folder / "run.json"
    if not run_json.is_file() and (folder / PROGRESS_DIR).is_dir():
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
        run = read_run_json(run_json)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DataError(
            f"run.json is not valid JSON ({exc})", str(run_json), "restore it from the run, or rerun"
        ) from None
    if run.schema_version != SCHEMA_VERSION:
        raise DataError(
            f"unsupported result schema_version {run.schema_version!r} (expected {SCHEMA_VERSION})",
            str(run_json),
            "rerun with this harness version",
        )
    samples = {}
    for variant, described in run.variants.items():
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
