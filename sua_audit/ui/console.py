"""The stderr console (everything human) and the summary table. Text is made safe to print by
:mod:`sua_audit.safetext` (``visible``, ``dumps_json``, imported here for the CLI)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from sua_audit.numbers import fixed, seconds, short, usd
from sua_audit.safetext import UNSAFE_CHARS as UNSAFE_CHARS
from sua_audit.safetext import dumps_json as dumps_json
from sua_audit.safetext import visible as visible

if TYPE_CHECKING:
    from sua_audit.schema import Summary

__all__ = [
    "UNSAFE_CHARS",
    "dumps_json",
    "err_console",
    "out_console",
    "summary_notes",
    "summary_table",
    "visible",
]

err_console = Console(stderr=True)
out_console = Console()


def _plain(value: Any) -> str:
    """Untrusted text for a Rich table cell: controls shown, markup inert."""
    return escape(visible(str(value)))


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or not (value is None or isinstance(value, int | float)):
        return str(value)
    return fixed(value, digits)


def _typed(summary: Summary | dict[str, Any]) -> Summary:
    """The summary as its model (the dict ``run`` and ``rescore`` return is already valid)."""
    from sua_audit.results import typed_summary
    from sua_audit.schema import Summary

    return summary if isinstance(summary, Summary) else typed_summary(summary)


def _cost_rows(summary: Summary) -> list[tuple[str, str]]:
    tokens = summary.tokens
    rows = []
    if tokens is not None and (tokens.prompt or tokens.completion):
        rows.append(("tokens (prompt / completion)", f"{tokens.prompt} / {tokens.completion}"))
    cost = summary.cost
    if cost is not None and cost.usd is not None and cost.price_source != "local model":
        rows.append(("cost this run (estimate)", usd(cost.usd)))
    return rows


def summary_table(summary: Summary | dict[str, Any]) -> Table:
    """The end-of-run table: counts, accuracy, abstention, mean scores, cache use."""
    s = _typed(summary)
    model = s.model.model if s.model is not None else None
    table = Table(title=f"sua-audit · {_plain(str(model))}", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    res = s.results
    dataset = s.dataset.path if s.dataset is not None else None
    rows = [
        ("dataset", f"{_plain(str(dataset))} ({res.items} items)"),
    ]
    if s.variants is not None:
        rows.append(
            (
                "variant set (no rewriter call)",
                f"{_plain(str(s.variants.path))} (sha256 {str(s.variants.sha256)[:12]})",
            )
        )
    if res.items_failed:
        failures = res.failures_by_kind or {}
        kinds = ", ".join(f"{_plain(k)} {v}" for k, v in sorted(failures.items()))
        rows.append(("items failed (rerun to retry)", f"[red]{res.items_failed}[/red]  ({kinds})"))
    score = res.abstention.score if res.abstention and res.abstention.score else "sua"
    rows += [
        ("accuracy", _fmt(res.accuracy)),
        ("robust accuracy (all variants right)", _fmt(res.robust_accuracy)),
        (
            f"abstention rate ({score} > τ)",
            f"{_fmt(res.abstention_rate)}  (τ = {_fmt(res.tau, 4)})",
        ),
        ("selective accuracy (answered)", _fmt(res.selective_accuracy)),
    ]
    flips = res.confident_flips
    if flips is not None:
        rows.append(
            (
                f"confident flips (p ≥ {short(flips.threshold)}, answer changes)",
                f"{_fmt(flips.rate)}  ({flips.n_confident_flips} of {flips.n}; "
                f"{flips.n_confident} confident, {flips.n_flipped} flipped)",
            )
        )
    means = res.mean_scores or {}
    for key in ("entropy", "sensitivity", "sensitivity_max", "sua", "sua_pos", "flip_rate"):
        rows.append((f"mean {key}", _fmt(means.get(key))))
    if means.get("sua_norm") is not None:
        rows.append((f"mean sua_norm ({res.normalize or 'rank'})", _fmt(means["sua_norm"])))
    diag = res.diagnostics
    if diag is not None:
        rows.append(("S / H (mean S ÷ mean H)", _fmt(diag.ratio_s_to_h, 4)))
        rows.append(("Spearman(SUA, −H)", _fmt(diag.spearman_sua_neg_entropy)))
    for kind, mean in (res.mean_sensitivity_by_kind or {}).items():
        rows.append((f"mean sensitivity · {_plain(kind)}", _fmt(mean)))
    rows += [
        ("model calls / cache hits", f"{s.model_calls} / {s.cache_hits}"),
        *_cost_rows(s),
        ("wall time", seconds(s.wall_seconds)),
        ("outputs", _plain(str(s.out_dir))),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def summary_notes(summary: Summary | dict[str, Any]) -> list[str]:
    """Plain sentences printed under the table: what the decision did and what SUA measured.

    Print them with ``markup=False``; control characters are already shown as escapes.
    """
    res = _typed(summary).results
    notes = []
    if res.diagnostics is not None and res.diagnostics.warning:
        notes.append("warning: " + res.diagnostics.warning)
    ab = res.abstention
    if ab is not None and ab.note:
        notes.append(ab.note)
    elif ab is not None and ab.decided:
        notes.append(
            f"The rule (abstain when {ab.score} > τ) abstained on {ab.abstained} of "
            f"{ab.decided} items."
        )
    return [visible(note) for note in notes]
