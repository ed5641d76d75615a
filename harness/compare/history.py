"""`harness history RESULTS_DIR --suite NAME`: every run of one suite, oldest first, as a trend table.

Only each run's run.json is read, never its samples, so a thousand runs load in about a second. Run
directories are RESULTS_DIR/<run>/ and one level deeper, RESULTS_DIR/<group>/<run>/ (results/baselines/).
Between consecutive runs of a variant a marker says what changed in its inputs (MARKERS); the inputs
compared are flattened to `path -> value` once per run, and the first part of a path picks the marker.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.compare.history_types import MARKERS, History, HistoryRun, MetricPoint, VariantPoint
from harness.config.settings import metric_key
from harness.core.errors import HarnessError, HarnessWarning, UnknownNameError, did_you_mean
from harness.core.escaping import escape_controls
from harness.results.read import PROGRESS_DIR, read_run_json

MARKER_OF = {"model": "M", "model_identity": "M", "backend": "M", "adapter": "A", "data": "D", "index": "D"}  # else "C"
# Suite tables that do not change what a variant's metrics measure, or that are judged elsewhere:
# engine settings through each variant's resolved engine, variants through their own tables.
SUITE_TABLES_IGNORED = ("cost", "description", "engine", "forgetting", "variants")
INDEX_KEPT = ("key", "kind")  # index.cached / seconds / chunks say how it was built, not what it holds
SHA256 = re.compile(r"\b[0-9a-f]{64}\b")  # shown as its first 12 digits
PARTIAL_FOLDER = PROGRESS_DIR  # a run still being written (or interrupted) keeps its progress here


def load_history(results_dir: str | Path, suite: str) -> History:
    """Every complete run of `suite` under results_dir, oldest first, with change markers."""
    root = Path(results_dir)
    if not root.is_dir():
        raise HarnessError(
            f"no results folder {root}", "", "pass the folder `harness run` writes into (default results/)"
        )
    found, partial = _run_files(root)
    parsed: list[tuple[str, HistoryRun, list[Any]]] = []
    suites: set[str] = set()
    unreadable = 0
    for path in found:
        try:
            run = _parse(path)
        except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError, AttributeError) as exc:
            warnings.warn(
                f"skipped {path}: not a readable run.json ({type(exc).__name__}: {exc})", HarnessWarning, stacklevel=2
            )
            unreadable += 1
            continue
        suites.add(run[0])
        parsed.append(run)
    if not parsed:
        raise HarnessError(
            f"no runs under {root}",
            f"{partial} partial, {unreadable} unreadable",
            "point at the folder `harness run` writes into",
        )
    # a suite folder works too
    name = suite if suite in suites else suite.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    if name not in suites:
        raise UnknownNameError(f"no runs of suite '{suite}'", str(root), did_you_mean(suite, suites))
    ordered = sorted((r[1:] for r in parsed if r[0] == name), key=lambda r: (r[0].created_at, r[0].run_id))
    runs = _with_markers([run for run, _ in ordered])
    variants = tuple(dict.fromkeys(v for r in runs for v in r.variants))
    # the newest run's order
    metrics = _metric_order([m for r in runs for p in r.variants.values() for m in p.metrics], ordered[-1][1])
    return History(name, root, tuple(runs), variants, metrics, metrics[:1], partial, unreadable)


def select_history(
    history: History,
    metrics: Sequence[str] | None = None,
    variants: Sequence[str] | None = None,
    last: int | None = None,
) -> History:
    """Narrow a history to some metrics (also what the plot draws), some variants, the last N runs."""
    for asked, known, what in ((metrics, history.metrics, "metric"), (variants, history.variants, "variant")):
        for name in asked or ():
            if name not in known:
                raise UnknownNameError(
                    f"no {what} '{name}' in the runs of {history.suite}", f"--{what}", did_you_mean(name, known)
                )
    if last is not None and last < 1:
        raise HarnessError(f"--last must be at least 1, not {last}", "", "")
    runs = tuple(r for r in history.runs if any(v in r.variants for v in variants)) if variants else history.runs
    runs = runs[-last:] if last else runs
    return replace(
        history,
        runs=runs,
        metrics=tuple(metrics or history.metrics),
        variants=tuple(variants or history.variants),
        plot_metrics=tuple(metrics or history.plot_metrics),
    )


def _run_files(root: Path) -> tuple[list[Path], int]:
    """run.json of every complete run directory, and how many partial ones were passed over."""
    found: list[Path] = []
    partial = 0
    for child in _folders(root):
        kind = _kind(child)
        # A folder that is no run but holds folders is a group of runs (results/baselines/<run>/): one level only.
        for folder, what in (
            [(child, kind)] if kind or not _folders(child) else [(f, _kind(f)) for f in _folders(child)]
        ):
            if what == "run":
                found.append(folder / "run.json")
            partial += what == "partial"
    return found, partial


def _kind(folder: Path) -> str | None:
    """ "run", "partial" (still being written, or interrupted), or None: not a run directory."""
    if (folder / PARTIAL_FOLDER).exists():
        return "partial"
    if (folder / "run.json").is_file():
        return "run"
    return (
        "partial"
        if (folder / "run.json").exists() or any((folder / d).is_dir() for d in ("samples", "forgetting"))
        else None
    )


def _folders(path: Path) -> list[Path]:
    # Dot-folders are runs still being assembled (records stages under ".<name>.") or not runs at all.
    return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))


def _parse(path: Path) -> tuple[str, HistoryRun, list[Any]]:
    """(suite name, the run without markers yet, the suite's metric specs); raises on a bad file."""
    run = read_run_json(path)
    if not run.has_metrics:
        raise ValueError(f"no metrics table (schema_version {run.schema_version!r})")
    created = run.created
    git = run.environment.get("git") or {}
    commit = str(git.get("commit") or "")[:7] + ("*" if git.get("dirty") and git.get("commit") else "")
    config = run.suite_config
    data = run.data
    inputs = _flatten(
        {
            "data": {"sha256": data.get("sha256"), "eval_items": data.get("eval_items")},
            "suite": {k: v for k, v in config.items() if k not in SUITE_TABLES_IGNORED},
        }
    )
    described = run.variants
    points = {
        v: VariantPoint(
            {m: _point(c) for m, c in (run.metrics.get(v) or {}).items()},
            "",
            (),
            _variant_inputs(described.get(v) or {}),
        )
        for v in dict.fromkeys([*described, *run.metrics])
    }
    history_run = HistoryRun(
        str(run.run_id or path.parent.name),
        path.parent,
        created,
        str(run.status or "?"),
        commit,
        points,
        inputs,
    )
    return str(run.suite.get("name") or "?"), history_run, list(config.get("metrics") or [])


def _point(cell: Mapping[str, Any]) -> MetricPoint:
    n = cell.get("n")
    return MetricPoint(
        _number(cell.get("value")),
        _number(cell.get("ci_low")),
        _number(cell.get("ci_high")),
        n if isinstance(n, int) else None,
    )


def _number(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) else None


def _variant_inputs(described: Mapping[str, Any]) -> dict[str, Any]:
    engine = dict(described.get("engine") or {})
    adapter, index = engine.pop("adapter", None) or {}, engine.pop("index", None) or {}
    identity = engine.pop("model_identity", None)
    if identity and adapter.get("sha256"):  # a merged model's identity holds the adapter's hash: that is A, not M
        identity = str(identity).replace(str(adapter["sha256"]), "<adapter>")
    return _flatten(
        {
            "model": engine.pop("model", None),
            "model_identity": identity,
            "backend": engine.pop("backend", None),
            "adapter": adapter.get("sha256"),
            "index": {k: index.get(k) for k in INDEX_KEPT if k in index} or None,
            "engine": engine,
            "variant": {"kind": described.get("kind"), "config": described.get("config")},
        }
    )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping) and value:
        flat: dict[str, Any] = {}
        for key in sorted(value):
            flat.update(_flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {} if value is None or value == {} else {prefix: value}


def _with_markers(ordered: list[HistoryRun]) -> list[HistoryRun]:
    """Markers against the previous run of the same variant."""
    previous: dict[str, tuple[HistoryRun, VariantPoint]] = {}
    runs: list[HistoryRun] = []
    for run in ordered:
        points: dict[str, VariantPoint] = {}
        for variant, point in run.variants.items():
            changes: list[tuple[str, str]] = []
            if variant in previous:
                old_run, old_point = previous[variant]
                changes = _changes(old_run.inputs, run.inputs) + _changes(old_point.inputs, point.inputs)
            changes.sort(key=lambda c: list(MARKERS).index(c[0]))
            letters = "".join(m for m in MARKERS if any(c[0] == m for c in changes))
            points[variant] = replace(point, markers=letters, changes=tuple(changes))
        run = replace(run, variants=points)
        previous.update({v: (run, p) for v, p in points.items()})
        runs.append(run)
    return runs


def _changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, str]]:
    found = []
    for path in sorted(old.keys() | new.keys()):
        if old.get(path) != new.get(path):
            found.append(
                (
                    MARKER_OF.get(path.split(".", 1)[0], "C"),
                    f"{path}: {_short(old.get(path))} -> {_short(new.get(path))}",
                )
            )
    return found


