"""Seeded bootstrap: resample indices once, evaluate every metric on the same resamples.

Sharing one ``(B, n)`` index matrix across scores and failure labels makes every comparison
*paired* (SUA and a baseline are judged on the same resampled items), which is what the paired
CI of "SUA minus the best baseline" needs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

#: Resamples used when none is given.
DEFAULT_BOOTSTRAP = 1000

#: Two-sided confidence level of every interval.
LEVEL = 0.95


def resample_indices(n: int, bootstrap: int, seed: int) -> npt.NDArray[np.int64]:
    """A ``(bootstrap, n)`` matrix of indices drawn with replacement (seeded, reproducible)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5AA]))
    return rng.integers(0, n, size=(bootstrap, n)) if n else np.zeros((bootstrap, 0), np.int64)


def estimate(
    point: float | None, samples: npt.ArrayLike | None, reason: str = ""
) -> dict[str, Any]:
    """``{"value", "ci"}``: the point estimate and the percentile 95% interval of the finite
    resampled values (resamples where the metric is undefined, e.g. one class only, are left
    out). An undefined point estimate gives ``value: null``, ``ci: null`` and a ``reason``."""
    if point is None or not math.isfinite(point):
        return {"value": None, "ci": None, "reason": reason or "undefined on these items"}
    out: dict[str, Any] = {"value": round(float(point), 6), "ci": None}
    if samples is not None:
        arr = np.asarray(samples, dtype=np.float64).reshape(-1)
        arr = arr[np.isfinite(arr)]
        if arr.size:
            alpha = (1.0 - LEVEL) / 2
            lo, hi = np.quantile(arr, [alpha, 1.0 - alpha])
            out["ci"] = [round(float(lo), 6), round(float(hi), 6)]
    return out
