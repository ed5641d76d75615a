"""Test doubles usable from a suite like any other variant.

- `fake`: canned outputs by item id (inline or from a JSONL file in the suite), or outputs computed by a
  Python function (from code only: nothing in a config is executed). Records every batch it receives.
- `echo`: the dumb baseline; answers with the final user message. Any real variant should beat it.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.config.guards import shown
from harness.config.parse import check_file
from harness.core.errors import DataError, HarnessWarning
from harness.core.ranges import ranged
from harness.core.types import Generation, Request, VariantBase
from harness.suite.load import inside

if TYPE_CHECKING:
    from harness.variants import BuildContext


def _word_count(request: Request) -> int:
    return sum(len(m.content.split()) for m in request.messages)


def _generation(request: Request, text: str) -> Generation:
    # Token counts in words: deterministic stand-ins so that tables and golden files have numbers.
    return Generation(text=text, prompt_tokens=_word_count(request), completion_tokens=len(text.split()))


class FakeVariant(VariantBase):
    """Canned outputs by item id (or computed by a function); records every batch it receives."""

    @dataclass(frozen=True)
    class Config:
        outputs: str | None = None  # JSONL in the suite folder: {"id": ..., "output": ...} per line
        responses: dict[str, str] = field(default_factory=dict)  # inline outputs by item id
        default: str | None = None  # the output for ids that have none ("" when unset, with a warning)
        # seconds per request: a slow model's stand-in (resume and kill tests)
        delay_s: float = ranged(0.0, 0, 3600, example="0.01")

    def __init__(
        self,
        name: str = "fake",
        outputs: Mapping[str, str] | None = None,
        fn: Callable[[Request], str | Generation] | None = None,
        default: str = "",
        delay_s: float = 0.0,
    ) -> None:
        self.name = name
        self.outputs = dict(outputs or {})
        self.fn = fn
        self.default = default
        self.delay_s = delay_s
        self.calls: list[list[Request]] = []

    @classmethod
    def from_config(cls, name: str, config: FakeVariant.Config, context: BuildContext) -> FakeVariant:
        outputs = dict(config.responses)
        where = f"{context.where} [variants.{name}]"
        if config.outputs:
            path = inside(context.config_dir, config.outputs, f"{where} outputs")
            outputs = {**read_outputs(path), **outputs}
        if config.delay_s < 0:
            raise DataError("delay_s must be >= 0", where, "")
        if config.outputs or config.responses:
            _warn_partial(outputs, [item.id for item in context.suite.eval_items], config, where)
        return cls(name, outputs, default=config.default or "", delay_s=config.delay_s)

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        self.calls.append(list(requests))
        if self.delay_s:
            time.sleep(self.delay_s * len(requests))
        results = []
        for request in requests:
            if self.fn is not None:
                produced = self.fn(request)
                results.append(produced if isinstance(produced, Generation) else _generation(request, produced))
            else:
                results.append(_generation(request, self.outputs.get(request.id, self.default)))
        return results


class EchoVariant(VariantBase):
    """The dumb baseline: answers with the final user message."""

    @dataclass(frozen=True)
    class Config:
        pass

    def __init__(self, name: str = "echo") -> None:
        self.name = name

    @classmethod
    def from_config(cls, name: str, config: EchoVariant.Config, context: BuildContext) -> EchoVariant:
        return cls(name)

    def generate(self, requests: Sequence[Request]) -> list[Generation]:
        return [_generation(r, next(m.content for m in reversed(r.messages) if m.role == "user")) for r in requests]


def _warn_partial(outputs: Mapping[str, str], ids: Sequence[str], config: FakeVariant.Config, where: str) -> None:
    """Canned outputs that miss eval items (scored as empty answers) or name ids the eval set lacks
    (a typo, or another suite's file): a warning with the count, never silence."""
    missing = [i for i in ids if i not in outputs]
    if missing and config.default is None:
        warnings.warn(
            f"no canned output for {len(missing)} of {len(ids)} eval items (e.g. {shown(missing[0])}); they are scored as empty answers"
            f' - {where} - add them to {config.outputs or "responses"}, or set default = "..." to mean it',
            HarnessWarning,
            stacklevel=3,
        )
    known = set(ids)
    unknown = [i for i in outputs if i not in known]
    if unknown:
        warnings.warn(
            f"{len(unknown)} canned output(s) name ids that are not eval items (e.g. {shown(unknown[0])})"
            f" - {where} - check the ids against [data] eval",
            HarnessWarning,
            stacklevel=3,
        )


def read_outputs(path: Path) -> dict[str, str]:
    """Canned outputs: one {"id": ..., "output": ...} object per line, each id once."""
    check_file(path, "outputs file", "", "check the variant's outputs path", DataError)
    try:
        text = path.read_text(encoding="utf-8").removeprefix("\ufeff")  # a byte-order mark from an editor
    except UnicodeDecodeError as exc:
        raise DataError("invalid UTF-8", f"{path} byte {exc.start}", "save the file as UTF-8") from None
    outputs: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            key, output = record["id"], record["output"]
            if not isinstance(key, str | int) or isinstance(key, bool) or output is None:
                raise TypeError  # a null output would be scored as the text "None"
        except (ValueError, KeyError, TypeError, RecursionError):  # RecursionError: nesting too deep
            raise DataError(
                'expected {"id": ..., "output": ...} with a string or integer id and a non-null output',
                f"{path}:{number}",
                "fix the line",
            ) from None
        key, output = str(key), output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)
        if key in lines:  # which one was meant? Never let the last one win silently.
            raise DataError(
                f"duplicate id {shown(key)}", f"{path}:{number} and line {lines[key]}", "keep one output per id"
            )
        outputs[key], lines[key] = output, number
    return outputs
