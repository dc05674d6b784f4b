"""Text made safe to print: what a terminal would obey is written out as escape text.

Reports, comparisons, gate messages and console lines all carry text from datasets, models and
run files; they pass it through :func:`visible` (or :func:`dumps_json` for JSON). Pure
functions on strings, no imports from the rest of the tool: the bottom layer, so that the
pipeline (reports, the gate) need not import the terminal face (:mod:`sua_audit.ui`).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["UNSAFE_CHARS", "dumps_json", "visible"]

#: One character never printed raw: C0 controls but tab and newline, DEL, C1 controls, the bidi
#: embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069), and lone surrogates
#: (which no UTF-8 stream can carry).
UNSAFE_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_UNSAFE_OR_CRLF = re.compile(r"\r\n|" + UNSAFE_CHARS.pattern)


def _shown(match: re.Match[str]) -> str:
    ch = match.group(0)
    if ch == "\r\n":
        return "\n"
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every character that could drive a terminal written out as escape text.

    Every report, comparison and console line that carries text from a dataset, a model or a
    run's files passes through here, so a terminal shows such bytes instead of obeying them.

    * C0 controls except tab and newline, and DEL, become ``\\xNN``: ESC c (terminal reset)
      is shown as ``\\x1bc``, SO as ``\\x0e``, a lone CR as ``\\x0d``.
    * C1 controls (U+0080–U+009F), the bidi embeddings, overrides and isolates
      (U+202A–U+202E, U+2066–U+2069) and lone surrogates become ``\\uNNNN``: the CSI
      U+009B is shown as ``\\u009b``, RIGHT-TO-LEFT OVERRIDE as ``\\u202e``.
    * A CR before a newline (a Windows line end) becomes the newline alone.

    Everything else is kept, tab and newline included (callers that need one line flatten
    them). The escapes are plain ASCII letters, digits and backslashes, so they are inert in
    HTML and Markdown and ``visible`` of its own output changes nothing; a literal ``\\x1b``
    typed in the source text looks the same as an escaped ESC.
    """
    return _UNSAFE_OR_CRLF.sub(_shown, text)


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group(0)):04x}"


def dumps_json(data: Any, *, indent: int | None = 2) -> str:
    """``data`` as JSON text that is safe to print on a terminal; ``json.loads`` reads it back.

    Non-ASCII text stays readable (``ensure_ascii=False``), but what :func:`visible` would
    escape is written as a JSON ``\\uNNNN`` escape: json escapes C0 controls itself, not DEL,
    C1 controls, bidi overrides or lone surrogates.
    """
    text = json.dumps(data, indent=indent, ensure_ascii=False)
    # Outside strings JSON holds only ASCII punctuation, digits, letters, spaces and newlines;
    # json.dumps has escaped every C0 control inside them.
    return UNSAFE_CHARS.sub(_json_escape, text)
