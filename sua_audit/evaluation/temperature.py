"""Temperature-scaled entropy (``entropy_temp``): H of p^(1/T) renormalised, T fitted honestly.

T is chosen from a fixed log-spaced grid by the lowest negative log-likelihood on held-out
items, one T per task family (``qa`` and the label tasks):

* label tasks (classification, NLI): NLL of the gold label set, −log Σ_{y ∈ gold} p_T(y)
  (ordinary temperature scaling of the label distribution);
* QA: the answer distribution is over sampled answer clusters, which need not contain the gold
  answer, so T is fitted to the correctness of the clean prediction: binary NLL of
  "correct" with probability max p_T.

With a validation split, T is fitted on it. Without one, T is *cross-fitted*: the evaluated
items are cut into 5 seeded folds and each fold's entropy_temp uses a T fitted on the other four,
so no item's own label ever touches its score.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

GRID = np.exp(np.linspace(np.log(0.05), np.log(20.0), 61))
FOLDS = 5
_EPS = 1e-9


def scale(p: npt.ArrayLike, t: float) -> np.ndarray:
    """p^(1/T), renormalised (zeros stay zero)."""
    arr = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logp = np.where(arr > 0, np.log(np.where(arr > 0, arr, 1.0)), -np.inf) / t
    logp -= logp.max()
    q = np.exp(logp)
    return q / q.sum()


def entropy_at(p: npt.ArrayLike, t: float) -> float:
    """Entropy (nats) of the temperature-scaled distribution."""
    q = scale(p, t)
    nz = q[q > 0]
    return float(max(0.0, -np.sum(nz * np.log(nz))))


def _item_losses(p: np.ndarray, gold: np.ndarray | None, correct: bool) -> np.ndarray:
    """One item's NLL at every grid temperature."""
    arr = np.asarray(p, dtype=np.float64)
    logp = np.where(arr > 0, np.log(np.where(arr > 0, arr, 1.0)), -np.inf)
    z = logp[None, :] / GRID[:, None]
    z -= z.max(axis=1, keepdims=True)
    q = np.exp(z)
    q /= q.sum(axis=1, keepdims=True)
    if gold is not None:
        return np.asarray(-np.log(np.maximum(q[:, gold].sum(axis=1), _EPS)))
    c = np.clip(q.max(axis=1), _EPS, 1 - _EPS)
    return np.asarray(-np.log(c if correct else 1 - c))


def loss_table(
    dists: Sequence[np.ndarray], gold: Sequence[np.ndarray | None], correct: Sequence[bool]
) -> np.ndarray:
    """``(n, len(GRID))``: every item's NLL at every grid temperature."""
    if not dists:
        return np.zeros((0, GRID.size))
    return np.stack([_item_losses(p, g, ok) for p, g, ok in zip(dists, gold, correct, strict=True)])


def fit(
    dists: Sequence[np.ndarray], gold: Sequence[np.ndarray | None], correct: Sequence[bool]
) -> float:
    """The grid T with the lowest mean NLL (1.0 when there are no items)."""
    return _best(loss_table(dists, gold, correct))


def _best(losses: np.ndarray) -> float:
    if losses.shape[0] == 0:
        return 1.0
    return float(GRID[int(np.argmin(losses.sum(axis=0)))])


def fit_by_family(
    families: Sequence[str],
    dists: Sequence[np.ndarray],
    gold: Sequence[np.ndarray | None],
    correct: Sequence[bool],
    fit_idx: Sequence[int],
    losses: np.ndarray | None = None,
) -> dict[str, float]:
    """One T per task family, fitted on the items ``fit_idx``."""
    if losses is None:
        losses = loss_table(dists, gold, correct)
    out: dict[str, float] = {}
    for fam in sorted(set(families)):
        idx = [i for i in fit_idx if families[i] == fam]
        out[fam] = _best(losses[idx])
    return out


def cross_fit(
    families: Sequence[str],
    dists: Sequence[np.ndarray],
    gold: Sequence[np.ndarray | None],
    correct: Sequence[bool],
    items: Sequence[int],
    seed: int,
) -> tuple[dict[int, float], list[dict[str, float]]]:
    """Per item in ``items``: the T fitted on the other folds; and each fold's T per family."""
    order = np.random.default_rng(np.random.SeedSequence([seed, 0x7E7])).permutation(len(items))
    folds = [
        [items[int(j)] for j in order[k::FOLDS]] for k in range(min(FOLDS, max(len(items), 1)))
    ]
    per_item: dict[int, float] = {}
    fitted: list[dict[str, float]] = []
    losses = loss_table(dists, gold, correct)
    for k, fold in enumerate(folds):
        rest = [i for j, f in enumerate(folds) if j != k for i in f]
        ts = fit_by_family(families, dists, gold, correct, rest, losses)
        fitted.append(ts)
        for i in fold:
            per_item[i] = ts.get(families[i], 1.0)
    return per_item, fitted
