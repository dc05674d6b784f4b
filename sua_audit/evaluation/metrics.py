"""Failure-detection metrics, computed row-wise on a batch of (score, failure) arrays.

Conventions, everywhere in this package:

* ``failure`` is 1 for an item the model got wrong (the positive class), 0 for a right one;
* ``score`` is an *uncertainty*: higher = more suspicious, abstained on first.

Every function takes arrays of shape ``(n,)`` or ``(B, n)`` (B bootstrap resamples) and returns
one value per row; a value is NaN where the metric is undefined (one class only, no items).
Ties in the score are handled exactly, never by an arbitrary sort order:

* AUROC counts a tied (failure, success) pair as one half (Mann–Whitney with average ranks,
  which is what scikit-learn's ``roc_auc_score`` computes);
* AUPRC is average precision with one step per distinct score (scikit-learn's
  ``average_precision_score``);
* the risk–coverage curve, AURC, PRR and selective accuracy use the *expected* number of
  errors under a random order within each group of tied scores (linear interpolation inside the
  group), so a constant score gives the base error rate at every coverage.

The point estimates in evaluation.json come from scikit-learn where it has the metric (AUROC,
AUPRC); the vectorised versions here are for bootstrap resamples and agree with it exactly (a
test checks that).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


def _as_2d(scores: npt.ArrayLike, failures: npt.ArrayLike) -> tuple[Array, Array, bool]:
    s = np.asarray(scores, dtype=np.float64)
    f = np.asarray(failures, dtype=np.float64)
    if s.shape != f.shape:
        raise ValueError(f"scores {s.shape} and failures {f.shape} differ in shape")
    if s.ndim not in (1, 2):
        raise ValueError(f"expected 1-D or 2-D arrays, got shape {s.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN; drop unscored items first")
    single = s.ndim == 1
    return np.atleast_2d(s), np.atleast_2d(f), single


def _out(values: Array, single: bool) -> Array | float:
    return float(values[0]) if single else values


def auroc(scores: npt.ArrayLike, failures: npt.ArrayLike) -> Array | float:
    """Area under the ROC curve of ``score`` for detecting failures (ties count 1/2)."""
    from scipy.stats import rankdata

    s, f, single = _as_2d(scores, failures)
    ranks = rankdata(s, axis=1, method="average")
    pos = f.sum(axis=1)
    neg = f.shape[1] - pos
    with np.errstate(invalid="ignore", divide="ignore"):
        value = ((ranks * f).sum(axis=1) - pos * (pos + 1) / 2) / (pos * neg)
    value[(pos == 0) | (neg == 0)] = np.nan
    return _out(value, single)


def _sorted(
    s: Array, f: Array, descending: bool
) -> tuple[Array, Array, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Sort each row; return sorted scores, failures, and group-start / group-end masks."""
    order = np.argsort(-s if descending else s, axis=1, kind="stable")
    ss = np.take_along_axis(s, order, axis=1)
    ff = np.take_along_axis(f, order, axis=1)
    starts, ends = group_masks(ss)
    return ss, ff, starts, ends


