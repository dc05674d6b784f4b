"""Paired statistics for the release gate's [baseline] checks.

A baseline check limits the change of a metric between a baseline run and the run under test
(``drop = baseline − run``, ``rise = run − baseline``). Where the metric is a mean of per-item
values (accuracy is the mean of ``correct``, mean_sua the mean of ``sua`` ...), both runs hold
those values in their ``results.jsonl`` and the items pair up by ``id``. The change is then the
mean of per-item differences ``d_i`` and its uncertainty comes from a seeded paired bootstrap:
resample the paired items with replacement, recompute the mean difference, read the
percentiles.

The gate's decision rules (``[options] baseline_test``):

- ``"significant"`` (default): fail when the change is above its limit *and* the one-sided test
  of H0 "change ≤ limit" rejects at level α: the α-percentile of the bootstrap distribution
  (the lower end of a one-sided 1 − α interval) is above the limit;
- ``"upper"``: fail when the (1 − α)-percentile (the upper end) is above the limit: the data
  cannot rule out a change beyond the limit;
- ``"point"``: compare the point values only.

The two ends together form a two-sided ``1 − 2α`` interval (90% at α = 0.05); that is the CI
the gate prints. For binary per-item values the gate also reports the exact one-sided McNemar
p-value (a binomial test on the discordant pairs) of H0 "no change in that direction"; it is
information only: the decision against a non-zero limit always comes from the bootstrap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sua_audit.numbers import sig
from sua_audit.results import typed_rows
from sua_audit.schema import MULTI_ANSWER, ResultRow

Direction = Literal["drop", "rise"]
Rule = Literal["significant", "upper", "point"]

RULES: tuple[str, ...] = ("significant", "upper", "point")
DEFAULT_RULE: Rule = "significant"
DEFAULT_ALPHA = 0.05
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0

#: Bootstrap resamples are drawn in blocks of at most this many indices (memory bound).
_BLOCK_CELLS = 2_000_000
_EPS = 1e-12


# ---------------------------------------------------------------------------------------------
# Per-item values of a metric.


def _scored(row: ResultRow) -> bool:
    return (row.status or "ok") == "ok"


def _graded(row: ResultRow) -> bool:
    return _scored(row) and isinstance(row.correct, bool)


def _accuracy(row: ResultRow) -> float | None:
    return float(bool(row.correct)) if _graded(row) else None


def _robust(row: ResultRow) -> float | None:
    if not _graded(row):
        return None
    variants = [v for v in row.variants or () if MULTI_ANSWER not in (v.flags or ())]
    return float(bool(row.correct) and all(v.correct is True for v in variants))


def _score(name: str) -> Callable[[ResultRow], float | None]:
    def value(row: ResultRow) -> float | None:
        if not _scored(row):
            return None
        x = getattr(row, name)
        if x is None or isinstance(x, bool):
            return None
        x = float(x)
        return x if math.isfinite(x) else None

    return value


def _flag(name: str) -> Callable[[ResultRow], float | None]:
    def value(row: ResultRow) -> float | None:
        x = getattr(row, name)
        return float(x) if _scored(row) and isinstance(x, bool) else None

    return value


def _failed(row: ResultRow) -> float | None:
    return float(row.status == "failed")


@dataclass(frozen=True)
class ItemMetric:
    """How to read one metric's per-item value from a results.jsonl row (typed)."""

    value: Callable[[ResultRow], float | None]
    """The item's value, ``None`` when the item does not count (unscored, ungraded)."""
    binary: bool
    field: str
    """The row field it reads, for messages."""
    counts: str
    """Which items count, for messages ("graded", "scored", "all")."""


#: Metrics whose run value is the mean of a per-item value; the others are compared as points.
ITEM_METRICS: dict[str, ItemMetric] = {
    "accuracy": ItemMetric(_accuracy, True, "correct", "graded"),
    "robust_accuracy": ItemMetric(_robust, True, "correct", "graded"),
    "mean_sua": ItemMetric(_score("sua"), False, "sua", "scored"),
    "mean_sua_pos": ItemMetric(_score("sua_pos"), False, "sua_pos", "scored"),
    "mean_sensitivity": ItemMetric(_score("sensitivity"), False, "sensitivity", "scored"),
    "mean_entropy": ItemMetric(_score("entropy"), False, "entropy", "scored"),
    "mean_flip_rate": ItemMetric(_score("flip_rate"), False, "flip_rate", "scored"),
    "confident_flip_rate": ItemMetric(_flag("confident_flip"), True, "confident_flip", "scored"),
    "failure_rate": ItemMetric(_failed, True, "status", "all"),
    "abstention_rate": ItemMetric(_flag("abstain"), True, "abstain", "scored"),
}


