"""Wording and number formatting shared by the HTML, Markdown and JSON renderers."""

from __future__ import annotations

from typing import Any

from sua_audit.report import _data as d


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for people: ``—`` when missing, ``digits`` significant decimals otherwise."""
    if value is None:
        return "—"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if round(value, digits) == 0:
        value = 0.0  # never print "-0.000"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def fmt_reading(reading: d.Reading, digits: int = 3) -> str:
    """``0.812 [0.700, 0.900]``, or ``— (why)`` when undefined."""
    if reading.value is None:
        return f"— ({reading.note})" if reading.note else "—"
    if reading.ci:
        return f"{fmt(reading.value, digits)} [{fmt(reading.ci[0], digits)}, {fmt(reading.ci[1], digits)}]"
    return fmt(reading.value, digits)


def abstention_sentence(run: d.Run) -> str:
    """What the run itself decided: its τ (or coverage) and how many items it abstained on."""
    res = run.results
    config = run.summary.get("config") or {}
    scored = res.get("items_scored", len(run.scored))
    abstained = res.get("abstained")
    rule = (
        f"answers the {fmt(d.finite(config.get('coverage')), 2)} share of items with the lowest "
        f"SUA (τ = {fmt(run.tau)})"
        if config.get("coverage") is not None
        else f"abstains when SUA > τ = {fmt(run.tau)} (λ = {fmt(run.lam)})"
    )
    rate = d.finite(res.get("abstention_rate"))
    sel = d.finite(res.get("selective_accuracy"))
    return (
        f"The run {rule}: it abstained on {abstained if abstained is not None else '—'} of "
        f"{scored} scored items ({fmt(rate * 100 if rate is not None else None, 1)}%); accuracy on "
        f"the answered items {fmt(sel)}."
    )


def guarantee_sentence(run: d.Run) -> str:
    """The calibrated abstention rule from the evaluation, and what it guarantees."""
    if run.evaluation is None:
        return f"No abstention guarantee: not evaluated ({run.evaluation_note or 'no evaluation'})."
    abst = run.evaluation.get("abstention")
    if not isinstance(abst, dict):
        return (
            "No calibrated abstention rule: the evaluation was made without a target risk. "
            "SUA > τ above is a diagnostic threshold with no risk bound."
        )
    alpha = d.finite(abst.get("target_risk"))
    delta = d.finite(abst.get("delta"))
    conf = fmt(1 - delta, 2) if delta is not None else "—"
    n_cal, n_test = abst.get("calibration_n"), abst.get("test_n")
    method = abst.get("method") or "Learn-then-Test"
    if not abst.get("feasible"):
        return (
            f"Calibrated rule ({method}, {n_cal} calibration items): no threshold on "
            f"{abst.get('score', 'sua')} keeps the risk at or below α = {fmt(alpha, 2)} with "
            f"probability {conf}, so the guaranteed rule abstains on every item. More calibration "
            "items or a higher target risk are needed."
        )
    return (
        f"Calibrated rule: abstain when {abst.get('score', 'sua')} > τ = "
        f"{fmt(d.finite(abst.get('tau')))} ({method}, {n_cal} calibration items). Guarantee: "
        f"with probability at least {conf} over the calibration draw, the error rate on answered "
        f"items is at most α = {fmt(alpha, 2)} (items exchangeable with the calibration set). On "
        f"{n_test} held-out test items it answered {fmt(d.finite(abst.get('test_coverage')), 3)} "
        f"of them with risk {fmt(d.finite(abst.get('test_risk')), 3)}."
    )


def _norm(prediction: Any) -> str:
    return " ".join(str(prediction).split()).casefold().rstrip(".")


def disagreements(runs: list[d.Run]) -> list[dict[str, Any]]:
    """Items (shared by every run) whose answers differ in text or in correctness.

    Items where correctness differs come first, then by the spread of SUA across runs.
    """
    by_run = [{row["id"]: row for row in run.items} for run in runs]
    shared = [i for i in by_run[0] if all(i in rows for rows in by_run[1:])]
    out = []
    for item_id in shared:
        rows = [rows[item_id] for rows in by_run]
        preds = {_norm(r.get("prediction")) for r in rows}
        correct = {r.get("correct") for r in rows}
        if len(preds) == 1 and len(correct) == 1:
            continue
        suas = [d.finite(r.get("sua")) for r in rows]
        known = [s for s in suas if s is not None]
        out.append(
            {
                "id": item_id,
                "task": rows[0].get("task"),
                "input": rows[0].get("input"),
                "correctness_differs": len(correct) > 1,
                "sua_spread": (max(known) - min(known)) if known else 0.0,
                "answers": [
                    {
                        "prediction": r.get("prediction"),
                        "correct": r.get("correct"),
                        "sua": s,
                        "status": r.get("status", "ok"),
                        "error": (r.get("error") or {}).get("kind"),
                    }
                    for r, s in zip(rows, suas, strict=True)
                ],
            }
        )
    out.sort(key=lambda e: (not e["correctness_differs"], -e["sua_spread"], str(e["id"])))
    return out


def answer_text(answer: dict[str, Any]) -> str:
    """One run's answer to a disagreement item, in words."""
    if answer.get("status", "ok") != "ok":
        return f"failed ({answer.get('error') or 'error'})"
    verdict = {True: "right", False: "wrong"}.get(answer.get("correct"), "no gold")
    return f"{answer.get('prediction')} ({verdict})"
