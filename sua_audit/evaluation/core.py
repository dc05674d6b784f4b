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
from array import array
from collections import Counter
from collections.abc import Iterable
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
    MAX_RESAMPLED_SLOTS,
    effective_resamples,
    estimate,
    iter_resample_indices,
    resample_counts,
    row_chunks,
    sorted_resamples,
)
from sua_audit.evaluation.correctness import Grader
from sua_audit.evaluation.splits import make_split
from sua_audit.numbers import short
from sua_audit.schema import MULTI_ANSWER
from sua_audit.scoring.item import check_lambda, sua_score

#: The version key evaluation.json had before ``schema_version`` (same number; kept for the
#: readers of older files). See :mod:`sua_audit.schema`.
SCHEMA = 1
#: Below this many test items in the smaller class (right or wrong), AUROCs are still computed
#: but marked: with 1 or 2 right answers among 70 an AUROC of 0.9 and its bootstrap interval
#: say nothing a reader should act on.
MIN_MINORITY = 10

#: Scores built from the model's answers under perturbation (this tool's evidence), in report
#: order. Per-kind sensitivities ``s_<kind>`` are added after them for the kinds a run has.
PERTURBATION_SCORES = (
    "sua",
    "sua_pos",
    "sua_norm",
    "combined",
    "sensitivity",
    "sensitivity_max",
    "flip_rate",
)
#: Uncertainty scores that need no perturbation: the baselines every score is compared with.
BASELINES = ("entropy", "max_prob", "self_consistency", "semantic_entropy", "entropy_temp")
#: Baselines only some runs have: ``semantic_entropy_exact`` is semantic entropy over
#: exact-match clusters, recorded beside the meaning-cluster one when a QA run clusters by
#: meaning (``--equivalence embedding|judge``), so the two clusterings are evaluated side by side.
EXTRA_BASELINES = ("semantic_entropy_exact",)
#: Every score of every run, in report order (all oriented: higher = more suspicious).
SCORES = PERTURBATION_SCORES + BASELINES + EXTRA_BASELINES
_ALL_BASELINES = frozenset(BASELINES + EXTRA_BASELINES)
#: Scores fitted on the validation split (they need gold answers).
FITTED_SCORES = ("combined", "entropy_temp")
#: Prefix of the per-kind sensitivity scores (``s_typo``, ``s_paraphrase``, ...).
KIND_PREFIX = "s_"
LABELS = ("clean", "worst_case")
METRICS = ("auroc", "auprc", "prr", "aurc", "selective_accuracy_at_80")
#: λ candidates of ``--lambda auto``: signed and log-spaced, because S and H live on scales that
#: differ by two orders of magnitude (S ≈ 0.003, H ≈ 0.6 on our label sets).
_MAGNITUDES = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
LAMBDA_GRID = tuple(sorted({0.0, *_MAGNITUDES, *(-m for m in _MAGNITUDES)}))
LAMBDA_CRITERION = (
    "max validation AUROC for clean failures over a signed grid; ties → λ nearest the run's"
)
#: Fewest validation failures and successes each with which the combined detector is fitted.
COMBINED_MIN_CLASS = 5


def kind_score(kind: str) -> str:
    """The score name of the sensitivity to one perturbation kind."""
    return KIND_PREFIX + kind


def is_score(name: str) -> bool:
    """Whether ``name`` names an evaluated score (a fixed one or ``s_<kind>``)."""
    return name in SCORES or (name.startswith(KIND_PREFIX) and len(name) > len(KIND_PREFIX))


class EvaluationError(SuaAuditError):
    """The run cannot be evaluated (missing files, no graded items)."""


