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
from sua_audit.report import _data as d
from sua_audit.report import svg
from sua_audit.report._text import (
    abstention_sentence,
    answer_text,
    disagreements,
    fmt,
    fmt_reading,
    guarantee_sentence,
)

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
    ds = run.summary.get("dataset") or {}
    model = run.summary.get("model") or {}
    return Markup(
        "<h1>sua-audit report · {}</h1>"
        '<p class="meta">run <code>{}</code> · dataset <code>{}</code> ({} items, sha256 '
        "<code>{}</code>) · {} {} on {} · finished {}</p>"
    ).format(
        run.model_name,
        run.run_id,
        ds.get("path"),
        ds.get("items"),
        str(ds.get("sha256") or "")[:16],
        model.get("provider") or "",
        model.get("dtype") or "",
        model.get("device") or "remote",
        run.summary.get("finished_utc") or "—",
    )


def _headline(run: d.Run) -> Markup:
    names = [
        "accuracy",
        "robust_accuracy",
        "abstention_rate",
        "selective_accuracy",
        "mean_sua_pos",
        "sua_auroc",
        "ece",
        "collapse_rate",
        "failure_rate",
    ]
    cards = [_card(d.METRICS[n].label, d.read_metric(run, n)) for n in names]
    calls = run.summary.get("model_calls")
    hits = run.summary.get("cache_hits")
    tokens = run.summary.get("tokens") or {}
    cost = d.cost_usd(run)
    cards.append(
        Markup(
            '<div class="card"><div class="k">cost · calls · tokens</div>'
            '<div class="v">{}</div><div class="ci">{} calls, {} cache hits · {} in / {} out'
            "</div></div>"
        ).format(
            f"${cost:.4f}" if cost is not None else "—",
            calls,
            hits,
            tokens.get("prompt", "—"),
            tokens.get("completion", "—"),
        )
    )
    return Markup('<h2>Headline</h2><div class="cards" id="headline">{}</div>').format(_join(cards))


def _abstention(run: d.Run) -> Markup:
    return Markup('<h2>Abstention</h2><p id="decision">{}</p><p id="guarantee">{}</p>').format(
        abstention_sentence(run), guarantee_sentence(run)
    )


def _scores_table(run: d.Run) -> Markup:
    if run.evaluation is None:
        return Markup('<h2>Failure prediction</h2><p class="muted">Not evaluated: {}</p>').format(
            run.evaluation_note or "no evaluation"
        )
    parts = [Markup("<h2>Failure prediction</h2>")]
    labels = run.evaluation.get("failure_labels") or {}
    for view in ("clean", "worst_case"):
        metrics = d.eval_node(run, "metrics", view)
        if not isinstance(metrics, dict) or not metrics:
            continue
        counts = labels.get(view) or {}
        rows = []
        for score, node in metrics.items():
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
        parts.append(
            _table(
                ["score", "AUROC", "AUPRC", "PRR", "AURC", "sel. acc. @80%"],
                rows,
                cls=f"scores-{view}",
            )
        )
        if comparison:
            parts.append(
                Markup("<p>SUA − best baseline ({}) AUROC: {}{} · winner: <b>{}</b></p>").format(
                    comparison.get("best_baseline"),
                    fmt(diff[0]),
                    f" [{fmt(diff[1][0])}, {fmt(diff[1][1])}]" if diff[1] else "",
                    comparison.get("winner"),
                )
            )
    lam = run.evaluation.get("lambda") or {}
    split = run.evaluation.get("split") or {}
    parts.append(
        Markup(
            '<p class="meta">on the test split of {} items (calibration {}, validation {}) · '
            "λ = {} ({}) · correctness: {} · {} bootstrap resamples, seed {}</p>"
        ).format(
            split.get("n_test", run.evaluation.get("n_items", "—")),
            split.get("n_calibration", 0),
            split.get("n_validation", 0),
            fmt(d.finite(lam.get("value"))),
            lam.get("mode", "—"),
            run.evaluation.get("correctness_rule", "—"),
            run.evaluation.get("bootstrap", "—"),
            run.evaluation.get("seed", "—"),
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
    sua_values = [float(row["sua"]) for row in items if d.finite(row.get("sua")) is not None]
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
            tau=run.tau,
            plot_id="plot-s-vs-h",
            title=f"S against H, line SUA = τ (λ = {fmt(run.lam)})",
        ),
        svg.bars(
            kinds,
            plot_id="plot-sensitivity-by-kind",
            title="Mean sensitivity per perturbation kind",
            x_label="perturbation kind",
            y_label="mean S",
        ),
        svg.histogram(
            sua_values,
            marker=run.tau,
            plot_id="plot-sua-histogram",
            title="SUA per item",
            x_label="SUA = S − λH",
        ),
    ]
    return Markup('<h2>Plots</h2><div class="plots" id="plots">{}</div>').format(
        _join(Markup(p) for p in plots)
    )


