"""Short Markdown reports, sized for a CI job summary or a pull-request comment.

Text from datasets and models is flattened to one line, shortened, HTML-escaped (GitHub renders
HTML inside Markdown) and stripped of Markdown syntax, so it cannot break a table or inject
markup.
"""

from __future__ import annotations

import html
import re

from sua_audit.report import _data as d
from sua_audit.report._text import (
    abstention_sentence,
    answer_text,
    disagreements,
    fmt,
    fmt_reading,
    guarantee_sentence,
)
from sua_audit.report.html import COMPARE_METRICS

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~#])")


def cell(value: object, limit: int = 80) -> str:
    """One table cell of untrusted text: one line, at most ``limit`` characters, inert."""
    text = " ".join(str("—" if value is None else value).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _MD_SPECIAL.sub(r"\\\1", html.escape(text, quote=False))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def render_report_md(run: d.Run, *, worst: int = 5) -> str:
    """The report of one run in Markdown (about 30 lines)."""
    ds = run.summary.get("dataset") or {}
    lines = [
        f"## sua-audit · {cell(run.model_name)}",
        "",
        f"Run `{cell(run.run_id)}` on `{cell(ds.get('path'))}` ({ds.get('items')} items, "
        f"sha256 `{str(ds.get('sha256') or '')[:12]}`).",
        "",
    ]
    names = [
        "accuracy",
        "robust_accuracy",
        "mean_sua_pos",
        "sua_auroc",
        "ece",
        "collapse_rate",
        "failure_rate",
        "cost_usd",
    ]
    lines += _table(
        ["metric", "value"],
        [[d.METRICS[n].label, cell(fmt_reading(d.read_metric(run, n)), 120)] for n in names],
    )
    lines += ["", cell(abstention_sentence(run), 400), "", cell(guarantee_sentence(run), 600), ""]
    rows = d.worst_items(run, worst)
    if rows:
        lines += [f"**Worst items (highest SUA, top {len(rows)})**", ""]
        table_rows = []
        for row in rows:
            flipped = next(
                (
                    v
                    for v in row.get("variants") or []
                    if v.get("kind") != "clean"
                    and " ".join(str(v.get("prediction")).split())
                    != " ".join(str(row.get("prediction")).split())
                ),
                None,
            )
            table_rows.append(
                [
                    cell(row.get("id"), 30),
                    fmt(d.finite(row.get("sua"))),
                    cell(row.get("input"), 60),
                    cell(row.get("prediction"), 40),
                    cell(
                        f"{flipped.get('kind')}: {flipped.get('prediction')}" if flipped else "—",
                        50,
                    ),
                ]
            )
        lines += _table(["id", "SUA", "input", "answer", "a variant's answer"], table_rows)
    return "\n".join(lines) + "\n"


def render_compare_md(runs: list[d.Run], *, max_items: int = 10) -> str:
    """Runs side by side in Markdown, and the first items where they disagree."""
    ds = runs[0].summary.get("dataset") or {}
    lines = [
        f"## sua-audit comparison · {len(runs)} runs on `{cell(ds.get('path'))}`",
        "",
    ]
    header = ["metric", *[cell(f"{r.model_name} ({r.run_id})", 60) for r in runs]]
    rows = [
        [d.METRICS[n].label, *[cell(fmt_reading(d.read_metric(r, n)), 60) for r in runs]]
        for n in COMPARE_METRICS
    ]
    lines += _table(header, rows)
    disagree = disagreements(runs)
    lines += ["", f"**Items where the runs disagree: {len(disagree)}**", ""]
    if disagree:
        lines += _table(
            ["id", "input", *[cell(r.model_name, 30) for r in runs]],
            [
                [
                    cell(e["id"], 30),
                    cell(e["input"], 50),
                    *[cell(answer_text(a), 40) for a in e["answers"]],
                ]
                for e in disagree[:max_items]
            ],
        )
        if len(disagree) > max_items:
            lines += ["", f"… and {len(disagree) - max_items} more (see the HTML comparison)."]
    return "\n".join(lines) + "\n"
