"""`harness review export RUN_DIR`: a stratified, seeded sample of items, every chosen variant's output for
each under a random code, in a shuffled order per rater. The reviewer gets a CSV and an HTML form per rater
(OUT/); the key that turns codes back into variant names stays in RUN_DIR/review/keys/, never in OUT.

Codes are per output, not per variant: a code that always meant the same variant would let a reviewer learn
which one it is after a few items and rate the variant rather than the answer.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import ConfigError, UnknownNameError, did_you_mean
from harness.results.read import RunResult
from harness.review import REVIEW_DIR
from harness.review.form import PAIR_COLUMNS, RATING_COLUMNS, ReviewItem, review_form

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I/L: codes are read and typed by people
CODE_LENGTH = 6
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell that starts so as a formula


@dataclass(frozen=True)
class ExportOptions:
    n: int = 60
    variants: tuple[str, ...] = ()  # default: every variant of the run
    pairs: tuple[str, str] | None = None  # pairwise mode: these two, side by side
    raters: int = 1
    seed: int = 0
    out: Path | None = None  # default: RUN_DIR/review/<export id>/


@dataclass(frozen=True)
class ExportResult:
    export_id: str
    mode: str  # "rating" or "pairwise"
    out: Path
    key: Path
    files: tuple[Path, ...]
    items: int
    strata: Mapping[str, int]  # label -> items drawn


def key_path(run_dir: Path, export_id: str) -> Path:
    return run_dir / REVIEW_DIR / "keys" / f"{export_id}.json"


def export_review(result: RunResult, options: ExportOptions) -> ExportResult:
    """Choose, blind and write; the key last, once the reviewer's files are in place."""
    from harness.core.files import make_folder, write_file

    variants = _chosen(result, options)
    mode = "pairwise" if options.pairs else "rating"
    export_id = _export_id(result, options, variants)
    rng = random.Random(f"{options.seed}:{export_id}")
    items, strata = stratified_sample(result, variants, options.n, rng)
    key: dict[str, dict[str, str]] = {}
    chosen = []
    for item in items:
        codes = _codes(rng, {c for found in key.values() for c in found}, len(variants))
        key[item] = dict(zip(codes, variants))
        outputs = tuple((code, str(result.samples[v][item].get("output") or "")) for code, v in key[item].items())
        sample = result.samples[variants[0]][item]
        chosen.append(ReviewItem(item, item_text(result, variants, item), str(sample.get("reference") or ""), outputs))
    out = options.out or result.dir / REVIEW_DIR / export_id
    make_folder(out)
    files = []
    for number in range(1, options.raters + 1):
        rater = f"r{number}"
        order = _rater_order(chosen, random.Random(f"{options.seed}:{export_id}:{rater}"))
        sheet = out / f"ratings-{rater}.csv"
        write_file(sheet, (pair_sheet if options.pairs else rating_sheet)(export_id, rater, order))
        form = out / f"form-{rater}.html"
        write_file(form, review_form(export_id, rater, mode, result.suite_name, order))
        files += [sheet, form]
    document = {
        "export": export_id,
        "mode": mode,
        "run_id": result.run_json.run_id,
        "seed": options.seed,
        "variants": list(variants),
        "raters": options.raters,
        "items": key,
    }
    key_file = key_path(result.dir, export_id)
    write_file(key_file, json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    return ExportResult(export_id, mode, Path(out), key_file, tuple(files), len(chosen), strata)


def _chosen(result: RunResult, options: ExportOptions) -> tuple[str, ...]:
    if options.pairs and options.variants:
        raise ConfigError("--pairs and --variants both given", "harness review export", "pass one of them")
    wanted = options.pairs or options.variants or tuple(result.variants)
    for name in wanted:
        if name not in result.variants:
            raise UnknownNameError(
                f"variant '{name}' is not in this run", str(result.dir), did_you_mean(name, result.variants)
            )
    if len(set(wanted)) != len(wanted):
        raise ConfigError(f"a variant is named twice: {','.join(wanted)}", "harness review export", "name each once")
    if options.pairs and len(wanted) != 2:
        raise ConfigError("--pairs takes two variants", "harness review export --pairs", "e.g. --pairs base,finetuned")
    return tuple(wanted)


def _export_id(result: RunResult, options: ExportOptions, variants: Sequence[str]) -> str:
    """The same export asked twice gets the same id (and the same sample); anything different, another."""
    text = json.dumps(
        [str(result.run_json.run_id), options.n, list(variants), bool(options.pairs), options.raters, options.seed]
    )
    return "rv-" + hashlib.sha256(text.encode()).hexdigest()[:10]


def stratified_sample(
    result: RunResult, variants: Sequence[str], n: int, rng: random.Random
) -> tuple[list[str], dict[str, int]]:
    """n items that every chosen variant answered, drawn within each gold label in proportion to its size
    (largest remainder), so that a rare class is not left out of a small review by chance."""
    common = sorted(set.intersection(*(set(result.samples[v]) for v in variants)))
    if not common:
        raise ConfigError("the chosen variants share no item", str(result.dir), "choose variants of one run")
    strata: dict[str, list[str]] = {}
    for item in common:
        label = result.samples[variants[0]][item].get("label")
        strata.setdefault("" if label is None else str(label), []).append(item)
    total = min(n, len(common))
    exact = {label: total * len(found) / len(common) for label, found in strata.items()}
    quota = {label: int(share) for label, share in exact.items()}
    by_remainder = sorted(strata, key=lambda label: (-(exact[label] - quota[label]), label))
    for label in by_remainder[: total - sum(quota.values())]:
        quota[label] += 1
    chosen = [item for label in sorted(strata) for item in rng.sample(strata[label], quota[label])]
    return chosen, {label: quota[label] for label in sorted(strata) if quota[label]}


def _codes(rng: random.Random, taken: set[str], count: int) -> list[str]:
    codes: list[str] = []
    while len(codes) < count:
        code = "".join(rng.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        if code not in taken and code not in codes:
            codes.append(code)
    return codes


def _rater_order(items: Sequence[ReviewItem], rng: random.Random) -> list[ReviewItem]:
    """Each rater sees the items, and the outputs within an item, in an order of their own: no position is
    always one variant's, and order effects do not line up across raters."""
    order = list(items)
    rng.shuffle(order)
    shuffled = []
    for found in order:
        outputs = list(found.outputs)
        rng.shuffle(outputs)
        shuffled.append(ReviewItem(found.item, found.input, found.reference, tuple(outputs)))
    return shuffled


def item_text(result: RunResult, variants: Sequence[str], item: str) -> str:
    """What the item asked: the last user message of the plainest prompt (the shortest one). A prompted or
    retrieving variant's own prompt carries its instructions or documents, which would hint at the variant."""
    texts = []
    for variant in variants:
        sample = result.samples[variant][item]
        users = [m for m in sample.get("messages") or [] if isinstance(m, Mapping) and m.get("role") == "user"]
        if users:
            texts.append(str(users[-1].get("content") or ""))
        elif sample.get("input") is not None:
            texts.append(str(sample["input"]))
    return min(texts, key=len) if texts else ""


def safe_cell(text: Any) -> str:
    """A cell a spreadsheet shows as text: one that starts like a formula gets a leading apostrophe."""
    text = "" if text is None else str(text)
    return "'" + text if text.startswith(FORMULA_START) else text


def unsafe_cell(text: str) -> str:
    """safe_cell undone, for the cells import reads back (item ids)."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_START) else text


def rating_sheet(export_id: str, rater: str, items: Sequence[ReviewItem]) -> str:
    """One row per output to rate; the last columns (input, reference, output) are context, not read back."""
    rows = [
        [export_id, rater, found.item, code, "", "", "", "", found.input, found.reference, text]
        for found in items
        for code, text in found.outputs
    ]
    return _csv([*RATING_COLUMNS, "input", "reference", "output"], rows)


def pair_sheet(export_id: str, rater: str, items: Sequence[ReviewItem]) -> str:
    """One row per item: the left and right outputs' codes and texts; `choice` is left, right or tie."""
    rows = []
    for found in items:
        (left, left_text), (right, right_text) = found.outputs
        rows.append([export_id, rater, found.item, left, right, "", "", found.input, found.reference])
        rows[-1] += [left_text, right_text]
    return _csv([*PAIR_COLUMNS, "input", "reference", "left_output", "right_output"], rows)


def _csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[safe_cell(cell) for cell in row] for row in rows])  # ids too: import undoes it
    return buffer.getvalue()
