"""`harness review import RUN_DIR ratings.csv...`: every file checked before anything is stored, unblinded
with the export's key, and kept in RUN_DIR/review/ (ratings.jsonl, pairwise.jsonl).

A mistake is one line naming the file, the line and the field: an unknown export, item or code, a rating
outside 1-5, a choice other than left/right/tie, or one rater rating one output twice. Importing a rater's
file again replaces what that rater gave for that export before (a corrected sheet supersedes the old one).
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.core.errors import DataError
from harness.review import DIMENSIONS, REVIEW_DIR, SCALE
from harness.review.export import key_path, unsafe_cell
from harness.review.form import CHOICES, PAIR_COLUMNS, RATING_COLUMNS

RATINGS_FILE = "ratings.jsonl"
PAIRWISE_FILE = "pairwise.jsonl"
EXPORT_ID = re.compile(r"rv-[0-9a-f]{10}")  # as harness.review.export makes them


@dataclass(frozen=True)
class Rating:
    export: str
    rater: str
    item: str
    variant: str
    code: str
    accuracy: int | None
    format: int | None
    overall: int | None
    comment: str
    source: str  # file:line it came from


@dataclass(frozen=True)
class Choice:
    export: str
    rater: str
    item: str
    left: str  # variant shown on the left
    right: str
    choice: str  # left, right or tie
    comment: str
    source: str

    @property
    def winner(self) -> str | None:
        return None if self.choice == "tie" else self.left if self.choice == "left" else self.right


@dataclass(frozen=True)
class Imported:
    ratings: int  # rows stored from these files
    choices: int
    skipped: int  # rows left blank
    replaced: int  # earlier rows of the same raters and exports


def import_ratings(run_dir: Path, files: Sequence[str | Path]) -> Imported:
    """Check every file, then store; nothing is written when one row is wrong."""
    from harness.core.files import write_file

    keys: dict[str, dict[str, Any]] = {}
    ratings: list[Rating] = []
    choices: list[Choice] = []
    seen: dict[tuple[str, str, str], str] = {}
    skipped = 0
    for path in files:
        found, blank = _read_file(Path(path), run_dir, keys, seen)
        skipped += blank
        ratings += [r for r in found if isinstance(r, Rating)]
        choices += [c for c in found if isinstance(c, Choice)]
    replaced = 0
    for name, new in ((RATINGS_FILE, ratings), (PAIRWISE_FILE, choices)):
        if not new:
            continue
        raters = {(r.export, r.rater) for r in new}
        old = _read_jsonl(run_dir / REVIEW_DIR / name)
        kept = [r for r in old if (r.get("export"), r.get("rater")) not in raters]
        replaced += len(old) - len(kept)
        lines = kept + [asdict(r) for r in new]
        write_file(run_dir / REVIEW_DIR / name, "".join(json.dumps(r, sort_keys=True) + "\n" for r in lines))
    return Imported(len(ratings), len(choices), skipped, replaced)


def load_ratings(run_dir: Path) -> list[Rating]:
    return [Rating(**row) for row in _read_jsonl(run_dir / REVIEW_DIR / RATINGS_FILE)]


def load_choices(run_dir: Path) -> list[Choice]:
    return [Choice(**row) for row in _read_jsonl(run_dir / REVIEW_DIR / PAIRWISE_FILE)]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            raise DataError(f"invalid line ({exc})", f"{path}:{number}", "re-import the ratings CSVs") from None
    return rows


def _read_file(
    path: Path, run_dir: Path, keys: dict[str, dict[str, Any]], seen: dict[tuple[str, str, str], str]
) -> tuple[list[Rating | Choice], int]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's UTF-8 export starts with a BOM
    except FileNotFoundError:
        raise DataError(
            "ratings file not found", str(path), "pass the CSV the form saved or the filled sheet"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the ratings file ({exc})", str(path), "save it as UTF-8 CSV") from None
    reader = csv.DictReader(text.splitlines(keepends=True))
    header = reader.fieldnames or []
    pairwise = "choice" in header
    missing = [c for c in (PAIR_COLUMNS if pairwise else RATING_COLUMNS) if c not in header]
    if missing:
        raise DataError(
            f"column '{missing[0]}' is missing", f"{path}:1", f"keep the header: {','.join(RATING_COLUMNS)}"
        )
    found: list[Rating | Choice] = []
    blank, line = 0, 1
    for row in reader:
        where, line = f"{path}:{line + 1}", reader.line_num  # a row starts on the line after the previous one
        cells = {k: unsafe_cell((v or "").strip()) for k, v in row.items() if k is not None}
        answers = [cells.get(d, "") for d in DIMENSIONS] if not pairwise else [cells.get("choice", "")]
        if not any(answers) and not cells.get("comment"):
            blank += 1
            continue
        key = _key(cells, where, run_dir, keys, "pairwise" if pairwise else "rating")
        if pairwise:
            found.append(_choice(cells, key, where, seen))
        else:
            found.append(_rating(cells, key, where, seen))
    return found, blank


def _key(
    cells: Mapping[str, str], where: str, run_dir: Path, keys: dict[str, dict[str, Any]], mode: str
) -> dict[str, Any]:
    export = cells.get("export", "")
    if export not in keys:
        path = key_path(run_dir, export)
        if not EXPORT_ID.fullmatch(export) or not path.is_file():  # an id, never a path
            raise DataError(
                f"field 'export': unknown export {export!r}",
                where,
                f"rate a sheet `harness review export {run_dir}` wrote (its key is in {path.parent})",
            )
        keys[export] = json.loads(path.read_text(encoding="utf-8"))
    key = keys[export]
    if key.get("mode") != mode:
        raise DataError(
            f"field 'export': {export} is a {key.get('mode')} export, this file holds {mode} rows",
            where,
            "import the file the form of that export saved",
        )
    if not cells.get("rater"):
        raise DataError("field 'rater' is empty", where, "give each rater's rows their rater id (r1, r2, ...)")
    item = cells.get("item", "")
    if item not in key["items"]:
        raise DataError(f"field 'item': unknown item {item!r} in export {export}", where, "keep the sheet's item ids")
    return key


def _code(key: Mapping[str, Any], item: str, code: str, field: str, where: str) -> str:
    """The variant behind a code, which must be one of this item's codes."""
    codes = key["items"][item]
    if code in codes:
        return str(codes[code])
    other = next((i for i, found in key["items"].items() if code in found), None)
    why = f"code {code!r} belongs to item {other!r}, not {item!r}" if other else f"unknown code {code!r}"
    raise DataError(f"field '{field}': {why}", where, "keep each row's item and code as the sheet gave them")


