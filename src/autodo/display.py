"""Showing text that came from people, agents or the outside on a terminal or a page.

Control characters could move the cursor, clear the screen, recolour a log, or (bidi overrides)
make text read differently from what it is. They are shown as escapes instead; newlines and tabs
stay, since they lay out multi-line text.
"""

from __future__ import annotations

import re

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def inert(text: object) -> str:
    """``text`` with every control character written as a visible escape (``\\x1b``, ``\\u202e``)."""
    return CONTROL.sub(_escape, str(text))


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
