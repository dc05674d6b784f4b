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
    """A few plain lines: sizes, AUROC of SUA vs the best baseline, ECE, the abstention."""
    split = ev["split"]
    lines = [
        f"evaluation ({ev['correctness_rule']}; {split['n_test']} test items of "
        f"{ev['n_items']}; λ = {ev['lambda']['value']:g} {ev['lambda']['mode']}; "
        f"95% bootstrap CIs, {ev['bootstrap']} resamples)",
        f"  accuracy {_fmt(ev['accuracy'])}   robust accuracy {_fmt(ev['robust_accuracy'])}",
    ]
    for label in ("clean", "worst_case"):
        comp = ev["comparison"][label]
        sua = ev["metrics"][label]["sua"]["auroc"]
        best = comp.get("best_baseline")
        best_auc = ev["metrics"][label][best]["auroc"] if best else None
        lines.append(
            f"  AUROC ({label} failure): sua {_fmt(sua)}; best baseline {best or '—'} "
            f"{_fmt(best_auc)}; sua − best {_fmt(comp['sua_minus_best_baseline'])}; "
            f"winner {comp.get('winner') or '—'}"
        )
    lines.append(f"  ECE of the clean confidence {_fmt(ev['calibration']['ece'])}")
    ab = ev.get("abstention")
    if ab:
        if ab["feasible"]:
            tau = "answer all" if ab.get("answers_all") else f"τ = {ab['tau']:.4f}"
            risk = "—" if ab["test_risk"] is None else f"{ab['test_risk']:.3f}"
            lines.append(
                f"  abstention (risk ≤ {ab['target_risk']:g} w.p. ≥ {1 - ab['delta']:g}): "
                f"{tau}; test coverage {ab['test_coverage']:.3f}, test risk {risk}"
            )
        else:
            lines.append(
                f"  abstention (risk ≤ {ab['target_risk']:g} w.p. ≥ {1 - ab['delta']:g}): "
                f"infeasible on {ab['calibration_n']} calibration items — abstain on all"
            )
    return lines
