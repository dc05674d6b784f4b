"""Evaluate a finished run: how well each score detects failures, and a calibrated abstention.

Reads ``results.jsonl`` (and ``summary.json`` for the run id and λ), regrades answers by the
correctness rule, splits the items when λ or τ must be learned, and computes everything
evaluation.json holds (schema 1, documented in docs/method.md, "Evaluation"). Every metric is
computed on the test split only; every interval is a seeded percentile bootstrap over the same
resampled items for all scores (paired).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sua_audit.errors import ConfigError, SuaAuditError
from sua_audit.evaluation import metrics as M
from sua_audit.evaluation import temperature
from sua_audit.evaluation.abstention import abstention_report
from sua_audit.evaluation.bootstrap import (
    DEFAULT_BOOTSTRAP,
    effective_resamples,
    estimate,
    per_resample,
    resample_indices,
)
from sua_audit.evaluation.correctness import Grader
from sua_audit.evaluation.splits import make_split

SCHEMA = 1
EVALUATION_FILE = "evaluation.json"
MULTI_ANSWER = "multi_answer"

#: Every score evaluated, in report order (all oriented: higher = more suspicious).
SCORES = (
    "sua",
    "sua_pos",
    "sensitivity",
    "sensitivity_max",
    "entropy",
    "max_prob",
    "self_consistency",
    "semantic_entropy",
    "entropy_temp",
)
#: The scores SUA is compared against (its own ingredients S and S_max included).
BASELINES = tuple(s for s in SCORES if s not in ("sua", "sua_pos"))
LABELS = ("clean", "worst_case")
METRICS = ("auroc", "auprc", "prr", "aurc", "selective_accuracy_at_80")
LAMBDA_GRID = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
LAMBDA_CRITERION = "max validation AUROC of S − λH for clean failures; ties → λ nearest 1"


class EvaluationError(SuaAuditError):
    """The run cannot be evaluated (missing files, no graded items)."""


@dataclass
class Items:
    """The evaluated items (scored, with gold), as parallel arrays."""

    ids: list[str] = field(default_factory=list)
    family: list[str] = field(default_factory=list)
    sensitivity: list[float] = field(default_factory=list)
    entropy: list[float] = field(default_factory=list)
    raw: dict[str, list[float]] = field(default_factory=dict)
    dist: list[np.ndarray] = field(default_factory=list)
    gold_index: list[np.ndarray | None] = field(default_factory=list)
    correct: list[bool] = field(default_factory=list)
    robust: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


def _clean_distribution(row: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None]:
    """The clean input's answer distribution, and the gold labels' indices (label tasks)."""
    if row["task"] != "qa":
        dist = row.get("distribution") or row["variants"][0].get("distribution") or {}
        labels = list(dist)
        p = np.asarray([dist[k] for k in labels], dtype=np.float64)
        p = p / p.sum() if p.sum() > 0 else np.full(len(labels), 1.0 / max(len(labels), 1))
        gold = set(row.get("gold") or ())
        return p, np.asarray([i for i, k in enumerate(labels) if k in gold], dtype=np.int64)
    from sua_audit.scoring import normalize_answer

    samples = row["variants"][0].get("samples") or [row["variants"][0].get("prediction") or ""]
    counts = Counter(normalize_answer(s) for s in samples)
    p = np.asarray(list(counts.values()), dtype=np.float64)
    return p / p.sum(), None


def collect(rows: list[dict[str, Any]], grader: Grader) -> Items:
    """Scored items with gold, graded by ``grader`` (QA) or by the label."""
    grader.prepare(rows)
    items = Items(raw={k: [] for k in ("max_prob", "self_consistency", "semantic_entropy")})
    items.raw["sensitivity_max"] = []
    for row in rows:
        if row.get("status") != "ok" or row.get("correct") is None:
            continue
        if row.get("sensitivity") is None or row.get("entropy") is None:
            continue
        core = [v for v in row["variants"] if MULTI_ANSWER not in v.get("flags", ())]
        if row["task"] == "qa":
            golds = list(row.get("gold") or ())
            ok = [grader.qa_correct(row["input"], v.get("prediction"), golds) for v in core]
        else:
            ok = [bool(v.get("correct")) for v in core]
        items.ids.append(str(row["id"]))
        items.family.append("qa" if row["task"] == "qa" else "label")
        items.sensitivity.append(float(row["sensitivity"]))
        items.entropy.append(float(row["entropy"]))
        for k in items.raw:
            v = row.get(k)
            items.raw[k].append(math.inf if v is None else float(v))
        p, gold = _clean_distribution(row)
        items.dist.append(p)
        items.gold_index.append(gold)
        items.correct.append(ok[0])
        items.robust.append(all(ok))
    return items


def _score_arrays(items: Items, lam: float, temps: dict[int, float]) -> dict[str, np.ndarray]:
    s = np.asarray(items.sensitivity)
    h = np.asarray(items.entropy)
    sua = s - lam * h
    out = {
        "sua": sua,
        "sua_pos": np.maximum(sua, 0.0),
        "sensitivity": s,
        "entropy": h,
        **{k: np.asarray(v) for k, v in items.raw.items()},
        "entropy_temp": np.asarray(
            [temperature.entropy_at(p, temps.get(i, 1.0)) for i, p in enumerate(items.dist)]
        ),
    }
    for k, v in out.items():  # a missing score counts as maximally suspicious
        if not np.isfinite(v).all():
            finite = v[np.isfinite(v)]
            out[k] = np.where(np.isfinite(v), v, (finite.max() + 1.0) if finite.size else 1.0)
    return out


def _choose_lambda(items: Items, val: list[int], default: float) -> tuple[float, str]:
    if not val:
        return default, "no validation items; kept the run's λ"
    fail = 1.0 - np.asarray(items.correct, dtype=np.float64)[val]
    if fail.min() == fail.max():
        return default, "validation split has one class only; kept the run's λ"
    s = np.asarray(items.sensitivity)[val]
    h = np.asarray(items.entropy)[val]
    best = max(
        LAMBDA_GRID, key=lambda lam: (round(float(M.auroc(s - lam * h, fail)), 12), -abs(lam - 1))
    )
    return float(best), LAMBDA_CRITERION


def _sklearn_point(metric: str, scores: np.ndarray, fail: np.ndarray) -> float | None:
    if fail.min() == fail.max():
        return None
    from sklearn.metrics import average_precision_score, roc_auc_score

    if metric == "auroc":
        return float(roc_auc_score(fail, scores))
    return float(average_precision_score(fail, scores))


def _row_mean(values: np.ndarray) -> np.ndarray:
    return values.mean(axis=1)


def _metric_block(
    scores: np.ndarray, fail: np.ndarray, idx: list[np.ndarray]
) -> tuple[dict[str, Any], np.ndarray]:
    """The five metrics with CIs; also the AUROC resamples (for paired comparisons)."""
    one_class = fail.min() == fail.max() if fail.size else True
    reason = (
        "only one class (all right or all wrong) among these items" if fail.size else "no items"
    )
    n_resamples = sum(len(b) for b in idx)

    def resampled(fn: Any) -> np.ndarray | None:
        return per_resample(fn, idx, scores, fail) if fail.size else None

    auroc_b = resampled(M.auroc)
    if auroc_b is None:
        auroc_b = np.full(n_resamples, np.nan)
    out: dict[str, Any] = {}
    out["auroc"] = estimate(
        None if one_class else _sklearn_point("auroc", scores, fail), auroc_b, reason
    )
    out["auprc"] = estimate(
        None if one_class else _sklearn_point("auprc", scores, fail),
        resampled(M.auprc),
        reason,
    )
    out["prr"] = estimate(
        None if one_class else float(M.prr(scores, fail)),
        resampled(M.prr),
        reason,
    )
    out["aurc"] = estimate(
        float(M.aurc(scores, fail)) if fail.size else None,
        resampled(M.aurc),
        "no items",
    )
    out["selective_accuracy_at_80"] = estimate(
        float(M.selective_accuracy(scores, fail, 0.8)) if fail.size else None,
        resampled(lambda sb, fb: M.selective_accuracy(sb, fb, 0.8)),
        "no items",
    )
    return out, auroc_b


def evaluate_items(
    items: Items,
    *,
    run_id: str,
    run_lambda: float,
    lam: float | str | None = None,
    target_risk: float | None = None,
    delta: float = 0.1,
    seed: int = 0,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    correctness_rule: str = "label",
) -> dict[str, Any]:
    """The evaluation.json dict for already collected items."""
    n = len(items)
    if n == 0:
        raise EvaluationError(
            "No scored items with gold answers to evaluate: the dataset needs `label`/"
            "`gold_labels` (classification, NLI) or `answers` (QA)."
        )
    auto = lam == "auto"
    if lam is not None and not auto:
        if not isinstance(lam, (int, float)) or not math.isfinite(lam) or lam < 0:
            raise ConfigError(f"--lambda must be a number >= 0 or 'auto', got {lam!r}.")
    if target_risk is not None and not 0.0 < target_risk < 1.0:
        raise ConfigError(f"--target-risk must be in (0, 1), got {target_risk}.")
    if not 0.0 < delta < 1.0:
        raise ConfigError(f"--delta must be in (0, 1), got {delta}.")
    split = make_split(n, seed=seed, validation=auto, calibration=target_risk is not None)
    val, cal, test = split.validation, split.calibration, split.test

    # λ: fixed (given or the run's), or chosen on validation.
    if auto:
        lam_value, criterion = _choose_lambda(items, val, run_lambda)
        lam_block = {
            "mode": "auto",
            "value": lam_value,
            "grid": list(LAMBDA_GRID),
            "criterion": criterion,
        }
    else:
        lam_value = float(run_lambda if lam is None else lam)
        lam_block = {"mode": "fixed", "value": lam_value, "grid": None, "criterion": None}

    # Temperature of entropy_temp: fitted on validation, or cross-fitted on the test items.
    if val:
        fitted = temperature.fit_by_family(
            items.family, items.dist, items.gold_index, items.correct, val
        )
        temps = {i: fitted.get(items.family[i], 1.0) for i in range(n)}
        temp_block: dict[str, Any] = {"fitted_on": "validation", "T": fitted}
    else:
        temps, folds = temperature.cross_fit(
            items.family, items.dist, items.gold_index, items.correct, test, seed
        )
        temp_block = {
            "fitted_on": f"cross-fit, {len(folds)} folds of the test items",
            "T_per_fold": folds,
        }

    scores = _score_arrays(items, lam_value, temps)
    correct = np.asarray(items.correct, dtype=np.float64)
    robust = np.asarray(items.robust, dtype=np.float64)
    t = np.asarray(test, dtype=np.int64)
    fail = {"clean": 1.0 - correct[t], "worst_case": 1.0 - robust[t]}
    bootstrap = effective_resamples(t.size, bootstrap)
    idx = resample_indices(t.size, bootstrap, seed)

    metrics: dict[str, Any] = {}
    comparison: dict[str, Any] = {}
    for label in LABELS:
        f = fail[label]
        per: dict[str, Any] = {}
        aurocs: dict[str, np.ndarray] = {}
        for name in SCORES:
            per[name], aurocs[name] = _metric_block(scores[name][t], f, idx)
        metrics[label] = per
        comparison[label] = _compare(per, aurocs)

    conf = 1.0 - scores["max_prob"][t]
    ece_b = per_resample(M.ece, idx, conf, correct[t]) if t.size else None
    ece_point, bins = M.ece_bins(conf, correct[t])
    risk_cov = {name: M.risk_coverage_curve(scores[name][t], fail["clean"]) for name in SCORES}

    abst = None
    if target_risk is not None:
        cal_a = np.asarray(cal, dtype=np.int64)
        grid_from = np.asarray(sorted(set(range(n)) - set(cal)), dtype=np.int64)
        abst = abstention_report(
            "sua",
            scores["sua"][cal_a],
            1.0 - correct[cal_a],
            scores["sua"][t],
            fail["clean"],
            scores["sua"][grid_from],
            alpha=float(target_risk),
            delta=float(delta),
        )

    return {
        "schema": SCHEMA,
        "run_id": run_id,
        "seed": seed,
        "bootstrap": bootstrap,
        "correctness_rule": correctness_rule,
        "n_items": n,
        "split": {
            "seed": seed,
            "n_validation": len(val),
            "n_calibration": len(cal),
            "n_test": len(test),
            "validation_ids": [items.ids[i] for i in val],
            "calibration_ids": [items.ids[i] for i in cal],
        },
        "lambda": lam_block,
        "accuracy": estimate(float(correct[t].mean()), per_resample(_row_mean, idx, correct[t])),
        "robust_accuracy": estimate(
            float(robust[t].mean()), per_resample(_row_mean, idx, robust[t])
        ),
        "failure_labels": {
            k: {"n": int(v.size), "failures": int(v.sum())} for k, v in fail.items()
        },
        "metrics": metrics,
        "comparison": comparison,
        "calibration": {
            "confidence": "max p of the clean prediction",
            "ece": estimate(float(ece_point), ece_b),
            "bins": bins,
        },
        "risk_coverage": {"clean": risk_cov},
        "abstention": abst,
        "temperature": temp_block,
    }


def _compare(per: dict[str, Any], aurocs: dict[str, np.ndarray]) -> dict[str, Any]:
    valued = {k: v["auroc"]["value"] for k, v in per.items() if v["auroc"]["value"] is not None}
    if not valued:
        return {
            "metric": "auroc",
            "best_baseline": None,
            "sua_minus_best_baseline": {
                "value": None,
                "ci": None,
                "reason": "AUROC undefined (one class only)",
            },
            "winner": None,
        }
    base = {k: v for k, v in valued.items() if k in BASELINES}
    best = max(base, key=lambda k: base[k]) if base else None
    # SUA (or sua_pos) wins only when strictly best: a tie goes to the baseline.
    winner = max(valued, key=lambda k: (valued[k], k in BASELINES))
    diff = None
    if best is not None and "sua" in valued:
        diff = estimate(valued["sua"] - valued[best], aurocs["sua"] - aurocs[best])
    return {
        "metric": "auroc",
        "best_baseline": best,
        "sua_minus_best_baseline": diff or {"value": None, "ci": None, "reason": "AUROC undefined"},
        "winner": winner,
    }


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON under a temporary name, then rename it into place."""
    from sua_audit.results import atomic_write

    atomic_write(path, [json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"])
