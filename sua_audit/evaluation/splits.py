"""Seeded validation / calibration / test splits of the evaluated items.

Validation chooses λ (``--lambda auto``) and the temperature of ``entropy_temp``; calibration
chooses the abstention threshold τ (``--target-risk``); every reported metric is computed on the
test split, the rest. Without either option there is no split: all items are test items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Shares of the items held out when a split is needed.
VALIDATION_SHARE = 0.3
CALIBRATION_SHARE = 0.3


@dataclass(frozen=True)
class Split:
    """Index arrays (into the evaluated items) of the three parts."""

    validation: list[int]
    calibration: list[int]
    test: list[int]


def make_split(n: int, *, seed: int, validation: bool, calibration: bool) -> Split:
    """Permute ``0..n-1`` with ``seed`` and cut off the parts asked for (rounded down).

    Each held-out part keeps at least one item when asked for and ``n >= 3``; the test part
    always keeps at least one item when ``n >= 1``.
    """
    order = np.random.default_rng(np.random.SeedSequence([seed, 0x5E1])).permutation(n)
    n_val = int(n * VALIDATION_SHARE) if validation else 0
    n_cal = int(n * CALIBRATION_SHARE) if calibration else 0
    if n >= 3:
        n_val = max(n_val, 1) if validation else 0
        n_cal = max(n_cal, 1) if calibration else 0
    while n_val + n_cal >= n and (n_val or n_cal):
        if n_val >= n_cal and n_val:
            n_val -= 1
        else:
            n_cal -= 1
    val = sorted(int(i) for i in order[:n_val])
    cal = sorted(int(i) for i in order[n_val : n_val + n_cal])
    test = sorted(int(i) for i in order[n_val + n_cal :])
    return Split(val, cal, test)
