"""Reports of finished runs: one run (``report``) or several side by side (``compare``).

Formats: a self-contained HTML page (inline SVG plots, no scripts, opens offline), short
Markdown for CI job summaries, and JSON. Reports read only a run's files (summary.json,
results.jsonl, evaluation.json), never the cache. HTML and Markdown are Jinja2 templates in
``sua_audit/reports/templates`` (HTML autoescaped, see :mod:`sua_audit.reports._templates`); every
number they show is written by :mod:`sua_audit.numbers`.

No format carries a terminal control character raw, so any of them can be printed on a
terminal: HTML and Markdown show them as escapes (:func:`sua_audit.safetext.visible`), JSON
writes them as ``\\uNNNN`` escapes that read back to the original text
(:func:`sua_audit.safetext.dumps_json`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sua_audit.errors import ConfigError
from sua_audit.reports._data import METRICS, Metric, Reading, Run, RunReadError, load_run
from sua_audit.reports._data import read_metric as read_metric
from sua_audit.reports._data import same_clustering as same_clustering
from sua_audit.reports._data import same_dataset as same_dataset
from sua_audit.reports._data import same_variants as same_variants
from sua_audit.reports._text import disagreements
from sua_audit.results import atomic_write
from sua_audit.safetext import dumps_json, visible

FORMATS = ("html", "md", "json")

__all__ = [
    "FORMATS",
    "METRICS",
    "Metric",
    "Reading",
    "Run",
    "RunReadError",
    "check_format",
    "disagreements",
    "load_run",
    "read_metric",
    "render_compare",
    "render_report",
    "same_dataset",
    "same_clustering",
    "same_variants",
    "write_atomic",
]


def check_format(fmt: str) -> None:
    """Refuse a report format other than :data:`FORMATS` (a one-line ConfigError, exit 2)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format '{fmt}'. Use one of: {', '.join(FORMATS)}.")


def _variant(v: dict[str, Any] | None) -> dict[str, Any] | None:
    if not isinstance(v, dict):
        return None
    return {k: v.get(k) for k in ("kind", "text", "detail", "prediction", "correct", "divergence")}


def report_json(run: Run, *, worst: int = 10, max_flips: int = 25) -> dict[str, Any]:
    """The report's content as plain data."""
    from sua_audit.reports import _data
    from sua_audit.reports._text import (
        abstention_sentence,
        diagnostics_sentence,
        flips_sentence,
        guarantee_sentence,
    )

    def reading(name: str) -> dict[str, Any]:
        r = read_metric(run, name)
        return {"value": r.value, "ci": list(r.ci) if r.ci else None, "note": r.note}

    flips = _data.confident_flips(run)
    flips_out: dict[str, Any] | None = None
    if flips is not None:
        flips_out = {k: v for k, v in flips.items() if k != "items"}
        flips_out["sentence"] = flips_sentence(flips)
        flips_out["items"] = [
            {
                "id": row.get("id"),
                "task": row.get("task"),
                "input": row.get("input"),
                "prediction": row.get("prediction"),
                "confidence": row.get("confidence"),
                "correct": row.get("correct"),
                "flipped_variants": row.get("flipped_variants"),
                "first_flip": _variant(_data.first_flip(row)),
            }
            for row in flips["items"][:max_flips]
        ]
        flips_out["items_listed"] = len(flips_out["items"])
    diag = _data.diagnostics(run)
    info = _data.abstention_info(run)
    score, fallback = _data.ranking(run)
    return {
        "run_id": run.run_id,
        "model": run.model_name,
        "dataset": run.summary.get("dataset"),
        "metrics": {name: reading(name) for name in METRICS},
        "confident_flips": flips_out,
        "diagnostics": None if diag is None else {**diag, "sentence": diagnostics_sentence(diag)},
        "normalize": run.results.get("normalize"),
        "abstention": {
            "run": info,
            "decision": abstention_sentence(run),
            "note": info.get("note"),
            "guarantee": guarantee_sentence(run),
            "calibrated": (run.evaluation or {}).get("abstention"),
        },
        "evaluated": run.evaluation is not None,
        "evaluation_note": run.evaluation_note,
        "scores": _data.score_rows(run),
        "combined": (run.evaluation or {}).get("combined"),
        "mean_sensitivity_by_kind": run.results.get("mean_sensitivity_by_kind"),
        "ranked_by": {"score": score, "note": fallback},
        "worst_items": [
            {
                "id": row.get("id"),
                "task": row.get("task"),
                score: _data.item_score(row, score),
                "sua": row.get("sua"),
                "sensitivity": row.get("sensitivity"),
                "entropy": row.get("entropy"),
                "input": row.get("input"),
                "prediction": row.get("prediction"),
                "confidence": row.get("confidence"),
                "correct": row.get("correct"),
                "abstain": row.get("abstain"),
                "confident_flip": row.get("confident_flip"),
                "variants": [_variant(v) for v in row.get("variants") or []],
            }
            for row in _data.worst_items(run, worst)
        ],
    }


def render_report(run: Run, fmt: str) -> str:
    """One run's report as ``html``, ``md`` or ``json`` text."""
    check_format(fmt)
    if fmt == "html":
        from sua_audit.reports.html import render_report_html

        return visible(render_report_html(run))
    if fmt == "md":
        from sua_audit.reports.markdown import render_report_md

        return render_report_md(run)
    return dumps_json(report_json(run)) + "\n"


def render_compare(runs: list[Run], fmt: str, *, allow_different_variants: bool = False) -> str:
    """Runs side by side as ``html``, ``md`` or ``json``; refuses runs over different datasets,
    and (unless allowed) runs audited on different variant sets."""
    check_format(fmt)
    if len(runs) < 2:
        raise ConfigError("compare needs at least two runs.")
    same_dataset(runs)
    same_variants(runs, allow=allow_different_variants)
    same_clustering(runs)
    if fmt == "html":
        from sua_audit.reports.html import render_compare_html

        return visible(render_compare_html(runs))
    if fmt == "md":
        from sua_audit.reports.markdown import render_compare_md

        return render_compare_md(runs)
    data = {
        "dataset": runs[0].summary.get("dataset"),
        "runs": [
            {
                "run_id": r.run_id,
                "model": r.model_name,
                "path": str(r.path),
                "metrics": {
                    name: {
                        "value": (x := read_metric(r, name)).value,
                        "ci": list(x.ci) if x.ci else None,
                        "note": x.note,
                    }
                    for name in METRICS
                },
            }
            for r in runs
        ],
        "disagreements": disagreements(runs),
    }
    return dumps_json(data) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, [text])
