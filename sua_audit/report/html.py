"""One self-contained HTML file per report or comparison.

No JavaScript, no external files (plots are inline SVG, styles inline), so the file opens
offline and a Content-Security-Policy forbids scripts outright. Every text from a dataset or a
model passes through :mod:`markupsafe` escaping: fragments are composed with
``Markup(template).format(...)``, which escapes each argument that is not already markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from markupsafe import Markup

from sua_audit import __version__
from sua_audit.numbers import usd
from sua_audit.report import _data as d
from sua_audit.report import svg
from sua_audit.report._text import (
    abstention_note,
    abstention_sentence,
    answer_text,
    ci_side,
    diagnostics_sentence,
    disagreements,
    flips_sentence,
    fmt,
    fmt_estimate,
    fmt_reading,
    guarantee_sentence,
    rule_text,
)
from sua_audit.schema import DatasetRecord, ModelRecord, Tokens

#: Confident flips listed in full on the page (the most confident first).
MAX_FLIPS = 25

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2327;
 background:#fff;margin:0 auto;max-width:1180px;padding:24px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;
 padding-bottom:4px} h3{font-size:14px;margin:14px 0 6px}
.meta{color:#555;font-size:13px} code{font-size:12px;background:#f4f4f4;padding:1px 3px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 12px;min-width:150px;background:#fafafa}
.card .v{font-size:20px;font-weight:600} .card .k{color:#555;font-size:12px}
.card .ci{color:#777;font-size:11px}
table{border-collapse:collapse;margin:6px 0;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f5f7} td.n{text-align:right;font-variant-numeric:tabular-nums}
.plots{display:flex;flex-wrap:wrap;gap:14px}
svg.plot{border:1px solid #e3e3e3;background:#fff;font-size:11px}
svg .grid{stroke:#eee} svg .axis{stroke:#444} svg .title{font-weight:600;font-size:12px}
svg .label{fill:#333} svg .note{fill:#D55E00;font-size:10px}
.item{border:1px solid #ddd;border-radius:6px;margin:10px 0;padding:8px 12px}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:10px}
.original,.variant{background:#f8f9fa;border-radius:4px;padding:6px 8px;white-space:pre-wrap;
 overflow-wrap:anywhere} .variant{margin-bottom:6px}
.ok{color:#0a7a3a} .bad{color:#b3261e} .muted{color:#777}
.pass{color:#0a7a3a;font-weight:600} .fail{color:#b3261e;font-weight:600}
.callout{border-left:4px solid #b3261e;background:#fdf1f0;padding:8px 12px;margin:8px 0}
.callout.info{border-left-color:#8a6d00;background:#fdf8e6}
.flip .pair .variant{margin-bottom:0} .badge{font-size:11px;border-radius:3px;padding:0 4px;
 background:#eef1f4;color:#333} .badge.win{background:#0a7a3a;color:#fff}
tr.unavailable td{color:#777}
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _page(title: str, body: Markup) -> str:
    return str(
        Markup(
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta http-equiv="Content-Security-Policy" content="{}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            "<title>{}</title><style>{}</style></head><body>{}"
            '<p class="meta">Made by sua-audit {} · self-contained, works offline.</p>'
            "</body></html>\n"
        ).format(_CSP, title, Markup(_CSS), body, __version__)
    )


def _join(parts: Iterable[Markup | str]) -> Markup:
    return Markup("").join(parts)


def _card(label: str, reading: d.Reading, *, digits: int = 3) -> Markup:
    value = fmt(reading.value, digits)
    ci = (
        Markup('<div class="ci">95% CI {}–{}</div>').format(
            fmt(reading.ci[0], digits), fmt(reading.ci[1], digits)
        )
        if reading.ci
        else (Markup('<div class="ci">{}</div>').format(reading.note) if reading.note else "")
    )
    return Markup(
        '<div class="card"><div class="k">{}</div><div class="v">{}</div>{}</div>'
    ).format(label, value, ci)


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]], *, cls: str = "") -> Markup:
    head = _join(Markup("<th>{}</th>").format(h) for h in header)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            if isinstance(cell, int | float) and not isinstance(cell, bool):
                cells.append(Markup('<td class="n">{}</td>').format(fmt(cell)))
            else:
                cells.append(Markup("<td>{}</td>").format("—" if cell is None else cell))
        body.append(Markup("<tr>{}</tr>").format(_join(cells)))
    return Markup('<table class="{}"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>').format(
        cls, head, _join(body)
    )


def _correct(value: Any) -> Markup:
    if value is True:
        return Markup('<span class="ok">right</span>')
    if value is False:
        return Markup('<span class="bad">wrong</span>')
    return Markup('<span class="muted">no gold</span>')


def _header(run: d.Run) -> Markup:
    info = run.info
    ds = info.dataset or DatasetRecord()
    model = info.model or ModelRecord()
    return Markup(
        "<h1>sua-audit report · {}</h1>"
        '<p class="meta">run <code>{}</code> · dataset <code>{}</code> ({} items, sha256 '
        "<code>{}</code>) · {} {} on {} · finished {}</p>"
    ).format(
        run.model_name,
        run.run_id,
        ds.path,
        ds.items,
        str(ds.sha256 or "")[:16],
        model.provider or "",
        model.dtype or "",
        model.device or "remote",
        info.finished_utc or "—",
    )


def _headline(run: d.Run) -> Markup:
    names = [
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
    ]
    cards = [_card(d.METRICS[n].label, d.read_metric(run, n)) for n in names]
    info = run.info
    tokens = info.tokens or Tokens()
    cost = d.cost_usd(run)
    cards.append(
        Markup(
            '<div class="card"><div class="k">cost · calls · tokens</div>'
            '<div class="v">{}</div><div class="ci">{} calls, {} cache hits · {} in / {} out'
            "</div></div>"
        ).format(
            usd(cost),
            info.model_calls,
            info.cache_hits,
            "—" if tokens.prompt is None else tokens.prompt,
            "—" if tokens.completion is None else tokens.completion,
        )
    )
    return Markup('<h2>Headline</h2><div class="cards" id="headline">{}</div>').format(_join(cards))


def _abstention(run: d.Run) -> Markup:
    """The run's rule (its own score and τ), its note, and the calibrated rule with its note."""
    note = abstention_note(run)
    return Markup('<h2>Abstention</h2><p id="decision">{}</p>{}<p id="guarantee">{}</p>').format(
        abstention_sentence(run),
        Markup('<p class="callout info" id="decision-note">{}</p>').format(note) if note else "",
        guarantee_sentence(run),
    )


