"""A suite's knowledge base: documents with stable ids, cut into overlapping chunks that know their
document. Read from `knowledge/` (.md and .txt files, one document each, id = path without suffix;
.jsonl files, one document per record with `id` and `text`, optional `title`)."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import ConfigError, DataError, HarnessWarning

TEXT_SUFFIXES = (".md", ".txt")
_HEADING = re.compile(r"^#{1,6}\s+(.+)$", re.M)


@dataclass(frozen=True)
class Document:
    id: str
    text: str
    title: str = ""


@dataclass(frozen=True)
class Chunk:
    id: str  # "<doc id>#<n>"
    doc_id: str
    text: str


def load_documents(folder: Path) -> list[Document]:
    """Every document under `folder`, sorted by id; bad files are one-line errors naming the file."""
    if folder.exists() and not folder.is_dir():
        raise ConfigError(
            f"knowledge folder {folder} is a file", "", "point [knowledge] dir at a folder of .md, .txt or .jsonl files"
        )
    if not folder.is_dir():
        raise ConfigError(f"knowledge folder not found: {folder}", "", "create it, or set [knowledge] dir")
    documents: dict[str, tuple[Document, str]] = {}
    skipped = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.suffix == ".jsonl":
            found = list(_jsonl_documents(path))
        elif path.suffix in TEXT_SUFFIXES:
            text = _read_text(path)
            heading = _HEADING.search(text)
            found = [
                (
                    Document(
                        path.relative_to(folder).with_suffix("").as_posix(),
                        text,
                        heading.group(1).strip() if heading else "",
                    ),
                    str(path),
                )
            ]
        else:
            skipped.append(path.name)
            continue
        for document, where in found:
            if document.id in documents:
                raise DataError(
                    f"duplicate document id '{document.id}'",
                    f"{where} and {documents[document.id][1]}",
                    "give every document a unique id",
                )
            documents[document.id] = (document, where)
    if skipped:
        warnings.warn(
            f"ignored {len(skipped)} file(s) in {folder} that are not .md, .txt or .jsonl: {', '.join(skipped[:5])}",
            HarnessWarning,
            stacklevel=2,
        )
    if not documents:
        raise ConfigError(f"no documents in {folder}", "", "add .md, .txt or .jsonl files")
    return [documents[key][0] for key in sorted(documents)]


def chunk_documents(documents: list[Document], size: int, overlap: int) -> list[Chunk]:
    """Word windows of `size` with `overlap` words shared between neighbours. A long document becomes
    several chunks, never a truncated one; each chunk starts with its document's title."""
    if size < 1 or not 0 <= overlap < size:
        raise ConfigError("need chunk_size >= 1 and 0 <= chunk_overlap < chunk_size", "[knowledge]", "")
    chunks = []
    for document in documents:
        words = document.text.split()
        step = size - overlap
        starts = range(0, max(len(words) - overlap, 1), step)
        for number, start in enumerate(starts):
            body = " ".join(words[start : start + size])
            title = document.title if document.title and document.title not in body else ""
            chunks.append(Chunk(f"{document.id}#{number}", document.id, f"{title}\n{body}" if title else body))
    return chunks


def _jsonl_documents(path: Path):  # noqa: ANN202
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"malformed JSON ({exc.msg})", where, "fix the line") from None
        except (ValueError, RecursionError) as exc:  # an integer too long to convert, nesting too deep
            raise DataError(f"unreadable JSON ({type(exc).__name__})", where, "fix the line") from None
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("text"), str)
            or not isinstance(record.get("id"), str | int)
        ):
            raise DataError("a knowledge record needs 'id' and string 'text'", where, "fix the record")
        yield Document(str(record["id"]), record["text"], str(record.get("title") or "")), where


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError("invalid UTF-8", f"{path} byte {exc.start}", "save the file as UTF-8") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}", "", "check its permissions") from None
