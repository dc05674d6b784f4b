"""The abstention rule: answer iff score ≤ τ, and how τ is chosen for a target coverage.

This module owns :func:`abstain` (the rule), :data:`DEFAULT_TAU` (the fixed default threshold)
and :func:`coverage_threshold` (τ from a target coverage by a quantile rule).

With the default score SUA = S − λH and τ = 0, the model abstains exactly when SUA > 0, i.e.
when it is more sensitive to meaning-preserving rewrites than it is uncertain (S > λH). On our
label sets S is two orders of magnitude smaller than H, so that rule abstains on nothing; the
run then says so (``abstention.note`` in summary.json) and any other score can be chosen with
``--abstain-on``.

NaN scores (a score that could not be computed) are treated as +inf: such an item always
abstains. No risk guarantee is implied by any of these rules; guarantees come only from a
calibration procedure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: The fixed threshold used when neither τ nor a coverage is given: abstain iff SUA > 0.
DEFAULT_TAU = 0.0

#: Scores with a natural default threshold (τ = 0): SUA > 0 means S > λH, the paper's rule;
#: sua_norm > 0 means S ranks higher in the run than λ·H does. Every other score needs an
#: explicit --tau or --coverage.
DEFAULT_TAUS = {"sua": 0.0, "sua_pos": 0.0, "sua_norm": 0.0}

# Relative slack when rounding coverage·n up, so that e.g. 0.7·10 = 7.000000000000001 gives 7.
_CEIL_SLACK = 1e-9


def coverage_threshold(scores: Sequence[float], coverage: float) -> float:
    """The threshold τ that answers a target share of items (the quantile rule).

    Rule: sort the scores ascending (NaN counted as +inf), let m = ⌈coverage·n⌉ (computed with
    a 1e-9 relative slack against floating-point noise, and at least 1), and return τ = the
    m-th smallest score. Items with score ≤ τ are answered, so every item tied with τ is
    answered too: ties may push the achieved coverage *above* the target. ``coverage = 1``
    gives τ = the largest score. If the m-th smallest score is a NaN (the target reaches into
    items whose score is missing) τ is +inf; those NaN items still abstain under
    :func:`abstain`, so the achieved coverage is then below the target.

    Args:
        scores: One score per item (higher = more suspicious).
        coverage: Target share of items to answer, in (0, 1].

    Returns:
        τ, to be used with :func:`abstain`.

    Raises:
        ValueError: If ``scores`` is empty or ``coverage`` is not in (0, 1].
    """
    try:
        cov = float(coverage)
    except (TypeError, ValueError):
        cov = math.nan
    if not 0.0 < cov <= 1.0:
        raise ValueError(f"coverage must be in (0, 1], got {coverage!r}")
    arr = np.asarray(scores, dtype=np.float64).reshape(-1)
    n = arr.size
    if n == 0:
        raise ValueError("cannot choose a coverage threshold from zero scores")
    arr = np.where(np.isnan(arr), np.inf, arr)
    arr.sort()
    target = cov * n
    m = math.ceil(target - _CEIL_SLACK * max(1.0, target))
    m = min(max(m, 1), n)
    return float(arr[m - 1])


def abstain(score: float, tau: float) -> bool:
    """The abstention rule: abstain iff ``score > tau``.

    Args:
        score: The item's score (higher = more suspicious); NaN always abstains.
        tau: The threshold.

    Returns:
        ``True`` to abstain, ``False`` to answer.

    Raises:
        ValueError: If ``tau`` is NaN (a NaN threshold would silently answer everything).
    """
    if math.isnan(tau):
        raise ValueError("tau must not be NaN")
    if math.isnan(score):
        return True
    return bool(score > tau)