def _short(value: Any) -> str:
    text = "-" if value is None else SHA256.sub(lambda m: m.group(0)[:12], " ".join(str(value).split()))
    return text if len(text) <= 80 else text[:77] + "..."


def _metric_order(found: list[str], specs: list[Any]) -> tuple[str, ...]:
    """The suite's metrics in its declared order (`name[field]` for field metrics), then any others."""
    declared = []
    for spec in specs:
        if isinstance(spec, str):
            declared.append(spec)
        elif isinstance(spec, Mapping) and spec.get("name"):
            declared.append(metric_key(str(spec["name"]), spec.get("field")))
    present = set(found)
    return tuple(dict.fromkeys([m for m in declared if m in present] + sorted(present)))


def history_markdown(history: History) -> str:
    """One table per metric: a row per run (oldest first), a column per variant, markers after values."""
    lines = [f"# {history.suite}: {len(history.runs)} run{'' if len(history.runs) == 1 else 's'}, oldest first", ""]
    if history.skipped_partial or history.unreadable:
        lines += [
            f"Skipped: {history.skipped_partial} partial run directories (no run.json, or a {PARTIAL_FOLDER}/ folder),"
            f" {history.unreadable} unreadable run.json.",
            "",
        ]
    lines += ["Markers after a value say what changed since that variant's previous run:", ""]
    lines += [f"- `{letter}` {text}" for letter, text in MARKERS.items()] + [
        "- commit `*`: uncommitted changes in the tree",
        "",
    ]
    for metric in history.metrics:
        lines += [
            f"## {metric}",
            "",
            "| run | created (UTC) | status | commit | " + " | ".join(history.variants) + " |",
        ]
        lines.append("|" + "---|" * (4 + len(history.variants)))
        for run in history.runs:
            cells = [run.run_id, _when(run.created_at), run.status, run.commit or "-"]
            for variant in history.variants:
                point = run.variants.get(variant)
                value = point.metrics.get(metric) if point else None
                text = "-" if value is None or value.value is None else f"{value.value:.3f}"
                cells.append(text + (f" ({point.markers})" if point and point.markers else ""))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return escape_controls("\n".join(lines + _change_lines(history)).rstrip("\n") + "\n")  # printed, and markdown


