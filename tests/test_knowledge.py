"""Knowledge bases: documents with stable ids, chunking, and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.core.errors import ConfigError, DataError, HarnessWarning
from harness.retrieval.knowledge import Document, chunk_documents, load_documents


def make_kb(root: Path) -> Path:
    kb = root / "knowledge"
    (kb / "guides").mkdir(parents=True)
    (kb / "guides" / "setup.md").write_text("# Setting up\nPlug the router in and wait.\n")
    (kb / "faq.txt").write_text("Returns are free within 30 days.")
    (kb / "catalogue.jsonl").write_text(
        json.dumps({"id": "p1", "title": "Router X", "text": "Four ports."})
        + "\n\n"
        + json.dumps({"id": 2, "text": "A plug."})
        + "\n"
    )
    return kb


def test_documents_keep_stable_ids(tmp_path: Path) -> None:
    documents = load_documents(make_kb(tmp_path))
    assert [d.id for d in documents] == ["2", "faq", "guides/setup", "p1"]
    by_id = {d.id: d for d in documents}
    assert by_id["guides/setup"].title == "Setting up" and by_id["p1"].title == "Router X"


def test_chunks_overlap_and_know_their_document() -> None:
    words = [f"w{i}" for i in range(25)]
    chunks = chunk_documents([Document("d", " ".join(words))], size=10, overlap=3)
    # windows of 10 words every 7 words, until the last word is covered
    assert [c.id for c in chunks] == ["d#0", "d#1", "d#2", "d#3"]
    assert all(c.doc_id == "d" for c in chunks)
    assert [c.text.split() for c in chunks] == [words[0:10], words[7:17], words[14:24], words[21:25]]


def test_a_document_larger_than_the_chunk_limit_is_chunked_not_dropped() -> None:
    text = " ".join(f"w{i}" for i in range(1000))
    chunks = chunk_documents([Document("big", text, "Big")], size=100, overlap=0)
    assert len(chunks) == 10
    assert " ".join(c.text.removeprefix("Big\n") for c in chunks) == text
    assert all(c.text.startswith("Big\n") for c in chunks)  # every piece keeps its document's title


def test_short_document_is_one_chunk_with_title_once() -> None:
    [chunk] = chunk_documents([Document("p1", "Router X has four ports.", "Router X")], size=50, overlap=10)
    assert chunk.text == "Router X has four ports."


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="knowledge folder not found"):
        load_documents(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "image.png").write_bytes(b"\x89PNG")
    with pytest.raises(ConfigError, match="no documents in"), pytest.warns(HarnessWarning, match="ignored 1 file"):
        load_documents(tmp_path / "empty")


def test_non_utf8_file_names_the_file(tmp_path: Path) -> None:
    kb = make_kb(tmp_path)
    (kb / "bad.txt").write_bytes(b"caf\xe9")
    with pytest.raises(DataError, match="invalid UTF-8") as info:
        load_documents(kb)
    assert "bad.txt" in str(info.value)


@pytest.mark.parametrize(
    "line, message", [("{not json", "malformed JSON"), ('{"id": "x"}', "needs 'id' and string 'text'")]
)
def test_bad_jsonl_records(tmp_path: Path, line: str, message: str) -> None:
    kb = make_kb(tmp_path)
    (kb / "more.jsonl").write_text(line + "\n")
    with pytest.raises(DataError, match=message) as info:
        load_documents(kb)
    assert "more.jsonl:1" in str(info.value)


def test_duplicate_document_ids(tmp_path: Path) -> None:
    kb = make_kb(tmp_path)
    (kb / "p1.txt").write_text("clash")
    with pytest.raises(DataError, match="duplicate document id 'p1'"):
        load_documents(kb)


def test_bad_chunk_settings() -> None:
    with pytest.raises(ConfigError, match="chunk_overlap"):
        chunk_documents([Document("d", "x")], size=10, overlap=10)
