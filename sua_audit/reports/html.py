"""One self-contained HTML file per report or comparison.

No JavaScript, no external files (plots are inline SVG, styles inline), so the file opens
offline and a Content-Security-Policy forbids scripts outright.

The markup lives in the templates ``report.html.j2`` and ``compare.html.j2`` (with the page
frame ``_page.html.j2`` and the pieces of ``_macros.html.j2``); the functions here only gather
what those templates show, as plain data. The templates are autoescaped, so every text from a
dataset or a model is escaped there; the one thing passed as :class:`markupsafe.Markup` is the
inline SVG of :mod:`sua_audit.reports.svg`, which escapes its own labels.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from sua_audit import __version__
from sua_audit.numbers import interval
from sua_audit.reports import _data as d
from sua_audit.reports import svg
from sua_audit.reports._text import (
    abstention_note,
    abstention_sentence,
    answer_text,
    ci_side,
    diagnostics_sentence,
    disagreements,
    flips_sentence,
    fmt,
    fmt_reading,
    guarantee_sentence,
    rule_text,
)
from sua_audit.schema import DatasetRecord, ModelRecord, Tokens

#: Confident flips listed in full on the page (the most confident first).
MAX_FLIPS = 25

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

#: The headline cards of a report, in order.
HEADLINE = (
    "accuracy",
    "robust_accuracy",
    "abstention_rate",
    "selective_accuracy",
    "confident_flip_rate",
    "mean_sua_pos",
    "sua_auroc",
    "ece",
    "collapse_rate",
    "failure_rate",
)


def decision(abstain: Any) -> str:
    """A row's abstention decision, in words."""
    return "abstains" if abstain is True else "answers" if abstain is False else "no decision"


def _page(template: str, title: str, **context: Any) -> str:
    from sua_audit.reports._templates import render

    return render(template, title=title, csp=_CSP, version=__version__, **context)


def _answer(row: dict[str, Any]) -> Any:
    return row.get("prediction") if row.get("prediction") is not None else "—"


def _header(run: d.Run) -> dict[str, Any]:
    info = run.info
    ds = info.dataset or DatasetRecord()
    model = info.model or ModelRecord()
    return {
        "model": run.model_name,
        "run_id": run.run_id,
        "dataset": ds.path,
        "items": ds.items,
        "sha256": str(ds.sha256 or "")[:16],
        "provider": model.provider or "",
        "dtype": model.dtype or "",
        "device": model.device or "remote",
        "finished": info.finished_utc or "—",
    }


def _headline(run: d.Run) -> dict[str, Any]:
    info = run.info
    tokens = info.tokens or Tokens()
    return {
        "cards": [(d.METRICS[n].label, d.read_metric(run, n)) for n in HEADLINE],
        "cost": d.cost_usd(run),
        "calls": info.model_calls,
        "cache_hits": info.cache_hits,
        "tokens_in": "—" if tokens.prompt is None else tokens.prompt,
        "tokens_out": "—" if tokens.completion is None else tokens.completion,
    }


def _abstention(run: d.Run) -> dict[str, Any]:
    """The run's rule (its own score and τ), its note, and the calibrated rule with its note."""
    return {
        "decision": abstention_sentence(run),
        "note": abstention_note(run),
        "guarantee": guarantee_sentence(run),
    }


def _clean(row: dict[str, Any]) -> dict[str, Any] | None:
    variants = row.get("variants") or []
    return next((v for v in variants if isinstance(v, dict) and v.get("kind") == "clean"), None)


def _variant(v: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": v.get("kind"),
        "detail": v.get("detail") or "",
        "text": v.get("text") or "",
        "correct": v.get("correct"),
        "answer": _answer(v),
        "divergence": d.finite(v.get("divergence")),
    }


def _flip_item(row: dict[str, Any]) -> dict[str, Any]:
    variants = row.get("variants") or []
    flip = d.first_flip(row)
    return {
        "id": row.get("id"),
        "task": row.get("task"),
        "text": (_clean(row) or row).get("text") or row.get("input") or "",
        "correct": row.get("correct"),
        "answer": _answer(row),
        "confidence": d.finite(row.get("confidence")),
        "flip": None if flip is None else _variant(flip),
        "flipped": len(row.get("flipped_variants") or []) or "some",
        "variants": len([v for v in variants if isinstance(v, dict) and v.get("kind") != "clean"]),
    }


