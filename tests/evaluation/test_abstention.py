"""Learn-then-Test abstention: the guarantee checked by simulation, and its edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sua_audit.evaluation.abstention import (
    abstention_report,
    calibrate,
    clopper_pearson_upper,
    min_certifiable,
)

SEEDS = 500
ALPHA, DELTA = 0.2, 0.1
# Monte-Carlo slack: three standard errors of a frequency δ over SEEDS runs.
MARGIN = 3 * math.sqrt(DELTA * (1 - DELTA) / SEEDS)


def test_clopper_pearson_by_hand() -> None:
    # Zero errors in m: the bound solves (1 − p)^m = δ.
    assert clopper_pearson_upper(0, 10, 0.1)[()] == pytest.approx(1 - 0.1 ** (1 / 10))
    assert clopper_pearson_upper(3, 3, 0.1)[()] == 1.0
    assert clopper_pearson_upper(0, 0, 0.1)[()] == 1.0
    assert min_certifiable(0.2, 0.1) == 11  # 0.8^11 ≈ 0.086 ≤ 0.1 < 0.8^10


def _simulate(fail_prob, n_cal: int = 400):
    """Per seed: the population selective risk at the chosen τ (NaN if infeasible) and the
    population coverage; scores are Uniform(0, 1) and P(fail | s) = fail_prob(s)."""
    grid = np.linspace(0, 1, 20001)[1:]
    risks, coverages = [], []
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        s = rng.random(n_cal)
        f = (rng.random(n_cal) < fail_prob(s)).astype(float)
        grid_scores = rng.random(300)  # unlabeled scores outside calibration
        tau = calibrate(s, f, grid_scores, alpha=ALPHA, delta=DELTA).tau
        if tau is None:
            risks.append(math.nan)
            coverages.append(0.0)
            continue
        cover = min(tau, 1.0)
        answered = grid <= cover
        risks.append(float(fail_prob(grid[answered]).mean()))
        coverages.append(cover)
    return np.array(risks), np.array(coverages)


def test_guarantee_holds_and_is_not_trivial() -> None:
    # Selective risk at τ is τ/2: the best valid τ is 0.4 (coverage 0.4).
    risks, coverages = _simulate(lambda s: s)
    violations = np.nan_to_num(risks, nan=0.0) > ALPHA
    assert violations.mean() <= DELTA + MARGIN
    assert (coverages > 0).mean() > 0.8
    assert coverages.mean() > 0.2


def test_guarantee_when_no_threshold_is_valid() -> None:
    # Risk 0.25 > α everywhere: any certified threshold is a violation.
    risks, coverages = _simulate(lambda s: np.full(np.shape(s), 0.25))
    feasible = ~np.isnan(risks)
    assert feasible.mean() <= DELTA + MARGIN


def test_infeasible_report_abstains_on_everything() -> None:
    rng = np.random.default_rng(0)
    s = rng.random(30)
    f = np.ones(30)
    rep = abstention_report("sua", s, f, s, f, s, alpha=0.1, delta=0.1)
    assert rep["feasible"] is False and rep["tau"] is None
    assert rep["test_coverage"] == 0.0 and rep["test_risk"] is None


def test_report_measures_test_coverage_and_risk() -> None:
    rng = np.random.default_rng(5)
    s = rng.random(2000)
    f = (rng.random(2000) < s * 0.5).astype(float)
    cal, test = slice(0, 1000), slice(1000, 2000)
    rep = abstention_report("sua", s[cal], f[cal], s[test], f[test], s[test], alpha=0.1, delta=0.1)
    assert rep["feasible"] and rep["tau"] is not None
    answered = s[test] <= rep["tau"]
    assert rep["test_coverage"] == pytest.approx(answered.mean(), abs=1e-6)
    assert rep["test_risk"] == pytest.approx(f[test][answered].mean(), abs=1e-6)
    assert rep["test_risk"] < 0.15


def test_bad_targets_are_rejected() -> None:
    with pytest.raises(ValueError):
        calibrate([0.1], [0], [0.1], alpha=1.5, delta=0.1)
    with pytest.raises(ValueError):
        calibrate([0.1], [0], [0.1], alpha=0.1, delta=0.0)