def _twice(seen: dict[tuple[str, str, str], str], key: tuple[str, str, str], where: str, what: str) -> None:
    if key in seen:
        raise DataError(
            f"rater {key[1]!r} rated {what} twice (also at {seen[key]})",
            where,
            "keep one row per rater and output (or name the second rater differently)",
        )
    seen[key] = where


def _rating(
    cells: Mapping[str, str], key: Mapping[str, Any], where: str, seen: dict[tuple[str, str, str], str]
) -> Rating:
    item, code = cells["item"], cells.get("code", "")
    variant = _code(key, item, code, "code", where)
    values = {d: _score(cells.get(d, ""), d, where) for d in DIMENSIONS}
    _twice(seen, (key["export"], cells["rater"], code), where, f"output {code} of item {item!r}")
    return Rating(
        key["export"], cells["rater"], item, variant, code, **values, comment=cells.get("comment", ""), source=where
    )


def _choice(
    cells: Mapping[str, str], key: Mapping[str, Any], where: str, seen: dict[tuple[str, str, str], str]
) -> Choice:
    item = cells["item"]
    left = _code(key, item, cells.get("left", ""), "left", where)
    right = _code(key, item, cells.get("right", ""), "right", where)
    if left == right:
        raise DataError("fields 'left' and 'right' name one output", where, "keep the two codes the sheet gave")
    choice = cells.get("choice", "").lower()
    if choice not in CHOICES:
        raise DataError(f"field 'choice': {choice!r} is not left, right or tie", where, "write left, right or tie")
    _twice(seen, (key["export"], cells["rater"], item), where, f"the pair of item {item!r}")
    return Choice(key["export"], cells["rater"], item, left, right, choice, cells.get("comment", ""), where)


def _score(text: str, field: str, where: str) -> int | None:
    """A rating 1-5, or None when left blank; '4.0' (a spreadsheet's number) reads as 4."""
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value.is_integer() or int(value) not in SCALE:
        raise DataError(
            f"field '{field}': rating {text!r} is out of range",
            where,
            f"rate {SCALE[0]}-{SCALE[-1]}, or leave it blank",
        )
    return int(value)


def units(ratings: Iterable[Rating], dimension: str) -> dict[tuple[str, str], dict[str, int]]:
    """(item, variant) -> rater -> rating on one dimension, over every export (a rater who saw one output
    in two exports keeps the later one)."""
    found: dict[tuple[str, str], dict[str, int]] = {}
    for r in ratings:
        value = getattr(r, dimension)
        if value is not None:
            found.setdefault((r.item, r.variant), {})[r.rater] = value
    return found
