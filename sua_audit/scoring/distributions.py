"""Probability distributions over an item's output space: entropy and divergences.

This module owns the elementary quantities SUA is built from:

* :func:`entropy` — predictive entropy H(p) in nats, with 0·log 0 = 0;
* :func:`normalize_logprobs` — renormalise label log-probabilities into a distribution;
* the divergences D used by the sensitivity S = mean_k D(p_clean, p_k): :func:`kl` (smoothed),
  :func:`js` and :func:`tv`, reachable by name through :data:`DIVERGENCES` / :func:`divergence`.

Every function validates its inputs (1-D, finite, non-negative, summing to 1 within 1e-6, equal
lengths) and raises ``ValueError`` otherwise. All functions are pure.

Why the default divergence is Jensen–Shannon (:data:`DEFAULT_DIVERGENCE` = ``"js"``):

* it is symmetric, so "clean vs. perturbed" and "perturbed vs. clean" give the same S;
* it is finite without any smoothing — the mixture m = (p + q)/2 is positive wherever p or q is —
  which matters for QA, where the empirical cluster distributions of two variants often have
  disjoint supports (KL is infinite there unless smoothed, and the value then depends on ε);
* it is bounded by ln 2 ≈ 0.693 nats, the entropy of a fair binary distribution. Sharing H's
  *bound* does not put S on H's scale in practice: on our label sets mean S is about 0.003 nats
  and mean H about 0.6, so SUA = S − λH at λ = 1 ranks items like −H. The scale-free
  ``sua_norm`` (:mod:`sua_audit.scoring.table`) and ``--lambda auto`` exist for that reason.

Total variation is bounded by 1 and also needs no smoothing; KL is offered for comparison with
the paper and always uses additive smoothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

#: A 1-D vector of floats: a plain sequence or a numpy array.
FloatVector: TypeAlias = Sequence[float] | npt.NDArray[np.floating]

#: Tolerance on Σp = 1 when validating a probability vector.
SUM_TOLERANCE = 1e-6

#: The divergence used for S when none is chosen (see the module docstring for why).
DEFAULT_DIVERGENCE = "js"

_LN2 = math.log(2.0)


def _as_vector(x: FloatVector, name: str) -> npt.NDArray[np.float64]:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    return arr


def as_distribution(p: FloatVector, name: str = "p") -> npt.NDArray[np.float64]:
    """Validate ``p`` as a probability vector and return it as a float64 array.

    Args:
        p: The candidate probability vector.
        name: How to call it in error messages.

    Returns:
        ``p`` as a 1-D float64 array.

    Raises:
        ValueError: If ``p`` is empty, not 1-D, non-finite, negative somewhere, or does not
            sum to 1 within :data:`SUM_TOLERANCE`.
    """
    arr = _as_vector(p, name)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains a non-finite value: {arr.tolist()}")
    if np.any(arr < 0):
        raise ValueError(f"{name} contains a negative probability: {arr.tolist()}")
    total = float(arr.sum())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(f"{name} must sum to 1 (within {SUM_TOLERANCE}), sums to {total!r}")
    return arr


def _as_pair(
    p: FloatVector, q: FloatVector
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    a = as_distribution(p, "p")
    b = as_distribution(q, "q")
    if a.shape != b.shape:
        raise ValueError(f"p and q must have the same length, got {a.size} and {b.size}")
    return a, b


def _plogp_ratio(p: npt.NDArray[np.float64], q: npt.NDArray[np.float64]) -> float:
    """Σ p log(p/q) over the entries where p > 0 (0·log 0 = 0); q must be > 0 there."""
    mask = p > 0
    return float(np.sum(p[mask] * (np.log(p[mask]) - np.log(q[mask]))))


def entropy(p: FloatVector) -> float:
    """Shannon entropy of a probability vector, in nats.

    Args:
        p: Probabilities (non-negative, summing to 1 within 1e-6).

    Returns:
        H(p) = −Σ p log p, with 0·log 0 = 0; between 0 and log len(p).

    Raises:
        ValueError: If ``p`` is not a valid probability vector.
    """
    arr = as_distribution(p)
    nz = arr[arr > 0]
    h = float(-np.sum(nz * np.log(nz)))
    # Clamp rounding noise into the mathematically valid range [0, log |Y|].
    return min(max(h, 0.0), math.log(arr.size))


def normalize_logprobs(logprobs: FloatVector) -> npt.NDArray[np.float64]:
    """Renormalise label log-probabilities into a distribution (a stable softmax).

    Uses log-sum-exp: p_i = exp(l_i − max l) / Σ_j exp(l_j − max l). Entries of −inf get
    probability 0. If *every* entry is −inf (no label received any mass, e.g. a backend returned
    nothing) the relative probabilities are undefined and the uniform distribution is returned.

    Args:
        logprobs: One (possibly unnormalised) log-probability per label.

    Returns:
        A float64 probability vector of the same length.

    Raises:
        ValueError: If ``logprobs`` is empty, not 1-D, or contains NaN or +inf.
    """
    arr = _as_vector(logprobs, "logprobs")
    if np.any(np.isnan(arr)) or np.any(arr == np.inf):
        raise ValueError(f"logprobs must be finite or -inf, got {arr.tolist()}")
    hi = float(arr.max())
    if hi == -math.inf:
        return np.full(arr.size, 1.0 / arr.size)
    w = np.exp(arr - hi)
    out: npt.NDArray[np.float64] = w / w.sum()
    return out


def kl(p: FloatVector, q: FloatVector, *, smoothing: float = 1e-3) -> float:
    """Kullback–Leibler divergence KL(p‖q) in nats, after additive smoothing of both arguments.

    Both distributions are smoothed as p' = (p + ε) / (1 + |Y|ε) before computing
    Σ p' log(p'/q'). Smoothing is what keeps KL finite when supports are disjoint (common for
    empirical QA cluster distributions); the result depends on ε.

    Args:
        p: First probability vector.
        q: Second probability vector, same length.
        smoothing: ε > 0, the additive pseudo-probability given to every outcome.

    Returns:
        KL(p'‖q') ≥ 0, always finite.

    Raises:
        ValueError: If an input is not a valid distribution, the lengths differ, or
            ``smoothing`` is not a finite positive number.
    """
    a, b = _as_pair(p, q)
    if not (math.isfinite(smoothing) and smoothing > 0):
        raise ValueError(f"smoothing must be a finite number > 0, got {smoothing!r}")
    denom = 1.0 + a.size * smoothing
    a = (a + smoothing) / denom
    b = (b + smoothing) / denom
    return max(_plogp_ratio(a, b), 0.0)


def js(p: FloatVector, q: FloatVector) -> float:
    """Jensen–Shannon divergence in nats: ½KL(p‖m) + ½KL(q‖m) with m = (p + q)/2.

    No smoothing is needed: m > 0 wherever p > 0 or q > 0.

    Args:
        p: First probability vector.
        q: Second probability vector, same length.

    Returns:
        JS(p, q), symmetric, between 0 and ln 2.

    Raises:
        ValueError: If an input is not a valid distribution or the lengths differ.
    """
    a, b = _as_pair(p, q)
    m = 0.5 * (a + b)
    value = 0.5 * _plogp_ratio(a, m) + 0.5 * _plogp_ratio(b, m)
    return min(max(value, 0.0), _LN2)


def tv(p: FloatVector, q: FloatVector) -> float:
    """Total variation distance ½Σ|p − q|.

    Args:
        p: First probability vector.
        q: Second probability vector, same length.

    Returns:
        TV(p, q), symmetric, between 0 and 1.

    Raises:
        ValueError: If an input is not a valid distribution or the lengths differ.
    """
    a, b = _as_pair(p, q)
    return min(max(0.5 * float(np.sum(np.abs(a - b))), 0.0), 1.0)


def _kl_default(p: FloatVector, q: FloatVector) -> float:
    return kl(p, q)


#: The available divergences by name; each takes (p, q) and returns a float. ``"kl"`` here uses
#: the default smoothing; call :func:`divergence` to choose ε.
DIVERGENCES: dict[str, Callable[[FloatVector, FloatVector], float]] = {
    "kl": _kl_default,
    "js": js,
    "tv": tv,
}


def check_divergence(name: str) -> None:
    """Raise ``ValueError`` naming the valid choices if ``name`` is not a known divergence.

    Args:
        name: A divergence name.

    Raises:
        ValueError: If ``name`` is not a key of :data:`DIVERGENCES`.
    """
    if name not in DIVERGENCES:
        choices = ", ".join(sorted(DIVERGENCES))
        raise ValueError(f"unknown divergence {name!r}; choose one of: {choices}")


def divergence(name: str, p: FloatVector, q: FloatVector, *, smoothing: float = 1e-3) -> float:
    """Compute the divergence called ``name`` between ``p`` and ``q``.

    Args:
        name: ``"kl"``, ``"js"`` or ``"tv"``.
        p: First probability vector (the clean distribution, for sensitivity).
        q: Second probability vector, same length.
        smoothing: Additive smoothing ε, used by ``"kl"`` only (JS and TV need none).

    Returns:
        D(p, q).

    Raises:
        ValueError: If ``name`` is unknown (the message lists the valid choices), or the
            inputs are invalid.
    """
    check_divergence(name)
    if name == "kl":
        return kl(p, q, smoothing=smoothing)
    return DIVERGENCES[name](p, q)