def group_masks(ss: Array) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Where each group of tied scores starts and ends, in rows that are already sorted."""
    change = ss[:, 1:] != ss[:, :-1]
    n_rows = ss.shape[0]
    starts = np.concatenate([np.ones((n_rows, 1), dtype=bool), change], axis=1)
    ends = np.concatenate([change, np.ones((n_rows, 1), dtype=bool)], axis=1)
    return starts, ends


def group_bounds(
    starts: npt.NDArray[np.bool_], ends: npt.NDArray[np.bool_]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """For every position of sorted rows, the first and last position of its tie group."""
    n_rows, n = starts.shape
    idx = np.broadcast_to(np.arange(n), (n_rows, n))
    first = np.maximum.accumulate(np.where(starts, idx, -1), axis=1)
    last = np.minimum.accumulate(np.where(ends, idx, n)[:, ::-1], axis=1)[:, ::-1]
    return first, last


def auprc(scores: npt.ArrayLike, failures: npt.ArrayLike) -> Array | float:
    """Average precision for failures ranked by descending score (one step per distinct score)."""
    s, f, single = _as_2d(scores, failures)
    _, ff, _, ends = _sorted(s, f, descending=True)
    return _out(auprc_descending(ff, ends), single)


def auprc_descending(ff: Array, ends: npt.NDArray[np.bool_]) -> Array:
    """Average precision of rows already sorted by descending score (``ends``: where each
    tie group ends). Only the failures per group matter, not their order inside it."""
    n_rows, n = ff.shape
    tp = np.cumsum(ff, axis=1)
    k = np.arange(1, n + 1, dtype=np.float64)
    at_end = np.where(ends, tp, 0.0)
    prev_end = np.concatenate(
        [np.zeros((n_rows, 1)), np.maximum.accumulate(at_end, axis=1)[:, :-1]], axis=1
    )
    gain = np.where(ends, tp - prev_end, 0.0)
    pos = ff.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        value: Array = (gain * tp / k).sum(axis=1) / pos
    value[pos == 0] = np.nan
    return value


def auroc_sorted(ff: Array, first: npt.NDArray[np.int64], last: npt.NDArray[np.int64]) -> Array:
    """AUROC of rows already sorted by ascending score, from the tie groups' bounds
    (:func:`group_bounds`): the average rank of a group is the mean of its first and last
    position. Every term is a half-integer, so the sums are exact and the value equals
    :func:`auroc`'s to the last bit."""
    ranks = (first + last) / 2.0 + 1.0
    pos = ff.sum(axis=1)
    neg = ff.shape[1] - pos
    with np.errstate(invalid="ignore", divide="ignore"):
        value: Array = ((ranks * ff).sum(axis=1) - pos * (pos + 1) / 2) / (pos * neg)
    value[(pos == 0) | (neg == 0)] = np.nan
    return value


def expected_cumulative_errors(scores: npt.ArrayLike, failures: npt.ArrayLike) -> Array:
    """E[errors among the k most confident items], k = 1..n, per row (ties in random order).

    Items are answered by ascending score. Within a group of tied scores the expected count
    grows linearly from the count before the group to the count after it.
    """
    s, f, _ = _as_2d(scores, failures)
    _, ff, starts, ends = _sorted(s, f, descending=False)
    return cumulative_errors_sorted(ff, starts, *group_bounds(starts, ends), ends)


def cumulative_errors_sorted(
    ff: Array,
    starts: npt.NDArray[np.bool_],
    first: npt.NDArray[np.int64],
    last: npt.NDArray[np.int64],
    ends: npt.NDArray[np.bool_],
) -> Array:
    """:func:`expected_cumulative_errors` of rows already sorted by ascending score, with their
    tie groups (:func:`group_masks`, :func:`group_bounds`). Only the failures per group matter,
    not their order inside it."""
    n_rows, n = ff.shape
    idx = np.broadcast_to(np.arange(n), (n_rows, n))
    cum = np.cumsum(ff, axis=1)
    before = np.concatenate([np.zeros((n_rows, 1)), cum[:, :-1]], axis=1)
    # Cumulative errors just before the current group, and at its end.
    group_before = np.maximum.accumulate(np.where(starts, before, -np.inf), axis=1)
    rev_end_cum = np.minimum.accumulate(np.where(ends, cum, np.inf)[:, ::-1], axis=1)[:, ::-1]
    size = last - first + 1
    out: Array = group_before + (idx - first + 1) / size * (rev_end_cum - group_before)
    return out


def risk_at(cum_errors: Array, k: int) -> Array:
    """Selective risk when answering the ``k`` most confident items (``1 <= k <= n``)."""
    return cum_errors[:, k - 1] / k