@dataclass
class Items:
    """The evaluated items (scored, with gold), as parallel sequences.

    Built by hand (tests) as lists, or by :func:`collect` as numpy arrays: the score fields
    are ``float64`` arrays, ``correct`` / ``robust`` boolean arrays, and the per-kind
    sensitivities are columns (``kind_columns``) instead of one dict per item.
    """

    ids: list[str] = field(default_factory=list)
    family: list[str] = field(default_factory=list)
    sensitivity: Any = field(default_factory=list)
    entropy: Any = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    by_kind: list[dict[str, float]] = field(default_factory=list)
    dist: list[np.ndarray] = field(default_factory=list)
    gold_index: list[np.ndarray | None] = field(default_factory=list)
    correct: Any = field(default_factory=list)
    robust: Any = field(default_factory=list)
    #: Sensitivity per perturbation kind, one value per item (0 without a variant of the
    #: kind), in first-seen order; ``None``: read from ``by_kind``.
    kind_columns: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def kinds(self) -> list[str]:
        """Perturbation kinds seen in the run, in first-seen order."""
        if self.kind_columns is not None:
            return list(self.kind_columns)
        seen: dict[str, None] = {}
        for by in self.by_kind:
            for k in by:
                seen.setdefault(k, None)
        return list(seen)

    def kind_values(self, kind: str) -> np.ndarray:
        """The sensitivity to ``kind`` of every item (0 for an item without such a variant)."""
        if self.kind_columns is not None:
            return np.asarray(self.kind_columns[kind], dtype=np.float64)
        return np.asarray([by.get(kind, 0.0) for by in self.by_kind], dtype=np.float64)


class _Column:
    """A growing float64 column (8 bytes per value, not a Python float per value)."""

    def __init__(self, fill: float = 0.0, length: int = 0) -> None:
        self.values = array("d", [fill]) * length

    def append(self, value: float) -> None:
        self.values.append(value)

    def numpy(self) -> np.ndarray:
        return np.frombuffer(self.values, dtype=np.float64).copy()


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


def collect(rows: Iterable[dict[str, Any]], grader: Grader) -> Items:
    """Scored items with gold, graded by ``grader`` (QA) or by the label.

    ``rows`` may be a stream (:func:`sua_audit.results.iter_results`): each row is read once
    and only the fields the evaluation needs are kept, as compact columns. A list is first
    handed to ``grader.prepare`` (the judge's batch); a stream must have been prepared by the
    caller.
    """
    if isinstance(rows, list):
        grader.prepare(rows)
    names: tuple[str, ...] = (
        "max_prob",
        "self_consistency",
        "semantic_entropy",
        "sensitivity_max",
        "flip_rate",
    )
    items = Items()
    sensitivity, entropy = _Column(), _Column()
    raw = {k: _Column() for k in names}
    kinds: dict[str, _Column] = {}
    correct: list[bool] = []
    robust: list[bool] = []
    for row in rows:
        # A baseline only some runs record counts for all items once any row has it.
        for k in EXTRA_BASELINES:
            if k not in raw and k in row:
                raw[k] = _Column(math.inf, len(items.ids))
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
        n = len(items.ids)
        items.ids.append(str(row["id"]))
        items.family.append("qa" if row["task"] == "qa" else "label")
        sensitivity.append(float(row["sensitivity"]))
        entropy.append(float(row["entropy"]))
        for k, column in raw.items():
            v = row.get(k)
            column.append(math.inf if v is None else float(v))
        by_kind = row.get("sensitivity_by_kind") or {}
        for k in by_kind:
            if str(k) not in kinds:
                kinds[str(k)] = _Column(0.0, n)
        for k, column in kinds.items():
            column.append(float(by_kind.get(k, 0.0)))
        p, gold = _clean_distribution(row)
        items.dist.append(p)
        items.gold_index.append(gold)
        correct.append(ok[0])
        robust.append(all(ok))
    items.sensitivity = sensitivity.numpy()
    items.entropy = entropy.numpy()
    items.raw = {k: column.numpy() for k, column in raw.items()}
    items.kind_columns = {k: column.numpy() for k, column in kinds.items()}
    items.correct = np.asarray(correct, dtype=bool)
    items.robust = np.asarray(robust, dtype=bool)
    return items


def kinds_of(items: Items) -> list[str]:
    """Perturbation kinds seen in the run, in first-seen order."""
    return items.kinds()


def _fill_missing(v: np.ndarray) -> np.ndarray:
    """A missing score counts as maximally suspicious (above every finite value)."""
    if np.isfinite(v).all():
        return v
    finite = v[np.isfinite(v)]
    return np.where(np.isfinite(v), v, (finite.max() + 1.0) if finite.size else 1.0)


