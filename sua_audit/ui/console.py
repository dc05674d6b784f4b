"""The stderr console (everything human) and the summary table."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

err_console = Console(stderr=True)
out_console = Console()


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
    table = Table(title=f"sua-audit · {summary['model']['model']}", show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    res = summary["results"]
    rows = [
        ("dataset", f"{summary['dataset']['path']} ({res['items']} items)"),
    ]
    if res.get("items_failed"):
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(res["failures_by_kind"].items()))
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
        rows.append((f"mean sensitivity · {kind}", _fmt(value)))
    rows += [
        ("model calls / cache hits", f"{summary['model_calls']} / {summary['cache_hits']}"),
        *_cost_rows(summary),
        ("wall time", f"{summary['wall_seconds']:.1f} s"),
        ("outputs", summary["out_dir"]),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def summary_notes(summary: dict[str, Any]) -> list[str]:
    """Plain sentences printed under the table: what the decision did and what SUA measured."""
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
    return notes
