"""The short evaluation block printed after ``run``, ``evaluate`` and ``rescore``."""

from __future__ import annotations

from typing import Any

from sua_audit.numbers import estimate_node, fixed, short


def evaluation_lines(ev: dict[str, Any]) -> list[str]:
    """A few plain lines: sizes, λ and what it means, AUROC of each perturbation score against
    the best uncertainty baseline and entropy, ECE, the calibrated abstention."""
    split = ev["split"]
    lam = ev["lambda"]
    lines = [
        f"evaluation ({ev['correctness_rule']}; {split['n_test']} test items of "
        f"{ev['n_items']}, {split['n_validation']} held out for fitting; λ = "
        f"{short(lam['value'])} {lam['mode']}; 95% bootstrap CIs, {ev['bootstrap']} resamples)",
        f"  accuracy {estimate_node(ev['accuracy'])}   robust accuracy {estimate_node(ev['robust_accuracy'])}",
    ]
    if lam.get("mode") == "auto":
        lines.append(f"  {lam.get('meaning', '')}")
        if lam.get("value_norm") is not None:
            lines.append(f"  sua_norm: λ = {short(lam['value_norm'])} chosen the same way.")
    for label in ("clean", "worst_case"):
        comp = ev["comparison"][label]
        best = comp.get("best_baseline")
        best_auc = ev["metrics"][label][best]["auroc"] if best else None
        lines.append(
            f"  AUROC ({label} failure): winner {comp.get('winner') or '—'}; best uncertainty "
            f"baseline {best or '—'} {estimate_node(best_auc)}"
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
                f"    {name:<9} {estimate_node(block)}; − best baseline "
                f"{estimate_node(vs.get('minus_best_baseline'))}; − entropy {estimate_node(vs.get('minus_entropy'))}"
            )
    lines.append(f"  ECE of the clean confidence {estimate_node(ev['calibration']['ece'])}")
    ab = ev.get("abstention")
    if ab:
        head = (
            f"  abstention on {ab['score']} (risk ≤ {short(ab['target_risk'])} w.p. ≥ "
            f"{short(1 - ab['delta'])}): "
        )
        if ab["feasible"]:
            tau = "answer all" if ab.get("answers_all") else f"τ = {fixed(ab['tau'], 4)}"
            risk = fixed(ab["test_risk"])
            lines.append(
                head + f"{tau}; test coverage {fixed(ab['test_coverage'])}, test risk {risk}"
            )
        else:
            lines.append(
                head + f"infeasible on {ab['calibration_n']} calibration items — abstain on all"
            )
        if ab.get("note"):
            lines.append("  " + ab["note"])
    return lines
