"""What the checks compare: a `Record` per example, its normalized text and that text's hash, and `Line`.

`normalize` and `text_key` decide when two texts count as the same (duplicates, contradictions,
leakage); `Line` is where a record came from, for the findings its reading raises.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from harness.datacheck.findings import Findings

_KEY_CHUNK = 1 << 20
_NOT_TEXT = re.compile(r"[^\w+*/=<>%^]+")  # punctuation and whitespace; math operators stay


@dataclass(frozen=True)
class Record:
    """What the checks need from one example. `input` is what the model is asked (the key for
    duplicates and leakage); `prompt` everything it reads before answering, when more than `input`."""

    where: str
    input: str
    output: str
    prompt: str = ""
    label: str | None = None
    rejected: str | None = None  # preference pairs only
    label_source: str = "label"  # "tool name": the label is the functions the reply calls (tool-calling chat)

    @property
    def prompt_text(self) -> str:
        return self.prompt or self.input


def normalize(text: str) -> str:
    """Lowercase, NFKC, punctuation and whitespace runs collapsed to one space (operators like + and = kept)."""
    return _NOT_TEXT.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def text_key(text: str) -> bytes:
    """A hash of normalize(text), computed in pieces cut at punctuation or spaces, so that a huge text
    costs no huge copies."""
    digest, start, joiner = hashlib.blake2b(digest_size=16), 0, b""
    while start < len(text):
        cut = _NOT_TEXT.search(text, start + _KEY_CHUNK) if len(text) - start > _KEY_CHUNK else None
        end = cut.start() if cut else len(text)
        part = normalize(text[start:end])
        if part:
            digest.update(joiner + part.encode("utf-8", "surrogatepass"))
            joiner = b" "
        start = end
    return digest.digest()


@dataclass(frozen=True)
class Line:
    """Where a record came from, for its findings, and the role of its file ("train", "eval" or "data"),
    for the rules that differ by role (a conversation with no user turn)."""

    where: str
    file: str
    findings: Findings
    role: str = "data"

    def error(self, code: str, message: str, fix: str = "") -> None:
        self.findings.add("error", code, message, self.where, fix, self.file)

    def warning(self, code: str, message: str, fix: str = "") -> None:
        self.findings.add("warning", code, message, self.where, fix, self.file)

    def info(self, code: str, message: str, fix: str = "") -> None:
        self.findings.add("info", code, message, self.where, fix, self.file)
