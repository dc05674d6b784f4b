"""Short Markdown reports, sized for a CI job summary or a pull-request comment.

Text from datasets and models is flattened to one line, shortened, HTML-escaped (GitHub renders
HTML inside Markdown) and stripped of Markdown syntax, so it cannot break a table or inject
markup; terminal control characters are shown as escapes (:func:`sua_audit.safetext.visible`),
so the Markdown is safe to print on a terminal too.

The layout lives in the templates ``report.md.j2`` and ``compare.md.j2`` (not autoescaped:
Markdown is not HTML); they pass every untrusted text through the ``cell`` filter, which is
:func:`cell` below. The functions here gather the data those templates show.
"""

from __future__ import annotations

import html
import re
from typing import Any

from sua_audit.reports import _data as d
from sua_audit.reports._text import (
    abstention_note,
    abstention_sentence,
    answer_text,
    diagnostics_sentence,
    disagreements,
    flips_sentence,
    fmt_reading,
    guarantee_sentence,
)
from sua_audit.reports.html import COMPARE_METRICS
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


def _render(template: str, **context: Any) -> str:
    from sua_audit.reports._templates import render

    return visible(render(template, **context))


def _flips(run: d.Run, limit: int) -> dict[str, Any] | None:
    flips = d.confident_flips(run)
    if flips is None:
        return None
    rows = flips["items"][:limit]
    table = []
    for row in rows:
        flip = d.first_flip(row) or {}
        table.append(
            {
                "id": row.get("id"),
                "input": row.get("input"),
                "prediction": row.get("prediction"),
                "confidence": d.finite(row.get("confidence")),
                "kind": flip.get("kind", "—"),
                "text": flip.get("text", "—"),
                "variant_prediction": flip.get("prediction"),
            }
        )
    return {
        "sentence": flips_sentence(flips),
        "rows": table,
        "more": len(flips["items"]) - len(rows) if table else 0,
    }


def _diagnostics(run: d.Run) -> dict[str, Any] | None:
    diag = d.diagnostics(run)
    if diag is None:
        return None
    return {
        "source": None if diag.get("source") == "run" else diag.get("source"),
        "sentence": diagnostics_sentence(diag),
        "warning": diag.get("warning"),
    }


def _scores(run: d.Run) -> dict[str, Any] | None:
    rows = d.score_rows(run)
    if not rows:
        return None
    shown = [r for r in rows if any(v.get("value") is not None for v in r["auroc"].values())]
    by_reason: dict[str, list[str]] = {}
    for r in rows:
        if r not in shown:
            by_reason.setdefault(str(r["reason"] or "undefined"), []).append(r["score"])
    return {
        "best": d.eval_node(run, "comparison", "clean", "best_baseline") or "—",
        "rows": [
            {
                "score": row["score"],
                "winner": "clean" in row["winner"],
                "kind": row["kind"],
                "clean": row["auroc"].get("clean"),
                "worst_case": row["auroc"].get("worst_case"),
                "minus_best": (row.get("minus_best_baseline") or {}).get("clean"),
                "minus_entropy": (row.get("minus_entropy") or {}).get("clean"),
            }
            for row in shown
        ],
        "unavailable": list(by_reason.items()),
    }


def _ranked(run: d.Run, worst: int) -> dict[str, Any] | None:
    rows = d.worst_items(run, worst)
    if not rows:
        return None
    score, fallback = d.ranking(run)
    table = []
    for row in rows:
        flipped = d.first_flip(row)
        table.append(
            {
                "id": row.get("id"),
                "score": d.item_score(row, score),
                "sua": d.finite(row.get("sua")),
                "input": row.get("input"),
                "prediction": row.get("prediction"),
                "flipped": f"{flipped.get('kind')}: {flipped.get('prediction')}"
                if flipped
                else "—",
            }
        )
    return {"score": score, "fallback": fallback, "rows": table}


#: The metrics table at the top of a Markdown report, in order.
HEADLINE = (
    "accuracy",
    "robust_accuracy",
    "confident_flip_rate",
    "mean_sua_pos",
    "sua_auroc",
    "ece",
    "collapse_rate",
    "failure_rate",
    "cost_usd",
)


def render_report_md(run: d.Run, *, worst: int = 5) -> str:
    """The report of one run in Markdown (about 60 lines: headline, confident flips,
    diagnostics, abstention, every score, ranked items)."""
    ds = run.info.dataset or DatasetRecord()
    return _render(
        "report.md.j2",
        model=run.model_name,
        run_id=run.run_id,
        path=ds.path,
        n_items=ds.items,
        sha256=str(ds.sha256 or "")[:12],
        metrics=[(d.METRICS[n].label, fmt_reading(d.read_metric(run, n))) for n in HEADLINE],
        flips=_flips(run, worst),
        diagnostics=_diagnostics(run),
        decision=abstention_sentence(run),
        note=abstention_note(run),
        guarantee=guarantee_sentence(run),
        scores=_scores(run),
        ranked=_ranked(run, worst),
    )


def render_compare_md(runs: list[d.Run], *, max_items: int = 10) -> str:
    """Runs side by side in Markdown, and the first items where they disagree."""
    ds = runs[0].info.dataset or DatasetRecord()
    disagree = disagreements(runs)
    return _render(
        "compare.md.j2",
        n_runs=len(runs),
        path=ds.path,
        notes=[n for n in (d.variants_line(runs), d.prompts_line(runs)) if n is not None],
        runs=[f"{r.model_name} ({r.run_id})" for r in runs],
        metrics=[
            (d.METRICS[n].label, [fmt_reading(d.read_metric(r, n)) for r in runs])
            for n in COMPARE_METRICS
        ],
        n_disagree=len(disagree),
        models=[r.model_name for r in runs],
        disagreements=[
            {
                "id": e["id"],
                "input": e["input"],
                "answers": [answer_text(a) for a in e["answers"]],
            }
            for e in disagree[:max_items]
        ],
        more=max(len(disagree) - max_items, 0),
    )
