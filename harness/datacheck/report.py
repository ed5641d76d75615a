"""`harness check-data`: which files to check in which role, token counting, and the report.

Paths are JSONL files (train or eval by `--train` / `--eval`, else by a word in the file name) or one
suite folder, whose suite.toml names its eval and train files, field names, template and context.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.config.parse import check_file
from harness.core.errors import ConfigError, DataError, HarnessError
from harness.core.escaping import escape_controls
from harness.datacheck.checks import balance, exact_checks, leakage_exact, unseen_labels
from harness.datacheck.findings import SEVERITIES, Finding, Findings, Omitted
from harness.datacheck.layouts import LAYOUTS
from harness.datacheck.lengths import Limits, estimate_tokens, length_checks, size_guidance, suite_limits
from harness.datacheck.near_duplicates import SIMILARITY, near_checks
from harness.datacheck.pool import Pool
from harness.datacheck.reading import FileData, read_file
from harness.datacheck.suite_records import suite_layout

EXIT_CLEAN, EXIT_ERRORS = 0, 1  # 2 stays "bad input" (a HarnessError), as everywhere in harness
REPORT_SCHEMA = 1
# A split's name decides; words that say what data is for (sft, fine_tuning) decide only when no split
# word does, so that sft_test.jsonl is the test split of SFT data. Two adjacent words also count joined
# (fine_tuning, held-out), so a name is read the same however its words are separated.
_TRAIN_WORDS = {"train", "training", "trainset", "trn"}
_EVAL_WORDS = {
    "eval",
    "evals",
    "evaluation",
    "test",
    "tests",
    "testing",
    "testset",
    "dev",
    "devset",
    "val",
    "valid",
    "validation",
    "heldout",
    "holdout",
    "benchmark",
}
_TRAIN_PURPOSE_WORDS = {"finetune", "finetuning", "finetuned", "ft", "sft", "dpo"}
_TOKENIZE_CHARS = 200_000  # longer texts are counted as characters/4: they are far over any context anyway


@dataclass(frozen=True)
class CheckOptions:
    train: tuple[str, ...] = ()  # files that are training data, whatever their names
    eval: tuple[str, ...] = ()
    layout: str = "auto"  # auto | chat | completion | preference | fields (files only; a suite names its own)
    max_len: int | None = None  # context in tokens (default: the suite's [engine] max_model_len, else 2048)
    model: str | None = None  # whose tokenizer counts tokens (default: the suite's [engine] model)
    tokenizer: bool = True  # False: characters/4, without loading a tokenizer
    similarity: float = SIMILARITY  # TF-IDF cosine from which two inputs are near duplicates


@dataclass(frozen=True)
class FileSummary:
    path: str
    role: str
    records: int  # records that passed the per-line checks (the rest are findings)
    lines: int  # non-blank lines
    layouts: dict[str, int]
    dropped: int = 0  # exact repeats of earlier lines (repeated_line), left out as harness run leaves them out


@dataclass(frozen=True)
class Report:
    files: tuple[FileSummary, ...]
    findings: tuple[Finding, ...]  # the listed ones: at most MAX_PER_KIND per file and code
    tokens: str  # how tokens were counted
    limits: Limits
    seconds: float = 0.0
    omitted: tuple[Omitted, ...] = ()  # the rest, counted per file and code

    def count(self, severity: str) -> int:
        """Problems found of this severity: every one, listed or not."""
        listed = sum(1 for finding in self.findings if finding.severity == severity)
        return listed + sum(o.count for o in self.omitted if o.severity == severity)

    @property
    def exit_code(self) -> int:
        return EXIT_ERRORS if self.count("error") else EXIT_CLEAN


def check_data(paths: Sequence[str], options: CheckOptions = CheckOptions()) -> Report:
    """Check JSONL files or one suite folder; every problem in the data is a Finding, never an exception.
    Raises HarnessError only for bad arguments: a missing file, a broken suite.toml."""
    started = time.perf_counter()
    if options.layout not in LAYOUTS:
        raise ConfigError(f"unknown format {options.layout!r}", "--format", "use one of: " + ", ".join(LAYOUTS))
    if options.max_len is not None and options.max_len < 1:
        raise ConfigError(f"--max-len must be at least 1, got {options.max_len}", "", "")
    if not 0 < options.similarity <= 1:
        raise ConfigError(f"--similarity must be in (0, 1], got {options.similarity}", "", "e.g. 0.9")
    findings = Findings()
    suite = Path(paths[0]) if len(paths) == 1 and not (options.train or options.eval) else None
    if suite is not None and suite.name == "suite.toml":
        suite = suite.parent
    if suite is not None and suite.is_dir():
        files, limits, model = _read_suite(suite, options, findings)
    else:
        files, limits, model = _read_files(paths, options, findings)
    counter, tokens = token_counter(model, options.tokenizer)
    pools = _pools(files)
    for pool in pools:
        pool.tokens_in = counter([r.prompt_text for r in pool.records])
        pool.tokens_out = counter([r.output for r in pool.records])
        exact_checks(pool, findings)
        balance(pool, findings)
        length_checks(pool, limits, counter is not estimate_tokens, findings)
        size_guidance(pool, findings)
    train = next((p for p in pools if p.role == "train"), None)
    evaluation = next((p for p in pools if p.role == "eval"), None)
    if train and evaluation:
        leakage_exact(train, evaluation, findings)
        unseen_labels(train, evaluation, findings)
    for unknown in (f for f in files if f.role == "data" and len(files) > 1):
        findings.add(
            "info",
            "roles_unknown",
            "neither train nor eval by its name: no leakage check against it",
            unknown.path,
            "pass it as --train FILE or --eval FILE",
            unknown.path,
        )
    near_checks(pools, train, evaluation, findings, options.similarity)
    summaries = tuple(
        FileSummary(f.path, f.role, len(f.records), f.lines, dict(f.layouts.most_common()), f.dropped) for f in files
    )
    omitted = tuple(sorted(findings.omitted, key=lambda o: (o.file, _RANK[o.severity], o.code)))
    return Report(summaries, tuple(findings.listed), tokens, limits, time.perf_counter() - started, omitted)


def _read_suite(folder: Path, options: CheckOptions, findings: Findings) -> tuple[list[FileData], Limits, str]:
    from harness.config.parse import parse_table, read_toml
    from harness.config.settings import SuiteConfig
    from harness.suite.load import SUITE_FILE, inside

    toml = folder / SUITE_FILE
    if not toml.is_file():
        raise DataError(f"no {SUITE_FILE} in {folder}", "", "pass JSONL files, or a suite folder")
    config = parse_table(SuiteConfig, read_toml(toml), str(toml))
    from harness.config.sweep import expand_sweeps
    from harness.variants import parse_variant

    # as load_suite: every key of the suite, variants included (a few_shot list as its NAME@kK variants)
    for name, table in expand_sweeps(config.variants, str(toml)).items():
        parse_variant(name, table, str(toml), folder, warn=False)
    layout = suite_layout(config)
    files = []
    for role, name in (("eval", config.data.eval), ("train", config.data.train)):
        if name is not None:
            inside(folder, name, f"{toml} [data] {role}")  # refuses paths outside the suite folder
            path = folder / name
            check_file(path, "data file", f"{toml} [data] {role}", "check the path", DataError)
            files.append(read_file(path, role, layout, findings))
            if role == "eval":
                _reference_checks(files[-1], config, findings)
    return files, suite_limits(config, options.max_len), options.model or config.engine.model


def _reference_checks(data: FileData, config: Any, findings: Findings) -> None:
    """Eval references that load_suite refuses: under JSON extraction they would match a missing answer."""
    from harness.scoring.answers import Extractor, reference_problem
    from harness.suite.load import scored_fields

    extractor, fields = Extractor(config.answer.extract, config.answer.pattern), scored_fields(config)
    for record in data.records:
        problem = reference_problem(record.output, extractor, fields)
        if problem:
            findings.add("error", "unusable_reference", problem[0], record.where, problem[1], data.path)


def _read_files(paths: Sequence[str], options: CheckOptions, findings: Findings) -> tuple[list[FileData], Limits, str]:
    from harness.config.settings import EngineSettings

    chosen = [(p, "train") for p in options.train] + [(p, "eval") for p in options.eval]
    chosen += [(p, role_from_name(Path(p))) for p in paths if p not in options.train and p not in options.eval]
    chosen = list(dict.fromkeys(chosen))  # a file named twice is read once
    if not chosen:
        raise ConfigError("no data to check", "", "pass JSONL files or a suite folder: harness check-data PATH...")
    for path, _ in chosen:
        if Path(path).is_dir():
            raise DataError(f"{path} is a folder", "", "pass a suite folder alone, or JSONL files")
        check_file(Path(path), "data file", "", "check the path", DataError)  # a FIFO would block the read
    files = [read_file(Path(path), role, options.layout, findings) for path, role in chosen]
    context = options.max_len or EngineSettings().max_model_len
    reason = f"--max-len {context}" if options.max_len else f"default context {context}; set --max-len"
    return files, Limits(context, context, reason, reason), options.model or EngineSettings().model


def role_from_name(path: Path) -> str:
    """train or eval by a word in the file name (train.jsonl, sft_test.jsonl); "data" when it says neither or both.
    Folder names are not used: a project folder named `test-...` would make every file eval data."""
    parts = [word for word in re.split(r"[^a-z]+", path.stem.lower()) if word]
    words = set(parts) | {a + b for a, b in zip(parts, parts[1:])}
    is_train, is_eval = bool(words & _TRAIN_WORDS), bool(words & _EVAL_WORDS)
    if not is_train and not is_eval:
        is_train = bool(words & _TRAIN_PURPOSE_WORDS)
    return "data" if is_train == is_eval else "train" if is_train else "eval"


def _pools(files: list[FileData]) -> list[Pool]:
    """All train files are one pool, all eval files another; a file of unknown role is a pool of its own."""
    pools: list[Pool] = []
    for role in ("eval", "train"):
        members = [f for f in files if f.role == role]
        if members:
            pools.append(Pool(role, members[0].path, [r for f in members for r in f.records]))
    pools += [Pool("data", f.path, f.records) for f in files if f.role == "data"]
    return pools


def token_counter(model: str, use_tokenizer: bool) -> tuple[Callable[[list[str]], np.ndarray], str]:
    """Count with the model's tokenizer when it is on disk; else characters/4, saying why."""
    if not use_tokenizer:
        return estimate_tokens, "estimated as characters/4 (--estimate-tokens)"
    try:
        directory = _tokenizer_dir(model)
    except HarnessError as exc:
        return estimate_tokens, f"estimated as characters/4 (no tokenizer: {exc.what})"
    if directory is None:
        return estimate_tokens, f"estimated as characters/4 (no tokenizer of {model} on disk; pass --model DIR)"
    try:
        encode = _load_encoder(directory)
    except Exception as exc:  # noqa: BLE001 - a missing package or a broken tokenizer file: estimate instead
        return estimate_tokens, f"estimated as characters/4 (cannot load the tokenizer: {str(exc)[:80]})"

    def count(texts: list[str]) -> np.ndarray:
        counts = np.asarray(encode([t[:_TOKENIZE_CHARS] for t in texts]), dtype=np.int64)
        return np.maximum(counts, estimate_tokens(texts)) if any(len(t) > _TOKENIZE_CHARS for t in texts) else counts

    return count, f"counted with the tokenizer of {model}"