def aurc(scores: npt.ArrayLike, failures: npt.ArrayLike) -> Array | float:
    """Area under the risk–coverage curve: mean selective risk over coverages k/n (lower is
    better; a random score gives the error rate, a perfect one its oracle minimum)."""
    s, f, single = _as_2d(scores, failures)
    return _out(aurc_from(expected_cumulative_errors(s, f)), single)


def aurc_from(cum: Array) -> Array:
    """AURC from the expected cumulative errors of each row."""
    k = np.arange(1, cum.shape[1] + 1, dtype=np.float64)
    out: Array = (cum / k).mean(axis=1)
    return out


def oracle_aurc(failures: npt.ArrayLike) -> Array | float:
    """AURC of a score that ranks every failure after every success."""
    f = np.atleast_2d(np.asarray(failures, dtype=np.float64))
    n = f.shape[1]
    e = f.sum(axis=1, keepdims=True)
    k = np.arange(1, n + 1, dtype=np.float64)
    errs = np.clip(k - (n - e), 0, None)
    value = (errs / k).mean(axis=1)
    return float(value[0]) if np.ndim(failures) == 1 else value


def prr(scores: npt.ArrayLike, failures: npt.ArrayLike) -> Array | float:
    """Prediction-rejection ratio: (AURC_random − AURC) / (AURC_random − AURC_oracle).

    1 for a perfect ranking, 0 for a random one, negative when worse than random; NaN when
    every item fails or none does (then no ranking can help).
    """
    s, f, single = _as_2d(scores, failures)
    return _out(prr_from(np.atleast_1d(aurc(s, f)), f), single)


def prr_from(a: Array, f: Array) -> Array:
    """PRR from each row's AURC ``a`` and its failures ``f`` (any order)."""
    rand = f.mean(axis=1)
    oracle = np.atleast_1d(oracle_aurc(f))
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (rand - a) / (rand - oracle)
    pos = f.sum(axis=1)
    value[(pos == 0) | (pos == f.shape[1])] = np.nan
    out: Array = value
    return out


def coverage_count(n: int, coverage: float) -> int:
    """Items answered at a target coverage: ⌈coverage·n⌉ (1e-9 slack), at least 1."""
    target = coverage * n
    return min(max(math.ceil(target - 1e-9 * max(1.0, target)), 1), n)


def selective_accuracy(
    scores: npt.ArrayLike, failures: npt.ArrayLike, coverage: float = 0.8
) -> Array | float:
    """Accuracy on the ⌈coverage·n⌉ lowest-score items (expected value over tied orders)."""
    s, f, single = _as_2d(scores, failures)
    k = coverage_count(s.shape[1], coverage)
    cum = expected_cumulative_errors(s, f)
    return _out(1.0 - risk_at(cum, k), single)


def risk_coverage_curve(
    scores: npt.ArrayLike, failures: npt.ArrayLike, points: int = 101
) -> list[list[float]]:
    """At most ``points`` [coverage, selective risk] pairs, coverage from 1/n up to 1."""
    s, f, _ = _as_2d(scores, failures)
    n = s.shape[1]
    if n == 0:
        return []
    cum = expected_cumulative_errors(s[:1], f[:1])[0]
    ks = np.unique(np.linspace(1, n, num=min(points, n)).round().astype(int))
    return [[round(k / n, 6), round(float(cum[k - 1] / k), 6)] for k in ks]


