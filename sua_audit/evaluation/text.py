"""The short evaluation block printed after ``run``, ``evaluate`` and ``rescore``."""

from __future__ import annotations

from typing import Any


def _fmt(block: dict[str, Any] | None, digits: int = 3) -> str:
    if not block or block.get("value") is None:
        return "—"
    ci = block.get("ci")
    text = f"{block['value']:.{digits}f}"
    return text + (f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else "")


def evaluation_lines(ev: dict[str, Any]) -> list[str]:
    """A few plain lines: sizes, λ and what it means, AUROC of each perturbation score against
    the best uncertainty baseline and entropy, ECE, the calibrated abstention."""
    split = ev["split"]
    lam = ev["lambda"]
    lines = [
        f"evaluation ({ev['correctness_rule']}; {split['n_test']} test items of "
        f"{ev['n_items']}, {split['n_validation']} held out for fitting; λ = "
        f"{lam['value']:g} {lam['mode']}; 95% bootstrap CIs, {ev['bootstrap']} resamples)",
        f"  accuracy {_fmt(ev['accuracy'])}   robust accuracy {_fmt(ev['robust_accuracy'])}",
    ]
    if lam.get("mode") == "auto":
        lines.append(f"  {lam.get('meaning', '')}")
        if lam.get("value_norm") is not None:
            lines.append(f"  sua_norm: λ = {lam['value_norm']:g} chosen the same way.")
    for label in ("clean", "worst_case"):
        comp = ev["comparison"][label]
        best = comp.get("best_baseline")
        best_auc = ev["metrics"][label][best]["auroc"] if best else None
        lines.append(
            f"  AUROC ({label} failure): winner {comp.get('winner') or '—'}; best uncertainty "
            f"baseline {best or '—'} {_fmt(best_auc)}"
        )
        note = (ev.get("failure_labels", {}).get(label) or {}).get("note")
        if note:
            lines.append(f"    note: {note}")
        for name in ("sua", "sua_norm", "combined", "flip_rate"):
            block = ev["metrics"][label].get(name, {}).get("auroc")
            vs = (comp.get("versus") or {}).get(name, {})
            if not block or block.get("value") is None:
                continue
            lines.append(
                f"    {name:<9} {_fmt(block)}; − best baseline "
                f"{_fmt(vs.get('minus_best_baseline'))}; − entropy {_fmt(vs.get('minus_entropy'))}"
            )
    lines.append(f"  ECE of the clean confidence {_fmt(ev['calibration']['ece'])}")
    ab = ev.get("abstention")
    if ab:
        head = (
            f"  abstention on {ab['score']} (risk ≤ {ab['target_risk']:g} w.p. ≥ "
            f"{1 - ab['delta']:g}): "
        )
        if ab["feasible"]:
            tau = "answer all" if ab.get("answers_all") else f"τ = {ab['tau']:.4f}"
            risk = "—" if ab["test_risk"] is None else f"{ab['test_risk']:.3f}"
            lines.append(head + f"{tau}; test coverage {ab['test_coverage']:.3f}, test risk {risk}")
        else:
            lines.append(
                head + f"infeasible on {ab['calibration_n']} calibration items — abstain on all"
            )
        if ab.get("note"):
            lines.append("  " + ab["note"])
    return lines