class NoPairs(Exception):
    """The runs cannot be paired on this metric; ``str()`` says why (one line)."""

    def __init__(self, message: str, *, disjoint: bool = False) -> None:
        super().__init__(message)
        self.disjoint = disjoint
        """True when the runs share no item id at all (different datasets)."""


def item_values(rows: Iterable[ResultRow | dict[str, Any]], metric: str) -> dict[str, float]:
    """``{id: value}`` of ``metric`` over the rows where the item counts."""
    spec = ITEM_METRICS[metric]
    out: dict[str, float] = {}
    for row in typed_rows(rows):
        value = spec.value(row)
        if value is not None:
            out[row.id] = value
    return out


def paired_values(
    baseline_rows: list[ResultRow] | list[dict[str, Any]],
    run_rows: list[ResultRow] | list[dict[str, Any]],
    metric: str,
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Item ids counted in both runs (in the run's order) and their baseline and run values.

    Raises:
        NoPairs: the runs share no item id, or no item counts in both (message says which).
    """
    spec = ITEM_METRICS[metric]
    baseline_rows, run_rows = typed_rows(baseline_rows), typed_rows(run_rows)
    base_ids = {row.id for row in baseline_rows}
    run_ids = [row.id for row in run_rows]
    if not base_ids.intersection(run_ids):
        raise NoPairs(
            "the run and the baseline share no item id (different datasets?); "
            "a baseline must be a run on the same dataset",
            disjoint=True,
        )
    before, after = item_values(baseline_rows, metric), item_values(run_rows, metric)
    if not before or not after:
        which = (
            "either run"
            if not before and not after
            else "the baseline"
            if not before
            else "the run"
        )
        kind = "" if spec.counts == "all" else f"{spec.counts} "
        raise NoPairs(
            f"no {kind}item with a per-item '{spec.field}' value in {which}"
            + (" (a run older than that field?)" if spec.field == "confident_flip" else "")
        )
    ids = [i for i in dict.fromkeys(run_ids) if i in before and i in after]
    if not ids:
        raise NoPairs(f"no item is {spec.counts} in both runs")
    return (
        ids,
        np.array([before[i] for i in ids], dtype=float),
        np.array([after[i] for i in ids], dtype=float),
    )


# ---------------------------------------------------------------------------------------------
# The test.


@dataclass(frozen=True)
class PairedChange:
    """A paired estimate of a change between two runs."""

    direction: Direction
    n: int
    """Paired items."""
    before: float
    """Baseline mean over the paired items."""
    after: float
    """Run mean over the paired items."""
    change: float
    """``before − after`` for a drop, ``after − before`` for a rise."""
    lo: float
    """α-percentile of the bootstrap distribution: the one-sided (1 − α) lower bound."""
    hi: float
    """(1 − α)-percentile: the one-sided (1 − α) upper bound."""
    alpha: float
    resamples: int
    seed: int
    worse: int | None = None
    """Binary values: pairs that moved in the tested direction (e.g. right → wrong for a drop)."""
    better: int | None = None
    """Binary values: pairs that moved the other way."""
    mcnemar_p: float | None = None
    """Binary values: exact one-sided McNemar p-value of H0 "no change in this direction"."""

    @property
    def level(self) -> float:
        """Coverage of the two-sided interval ``[lo, hi]``: 1 − 2α."""
        return 1.0 - 2.0 * self.alpha


def mcnemar_exact(worse: int, better: int) -> float:
    """Exact one-sided McNemar p-value: P(X ≥ worse) for X ~ Binomial(worse + better, 1/2).

    The probability, if changes in either direction were equally likely, of at least ``worse``
    of the ``worse + better`` discordant pairs moving the worse way. 1 with no discordant pair.
    """
    if worse < 0 or better < 0:
        raise ValueError("discordant counts must be 0 or more")
    n = worse + better
    if n == 0:
        return 1.0
    tail, term = 0, 1  # term = C(n, k), walked from k = 0 upwards
    for k in range(n + 1):
        if k >= worse:
            tail += term
        term = term * (n - k) // (k + 1)
    return min(1.0, tail / 2**n)


def _bootstrap_means(d: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Means of ``resamples`` resamples of ``d`` drawn with replacement (seeded)."""
    n = len(d)
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // n)
    means = np.empty(resamples)
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = d[idx].mean(axis=1)
    return means


def paired_change(
    before: np.ndarray | list[float],
    after: np.ndarray | list[float],
    direction: Direction,
    *,
    alpha: float = DEFAULT_ALPHA,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    binary: bool | None = None,
) -> PairedChange:
    """Paired bootstrap of the change ``direction`` from ``before`` (baseline) to ``after``.

    ``before[i]`` and ``after[i]`` are the same item in the two runs. ``binary`` (default:
    detected, every value 0 or 1) adds the discordant counts and the exact McNemar p-value.
    """
    b = np.asarray(before, dtype=float)
    a = np.asarray(after, dtype=float)
    if b.shape != a.shape or b.ndim != 1 or len(b) == 0:
        raise ValueError("before and after must be equal-length, non-empty 1-d arrays")
    if not 0 < alpha < 0.5:
        raise ValueError("alpha must be in (0, 0.5)")
    if direction not in ("drop", "rise"):
        raise ValueError(f"direction must be 'drop' or 'rise', not {direction!r}")
    d = b - a if direction == "drop" else a - b
    if np.ptp(d) == 0:  # every item changed alike: the bootstrap has nothing to resample
        means = np.full(1, d[0])
    else:
        means = _bootstrap_means(d, resamples, seed)
    lo, hi = (float(x) for x in np.quantile(means, [alpha, 1.0 - alpha]))
    if binary is None:
        binary = bool(np.all((b == 0) | (b == 1)) and np.all((a == 0) | (a == 1)))
    worse = better = None
    p = None
    if binary:
        worse, better = int(np.sum(d > 0)), int(np.sum(d < 0))
        p = mcnemar_exact(worse, better)
    return PairedChange(
        direction=direction,
        n=len(d),
        before=float(b.mean()),
        after=float(a.mean()),
        change=float(d.mean()),
        lo=lo,
        hi=hi,
        alpha=alpha,
        resamples=resamples,
        seed=seed,
        worse=worse,
        better=better,
        mcnemar_p=p,
    )


@dataclass(frozen=True)
class Verdict:
    fail: bool
    reason: str


def decide(change: PairedChange, limit: float, rule: Rule) -> Verdict:
    """Apply the decision ``rule`` to a paired change against ``limit``."""
    above = change.change > limit + _EPS
    if rule == "point":
        return Verdict(above, "above the limit" if above else "within the limit")
    if rule == "upper":
        if change.hi > limit + _EPS:
            return Verdict(True, "the CI's upper end is above the limit")
        return Verdict(False, "the CI's upper end is within the limit")
    if rule != "significant":
        raise ValueError(f"unknown rule {rule!r}")
    if not above:
        return Verdict(False, "within the limit")
    if change.lo > limit + _EPS:
        return Verdict(True, "significant")
    return Verdict(False, "above the limit but not significant")


def describe(metric: str, change: PairedChange, limit: float, verdict: Verdict) -> str:
    """The one-line message of a paired check (the gate prints it after PASS / FAIL)."""
    word = change.direction
    pct = f"{sig(100 * change.level)}%"
    text = (
        f"{metric} vs baseline: {word} {sig(change.change)} "
        f"[{pct} CI {sig(change.lo)}, {sig(change.hi)}] over {change.n} paired items "
        f"({sig(change.before)} → {sig(change.after)}), limit ≤ {sig(limit)}"
    )
    if change.mcnemar_p is not None:
        text += (
            f"; exact McNemar p {sig(change.mcnemar_p)} for any {word} "
            f"({change.worse} vs {change.better} discordant)"
        )
    return f"{text}: {verdict.reason} → {'FAIL' if verdict.fail else 'PASS'}"