def _answer(row: dict[str, Any]) -> Any:
    return row.get("prediction") if row.get("prediction") is not None else "—"


def _item(row: dict[str, Any]) -> Markup:
    variants = row.get("variants") or []
    clean = next((v for v in variants if v.get("kind") == "clean"), None)
    original = Markup(
        '<div class="original"><b>original</b>\n{}\n\n<b>answer</b> ({}): {}</div>'
    ).format(
        (clean or row).get("text") or row.get("input") or "",
        _correct(row.get("correct")),
        _answer(row),
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
    return Markup(
        '<div class="item" id="item-{}"><h3>{} · {} · SUA {} (S {}, H {}) · {}</h3>'
        '<p class="meta">gold: {}</p><div class="pair">{}<div class="variants">{}</div></div></div>'
    ).format(
        row.get("id"),
        row.get("id"),
        row.get("task"),
        fmt(d.finite(row.get("sua"))),
        fmt(d.finite(row.get("sensitivity"))),
        fmt(d.finite(row.get("entropy"))),
        "abstains" if row.get("abstain") else "answers",
        ", ".join(str(g) for g in gold) if isinstance(gold, list) else (gold or "—"),
        original,
        _join(perturbed),
    )


def _worst(run: d.Run, n: int) -> Markup:
    rows = d.worst_items(run, n)
    return Markup('<h2>Worst items (highest SUA)</h2><div id="worst">{}</div>').format(
        _join(_item(row) for row in rows) if rows else Markup('<p class="muted">none</p>')
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
            _abstention(run),
            _scores_table(run),
            _plots(run),
            _worst(run, worst),
            _config(run),
        ]
    )
    return _page(f"sua-audit report · {run.model_name}", body)


COMPARE_METRICS = (
    "accuracy",
    "robust_accuracy",
    "mean_sua_pos",
    "collapse_rate",
    "sua_auroc",
    "sua_auroc_worst_case",
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
    ds = runs[0].summary.get("dataset") or {}
    header = Markup(
        "<h1>sua-audit comparison · {} runs</h1>"
        '<p class="meta">dataset <code>{}</code> (sha256 <code>{}</code>)</p>'
    ).format(len(runs), ds.get("path"), str(ds.get("sha256") or "")[:16])
    head = ["metric", *[f"{r.model_name} ({r.run_id})" for r in runs]]
    rows = []
    for name in COMPARE_METRICS:
        metric = d.METRICS[name]
        readings = [d.read_metric(r, name) for r in runs]
        rows.append([metric.label, *[fmt_reading(x) for x in readings]])
    for label, key in (("model calls", "model_calls"), ("cache hits", "cache_hits")):
        rows.append([label, *[r.summary.get(key) for r in runs]])
    runs_table = _table(
        ["run", "model", "temperature", "samples", "λ", "τ", "folder"],
        [
            [
                r.run_id,
                r.model_name,
                (r.summary.get("config") or {}).get("temperature"),
                (r.summary.get("config") or {}).get("samples"),
                r.lam,
                r.tau,
                str(r.path),
            ]
            for r in runs
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
