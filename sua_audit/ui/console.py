"""The stderr console (everything human), the summary table, and text made safe to print."""

from __future__ import annotations

import json
import re
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

err_console = Console(stderr=True)
out_console = Console()

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


def _plain(value: Any) -> str:
    """Untrusted text for a Rich table cell: controls shown, markup inert."""
    return escape(visible(str(value)))


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _cost_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    tokens = summary.get("tokens") or {}
    rows = []
    if tokens.get("prompt") or tokens.get("completion"):
        rows.append(
            ("tokens (prompt / completion)", f"{tokens['prompt']} / {tokens['completion']}")
        )
    cost = summary.get("cost") or {}
    if cost.get("usd") is not None and cost.get("price_source") != "local model":
        rows.append(("cost this run (estimate)", f"${cost['usd']:.4f}"))
    return rows


def summary_table(summary: dict[str, Any]) -> Table:
    """The end-of-run table: counts, accuracy, abstention, mean scores, cache use."""
    table = Table(title=f"sua-audit · {_plain(summary['model']['model'])}", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    res = summary["results"]
    rows = [
        ("dataset", f"{_plain(summary['dataset']['path'])} ({res['items']} items)"),
    ]
    variants = summary.get("variants")
    if isinstance(variants, dict):
        rows.append(
            (
                "variant set (no rewriter call)",
                f"{_plain(str(variants.get('path')))} (sha256 {str(variants.get('sha256'))[:12]})",
            )
        )
    if res.get("items_failed"):
        kinds = ", ".join(f"{_plain(k)} {v}" for k, v in sorted(res["failures_by_kind"].items()))
        rows.append(
            ("items failed (rerun to retry)", f"[red]{res['items_failed']}[/red]  ({kinds})")
        )
    ab = res.get("abstention") or {}
    score = ab.get("score", "sua")
    tau = res.get("tau")
    rows += [
        ("accuracy", _fmt(res["accuracy"])),
        ("robust accuracy (all variants right)", _fmt(res["robust_accuracy"])),
        (
            f"abstention rate ({score} > τ)",
            f"{_fmt(res['abstention_rate'])}  (τ = {_fmt(tau, 4)})",
        ),
        ("selective accuracy (answered)", _fmt(res["selective_accuracy"])),
    ]
    flips = res.get("confident_flips")
    if flips:
        rows.append(
            (
                f"confident flips (p ≥ {flips['threshold']:g}, answer changes)",
                f"{_fmt(flips['rate'])}  ({flips['n_confident_flips']} of {flips['n']}; "
                f"{flips['n_confident']} confident, {flips['n_flipped']} flipped)",
            )
        )
    for key in ("entropy", "sensitivity", "sensitivity_max", "sua", "sua_pos", "flip_rate"):
        rows.append((f"mean {key}", _fmt(res["mean_scores"][key])))
    if res["mean_scores"].get("sua_norm") is not None:
        rows.append(
            (
                f"mean sua_norm ({res.get('normalize', 'rank')})",
                _fmt(res["mean_scores"]["sua_norm"]),
            )
        )
    diag = res.get("diagnostics")
    if diag:
        rows.append(("S / H (mean S ÷ mean H)", _fmt(diag.get("ratio_s_to_h"), 4)))
        rows.append(("Spearman(SUA, −H)", _fmt(diag.get("spearman_sua_neg_entropy"))))
    for kind, value in res["mean_sensitivity_by_kind"].items():
        rows.append((f"mean sensitivity · {_plain(kind)}", _fmt(value)))
    rows += [
        ("model calls / cache hits", f"{summary['model_calls']} / {summary['cache_hits']}"),
        *_cost_rows(summary),
        ("wall time", f"{summary['wall_seconds']:.1f} s"),
        ("outputs", _plain(summary["out_dir"])),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def summary_notes(summary: dict[str, Any]) -> list[str]:
    """Plain sentences printed under the table: what the decision did and what SUA measured.

    Print them with ``markup=False``; control characters are already shown as escapes.
    """
    res = summary["results"]
    notes = []
    diag = res.get("diagnostics") or {}
    if diag.get("warning"):
        notes.append("warning: " + diag["warning"])
    ab = res.get("abstention") or {}
    if ab.get("note"):
        notes.append(ab["note"])
    elif ab.get("decided"):
        notes.append(
            f"The rule (abstain when {ab['score']} > τ) abstained on {ab['abstained']} of "
            f"{ab['decided']} items."
        )
    return [visible(note) for note in notes]
