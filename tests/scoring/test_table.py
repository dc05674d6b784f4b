"""Run-level scores: normalisation, Spearman, the diagnostics and the words for λ, by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sua_audit.scoring.table import (
    diagnostics,
    lambda_meaning,
    normalize,
    spearman,
    sua_normalized,
)


def test_rank_normalisation_by_hand_with_ties_and_nan() -> None:
    # Values 0.3, 0.1, 0.3, NaN, 0.2 → finite ranks 3.5, 1, 3.5, -, 2 over n = 4.
    got = normalize([0.3, 0.1, 0.3, math.nan, 0.2], "rank")
    assert got[0] == pytest.approx(3.5 / 4) and got[2] == pytest.approx(3.5 / 4)
    assert got[1] == pytest.approx(1 / 4) and got[4] == pytest.approx(2 / 4)
    assert math.isnan(got[3])


def test_z_normalisation_by_hand() -> None:
    # mean 2, population sd sqrt(2/3).
    got = normalize([1.0, 2.0, 3.0], "z")
    sd = math.sqrt(2 / 3)
    assert got.tolist() == pytest.approx([-1 / sd, 0.0, 1 / sd])
    assert normalize([5.0, 5.0], "z").tolist() == [0.0, 0.0]
    assert normalize([1.0, 4.0], "none").tolist() == [1.0, 4.0]
    with pytest.raises(ValueError, match="normalize must be one of"):
        normalize([1.0], "minmax")


def test_sua_norm_puts_s_and_h_on_one_scale() -> None:
    # S tiny, H large: raw S − H ranks like −H, the rank version weighs both equally.
    s = np.array([0.001, 0.004, 0.002, 0.003])
    h = np.array([0.60, 0.50, 0.70, 0.65])
    raw = s - h
    assert np.argsort(raw).tolist() == np.argsort(-h).tolist()
    norm = sua_normalized(s, h, 1.0, "rank")
    # ranks S: 1, 4, 2, 3; ranks H: 2, 1, 4, 3 (each / 4).
    assert norm.tolist() == pytest.approx([(1 - 2) / 4, (4 - 1) / 4, (2 - 4) / 4, 0.0])


def test_spearman_by_hand() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Ranks x = 1,2,3 and y = 1,3,2: Pearson of ranks = 0.5.
    assert spearman([1, 2, 3], [5, 9, 7]) == pytest.approx(0.5)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert spearman([1, 2], [1, 2]) is None


def test_diagnostics_warn_when_sua_is_negative_entropy() -> None:
    rng = np.random.default_rng(0)
    h = rng.uniform(0.3, 0.69, 200)
    s = rng.uniform(0.0, 0.005, 200)
    d = diagnostics(s, h, s - h, lam=1.0)
    assert d["spearman_sua_neg_entropy"] > 0.95
    assert d["warning"] and "negative entropy" in d["warning"] and "--abstain-on" in d["warning"]
    assert d["ratio_s_to_h"] == pytest.approx(s.mean() / h.mean())
    # S on H's scale: SUA is no longer −H, no warning.
    s2 = rng.uniform(0.0, 0.7, 200)
    d2 = diagnostics(s2, h, s2 - h, lam=1.0)
    assert d2["spearman_sua_neg_entropy"] < 0.95 and d2["warning"] is None


def test_lambda_meaning_says_the_sign() -> None:
    assert "unstable but confident" in lambda_meaning(1.0)
    neg = lambda_meaning(-0.5)
    assert "AND the model is uncertain" in neg and "S + 0.5·H" in neg
    assert "sensitivity S alone" in lambda_meaning(0.0)
