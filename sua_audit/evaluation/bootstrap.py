"""Seeded bootstrap: resample indices once, evaluate every metric on the same resamples.

Sharing one ``(B, n)`` index matrix across scores and failure labels makes every comparison
*paired* (SUA and a baseline are judged on the same resampled items), which is what the paired
CI of "SUA minus the best baseline" needs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

#: Resamples used when none is given.
DEFAULT_BOOTSTRAP = 1000

#: Two-sided confidence level of every interval.
LEVEL = 0.95


#: Most resampled item slots (resamples × items) per metric before resamples are cut, and the
#: largest ``(B, n)`` matrix drawn in one block.
MAX_RESAMPLED_SLOTS = 20_000_000
#: Fewest resamples a large run is cut down to.
MIN_RESAMPLES = 200


def effective_resamples(n: int, bootstrap: int) -> int:
    """Resamples actually drawn for ``n`` items: ``bootstrap``, cut for very large runs.

    Memory is bounded by computing in blocks (:func:`resample_indices`); time is not: every
    metric sorts each resample, 90 (score, label, metric) triples of them. Runs above
    ``MAX_RESAMPLED_SLOTS / bootstrap`` items get ``max(MIN_RESAMPLES, MAX_RESAMPLED_SLOTS //
    n)`` resamples (200 at 100,000 items), and evaluation.json records the number used. With
    that many items the intervals are narrow and their Monte-Carlo error small either way.
    """
    if n <= 0:
        return bootstrap
    return min(bootstrap, max(MIN_RESAMPLES, MAX_RESAMPLED_SLOTS // n))


#: Resampled item slots per chunk when a run is too large for one ``(B, n)`` matrix.
CHUNK_SLOTS = 2_000_000


def resample_indices(n: int, bootstrap: int, seed: int) -> list[npt.NDArray[np.int64]]:
    """Row blocks of a ``(bootstrap, n)`` matrix of indices drawn with replacement (seeded).

    One block when the matrix is small (every run up to 20,000 items at 1000 resamples);
    otherwise blocks of about :data:`CHUNK_SLOTS` slots, drawn in order from the same seeded
    generator, so that metrics can be computed block by block in bounded memory.
    """
    return list(iter_resample_indices(n, bootstrap, seed))


def iter_resample_indices(n: int, bootstrap: int, seed: int) -> Iterator[npt.NDArray[np.int64]]:
    """The blocks of :func:`resample_indices`, drawn one at a time (same draws, same order)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5AA]))
    if not n:
        yield np.zeros((bootstrap, 0), np.int64)
        return
    if bootstrap * n <= MAX_RESAMPLED_SLOTS:
        yield rng.integers(0, n, size=(bootstrap, n))
        return
    rows = max(1, CHUNK_SLOTS // n)
    for start in range(0, bootstrap, rows):
        yield rng.integers(0, n, size=(min(rows, bootstrap - start), n))


#: Resampled item slots computed at once: a drawn block is worked through in row chunks of
#: about this size, so that the temporaries of the metrics stay small.
WORK_SLOTS = 1_000_000


def row_chunks(block: npt.NDArray[np.int64]) -> Iterator[npt.NDArray[np.int64]]:
    """A block of resamples in consecutive row chunks of about :data:`WORK_SLOTS` slots."""
    n = block.shape[1]
    rows = max(1, WORK_SLOTS // max(n, 1))
    for start in range(0, block.shape[0], rows):
        yield block[start : start + rows]


def resample_counts(chunk: npt.NDArray[np.int64], n: int) -> npt.NDArray[np.int64]:
    """How often each of ``n`` items is drawn in each resample (row) of ``chunk``."""
    rows = chunk.shape[0]
    offsets = (np.arange(rows, dtype=np.int64) * n)[:, None]
    return np.bincount((chunk + offsets).ravel(), minlength=rows * n).reshape(rows, n)


def sorted_resamples(
    order: npt.NDArray[np.int64], counts: npt.NDArray[np.int64]
) -> npt.NDArray[np.int64]:
    """Each resample's items in ascending score order, without sorting it.

    ``order`` sorts the items by score once; a resample in that order is every item repeated
    as often as it was drawn. Inside a group of tied scores the order differs from a sort of
    the resample itself, which no metric here depends on.
    """
    rows, n = counts.shape
    repeats = counts[:, order].ravel()
    return np.repeat(np.tile(order, rows), repeats).reshape(rows, n)


def per_resample(
    fn: Any, blocks: list[npt.NDArray[np.int64]], *arrays: npt.NDArray[Any]
) -> npt.NDArray[np.float64]:
    """``fn`` applied to the resampled ``arrays`` block by block: one value per resample."""
    out = [np.atleast_1d(np.asarray(fn(*(a[b] for a in arrays)), dtype=np.float64)) for b in blocks]
    return np.concatenate(out) if out else np.zeros(0)


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
