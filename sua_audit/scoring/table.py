"""Run-level scores and diagnostics: what needs every item of a run at once.

Per-item scores (:mod:`sua_audit.scoring.item`) are computed one item at a time. Three things
need the whole run:

* the scale-free SUA, ``sua_norm`` = N(S) − λ·N(H), where N normalises S and H *within the
  run* (``rank``: mid-rank / n, in (0, 1]; ``z``: (x − mean) / sd) so that neither dominates by
  its units. On our measurements S is about 0.003 nats and H about 0.6, so the paper's S − λH at
  λ = 1 is, in ranking, −H;
* the diagnostics that say so in numbers: mean S, mean H, their ratio and the Spearman rank
  correlation of SUA with −H (:func:`diagnostics`);
* the plain words for λ of either sign (:func:`lambda_meaning`).

All functions are pure and use numpy only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from sua_audit.numbers import fixed, short, sig, times

NORMALIZE_METHODS = ("rank", "z", "none")
DEFAULT_NORMALIZE = "rank"

#: Above this Spearman correlation of SUA with −H, SUA is reported as acting as −entropy.
NEGATIVE_ENTROPY_WARNING = 0.95


def normalize(values: npt.ArrayLike, method: str) -> np.ndarray:
    """Normalise one score across a run's items (NaN stays NaN and is left out of the fit).

    * ``rank``: average rank (ties share their mean rank) divided by the number of finite
      values, so the result lies in (0, 1] whatever the score's units;
    * ``z``: (x − mean) / standard deviation (population sd); 0 for every item when the sd is 0;
    * ``none``: the values unchanged.
    """
    if method not in NORMALIZE_METHODS:
        raise ValueError(f"normalize must be one of {', '.join(NORMALIZE_METHODS)}, got {method!r}")
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if method == "none":
        return x.copy()
    out = np.full(x.shape, np.nan)
    ok = np.isfinite(x)
    v = x[ok]
    if v.size == 0:
        return out
    if method == "rank":
        out[ok] = _average_ranks(v) / v.size
    else:
        sd = float(v.std())
        out[ok] = (v - v.mean()) / sd if sd > 0 else 0.0
    return out


def _average_ranks(v: np.ndarray) -> np.ndarray:
    """1-based ranks, ties given the mean of the ranks they span."""
    order = np.argsort(v, kind="mergesort")
    sorted_v = v[order]
    ranks = np.empty(v.size, dtype=np.float64)
    # Boundaries of runs of equal values.
    starts = np.flatnonzero(np.r_[True, sorted_v[1:] != sorted_v[:-1]])
    ends = np.r_[starts[1:], v.size]
    for s, e in zip(starts, ends, strict=True):
        ranks[order[s:e]] = (s + 1 + e) / 2.0
    return ranks


def sua_normalized(
    sensitivity: npt.ArrayLike, entropy: npt.ArrayLike, lam: float, method: str
) -> np.ndarray:
    """``sua_norm`` = N(S) − λ·N(H), both normalised within the run by ``method``."""
    return normalize(sensitivity, method) - lam * normalize(entropy, method)


def spearman(a: npt.ArrayLike, b: npt.ArrayLike) -> float | None:
    """Spearman's rank correlation of two equal-length vectors (finite pairs only).

    ``None`` when fewer than 3 finite pairs or when either side is constant (undefined).
    """
    x = np.asarray(a, dtype=np.float64).reshape(-1)
    y = np.asarray(b, dtype=np.float64).reshape(-1)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3:
        return None
    rx, ry = _average_ranks(x), _average_ranks(y)
    sx, sy = rx.std(), ry.std()
    if sx == 0 or sy == 0:
        return None
    return float(np.mean((rx - rx.mean()) * (ry - ry.mean())) / (sx * sy))


def lambda_meaning(lam: float) -> str:
    """What a λ of this sign says about where the failures are, in one sentence."""
    if lam > 0:
        return (
            f"λ = {short(lam)} > 0: SUA = S − {short(lam)}·H is high when the answer moves under rewrites "
            "while the model is confident (unstable but confident, the paper's reading)."
        )
    if lam < 0:
        return (
            f"λ = {short(lam)} < 0: SUA = S + {short(-lam)}·H is high when the answer moves under rewrites "
            "AND the model is uncertain: failures here are unstable and uncertain, not "
            "confidently unstable."
        )
    return "λ = 0: SUA is the sensitivity S alone; the model's uncertainty adds nothing."


def diagnostics(
    sensitivity: Sequence[float] | npt.ArrayLike,
    entropy: Sequence[float] | npt.ArrayLike,
    sua: Sequence[float] | npt.ArrayLike,
    *,
    lam: float,
) -> dict[str, Any]:
    """Mean S, mean H, S/H, Spearman(SUA, −H) and, when SUA ranks like −H, a warning.

    The warning fires when the rank correlation of SUA with −H is above
    :data:`NEGATIVE_ENTROPY_WARNING` (0.95): SUA then carries almost no information beyond the
    model's (negated) uncertainty, and it says what to do instead.
    """
    s = np.asarray(sensitivity, dtype=np.float64).reshape(-1)
    h = np.asarray(entropy, dtype=np.float64).reshape(-1)
    u = np.asarray(sua, dtype=np.float64).reshape(-1)
    ok = np.isfinite(s) & np.isfinite(h)
    mean_s = float(s[ok].mean()) if ok.any() else None
    mean_h = float(h[ok].mean()) if ok.any() else None
    ratio = mean_s / mean_h if mean_s is not None and mean_h else None
    rho = spearman(u, -h)
    warning = None
    if rho is not None and rho > NEGATIVE_ENTROPY_WARNING:
        warning = (
            f"SUA is acting as negative entropy here (Spearman(SUA, −H) = {fixed(rho)}): mean S "
            f"{sig(mean_s)} is {_times(ratio, lam)} λ·mean H, so S − λH ranks items by confidence "
            "alone. Use sua_norm (S and H on one scale, --normalize rank), --lambda auto, or "
            "abstain on sensitivity, flip_rate or combined (--abstain-on)."
        )
    return {
        "n": int(ok.sum()),
        "mean_sensitivity": mean_s,
        "mean_entropy": mean_h,
        "ratio_s_to_h": ratio,
        "lambda": lam,
        "spearman_sua_neg_entropy": rho,
        "warning": warning,
    }


def _times(ratio: float | None, lam: float) -> str:
    if ratio is None or lam == 0:
        return "not comparable with"
    return times(ratio / abs(lam))


def finite_or_none(x: float) -> float | None:
    """``x`` when finite, else ``None`` (for JSON)."""
    return float(x) if math.isfinite(x) else None