def _tokenizer_dir(model: str) -> Path | None:
    """A local directory with the tokenizer files, never converting or downloading anything."""
    from harness.engines.models import DEFAULT_MODEL, embedded_model_dir

    if model in (DEFAULT_MODEL, "default", "embedded"):
        target, _ = embedded_model_dir(convert=False)
        return target if (target / "config.json").is_file() else None
    candidate = Path(model).expanduser()
    return candidate if candidate.is_dir() else None


def _load_encoder(directory: Path) -> Callable[[list[str]], list[int]]:
    from harness.engines.models import token_counter

    return token_counter(str(directory), local_files_only=True)


def report_json(report: Report) -> str:
    """The report as stable JSON (sorted keys, no timings), for CI and diffs."""
    data: dict[str, Any] = {
        "schema_version": REPORT_SCHEMA,
        "ok": report.exit_code == EXIT_CLEAN,
        "counts": {severity: report.count(severity) for severity in SEVERITIES},
        "files": [vars(summary) for summary in report.files],
        "tokens": report.tokens,
        "limits": vars(report.limits),
        "findings": [
            {k: v for k, v in vars(finding).items() if k != "count"} for finding in _ordered(report)
        ],  # counts: "omitted"
        "omitted": [vars(omitted) for omitted in report.omitted],
    }
    return escape_controls(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", json=True)


def write_report(report: Report, path: Path) -> None:
    from harness.core.files import write_file

    write_file(path, report_json(report))


def report_text(report: Report) -> str:
    """Findings grouped by file, errors first, each with its location and a fix."""
    limits = report.limits
    budget = (
        f"budget: eval prompts <= {limits.eval_tokens} tokens ({limits.eval_reason}), "
        f"train examples <= {limits.train_tokens} ({limits.train_reason})"
    )
    lines = [f"tokens: {report.tokens}", budget, ""]
    ordered = _ordered(report)
    for summary in report.files:
        layouts = "/".join(summary.layouts) or "no"
        rejected = summary.lines - summary.records - summary.dropped
        notes = [f"{rejected} line{'s' if rejected > 1 else ''} rejected"] if rejected else []
        notes += (
            [f"{summary.dropped} repeated line{'s' if summary.dropped > 1 else ''} dropped"] if summary.dropped else []
        )
        lines.append(
            f"{summary.path}  [{summary.role}, {layouts} layout: {summary.records} records{''.join(', ' + n for n in notes)}]"
        )
        mine = [_finding_text(f) for f in ordered if f.file == summary.path]
        mine += [_omitted_text(o) for o in report.omitted if o.file == summary.path]  # summaries last
        lines += mine or ["  no findings"]
        lines.append("")
    listed = {summary.path for summary in report.files}
    others = [_finding_text(f) for f in ordered if f.file not in listed]
    others += [_omitted_text(o) for o in report.omitted if o.file not in listed]
    lines += ["other findings", *others, ""] if others else []
    counts = ", ".join(
        f"{report.count(s)} {s}{'s' if report.count(s) != 1 and s != 'info' else ''}" for s in SEVERITIES
    )
    verdict = "FAILED (exit 1)" if report.exit_code else "passed"
    records = sum(summary.records for summary in report.files)
    lines.append(f"{counts}: {verdict}; {records} records in {len(report.files)} file(s), {report.seconds:.2f} s")
    return escape_controls("\n".join(lines) + "\n")  # findings quote the data


_RANK = {severity: index for index, severity in enumerate(SEVERITIES)}


def _ordered(report: Report) -> list[Finding]:
    return sorted(report.findings, key=lambda f: (f.file, _RANK[f.severity], _line(f.where), f.code))


def _line(where: str) -> int:
    tail = where.rpartition(":")[2]
    return int(tail) if tail.isdigit() else 0


def _finding_text(finding: Finding) -> str:
    where = f"line {_line(finding.where)}" if _line(finding.where) else "file"
    text = f"  {finding.severity:<7} {where:<10} {finding.message} [{finding.code}]"
    return text + (f"\n{'':20}fix: {finding.fix}" if finding.fix else "")


def _omitted_text(omitted: Omitted) -> str:
    return f"  {omitted.severity:<7} {'':<10} {omitted.message} [{omitted.code}]"
