"""Short Markdown reports, sized for a CI job summary or a pull-request comment.

Text from datasets and models is flattened to one line, shortened, HTML-escaped (GitHub renders
HTML inside Markdown) and stripped of Markdown syntax, so it cannot break a table or inject
markup; terminal control characters are shown as escapes (:func:`sua_audit.safetext.visible`),
so the Markdown is safe to print on a terminal too.
"""

from __future__ import annotations

import html
import re

from sua_audit.report import _data as d
from sua_audit.report._text import (
    abstention_note,
    abstention_sentence,
    answer_text,
    diagnostics_sentence,
    disagreements,
    flips_sentence,
    fmt,
    fmt_estimate,
    fmt_reading,
    guarantee_sentence,
)
from sua_audit.report.html import COMPARE_METRICS
from sua_audit.safetext import visible
from sua_audit.schema import DatasetRecord

# A backslash needs escaping only before ASCII punctuation (CommonMark), so the escapes that
# `visible` writes (\x1b, \u009b) stay as they are.
_MD_SPECIAL = re.compile(r"([`*_\[\]|~#]|\\(?=[!-/:-@\[-`{-~]|$))")
# Whitespace that ends a table row or widens it: every Unicode space but the controls that
# `visible` shows (VT, FF, CR alone, FS to US, NEL); a CR before a newline is a line end.
_SPACES = re.compile(r"(?:\r\n|[^\S\x0b-\x1f\x85])+")


def cell(value: object, limit: int = 80) -> str:
    """One table cell of untrusted text: one line, at most ``limit`` characters before control
    characters are shown as escapes, inert."""
    text = _SPACES.sub(" ", str("—" if value is None else value)).strip(" ")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return _MD_SPECIAL.sub(r"\\\1", html.escape(visible(text), quote=False))


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _flips(run: d.Run, limit: int) -> list[str]:
    flips = d.confident_flips(run)
    lines = ["**Confident flips**", ""]
    if flips is None:
        return [
            *lines,
            "Not recorded by this run (written before confident flips were counted).",
            "",
        ]
    lines += [cell(flips_sentence(flips), 600), ""]
    rows = flips["items"][:limit]
    if rows:
        table = []
        for row in rows:
            flip = d.first_flip(row) or {}
            table.append(
                [
                    cell(row.get("id"), 30),
                    cell(row.get("input"), 60),
                    cell(f"{row.get('prediction')} ({fmt(d.finite(row.get('confidence')))})", 40),
                    cell(f"{flip.get('kind', '—')}: {flip.get('text', '—')}", 60),
                    cell(flip.get("prediction"), 40),
                ]
            )
        lines += _table(
            ["id", "original", "answer (confidence)", "variant (kind: text)", "variant's answer"],
            table,
        )
        if len(flips["items"]) > len(rows):
            lines += ["", f"… and {len(flips['items']) - len(rows)} more (see the HTML report)."]
        lines.append("")
    return lines


def _diagnostics(run: d.Run) -> list[str]:
    diag = d.diagnostics(run)
    if diag is None:
        return []
    source = "" if diag.get("source") == "run" else f" ({cell(diag.get('source'), 80)})"
    lines = [f"**What SUA measures on this run**{source}: " + cell(diagnostics_sentence(diag), 600)]
    if diag.get("warning"):
        lines += ["", "> **Warning:** " + cell(diag["warning"], 800)]
    return [*lines, ""]