def base_scores(items: Items, lam: float, lam_norm: float, normalize: str) -> dict[str, np.ndarray]:
    """Every label-free score of every item: SUA (raw and normalised), its parts, the
    per-kind sensitivities and the uncertainty baselines (``entropy_temp`` and ``combined``
    are fitted and added by :func:`fitted_scores`)."""
    from sua_audit.scoring.table import sua_normalized

    s = np.asarray(items.sensitivity, dtype=np.float64)
    h = np.asarray(items.entropy, dtype=np.float64)
    sua = sua_score(s, h, lam)
    out = {
        "sua": sua,
        "sua_pos": np.maximum(sua, 0.0),
        "sua_norm": sua_normalized(s, h, lam_norm, normalize),
        "sensitivity": s,
        "entropy": h,
        **{k: np.asarray(v, dtype=np.float64) for k, v in items.raw.items()},
    }
    for kind in kinds_of(items):
        # An item without a variant of this kind has no evidence of sensitivity to it: 0.
        out[kind_score(kind)] = items.kind_values(kind)
    return {k: _fill_missing(v) for k, v in out.items()}


def combined_features(items: Items, scores: dict[str, np.ndarray]) -> tuple[list[str], np.ndarray]:
    """The combined detector's inputs: S, S_max, H, flip rate and each per-kind S."""
    names = ["sensitivity", "sensitivity_max", "entropy", "flip_rate"]
    names += [kind_score(k) for k in kinds_of(items)]
    return names, np.column_stack([scores[n] for n in names])


