"""Wording shared by the HTML, Markdown and JSON renderers; numbers are written by
:mod:`sua_audit.numbers` (``fmt`` here is its :func:`~sua_audit.numbers.fixed`)."""

from __future__ import annotations

from typing import Any

from sua_audit.numbers import MISSING, estimate, estimate_node, percent, times
from sua_audit.numbers import fixed as fmt
from sua_audit.reports import _data as d


def fmt_reading(reading: d.Reading, digits: int = 3) -> str:
    """``0.812 [0.700, 0.900]``, or ``— (why)`` when undefined."""
    if reading.value is None:
        return f"{MISSING} ({reading.note})" if reading.note else MISSING
    return estimate(reading.value, reading.ci, digits)


def fmt_estimate(node: dict[str, Any] | None, digits: int = 3, *, signed: bool = False) -> str:
    """``0.812 [0.700, 0.900]`` from a ``{value, ci}`` node; ``—`` when undefined."""
    return estimate_node(node, digits, plus=signed)


def ci_side(node: dict[str, Any] | None) -> str | None:
    """``above`` / ``below`` when a difference's CI excludes 0, else ``None``."""
    if not isinstance(node, dict):
        return None
    ci = node.get("ci")
    if not isinstance(ci, list | tuple) or len(ci) != 2 or None in ci:
        return None
    if float(ci[0]) > 0:
        return "above"
    if float(ci[1]) < 0:
        return "below"
    return None


def rule_text(info: dict[str, Any], lam: float | None = None) -> str:
    """The run's abstention rule in words: its score, τ or coverage target."""
    score = info.get("score") or "sua"
    tau = d.finite(info.get("tau"))
    on_sua = f" (λ = {fmt(lam)})" if lam is not None and score in ("sua", "sua_pos") else ""
    if info.get("rule") == "coverage":
        target = fmt(d.finite(info.get("coverage_target")), 2)
        return (
            f"answers the {target} share of items with the lowest {score}{on_sua} "
            f"(τ = {fmt(tau)}) and abstains on the rest"
        )
    if tau is None:
        return f"abstains when {score}{on_sua} is missing (no finite τ)"
    return f"abstains when {score}{on_sua} > τ = {fmt(tau)}"


def abstention_sentence(run: d.Run) -> str:
    """What the run itself decided: its score and rule, and how many items it abstained on."""
    info = d.abstention_info(run)
    res = run.results
    decided = info.get("decided")
    abstained = info.get("abstained")
    rate = d.finite(info.get("rate"))
    sel = d.finite(res.get("selective_accuracy"))
    return (
        f"The run {rule_text(info, run.lam)}: it abstained on "
        f"{abstained if abstained is not None else '—'} of {decided if decided is not None else '—'} "
        f"scored items ({percent(rate)}); accuracy on the "
        f"answered items {fmt(sel)}."
    )


def abstention_note(run: d.Run) -> str | None:
    """The run's plain note when its rule abstained on nothing or on everything."""
    note = d.abstention_info(run).get("note")
    return str(note) if note else None


def guarantee_sentence(run: d.Run) -> str:
    """The calibrated abstention rule from the evaluation, what it guarantees, and its note."""
    if run.evaluation is None:
        return f"No abstention guarantee: not evaluated ({run.evaluation_note or 'no evaluation'})."
    abst = run.evaluation.get("abstention")
    if not isinstance(abst, dict):
        score = d.abstention_info(run).get("score") or "sua"
        return (
            "No calibrated abstention rule: the evaluation was made without a target risk. "
            f"The run's rule above ({score} > τ) is a diagnostic threshold with no risk bound."
        )
    alpha = d.finite(abst.get("target_risk"))
    delta = d.finite(abst.get("delta"))
    conf = fmt(1 - delta, 2) if delta is not None else "—"
    n_cal, n_test = abst.get("calibration_n"), abst.get("test_n")
    method = abst.get("method") or "Learn-then-Test"
    note = f" {abst['note']}" if abst.get("note") else ""
    if not abst.get("feasible"):
        return (
            f"Calibrated rule ({method}, {n_cal} calibration items): no threshold on "
            f"{abst.get('score', 'sua')} keeps the risk at or below α = {fmt(alpha, 2)} with "
            f"probability {conf}, so the guaranteed rule abstains on every item. More calibration "
            "items or a higher target risk are needed."
        ) + ("" if note.strip().startswith("No threshold") else note)
    return (
        f"Calibrated rule: abstain when {abst.get('score', 'sua')} > τ = "
        f"{fmt(d.finite(abst.get('tau')))} ({method}, {n_cal} calibration items). Guarantee: "
        f"with probability at least {conf} over the calibration draw, the error rate on answered "
        f"items is at most α = {fmt(alpha, 2)} (items exchangeable with the calibration set). On "
        f"{n_test} held-out test items it answered {fmt(d.finite(abst.get('test_coverage')), 3)} "
        f"of them with risk {fmt(d.finite(abst.get('test_risk')), 3)}."
    ) + note


def _share(ratio: float, lam: float) -> str:
    return times(ratio / abs(lam))


def diagnostics_sentence(diag: dict[str, Any]) -> str:
    """What the run's own numbers say about S against λH, in one or two sentences."""
    s, h = d.finite(diag.get("mean_sensitivity")), d.finite(diag.get("mean_entropy"))
    lam = d.finite(diag.get("lambda"))
    rho = d.finite(diag.get("spearman_sua_neg_entropy"))
    ratio = d.finite(diag.get("ratio_s_to_h"))
    parts = []
    if s is not None and h is not None and lam is not None:
        if lam == 0:
            parts.append(f"λ = 0: SUA is S alone (mean S {fmt(s, 4)}, mean H {fmt(h, 4)}).")
        elif ratio is not None:
            parts.append(
                f"On this run mean S ({fmt(s, 4)} nats) is {_share(ratio, lam)} λ·mean H "
                f"(λ = {fmt(lam)}, mean H {fmt(h, 4)} nats)."
            )
    if rho is not None:
        if rho > 0.95:
            reading = "SUA orders the items as −H does: it adds nearly nothing to entropy"
        elif rho > 0.5:
            reading = "SUA orders the items mostly as −H does"
        else:
            reading = "SUA orders the items differently from −H: S carries its own signal"
        parts.append(f"Spearman(SUA, −H) = {fmt(rho)}: {reading}.")
    else:
        parts.append("Spearman(SUA, −H) is undefined here (under 3 items, or a constant score).")
    return " ".join(parts)


def flips_sentence(flips: dict[str, Any]) -> str:
    """The confident-flip rule, count and rate in words."""
    n = flips.get("n")
    k = flips.get("n_confident_flips")
    rate = d.finite(flips.get("rate"))
    rule = flips.get("rule") or (
        f"the confident_flip flag of results.jsonl (threshold {flips.get('threshold')}; "
        "the rule's text was not recorded by this run)"
    )
    if not k:
        return f"No confident flips were found among the {n} scored items under the rule: {rule}."
    return f"{k} of {n} scored items ({percent(rate)}) are confident flips. Rule: {rule}."


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
    correct = answer.get("correct")
    verdict = "right" if correct is True else "wrong" if correct is False else "no gold"
    return f"{answer.get('prediction')} ({verdict})"