def _confident_flips(run: d.Run, limit: int = MAX_FLIPS) -> dict[str, Any] | None:
    flips = d.confident_flips(run)
    if flips is None:
        return None
    rows = flips["items"]
    shown = rows[:limit]
    return {
        "sentence": flips_sentence(flips),
        "total": len(rows),
        "items": [_flip_item(row) for row in shown],
    }


def _diagnostics(run: d.Run) -> dict[str, Any] | None:
    diag = d.diagnostics(run)
    if diag is None:
        return None
    rows = [
        ["items", diag.get("n")],
        ["mean S (sensitivity, nats)", fmt(d.finite(diag.get("mean_sensitivity")), 4)],
        ["mean H (entropy, nats)", fmt(d.finite(diag.get("mean_entropy")), 4)],
        ["mean S / mean H", fmt(d.finite(diag.get("ratio_s_to_h")), 4)],
        ["λ", fmt(d.finite(diag.get("lambda")))],
        ["Spearman(SUA, −H)", fmt(d.finite(diag.get("spearman_sua_neg_entropy")))],
    ]
    return {
        "rows": rows,
        "sentence": diagnostics_sentence(diag),
        "warning": diag.get("warning"),
        "source": None if diag.get("source") == "run" else str(diag.get("source")).capitalize(),
    }


def _difference(row: dict[str, Any], key: str, label: str) -> dict[str, Any] | None:
    """A paired AUROC difference cell: its text and which side of 0 its CI lies (or None)."""
    node = (row.get(key) or {}).get(label)
    if row["kind"] == "baseline" or node is None:
        return None
    return {"node": node, "side": ci_side(node)}


def _scores_overview(run: d.Run) -> list[dict[str, Any]]:
    rows = []
    for row in d.score_rows(run):
        rows.append(
            {
                "score": row["score"],
                "wins": ["clean" if label == "clean" else "worst case" for label in row["winner"]],
                "kind": row["kind"],
                "views": [
                    {
                        "auroc": row["auroc"].get(label),
                        "differences": [
                            _difference(row, key, label)
                            for key in ("minus_best_baseline", "minus_entropy")
                        ],
                    }
                    for label in ("clean", "worst_case")
                ],
                "reason": row["reason"] or "",
                "unavailable": bool(
                    row["reason"] and all(v.get("value") is None for v in row["auroc"].values())
                ),
            }
        )
    return rows


def _scores(run: d.Run) -> dict[str, Any] | None:
    if run.evaluation is None:
        return None
    labels = run.evaluation.get("failure_labels") or {}
    order = [row["score"] for row in d.score_rows(run)]
    views = []
    for view in ("clean", "worst_case"):
        metrics = d.eval_node(run, "metrics", view)
        if not isinstance(metrics, dict) or not metrics:
            continue
        counts = labels.get(view) or {}
        rows = []
        for score in [*[s for s in order if s in metrics], *[s for s in metrics if s not in order]]:
            node = metrics[score]
            row: list[Any] = [score]
            for key in ("auroc", "auprc", "prr", "aurc", "selective_accuracy_at_80"):
                value, ci = d.estimate((node or {}).get(key))
                row.append(fmt(value) + interval(ci))
            rows.append(row)
        comparison = d.eval_node(run, "comparison", view) or {}
        diff = d.estimate(comparison.get("sua_minus_best_baseline"))
        views.append(
            {
                "view": view,
                "failures": counts.get("failures", "—"),
                "n": counts.get("n", "—"),
                "note": counts.get("note"),
                "comparison": None
                if not comparison
                else {
                    "best": comparison.get("best_baseline") or "none",
                    "difference": fmt(diff[0]) + interval(diff[1]),
                    "winner": comparison.get("winner") or "none (AUROC undefined)",
                },
                "rows": rows,
            }
        )
    lam = run.evaluation.get("lambda") or {}
    split = run.evaluation.get("split") or {}
    combined = run.evaluation.get("combined")
    return {
        "overview": _scores_overview(run),
        "best": {
            label: d.eval_node(run, "comparison", label, "best_baseline") or "—"
            for label in ("clean", "worst_case")
        },
        "views": views,
        "setup": {
            "n_test": split.get("n_test", run.evaluation.get("n_items", "—")),
            "n_calibration": split.get("n_calibration", 0),
            "n_validation": split.get("n_validation", 0),
            "lam": d.finite(lam.get("value")),
            "lam_mode": lam.get("mode", "—"),
            "normalize": run.evaluation.get("normalize") or run.results.get("normalize") or "—",
            "correctness": run.evaluation.get("correctness_rule", "—"),
            "bootstrap": run.evaluation.get("bootstrap", "—"),
            "seed": run.evaluation.get("seed", "—"),
        },
        "combined": None
        if not isinstance(combined, dict)
        else {
            "model": combined.get("model") or "fitted detector",
            "features": ", ".join(str(f) for f in combined.get("features") or []) or "—",
            "fitted_on": combined.get("fitted_on", "—"),
            "reason": combined.get("reason"),
        },
    }


