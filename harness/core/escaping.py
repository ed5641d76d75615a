"""Control characters in user data (model outputs, item ids, paths, names) never reach a terminal or a
markdown file raw: an output holding `\\x1b[31m` (ANSI CSI) or `\\x1b]0;title\\x07` (OSC) would recolour
the terminal, retitle its window, or hide text in a PR comment. Everything the harness prints, and
every markdown file it writes, passes through `escape_controls` (HTML reports escape with html.escape).

Every C0 control but newline and tab, DEL, and every C1 control (Unicode category Cc) is written as a
visible escape, `\\x1b` in text, `\\u001b` in JSON (still valid JSON, and the same string once parsed).
"""

from __future__ import annotations

import re
import sys

_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def echo(text: object = "", err: bool = False, end: str = "\n") -> None:
    """print() for anything that may hold user data (paths, ids, names), escaped; `err`: to stderr."""
    print(escape_controls(str(text)), end=end, file=sys.stderr if err else sys.stdout)


def escape_controls(text: str, json: bool = False) -> str:
    """`text` with its control characters (except \\n and \\t) as visible escapes; `json=True` for JSON text."""
    if json:
        return _CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
