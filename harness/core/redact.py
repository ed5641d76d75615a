"""Secret-looking strings (API keys, access tokens) kept out of result files.

Results get shared: committed, pasted into pull requests, uploaded as CI artifacts. A key pasted into a
system prompt or a description would travel with them, so `records` passes everything it writes through
`redact_secrets`, and `load_suite` warns where a config holds something that looks like a key.

The patterns are the shapes providers give their keys: a fixed prefix that starts a word and a long
random tail. Ordinary text rarely fits them ("task-management-overview" holds "sk-" but not at a word
start; "hf_engine_settings" has underscores where a token has none), so false positives stay rare; a
key in a shape not listed here is not caught.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "[REDACTED]"

_START = r"(?<![A-Za-z0-9_-])"  # a key starts a word: not the tail of a longer identifier
_END = r"(?![A-Za-z0-9])"
_MIXED = r"(?=[A-Za-z0-9_-]*[0-9])(?=[A-Za-z0-9_-]*[a-z])(?=[A-Za-z0-9_-]*[A-Z])"
SECRET_PATTERNS: dict[str, str] = {
    # sk-ant-api03-..., sk-proj-..., sk-svcacct-..., legacy sk-<48>: a random tail holds digits and both
    # cases, which hyphenated words ("sk-learn-compatible-estimators") do not
    "Anthropic or OpenAI key": _START + r"sk-" + _MIXED + r"[A-Za-z0-9_-]{20,}",
    "Hugging Face token": _START + r"hf_[A-Za-z0-9]{30,}" + _END,
    "AWS access key id": _START + r"(?:AKIA|ASIA)[A-Z0-9]{16}" + _END,
    "GitHub token": _START + r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
    "Slack token": _START + r"xox[abposre]-[A-Za-z0-9-]{10,}",
    "Google API key": _START + r"AIza[0-9A-Za-z_-]{35}" + _END,
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
    # Authorization headers: the word stays, the token goes
    "bearer token": r"(?P<bearer>\b[Bb]earer[ \t]+)(?=[A-Za-z0-9._~+/-]*[0-9])[A-Za-z0-9._~+/-]{16,}=*",
}
_SECRET = re.compile("|".join(f"(?:{pattern})" for pattern in SECRET_PATTERNS.values()))


def redact_secrets(obj: Any) -> Any:
    """`obj` with every secret-looking substring of every string (keys too) replaced by "[REDACTED]",
    recursively through dicts, lists and tuples; other values are returned as they are."""
    if isinstance(obj, str):
        return _SECRET.sub(_replacement, obj) if _SECRET.search(obj) else obj
    if isinstance(obj, Mapping):
        return {redact_secrets(key): redact_secrets(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [redact_secrets(value) for value in obj]
    if isinstance(obj, tuple):
        return tuple(redact_secrets(value) for value in obj)
    return obj


def contains_secret(text: str) -> bool:
    return _SECRET.search(text) is not None


def find_secrets(obj: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """The key paths (e.g. ("variants", "prompted", "system")) of strings that look like secrets."""
    found: list[tuple[str | int, ...]] = []
    if isinstance(obj, str):
        if contains_secret(obj):
            found.append(path)
    elif isinstance(obj, Mapping):
        for key, value in obj.items():
            if contains_secret(str(key)):
                found.append((*path, "<a key>"))  # never the key itself: it is the secret
            found += find_secrets(value, (*path, str(key)))
    elif isinstance(obj, list | tuple):
        for index, value in enumerate(obj):
            found += find_secrets(value, (*path, index))
    return found


def _replacement(match: re.Match[str]) -> str:
    return (match.group("bearer") or "") + REDACTED