def _plots(run: d.Run) -> list[Markup]:
    """The inline SVG plots, the only Markup handed to the templates (svg escapes its labels)."""
    items = run.scored
    points = []
    for row in items:
        h, s = d.finite(row.get("entropy")), d.finite(row.get("sensitivity"))
        if h is None or s is None:
            continue
        correct = row.get("correct")
        cls = "correct" if correct is True else "wrong" if correct is False else "unknown"
        points.append((max(h, 0.0), max(s, 0.0), cls))
    by_kind = run.results.get("mean_sensitivity_by_kind") or {}
    kinds = [(str(k), float(v)) for k, v in by_kind.items() if d.finite(v) is not None]
    info = d.abstention_info(run)
    score = str(info["score"])
    tau = d.finite(info.get("tau"))
    # The S–H line is the run's rule only when it abstained on SUA itself.
    on_sua = score == "sua" or (score == "sua_pos" and (tau or 0.0) >= 0)
    values = [v for v in (d.item_score(row, score) for row in items) if v is not None]
    hist_score, hist_tau = (score, tau) if values else ("sua", tau if on_sua else None)
    if not values:
        values = [float(row["sua"]) for row in items if d.finite(row.get("sua")) is not None]
    plots = [
        svg.lines(
            d.risk_coverage(run),
            plot_id="plot-risk-coverage",
            title="Risk–coverage per score (answer the lowest first)",
            x_label="coverage",
            y_label="risk (error rate)",
        ),
        svg.reliability(
            d.reliability_bins(run), plot_id="plot-reliability", title="Reliability diagram"
        ),
        svg.scatter_sh(
            points,
            lam=run.lam,
            tau=(tau or 0.0) if on_sua else 0.0,
            is_rule=on_sua,
            plot_id="plot-s-vs-h",
            title=f"S against H, line SUA = {'τ' if on_sua else '0'} (λ = {fmt(run.lam)})",
        ),
        svg.bars(
            kinds,
            plot_id="plot-sensitivity-by-kind",
            title="Mean sensitivity per perturbation kind",
            x_label="perturbation kind",
            y_label="mean S",
        ),
        svg.histogram(
            values,
            marker=hist_tau,
            plot_id="plot-sua-histogram",
            title=f"{hist_score} per item"
            + (", τ of the abstention rule" if hist_tau is not None else ""),
            x_label="SUA = S − λH" if hist_score == "sua" else hist_score,
        ),
    ]
    return [Markup(p) for p in plots]


def _item(row: dict[str, Any], score: str = "sua") -> dict[str, Any]:
    variants = [v for v in row.get("variants") or [] if isinstance(v, dict)]
    gold = row.get("gold")
    return {
        "id": row.get("id"),
        "task": row.get("task"),
        "by_score": None if score == "sua" else (score, d.item_score(row, score)),
        "sua": d.finite(row.get("sua")),
        "s": d.finite(row.get("sensitivity")),
        "h": d.finite(row.get("entropy")),
        "decision": decision(row.get("abstain")),
        "flag": bool(row.get("confident_flip")),
        "gold": ", ".join(str(g) for g in gold) if isinstance(gold, list) else (gold or "—"),
        "text": (_clean(row) or row).get("text") or row.get("input") or "",
        "correct": row.get("correct"),
        "answer": _answer(row),
        "confidence": d.finite(row.get("confidence")),
        "variants": [_variant(v) for v in variants if v.get("kind") != "clean"],
    }


