"""Tests for sua_audit.scoring.abstention: the rule, the default τ and the coverage quantile."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sua_audit.scoring import DEFAULT_TAU, abstain, coverage_threshold, score_distributions

NAN = math.nan


@pytest.mark.parametrize(
    ("coverage", "tau"),
    [
        # n = 4, sorted (0.1, 0.2, 0.3, 0.4).
        (0.5, 0.2),  # m = ⌈0.5·4⌉ = 2 → 2nd smallest
        (0.6, 0.3),  # m = ⌈2.4⌉ = 3
        (0.75, 0.3),  # m = ⌈3⌉ = 3
        (1.0, 0.4),  # m = 4 → the maximum
        (0.01, 0.1),  # m = ⌈0.04⌉ = 1
    ],
)
def test_coverage_threshold_hand_cases(coverage: float, tau: float) -> None:
    assert coverage_threshold([0.3, 0.1, 0.4, 0.2], coverage) == tau


def test_coverage_threshold_resists_float_noise() -> None:
    # 0.7·10 = 7.000000000000001 in floating point; m must be 7, not 8 → τ = 6 (scores 0..9).
    assert coverage_threshold([float(i) for i in range(10)], 0.7) == 6.0
    # 0.29·100 = 28.999999999999996 → m = 29 → τ = 28.
    assert coverage_threshold([float(i) for i in range(100)], 0.29) == 28.0


def test_coverage_threshold_ties_answer_more_than_target() -> None:
    scores = [0.5, 0.2, 0.1, 0.2, 0.2]
    # sorted (0.1, 0.2, 0.2, 0.2, 0.5); m = ⌈0.4·5⌉ = 2 → τ = 0.2.
    tau = coverage_threshold(scores, 0.4)
    assert tau == 0.2
    answered = sum(not abstain(s, tau) for s in scores)
    assert answered == 4  # 80% achieved for a 40% target: all ties at τ are answered


def test_coverage_threshold_nan_is_plus_infinity() -> None:
    scores = [NAN, 0.1, 0.2]
    # sorted (0.1, 0.2, +inf); m = ⌈⅔·3⌉ = 2 → τ = 0.2; the NaN item abstains.
    tau = coverage_threshold(scores, 2 / 3)
    assert tau == 0.2
    assert [abstain(s, tau) for s in scores] == [True, False, False]
    # Full coverage reaches into the NaN item: τ = +inf, but NaN still abstains.
    tau_all = coverage_threshold(scores, 1.0)
    assert tau_all == math.inf
    assert [abstain(s, tau_all) for s in scores] == [True, False, False]


@pytest.mark.parametrize("coverage", [0.0, -0.1, 1.01, 2.0, NAN, math.inf])
def test_coverage_threshold_rejects_bad_coverage(coverage: float) -> None:
    with pytest.raises(ValueError, match="coverage"):
        coverage_threshold([0.1, 0.2], coverage)


def test_coverage_threshold_rejects_empty() -> None:
    with pytest.raises(ValueError):
        coverage_threshold([], 0.5)


@given(
    st.lists(st.floats(min_value=-10, max_value=10), min_size=1, max_size=50),
    st.floats(min_value=1e-6, max_value=1.0),
)
def test_coverage_threshold_achieves_at_least_target(scores: list[float], coverage: float) -> None:
    tau = coverage_threshold(scores, coverage)
    assert tau in scores
    target = coverage * len(scores)
    m = max(1, math.ceil(target - 1e-9 * max(1.0, target)))  # the documented rule
    answered = sum(not abstain(s, tau) for s in scores)
    assert answered >= m
    # Minimal: τ is the m-th smallest, so fewer than m items score strictly below it.
    assert sum(s < tau for s in scores) < m


def test_abstain_rule() -> None:
    assert abstain(0.1, 0.0)
    assert not abstain(0.0, 0.0)  # ties are answered
    assert not abstain(-0.5, 0.0)
    assert abstain(NAN, 0.0)
    assert abstain(NAN, math.inf)
    assert not abstain(5.0, math.inf)
    with pytest.raises(ValueError):
        abstain(0.1, NAN)


def test_default_tau_abstains_when_more_sensitive_than_uncertain() -> None:
    assert DEFAULT_TAU == 0.0
    # Confident (H = 0) but flips under a paraphrase: S = ½ln2 > 0 = λH → abstain.
    sensitive = score_distributions([1.0, 0.0], [[0.0, 1.0], [1.0, 0.0]], ["p", "t"])
    assert abstain(sensitive.sua, DEFAULT_TAU)
    # Uncertain (H = ln2) and stable: S = 0 < H → answer.
    stable = score_distributions([0.5, 0.5], [[0.5, 0.5]], ["p"])
    assert not abstain(stable.sua, DEFAULT_TAU)