def fit_combined(
    features: np.ndarray, fail: np.ndarray, val: list[int], names: list[str]
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Logistic regression of clean failure on the features, fitted on ``val`` only.

    Features are standardised with the validation items' mean and sd; L2 penalty C = 1. The
    score of every item is the fitted probability of failure. Returns ``(None, info)`` with
    the reason when the validation split has fewer than :data:`COMBINED_MIN_CLASS` failures or
    successes.
    """
    info: dict[str, Any] = {
        "model": "logistic regression (L2, C = 1) on standardised features",
        "features": names,
        "target": "clean failure",
        "fitted_on": "validation",
        "n_validation": len(val),
    }
    y = fail[val] if val else np.zeros(0)
    n_fail = int(y.sum())
    if min(n_fail, y.size - n_fail) < COMBINED_MIN_CLASS:
        info["reason"] = (
            f"not fitted: the validation split has {n_fail} failures and {y.size - n_fail} "
            f"successes; at least {COMBINED_MIN_CLASS} of each are needed"
        )
        return None, info
    from sklearn.linear_model import LogisticRegression

    x = features[val]
    mean = x.mean(axis=0)
    sd = x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    model = LogisticRegression(C=1.0, max_iter=1000)
    model.fit((x - mean) / sd, y.astype(int))
    info["coefficients"] = {
        n: round(float(c), 6) for n, c in zip(names, model.coef_[0], strict=True)
    }
    info["intercept"] = round(float(model.intercept_[0]), 6)
    return model.predict_proba((features - mean) / sd)[:, 1], info


def _choose_lambda(
    s: np.ndarray, h: np.ndarray, fail: np.ndarray, val: list[int], default: float
) -> tuple[float, str]:
    """λ on the signed grid with the best validation AUROC of s − λh for clean failures."""
    if not val:
        return default, "no validation items; kept the run's λ"
    f = fail[val]
    if f.min() == f.max():
        return default, "validation split has one class only; kept the run's λ"
    sv, hv = s[val], h[val]
    best = max(
        LAMBDA_GRID,
        key=lambda lam: (round(float(M.auroc(sua_score(sv, hv, lam), f)), 12), -abs(lam - default)),
    )
    return float(best), LAMBDA_CRITERION


def _sklearn_point(metric: str, scores: np.ndarray, fail: np.ndarray) -> float | None:
    if fail.min() == fail.max():
        return None
    from sklearn.metrics import average_precision_score, roc_auc_score

    if metric == "auroc":
        return float(roc_auc_score(fail, scores))
    return float(average_precision_score(fail, scores))


def label_counts(fail: np.ndarray) -> dict[str, Any]:
    """Test items, failures, the smaller class's size, and a note when it is too small to
    conclude from (fewer than :data:`MIN_MINORITY`)."""
    n, failures = int(fail.size), int(fail.sum())
    minority = min(failures, n - failures)
    out: dict[str, Any] = {"n": n, "failures": failures, "minority": minority}
    if 0 < minority < MIN_MINORITY:
        which = "right" if n - failures == minority else "wrong"
        out["note"] = (
            f"only {minority} of {n} test items {'is' if minority == 1 else 'are'} {which}: "
            "AUROCs and their intervals rest "
            f"on too few to conclude anything (fewer than {MIN_MINORITY})"
        )
    return out


def _row_mean(values: np.ndarray) -> np.ndarray:
    return values.mean(axis=1)


#: Keys of the per-resample values :func:`resampled_values` returns besides the metrics.
ACCURACY, ROBUST_ACCURACY, ECE = "accuracy", "robust_accuracy", "ece"


def resampled_values(
    scores: dict[str, np.ndarray],
    fail: dict[str, np.ndarray],
    correct: np.ndarray,
    robust: np.ndarray,
    conf: np.ndarray,
    blocks: Iterable[np.ndarray],
    *,
    grouped: bool = False,
) -> dict[Any, np.ndarray]:
    """Every bootstrap value of the evaluation in one pass over the resamples.

    Keys: ``(label, score, metric)`` for the five metrics, and :data:`ACCURACY`,
    :data:`ROBUST_ACCURACY`, :data:`ECE`. ``blocks`` are the resampled test indices
    (:func:`~.bootstrap.iter_resample_indices`), each worked through in row chunks
    (:func:`~.bootstrap.row_chunks`), so memory is bounded whatever the run's size.

    Each score is sorted once; a resample in that order is its items repeated by their draw
    counts (:func:`~.bootstrap.sorted_resamples`), so no resample is sorted. The metrics
    depend only on the tie groups, so every value equals that of the metric applied to the
    resample itself (:mod:`.metrics`), to the last bit (a test checks it).

    ``grouped``: the metrics are computed per tie group of each score instead of per item
    (:func:`~.metrics.grouped_metrics`), equal up to rounding (1e-12) and faster; used for runs
    whose resamples ask for more than :data:`~.bootstrap.MAX_RESAMPLED_SLOTS` slots (and are cut
    by :func:`~.bootstrap.effective_resamples`), which no automatic evaluation reached before.
    """
    n = correct.size
    k80 = M.coverage_count(n, 0.8) if n else 1
    orders = {name: np.argsort(v, kind="stable") for name, v in scores.items()}
    parts: dict[Any, list[np.ndarray]] = {}

    def add(key: Any, values: np.ndarray) -> None:
        parts.setdefault(key, []).append(np.asarray(values, dtype=np.float64))

    for block in blocks:
        for chunk in row_chunks(block):
            add(ACCURACY, _row_mean(correct[chunk]))
            add(ROBUST_ACCURACY, _row_mean(robust[chunk]))
            if not n:
                continue
            add(ECE, np.atleast_1d(M.ece(conf[chunk], correct[chunk])))
            counts = resample_counts(chunk, n)
            if grouped:
                _grouped_values(scores, fail, orders, counts, k80, add)
                continue
            for name, order in orders.items():
                flat = sorted_resamples(order, counts)
                starts, ends = M.group_masks(scores[name][flat])
                first, last = M.group_bounds(starts, ends)
                down_ends = starts[:, ::-1]
                for label, f in fail.items():
                    ff = f[flat]
                    cum = M.cumulative_errors_sorted(ff, starts, first, last, ends)
                    aurc = M.aurc_from(cum)
                    add((label, name, "auroc"), M.auroc_sorted(ff, first, last))
                    add((label, name, "auprc"), M.auprc_descending(ff[:, ::-1], down_ends))
                    add((label, name, "prr"), M.prr_from(aurc, ff))
                    add((label, name, "aurc"), aurc)
                    add((label, name, "selective_accuracy_at_80"), 1.0 - M.risk_at(cum, k80))
    return {key: np.concatenate(values) for key, values in parts.items()}


def _grouped_values(
    scores: dict[str, np.ndarray],
    fail: dict[str, np.ndarray],
    orders: dict[str, np.ndarray],
    counts: np.ndarray,
    k80: int,
    add: Any,
) -> None:
    """The metrics of one chunk of resamples from draw counts per tie group of each score."""
    for name, order in orders.items():
        ordered = scores[name][order]
        starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
        drawn = counts[:, order].astype(np.float64)
        ties = starts.size < order.size

        def by_group(values: np.ndarray, ties: bool = ties, starts: np.ndarray = starts) -> Any:
            return np.add.reduceat(values, starts, axis=1) if ties else values

        sizes = by_group(drawn)
        for label, f in fail.items():
            failures = by_group(drawn * f[order])
            values = M.grouped_metrics(failures, sizes, k80)
            for metric, v in zip(METRICS, values, strict=True):
                add((label, name, metric), v)


def _metric_block(
    scores: np.ndarray, fail: np.ndarray, resampled: dict[str, np.ndarray], n_resamples: int
) -> tuple[dict[str, Any], np.ndarray]:
    """The five metrics with CIs from their bootstrap values (``resampled``, by metric); also
    the AUROC resamples (for paired comparisons)."""
    one_class = fail.min() == fail.max() if fail.size else True
    reason = (
        "only one class (all right or all wrong) among these items" if fail.size else "no items"
    )

    def values(metric: str) -> np.ndarray | None:
        return resampled[metric] if fail.size else None

    auroc_b = values("auroc")
    if auroc_b is None:
        auroc_b = np.full(n_resamples, np.nan)
    out: dict[str, Any] = {}
    out["auroc"] = estimate(
        None if one_class else _sklearn_point("auroc", scores, fail), auroc_b, reason
    )
    out["auprc"] = estimate(
        None if one_class else _sklearn_point("auprc", scores, fail),
        values("auprc"),
        reason,
    )
    out["prr"] = estimate(
        None if one_class else float(M.prr(scores, fail)),
        values("prr"),
        reason,
    )
    out["aurc"] = estimate(
        float(M.aurc(scores, fail)) if fail.size else None,
        values("aurc"),
        "no items",
    )
    out["selective_accuracy_at_80"] = estimate(
        float(M.selective_accuracy(scores, fail, 0.8)) if fail.size else None,
        values("selective_accuracy_at_80"),
        "no items",
    )
    return out, auroc_b


def _edge_note(block: dict[str, Any], lam: float) -> str:
    """A sentence when λ auto stopped at an end of its grid: one part of SUA dominates."""
    if block.get("mode") != "auto" or lam not in (LAMBDA_GRID[0], LAMBDA_GRID[-1]):
        return ""
    return (
        f" λ = {short(lam)} is the end of the grid: on validation, the more weight H gets the better, "
        "so this SUA is in effect entropy alone."
        if lam < 0
        else f" λ = {short(lam)} is the end of the grid: on validation, the more weight −H gets the "
        "better, so this SUA is in effect negative entropy."
    )


def _unavailable(reason: str) -> dict[str, Any]:
    block = {"value": None, "ci": None, "reason": reason}
    return {m: dict(block) for m in METRICS}


def evaluate_items(
    items: Items,
    *,
    run_id: str,
    run_lambda: float,
    lam: float | str | None = None,
    normalize: str | None = None,
    abstain_on: str = "sua",
    target_risk: float | None = None,
    delta: float = 0.1,
    seed: int = 0,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    correctness_rule: str = "label",
) -> dict[str, Any]:
    """The evaluation.json dict for already collected items.

    A seeded validation split (30%) is always held out: λ under ``--lambda auto``, the
    temperature of ``entropy_temp`` and the ``combined`` detector are fitted on it, and every
    metric is computed on the rest (the test split, less the calibration split when
    ``target_risk`` asks for a calibrated abstention on ``abstain_on``).
    """
    from sua_audit.scoring.table import DEFAULT_NORMALIZE, NORMALIZE_METHODS, lambda_meaning

    n = len(items)
    if n == 0:
        raise EvaluationError(
            "No scored items with gold answers to evaluate: the dataset needs `label`/"
            "`gold_labels` (classification, NLI) or `answers` (QA)."
        )
    lam = check_lambda(lam)
    auto = lam == "auto"
    normalize = normalize or DEFAULT_NORMALIZE
    if normalize not in NORMALIZE_METHODS:
        raise ConfigError(
            f"--normalize must be one of {', '.join(NORMALIZE_METHODS)}, got {normalize!r}."
        )
    if not is_score(abstain_on):
        raise ConfigError(
            f"--abstain-on: unknown score {abstain_on!r}. Scores: {', '.join(SCORES)}, or "
            "s_<kind> for one perturbation kind."
        )
    if target_risk is not None and not 0.0 < target_risk < 1.0:
        raise ConfigError(f"--target-risk must be in (0, 1), got {target_risk}.")
    if not 0.0 < delta < 1.0:
        raise ConfigError(f"--delta must be in (0, 1), got {delta}.")
    split = make_split(n, seed=seed, validation=True, calibration=target_risk is not None)
    val, cal, test = split.validation, split.calibration, split.test
    correct = np.asarray(items.correct, dtype=np.float64)
    robust = np.asarray(items.robust, dtype=np.float64)
    fail_all = 1.0 - correct

    # λ of sua and of sua_norm: fixed (given or the run's), or each chosen on validation.
    s_raw = np.asarray(items.sensitivity, dtype=np.float64)
    h_raw = np.asarray(items.entropy, dtype=np.float64)
    if auto:
        from sua_audit.scoring.table import normalize as norm

        lam_value, criterion = _choose_lambda(s_raw, h_raw, fail_all, val, run_lambda)
        lam_norm, criterion_norm = _choose_lambda(
            norm(s_raw, normalize), norm(h_raw, normalize), fail_all, val, run_lambda
        )
        lam_block: dict[str, Any] = {
            "mode": "auto",
            "value": lam_value,
            "value_norm": lam_norm,
            "grid": list(LAMBDA_GRID),
            "criterion": criterion,
            "criterion_norm": criterion_norm,
        }
    else:
        lam_value = float(run_lambda if lam is None else lam)
        lam_norm = lam_value
        lam_block = {
            "mode": "fixed",
            "value": lam_value,
            "value_norm": lam_norm,
            "grid": None,
            "criterion": None,
        }
    lam_block["meaning"] = lambda_meaning(lam_value) + _edge_note(lam_block, lam_value)
    lam_block["meaning_norm"] = lambda_meaning(lam_norm) + _edge_note(lam_block, lam_norm)

    scores = base_scores(items, lam_value, lam_norm, normalize)
    temp_block, combined_info = fitted_scores(items, scores, val, test, seed)
    kinds = [kind_score(k) for k in kinds_of(items)]
    extra = [k for k in EXTRA_BASELINES if k in scores]
    names = [*PERTURBATION_SCORES, *kinds, *BASELINES, *extra]
    if abstain_on not in scores:
        why = combined_info.get("reason") if abstain_on == "combined" else None
        raise ConfigError(
            f"--abstain-on {abstain_on}: this run has no such score"
            + (f" ({why})" if why else "")
            + f". Scores here: {', '.join(k for k in names if k in scores)}."
        )

    t = np.asarray(test, dtype=np.int64)
    fail = {"clean": fail_all[t], "worst_case": 1.0 - robust[t]}
    # Runs too large for the resamples asked get fewer (effective_resamples) and the grouped
    # computation; every run below that keeps the numbers of the item-wise one exactly.
    grouped = bootstrap * t.size > MAX_RESAMPLED_SLOTS
    bootstrap = effective_resamples(t.size, bootstrap)
    conf = 1.0 - scores["max_prob"][t]
    present = [name for name in names if name in scores]
    boot = resampled_values(
        {name: scores[name][t] for name in present},
        fail,
        correct[t],
        robust[t],
        conf,
        iter_resample_indices(t.size, bootstrap, seed),
        grouped=grouped,
    )

    metrics: dict[str, Any] = {}
    comparison: dict[str, Any] = {}
    for label in LABELS:
        f = fail[label]
        per: dict[str, Any] = {}
        aurocs: dict[str, np.ndarray] = {}
        for name in names:
            if name not in scores:
                per[name] = _unavailable(combined_info.get("reason", "not available"))
                continue
            mine = {m: boot[(label, name, m)] for m in METRICS if (label, name, m) in boot}
            per[name], aurocs[name] = _metric_block(scores[name][t], f, mine, bootstrap)
        metrics[label] = per
        comparison[label] = _compare(per, aurocs)

    ece_b = boot[ECE] if t.size else None
    ece_point, bins = M.ece_bins(conf, correct[t])
    risk_cov = {name: M.risk_coverage_curve(scores[name][t], fail["clean"]) for name in present}

    abst = None
    if target_risk is not None:
        chosen = scores[abstain_on]
        cal_a = np.asarray(cal, dtype=np.int64)
        grid_from = np.asarray(sorted(set(range(n)) - set(cal)), dtype=np.int64)
        abst = abstention_report(
            abstain_on,
            chosen[cal_a],
            fail_all[cal_a],
            chosen[t],
            fail["clean"],
            chosen[grid_from],
            alpha=float(target_risk),
            delta=float(delta),
        )
        abst["note"] = abstention_note(abst)

    from sua_audit.schema import SCHEMA_VERSION

    return {
        "schema_version": SCHEMA_VERSION,
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
        "normalize": normalize,
        "scores": names,
        "perturbation_scores": [k for k in names if k not in _ALL_BASELINES],
        "baselines": [*BASELINES, *extra],
        "combined": combined_info,
        "accuracy": estimate(float(correct[t].mean()), boot[ACCURACY]),
        "robust_accuracy": estimate(float(robust[t].mean()), boot[ROBUST_ACCURACY]),
        "failure_labels": {k: label_counts(v) for k, v in fail.items()},
        "metrics": metrics,
        "comparison": comparison,
        "calibration": {
            "confidence": "max p of the clean prediction (QA: share of the clean samples in "
            "the greedy answer's cluster, the answer that is graded)",
            "ece": estimate(float(ece_point), ece_b),
            "bins": bins,
        },
        "risk_coverage": {"clean": risk_cov},
        "abstention": abst,
        "temperature": temp_block,
    }


def fitted_scores(
    items: Items, scores: dict[str, np.ndarray], val: list[int], test: list[int], seed: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Add ``entropy_temp`` and (when it can be fitted) ``combined`` to ``scores`` in place.

    Both are fitted on the validation items only. Returns the temperature block and the
    combined detector's description (with ``reason`` when it was not fitted).
    """
    n = len(items)
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
    scores["entropy_temp"] = _fill_missing(
        np.asarray([temperature.entropy_at(p, temps.get(i, 1.0)) for i, p in enumerate(items.dist)])
    )
    names, x = combined_features(items, scores)
    fail = 1.0 - np.asarray(items.correct, dtype=np.float64)
    combined, info = fit_combined(x, fail, val, names)
    if combined is not None:
        scores["combined"] = combined
    return temp_block, info


def abstention_note(block: dict[str, Any]) -> str | None:
    """One plain sentence when a calibrated rule answers everything or nothing."""
    if not block["feasible"]:
        return (
            f"No threshold on {block['score']} could be certified at risk ≤ "
            f"{short(block['target_risk'])} with probability ≥ {short(1 - block['delta'])} on "
            f"{block['calibration_n']} calibration items, so the rule abstains on every item. "
            "Raise --target-risk or --delta, audit more items, or choose another --abstain-on."
        )
    if block.get("answers_all"):
        return (
            f"Answering every item already meets risk ≤ {short(block['target_risk'])} on the "
            "calibration items, so the rule abstains on nothing."
        )
    return None


def _compare(per: dict[str, Any], aurocs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Winner by AUROC, the best uncertainty baseline, and paired CIs of every perturbation
    score against the best baseline and against entropy (a tie goes to the baseline)."""
    valued = {k: v["auroc"]["value"] for k, v in per.items() if v["auroc"]["value"] is not None}
    none = {"value": None, "ci": None, "reason": "AUROC undefined"}
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
            "versus": {},
        }
    base = {k: v for k, v in valued.items() if k in _ALL_BASELINES}
    best = max(base, key=lambda k: base[k]) if base else None
    winner = max(valued, key=lambda k: (valued[k], k in _ALL_BASELINES))
    versus: dict[str, Any] = {}
    for name in per:
        if name in _ALL_BASELINES or name not in valued:
            continue
        block: dict[str, Any] = {}
        for ref, key in ((best, "minus_best_baseline"), ("entropy", "minus_entropy")):
            if ref is not None and ref in valued:
                block[key] = estimate(valued[name] - valued[ref], aurocs[name] - aurocs[ref])
            else:
                block[key] = dict(none)
        versus[name] = block
    diff = versus.get("sua", {}).get("minus_best_baseline")
    return {
        "metric": "auroc",
        "best_baseline": best,
        "sua_minus_best_baseline": diff or dict(none),
        "winner": winner,
        "versus": versus,
    }


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as JSON under a temporary name, then rename it into place."""
    from sua_audit.results import atomic_write

    atomic_write(path, [json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"])