def _flip_item(row: dict[str, Any]) -> Markup:
    variants = row.get("variants") or []
    clean = next((v for v in variants if isinstance(v, dict) and v.get("kind") == "clean"), None)
    flip = d.first_flip(row)
    original = Markup(
        '<div class="original"><b>original</b>\n{}\n\n<b>answer</b> ({}): {} · confidence {}</div>'
    ).format(
        (clean or row).get("text") or row.get("input") or "",
        _correct(row.get("correct")),
        _answer(row),
        fmt(d.finite(row.get("confidence"))),
    )
    if flip is None:
        variant = Markup('<div class="variant muted">the flipping variant was not recorded</div>')
    else:
        variant = Markup(
            '<div class="variant"><b>{}</b> <span class="muted">{}</span>\n{}\n\n'
            "<b>answer</b> ({}): {}</div>"
        ).format(
            flip.get("kind"),
            flip.get("detail") or "",
            flip.get("text") or "",
            _correct(flip.get("correct")),
            _answer(flip),
        )
    n_flipped = len(row.get("flipped_variants") or [])
    return Markup(
        '<div class="item flip" id="flip-{}"><h3>{} · {} · {} of {} variants flip the answer</h3>'
        '<div class="pair">{}{}</div></div>'
    ).format(
        row.get("id"),
        row.get("id"),
        row.get("task"),
        n_flipped or "some",
        len([v for v in variants if isinstance(v, dict) and v.get("kind") != "clean"]),
        original,
        variant,
    )


def _confident_flips(run: d.Run, limit: int = MAX_FLIPS) -> Markup:
    flips = d.confident_flips(run)
    if flips is None:
        return Markup(
            '<h2>Confident flips</h2><p class="muted" id="flips-summary">Not recorded by this '
            "run (it was written before confident flips were counted).</p>"
        )
    rows = flips["items"]
    shown = rows[:limit]
    more = (
        Markup('<p class="muted">Showing the {} most confident of {}.</p>').format(
            len(shown), len(rows)
        )
        if len(rows) > len(shown)
        else ""
    )
    return Markup(
        '<h2>Confident flips</h2><p id="flips-summary">{}</p>{}<div id="flips">{}</div>'
    ).format(flips_sentence(flips), more, _join(_flip_item(row) for row in shown))