def _change_lines(history: History) -> list[str]:
    lines: list[str] = []
    for run in history.runs:
        shown = [v for v in history.variants if v in run.variants]
        by_text: dict[tuple[str, str], list[str]] = {}
        for variant in shown:
            for change in run.variants[variant].changes:
                by_text.setdefault(change, []).append(variant)
        for (letter, text), variants in sorted(by_text.items(), key=lambda item: list(MARKERS).index(item[0][0])):
            who = "every variant" if len(variants) == len(shown) > 1 else ", ".join(variants)
            lines.append(f"- `{run.run_id}` {letter} {who}: {text}")
    return ["## What changed", ""] + lines if lines else []


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


def history_dict(history: History) -> dict[str, Any]:
    """The history as plain data (`--json`)."""
    runs: list[dict[str, Any]] = []
    for run in history.runs:
        variants = {
            v: {
                "markers": p.markers,
                "changes": [f"{m} {t}" for m, t in p.changes],
                "metrics": {m: vars(p.metrics[m]) for m in history.metrics if m in p.metrics},
            }
            for v, p in run.variants.items()
            if v in history.variants
        }
        runs.append(
            {
                "run_id": run.run_id,
                "dir": str(run.dir),
                "created_at": run.created_at.isoformat(),
                "status": run.status,
                "commit": run.commit,
                "variants": variants,
            }
        )
    return {
        "suite": history.suite,
        "results_dir": str(history.results_dir),
        "markers": MARKERS,
        "metrics": list(history.metrics),
        "variants": list(history.variants),
        "skipped_partial": history.skipped_partial,
        "unreadable": history.unreadable,
        "runs": runs,
    }


def history_csv(history: History) -> str:
    """Long format: one row per run, variant and metric."""
    import pandas as pd

    columns = ["run_id", "created_at", "variant", "metric", "value", "ci_low", "ci_high", "markers"]
    rows = [
        [run.run_id, run.created_at.isoformat(), variant, metric, p.value, p.ci_low, p.ci_high, point.markers]
        for run in history.runs
        for variant, point in run.variants.items()
        if variant in history.variants
        for metric, p in point.metrics.items()
        if metric in history.metrics
    ]
    return pd.DataFrame(rows, columns=columns).to_csv(index=False, float_format="%.6g")


def write_history(history: History, out_dir: str | Path) -> dict[str, Path]:
    """history.md, history.csv and history.png (history.plot_metrics over time) in out_dir."""
    from harness.compare.history_plot import plot_png
    from harness.core.files import make_folder, write_file

    out = make_folder(out_dir)
    paths = {"markdown": out / "history.md", "csv": out / "history.csv", "png": out / "history.png"}
    write_file(paths["markdown"], history_markdown(history))
    write_file(paths["csv"], history_csv(history))
    write_file(paths["png"], plot_png(history))
    return paths