def ece_bins(
    confidence: npt.ArrayLike, correct: npt.ArrayLike, n_bins: int = 10
) -> tuple[Array | float, list[dict[str, float | int | None]]]:
    """Expected calibration error with ``n_bins`` equal-width bins on [0, 1], and the
    reliability table of the first row.

    ECE = Σ_b (n_b / n) · |accuracy_b − mean confidence_b|. A confidence of exactly 1 falls in
    the last bin; bin b holds lo ≤ c < hi.
    """
    c, y, single = _as_2d(confidence, correct)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.floor(c * n_bins).astype(int), 0, n_bins - 1)
    n = c.shape[1]
    total = np.zeros(c.shape[0])
    table: list[dict[str, float | int | None]] = []
    for b in range(n_bins):
        mask = which == b
        count = mask.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            conf = np.where(mask, c, 0.0).sum(axis=1) / count
            acc = np.where(mask, y, 0.0).sum(axis=1) / count
        gap = np.where(count > 0, np.abs(acc - conf), 0.0)
        total += count / n * gap
        table.append(
            {
                "lo": round(float(edges[b]), 6),
                "hi": round(float(edges[b + 1]), 6),
                "count": int(count[0]),
                "mean_confidence": None if count[0] == 0 else round(float(conf[0]), 6),
                "accuracy": None if count[0] == 0 else round(float(acc[0]), 6),
            }
        )
    return _out(total, single), table


def ece(confidence: npt.ArrayLike, correct: npt.ArrayLike, n_bins: int = 10) -> Array | float:
    """Expected calibration error (see :func:`ece_bins`)."""
    return ece_bins(confidence, correct, n_bins)[0]


def grouped_metrics(
    fails: Array, sizes: Array, k80: int
) -> tuple[Array, Array, Array, Array, Array]:
    """AUROC, AUPRC, PRR, AURC and selective accuracy at ``k80`` answered items, per row, from
    tie groups instead of items: ``fails[b, g]`` and ``sizes[b, g]`` are the failures and items
    of row ``b`` in the ``g``-th group of tied scores, groups in ascending score order (a group
    may be empty). The same quantities as the item-wise functions above, in sums over groups
    (AURC with harmonic numbers: inside a group the expected errors grow linearly), so the
    cost is per group, not per item; equal to the item-wise values up to rounding (a test
    checks 1e-12).
    """
    a = fails
    w = sizes
    c = w - a
    n = float(w[0].sum()) if w.shape[0] else 0.0
    pos = a.sum(axis=1)
    neg = n - pos
    c_before = np.cumsum(c, axis=1) - c
    with np.errstate(invalid="ignore", divide="ignore"):
        auroc_v = (a * (c_before + 0.5 * c)).sum(axis=1) / (pos * neg)
    auroc_v[(pos == 0) | (neg == 0)] = np.nan
    # Average precision, groups from the highest score down.
    tp = np.cumsum(a[:, ::-1], axis=1)
    k = np.cumsum(w[:, ::-1], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        steps = np.where(a[:, ::-1] > 0, a[:, ::-1] * tp / np.maximum(k, 1.0), 0.0)
        auprc_v = steps.sum(axis=1) / pos
    auprc_v[pos == 0] = np.nan
    # Risk–coverage: a group answered after s items with e errors before it adds
    # Σ_{j=1..m} (e + j·a/m) / (s + j) = e·ΔH + a − (a·s/m)·ΔH, ΔH = H(s+m) − H(s).
    s = np.cumsum(w, axis=1) - w
    e = np.cumsum(a, axis=1) - a
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, int(n) + 1))])
    dh = harmonic[(s + w).astype(np.int64)] - harmonic[s.astype(np.int64)]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(w > 0, a / np.maximum(w, 1.0), 0.0)
    aurc_v = (e * dh + a - share * s * dh).sum(axis=1) / n
    rand = pos / n
    # The oracle answers the n − pos successes first: Σ_{k>n−pos} (k − (n − pos)) / k / n.
    rest = (n - pos).astype(np.int64)
    oracle = (pos - (n - pos) * (harmonic[int(n)] - harmonic[rest])) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        prr_v = (rand - aurc_v) / (rand - oracle)
    prr_v[(pos == 0) | (pos == n)] = np.nan
    inside = (s < k80) & (s + w >= k80) & (w > 0)
    cum80 = np.where(inside, e + (k80 - s) * share, 0.0).sum(axis=1)
    sel_v = 1.0 - cum80 / k80
    return auroc_v, auprc_v, prr_v, aurc_v, sel_v