def _diagnostics(run: d.Run) -> Markup:
    diag = d.diagnostics(run)
    if diag is None:
        return Markup(
            '<h2>What SUA measures on this run</h2><p class="muted" id="diagnostics">No scored '
            "items: no diagnostics.</p>"
        )
    rows = [
        ["items", diag.get("n")],
        ["mean S (sensitivity, nats)", fmt(d.finite(diag.get("mean_sensitivity")), 4)],
        ["mean H (entropy, nats)", fmt(d.finite(diag.get("mean_entropy")), 4)],
        ["mean S / mean H", fmt(d.finite(diag.get("ratio_s_to_h")), 4)],
        ["λ", fmt(d.finite(diag.get("lambda")))],
        ["Spearman(SUA, −H)", fmt(d.finite(diag.get("spearman_sua_neg_entropy")))],
    ]
    source = (
        ""
        if diag.get("source") == "run"
        else Markup('<p class="muted">{} (this run did not record them).</p>').format(
            str(diag.get("source")).capitalize()
        )
    )
    warning = diag.get("warning")
    return Markup(
        '<h2>What SUA measures on this run</h2><div id="diagnostics">{}<p>{}</p>{}{}</div>'
    ).format(
        _table(["quantity", "value"], rows, cls="diagnostics"),
        diagnostics_sentence(diag),
        Markup('<p class="callout" id="sua-warning"><b>Warning:</b> {}</p>').format(warning)
        if warning
        else "",
        source,
    )


def _scores_overview(run: d.Run) -> Markup:
    rows = d.score_rows(run)
    if not rows:
        return Markup("")
    body = []
    for row in rows:
        name = Markup("{}{}").format(
            row["score"],
            _join(
                Markup(' <span class="badge win">winner ({})</span>').format(
                    "clean" if label == "clean" else "worst case"
                )
                for label in row["winner"]
            ),
        )
        cells: list[Any] = [name, row["kind"]]
        for label in ("clean", "worst_case"):
            cells.append(fmt_estimate(row["auroc"].get(label)))
            for key in ("minus_best_baseline", "minus_entropy"):
                node = (row.get(key) or {}).get(label)
                if row["kind"] == "baseline" or node is None:
                    cells.append(Markup('<span class="muted">·</span>'))
                    continue
                side = ci_side(node)
                text = fmt_estimate(node, signed=True)
                cells.append(
                    Markup('<span class="{}">{}</span>').format(
                        {"above": "ok", "below": "bad"}.get(side or "", ""), text
                    )
                    if side
                    else text
                )
        cells.append(Markup('<span class="muted">{}</span>').format(row["reason"] or ""))
        cls = (
            ' class="unavailable"'
            if row["reason"] and all(v.get("value") is None for v in row["auroc"].values())
            else ""
        )
        body.append(
            Markup("<tr{}>{}</tr>").format(
                Markup(cls), _join(Markup("<td>{}</td>").format(c) for c in cells)
            )
        )
    header = [
        "score",
        "kind",
        "AUROC clean",
        "− best baseline",
        "− entropy",
        "AUROC worst case",
        "− best baseline",
        "− entropy",
        "why unavailable",
    ]
    best = {
        label: d.eval_node(run, "comparison", label, "best_baseline")
        for label in ("clean", "worst_case")
    }
    return Markup(
        '<h3>Every score</h3><p class="meta">AUROC for clean and worst-case failures with 95% '
        "CIs; for perturbation scores the paired bootstrap difference in AUROC against the best "
        "baseline (clean: {}, worst case: {}) and against entropy. Green: the CI lies above 0; "
        "red: below.</p>"
        '<table class="scores-all"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>'
    ).format(
        best["clean"] or "—",
        best["worst_case"] or "—",
        _join(Markup("<th>{}</th>").format(h) for h in header),
        _join(body),
    )


