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
    rows += [
        ("accuracy", _fmt(res["accuracy"])),
        ("robust accuracy (all variants right)", _fmt(res["robust_accuracy"])),
        ("abstention rate (SUA > τ)", f"{_fmt(res['abstention_rate'])}  (τ = {res['tau']:.3f})"),
        ("selective accuracy (answered)", _fmt(res["selective_accuracy"])),
    ]
    for key in ("entropy", "sensitivity", "sensitivity_max", "sua", "sua_pos", "flip_rate"):
        rows.append((f"mean {key}", _fmt(res["mean_scores"][key])))
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