def _scores(run: d.Run) -> list[str]:
    rows = d.score_rows(run)
    if not rows:
        return []
    shown = [r for r in rows if any(v.get("value") is not None for v in r["auroc"].values())]
    table = []
    for row in shown:
        clean = (row.get("minus_best_baseline") or {}).get("clean")
        ent = (row.get("minus_entropy") or {}).get("clean")
        win = " (winner)" if "clean" in row["winner"] else ""
        table.append(
            [
                cell(row["score"], 30) + win,
                row["kind"],
                fmt_estimate(row["auroc"].get("clean")),
                fmt_estimate(row["auroc"].get("worst_case")),
                fmt_estimate(clean, signed=True) if clean else "·",
                fmt_estimate(ent, signed=True) if ent else "·",
            ]
        )
    best = d.eval_node(run, "comparison", "clean", "best_baseline") or "—"
    lines = [
        "**Scores**: AUROC with 95% CI for clean and worst-case failures; for perturbation "
        f"scores the paired difference in clean AUROC against the best baseline ({cell(best, 30)}) "
        "and against entropy.",
        "",
    ]
    if table:
        lines += _table(
            ["score", "kind", "AUROC clean", "AUROC worst case", "− best baseline", "− entropy"],
            table,
        )
    by_reason: dict[str, list[str]] = {}
    for r in rows:
        if r not in shown:
            by_reason.setdefault(str(r["reason"] or "undefined"), []).append(r["score"])
    if by_reason:
        lines += [
            *([""] if table else []),
            "Unavailable: "
            + "; ".join(
                f"{', '.join(cell(n, 30) for n in names)} ({cell(reason, 160)})"
                for reason, names in by_reason.items()
            )
            + ".",
        ]
    return [*lines, ""]


def render_report_md(run: d.Run, *, worst: int = 5) -> str:
    """The report of one run in Markdown (about 60 lines: headline, confident flips,
    diagnostics, abstention, every score, ranked items)."""
    ds = run.info.dataset or DatasetRecord()
    lines = [
        f"## sua-audit · {cell(run.model_name)}",
        "",
        f"Run `{cell(run.run_id)}` on `{cell(ds.path)}` ({ds.items} items, "
        f"sha256 `{str(ds.sha256 or '')[:12]}`).",
        "",
    ]
    names = [
        "accuracy",
        "robust_accuracy",
        "confident_flip_rate",
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
    lines.append("")
    lines += _flips(run, worst)
    lines += _diagnostics(run)
    lines += [cell(abstention_sentence(run), 400), ""]
    note = abstention_note(run)
    if note:
        lines += ["> " + cell(note, 600), ""]
    lines += [cell(guarantee_sentence(run), 900), ""]
    lines += _scores(run)
    rows = d.worst_items(run, worst)
    if rows:
        score, fallback = d.ranking(run)
        title = (
            f"Items ranked by the run's abstention score ({cell(score, 30)}), top {len(rows)}"
            if fallback is None
            else f"Items ranked by the run's decision, then by S, top {len(rows)}"
        )
        lines += [f"**{title}**", ""]
        table_rows = []
        for row in rows:
            flipped = d.first_flip(row)
            table_rows.append(
                [
                    cell(row.get("id"), 30),
                    fmt(d.item_score(row, score)),
                    fmt(d.finite(row.get("sua"))),
                    cell(row.get("input"), 60),
                    cell(row.get("prediction"), 40),
                    cell(
                        f"{flipped.get('kind')}: {flipped.get('prediction')}" if flipped else "—",
                        50,
                    ),
                ]
            )
        head = ["id", cell(score, 30), "SUA", "input", "answer", "a flipped variant's answer"]
        if score == "sua":
            head.pop(2)
            for r in table_rows:
                r.pop(2)
        lines += _table(head, table_rows)
    return visible("\n".join(lines) + "\n")


def render_compare_md(runs: list[d.Run], *, max_items: int = 10) -> str:
    """Runs side by side in Markdown, and the first items where they disagree."""
    ds = runs[0].info.dataset or DatasetRecord()
    lines = [
        f"## sua-audit comparison · {len(runs)} runs on `{cell(ds.path)}`",
        "",
    ]
    for note in (d.variants_line(runs), d.prompts_line(runs)):
        if note is not None:
            lines += [cell(note, 2000), ""]
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
    return visible("\n".join(lines) + "\n")