def _scores_table(run: d.Run) -> Markup:
    if run.evaluation is None:
        return Markup('<h2>Failure prediction</h2><p class="muted">Not evaluated: {}</p>').format(
            run.evaluation_note or "no evaluation"
        )
    parts = [Markup("<h2>Failure prediction</h2>"), _scores_overview(run)]
    labels = run.evaluation.get("failure_labels") or {}
    order = [row["score"] for row in d.score_rows(run)]
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
                row.append(f"{fmt(value)} [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else fmt(value))
            rows.append(row)
        comparison = d.eval_node(run, "comparison", view) or {}
        diff = d.estimate(comparison.get("sua_minus_best_baseline"))
        parts.append(
            Markup("<h3>{} failures ({} of {} items)</h3>").format(
                "Clean" if view == "clean" else "Worst-case",
                counts.get("failures", "—"),
                counts.get("n", "—"),
            )
        )
        if comparison:
            parts.append(
                Markup("<p>SUA − best baseline ({}) AUROC: {}{} · winner: <b>{}</b></p>").format(
                    comparison.get("best_baseline") or "none",
                    fmt(diff[0]),
                    f" [{fmt(diff[1][0])}, {fmt(diff[1][1])}]" if diff[1] else "",
                    comparison.get("winner") or "none (AUROC undefined)",
                )
            )
        if counts.get("note"):
            parts.append(Markup('<p class="callout">Note: {}.</p>').format(counts["note"]))
        parts.append(
            Markup(
                "<details><summary>AUROC, AUPRC, PRR, AURC and selective accuracy at 80% "
                "coverage per score</summary>{}</details>"
            ).format(
                _table(
                    ["score", "AUROC", "AUPRC", "PRR", "AURC", "sel. acc. @80%"],
                    rows,
                    cls=f"scores-{view}",
                )
            )
        )
    lam = run.evaluation.get("lambda") or {}
    split = run.evaluation.get("split") or {}
    parts.append(
        Markup(
            '<p class="meta">on the test split of {} items (calibration {}, validation {}) · '
            "λ = {} ({}) · S and H normalised for sua_norm by {} · correctness: {} · {} "
            "bootstrap resamples, seed {}</p>"
        ).format(
            split.get("n_test", run.evaluation.get("n_items", "—")),
            split.get("n_calibration", 0),
            split.get("n_validation", 0),
            fmt(d.finite(lam.get("value"))),
            lam.get("mode", "—"),
            run.evaluation.get("normalize") or run.results.get("normalize") or "—",
            run.evaluation.get("correctness_rule", "—"),
            run.evaluation.get("bootstrap", "—"),
            run.evaluation.get("seed", "—"),
        )
    )
    combined = run.evaluation.get("combined")
    if isinstance(combined, dict):
        parts.append(
            Markup('<p class="meta">combined: {} on {} ({}){}</p>').format(
                combined.get("model") or "fitted detector",
                ", ".join(str(f) for f in combined.get("features") or []) or "—",
                f"fitted on {combined.get('fitted_on', '—')}",
                Markup(" · <b>{}</b>").format(combined["reason"]) if combined.get("reason") else "",
            )
        )
    return _join(parts)


def _plots(run: d.Run) -> Markup:
    items = run.scored
    points = []
    for row in items:
        h, s = d.finite(row.get("entropy")), d.finite(row.get("sensitivity"))
        if h is None or s is None:
            continue
        cls = {True: "correct", False: "wrong"}.get(row.get("correct"), "unknown")
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
    return Markup('<h2>Plots</h2><div class="plots" id="plots">{}</div>').format(
        _join(Markup(p) for p in plots)
    )


def _answer(row: dict[str, Any]) -> Any:
    return row.get("prediction") if row.get("prediction") is not None else "—"


def _item(row: dict[str, Any], score: str = "sua") -> Markup:
    variants = [v for v in row.get("variants") or [] if isinstance(v, dict)]
    clean = next((v for v in variants if v.get("kind") == "clean"), None)
    original = Markup(
        '<div class="original"><b>original</b>\n{}\n\n<b>answer</b> ({}): {}{}</div>'
    ).format(
        (clean or row).get("text") or row.get("input") or "",
        _correct(row.get("correct")),
        _answer(row),
        Markup(" · confidence {}").format(fmt(d.finite(row.get("confidence"))))
        if d.finite(row.get("confidence")) is not None
        else "",
    )
    perturbed = [
        Markup(
            '<div class="variant"><b>{}</b> <span class="muted">{}</span>\n{}\n\n'
            "<b>answer</b> ({}): {} · divergence {}</div>"
        ).format(
            v.get("kind"),
            v.get("detail") or "",
            v.get("text") or "",
            _correct(v.get("correct")),
            _answer(v),
            fmt(d.finite(v.get("divergence"))),
        )
        for v in variants
        if v.get("kind") != "clean"
    ] or [Markup('<div class="muted">no variants</div>')]
    gold = row.get("gold")
    by_score = (
        "" if score == "sua" else Markup("{} {} · ").format(score, fmt(d.item_score(row, score)))
    )
    decision = {True: "abstains", False: "answers"}.get(row.get("abstain"), "no decision")
    flag = Markup(' <span class="badge">confident flip</span>') if row.get("confident_flip") else ""
    return Markup(
        '<div class="item" id="item-{}"><h3>{} · {} · {}SUA {} (S {}, H {}) · {}{}</h3>'
        '<p class="meta">gold: {}</p><div class="pair">{}<div class="variants">{}</div></div></div>'
    ).format(
        row.get("id"),
        row.get("id"),
        row.get("task"),
        by_score,
        fmt(d.finite(row.get("sua"))),
        fmt(d.finite(row.get("sensitivity"))),
        fmt(d.finite(row.get("entropy"))),
        decision,
        flag,
        ", ".join(str(g) for g in gold) if isinstance(gold, list) else (gold or "—"),
        original,
        _join(perturbed),
    )


def _ranked(run: d.Run, n: int) -> Markup:
    """Items ranked by the run's own abstention score (which one is said)."""
    rows = d.worst_items(run, n)
    score, fallback = d.ranking(run)
    heading = (
        f"Items ranked by the run's abstention score ({score}, highest first)"
        if fallback is None
        else "Items ranked by the run's decision, then by sensitivity S"
    )
    explain = (
        Markup('<p class="meta">{}.</p>').format(fallback)
        if fallback
        else Markup(
            '<p class="meta">The first {} items the run\'s rule ({}) would abstain on; each '
            "shows the original input and its variants side by side.</p>"
        ).format(len(rows), d.abstention_info(run).get("score"))
    )
    return Markup('<h2>{}</h2>{}<div id="ranked">{}</div>').format(
        heading,
        explain,
        _join(_item(row, score) for row in rows) if rows else Markup('<p class="muted">none</p>'),
    )


def _config(run: d.Run) -> Markup:
    config = run.summary.get("config") or {}
    rows = [(k, str(v)) for k, v in config.items() if v is not None]
    return Markup("<h2>Configuration</h2>{}").format(_table(["option", "value"], rows))


def render_report_html(run: d.Run, *, worst: int = 10) -> str:
    """The report of one run as a self-contained HTML page."""
    body = _join(
        [
            _header(run),
            _headline(run),
            _confident_flips(run),
            _diagnostics(run),
            _abstention(run),
            _scores_table(run),
            _plots(run),
            _ranked(run, worst),
            _config(run),
        ]
    )
    return _page(f"sua-audit report · {run.model_name}", body)


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


def render_compare_html(runs: list[d.Run], *, max_items: int = 30) -> str:
    """Models side by side on one dataset, and the items where they disagree."""
    ds = runs[0].info.dataset or DatasetRecord()
    header = Markup(
        "<h1>sua-audit comparison · {} runs</h1>"
        '<p class="meta">dataset <code>{}</code> (sha256 <code>{}</code>)</p>'
    ).format(len(runs), ds.path, str(ds.sha256 or "")[:16])
    for note in (d.variants_line(runs), d.prompts_line(runs)):
        if note is not None:
            header += Markup('<p class="meta">{}</p>').format(note)
    head = ["metric", *[f"{r.model_name} ({r.run_id})" for r in runs]]
    rows: list[list[Any]] = []
    for name in COMPARE_METRICS:
        metric = d.METRICS[name]
        readings = [d.read_metric(r, name) for r in runs]
        rows.append([metric.label, *[fmt_reading(x) for x in readings]])
    infos = [r.info for r in runs]
    rows.append(["model calls", *[i.model_calls for i in infos]])
    rows.append(["cache hits", *[i.cache_hits for i in infos]])
    runs_table = _table(
        ["run", "model", "temperature", "samples", "λ", "abstention rule", "folder"],
        [
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
    )
    metrics_table = _table(head, rows, cls="compare")
    disagree = disagreements(runs)
    drows = []
    for entry in disagree[:max_items]:
        cells: list[Any] = [entry["id"], entry["task"], entry["input"]]
        for answer in entry["answers"]:
            if answer.get("status", "ok") != "ok":
                cells.append(Markup('<span class="bad">{}</span>').format(answer_text(answer)))
                continue
            cells.append(
                Markup("{} ({}) · SUA {}").format(
                    answer["prediction"] if answer["prediction"] is not None else "—",
                    _correct(answer["correct"]),
                    fmt(answer["sua"]),
                )
            )
        drows.append(cells)
    dis = Markup("<h2>Items where the runs disagree ({} of {})</h2>{}").format(
        len(disagree),
        len({row["id"] for row in runs[0].items}),
        _table(["id", "task", "input", *[r.model_name for r in runs]], drows, cls="disagree")
        if drows
        else Markup('<p class="muted">The runs give the same answers on every item.</p>'),
    )
    body = _join(
        [
            header,
            Markup("<h2>Runs</h2>"),
            runs_table,
            Markup("<h2>Side by side</h2>"),
            metrics_table,
            Markup("<h2>Abstention</h2><ul>{}</ul>").format(
                _join(
                    Markup("<li><b>{}</b> ({}): {}</li>").format(
                        r.model_name, r.run_id, abstention_sentence(r)
                    )
                    for r in runs
                )
            ),
            dis,
        ]
    )
    return _page("sua-audit comparison", body)


__all__ = ["render_compare_html", "render_report_html"]