def _ranked(run: d.Run, n: int) -> dict[str, Any]:
    """Items ranked by the run's own abstention score (which one is said)."""
    rows = d.worst_items(run, n)
    score, fallback = d.ranking(run)
    return {
        "score": score,
        "fallback": fallback,
        "rule_score": d.abstention_info(run).get("score"),
        "items": [_item(row, score) for row in rows],
    }


def _config(run: d.Run) -> list[tuple[str, str]]:
    config = run.summary.get("config") or {}
    return [(k, str(v)) for k, v in config.items() if v is not None]


def render_report_html(run: d.Run, *, worst: int = 10) -> str:
    """The report of one run as a self-contained HTML page."""
    return _page(
        "report.html.j2",
        f"sua-audit report · {run.model_name}",
        header=_header(run),
        headline=_headline(run),
        flips=_confident_flips(run),
        diagnostics=_diagnostics(run),
        abstention=_abstention(run),
        evaluation_note=run.evaluation_note or "no evaluation",
        scores=_scores(run),
        plots=_plots(run),
        ranked=_ranked(run, worst),
        config=_config(run),
    )


COMPARE_METRICS = (
    "accuracy",
    "robust_accuracy",
    "confident_flip_rate",
    "spearman_sua_neg_entropy",
    "mean_sua_pos",
    "collapse_rate",
    "sua_auroc",
    "sua_auroc_worst_case",
    "sua_norm_auroc",
    "best_baseline_auroc",
    "ece",
    "abstention_rate",
    "abstention_coverage",
    "abstention_risk",
    "failure_rate",
    "cost_usd",
)


def _disagreement(entry: dict[str, Any]) -> dict[str, Any]:
    answers: list[dict[str, Any]] = []
    for answer in entry["answers"]:
        if answer.get("status", "ok") != "ok":
            answers.append({"failed": answer_text(answer)})
        else:
            answers.append(
                {
                    "failed": None,
                    "prediction": answer["prediction"] if answer["prediction"] is not None else "—",
                    "correct": answer["correct"],
                    "sua": answer["sua"],
                }
            )
    return {"id": entry["id"], "task": entry["task"], "input": entry["input"], "answers": answers}


def render_compare_html(runs: list[d.Run], *, max_items: int = 30) -> str:
    """Models side by side on one dataset, and the items where they disagree."""
    ds = runs[0].info.dataset or DatasetRecord()
    infos = [r.info for r in runs]
    rows: list[list[Any]] = [
        [d.METRICS[name].label, *[fmt_reading(d.read_metric(r, name)) for r in runs]]
        for name in COMPARE_METRICS
    ]
    rows.append(["model calls", *[i.model_calls for i in infos]])
    rows.append(["cache hits", *[i.cache_hits for i in infos]])
    disagree = disagreements(runs)
    return _page(
        "compare.html.j2",
        "sua-audit comparison",
        n_runs=len(runs),
        dataset=ds.path,
        sha256=str(ds.sha256 or "")[:16],
        notes=[n for n in (d.variants_line(runs), d.prompts_line(runs)) if n is not None],
        runs=[
            [
                r.run_id,
                r.model_name,
                i.config.temperature if i.config is not None else None,
                i.config.samples if i.config is not None else None,
                r.lam,
                rule_text(d.abstention_info(r)),
                str(r.path),
            ]
            for r, i in zip(runs, infos, strict=True)
        ],
        models=[r.model_name for r in runs],
        metrics_head=["metric", *[f"{r.model_name} ({r.run_id})" for r in runs]],
        metrics=rows,
        decisions=[(r.model_name, r.run_id, abstention_sentence(r)) for r in runs],
        n_disagree=len(disagree),
        n_items=len({row["id"] for row in runs[0].items}),
        disagreements=[_disagreement(e) for e in disagree[:max_items]],
    )


__all__ = ["COMPARE_METRICS", "HEADLINE", "render_compare_html", "render_report_html"]
