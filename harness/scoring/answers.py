"""Answer extraction: from a model's raw output to the answer that metrics compare.

The same extraction runs over the reference, so that a JSON reference and a JSON answer are compared
in one canonical form, and a bare reference ("42") still matches an answer extracted by a pattern.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.config.guards import shown
from harness.config.settings import ExtractMethod

EXTRACT_METHODS: tuple[str, ...] = ("text", "json", "regex", "first_line", "last_line")

# Each failed decode attempt can scan to the end of the output; bound them so a huge output stays linear.
_MAX_JSON_STARTS = 32
_FENCE = re.compile(r"```[A-Za-z0-9_-]*\s*\n?(.*?)\n?\s*```", re.S)


@dataclass(frozen=True)
class Answer:
    """The extracted answer as text, and the parsed JSON value for the `json` method (else None)."""

    text: str
    value: Any = None


@dataclass(frozen=True)
class Extractor:
    method: ExtractMethod = "text"
    pattern: str | None = None

    def __call__(self, output: str) -> Answer:
        if self.method == "json":
            value = find_json(output)
            if value is None:
                return Answer("")
            return Answer(json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")), value)
        if self.method == "regex":
            match = re.search(self.pattern or "", output, re.S)
            if match is None:
                return Answer("")
            found = match.group(1) if match.groups() else match.group(0)
            return Answer((found or "").strip())  # an optional group that did not take part is None
        lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
        if self.method == "first_line":
            return Answer(lines[0] if lines else "")
        if self.method == "last_line":
            return Answer(lines[-1] if lines else "")
        return Answer(output.strip())

    def reference(self, reference: str) -> Answer:
        """Extract from a reference; a reference that is already the bare answer is kept as it is."""
        answer = self(reference)
        if answer.text or self.method == "json":
            return answer
        return Answer(reference.strip())


def reference_problem(reference: str, extractor: Extractor, fields: Sequence[str]) -> tuple[str, str] | None:
    """Why a reference cannot be scored under JSON extraction, as (what, fix); None when it can.

    A reference that extracts to nothing (not JSON, a scalar, `{}`, `[]`) or lacks a scored key reads as
    "", and so does every output without that JSON: a missing answer would match a missing reference.
    Such an item is refused at load time (docs/suite-format.md, "Answer extraction")."""
    if extractor.method != "json":
        return None
    value = extractor.reference(reference).value
    if not value or (fields and not isinstance(value, dict)):
        kind = "JSON object" if fields else "JSON object or array"
        return (
            f"the reference {shown(reference)} is not a non-empty {kind}",
            'write the expected answer as JSON, e.g. {"key": "value"}, or set [answer] extract to another method',
        )
    for name in fields:
        if name not in value:
            return (
                f"the reference has no key {shown(name)}, which a metric scores ([{name}])",
                f"add {shown(name)} to the reference (null when there is no value)",
            )
    return None


def strip_fences(text: str) -> str:
    """The inside of a markdown code fence, when the whole output is one; else the text stripped."""
    match = _FENCE.fullmatch(text.strip())
    return match.group(1).strip() if match else text.strip()


def parse_json_output(output: str) -> tuple[bool, Any]:
    """(True, value) when the output, or one markdown code fence around it, is exactly one JSON value."""
    try:
        return True, json.loads(strip_fences(output))
    except ValueError:
        return False, None


def find_json(output: str) -> Any:
    """The first JSON object or array in the output (whole, fenced, or embedded in prose), else None."""
    ok, value = parse_json_output(output)
    if ok and isinstance(value, dict | list):
        return value
    decoder = json.JSONDecoder()
    starts = (i for i, char in enumerate(output) if char in "{[")
    for _, start in zip(range(_MAX_JSON_STARTS), starts):
        try:
            value, _ = decoder.raw_decode(output, start)
        except ValueError:
            continue
        return value
    return None
