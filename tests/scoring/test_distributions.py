"""Tests for sua_audit.scoring.distributions: entropy, softmax and the divergences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sua_audit.scoring import (
    DEFAULT_DIVERGENCE,
    DIVERGENCES,
    divergence,
    entropy,
    js,
    kl,
    normalize_logprobs,
    tv,
)

LN2 = math.log(2.0)

# Weights in [0, 1] with a good share of exact zeros, so that disjoint supports occur.
_weight = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=1.0, allow_subnormal=False))


def _normalise(weights: list[float]) -> np.ndarray:
    arr = np.asarray(weights, dtype=np.float64)
    return arr / arr.sum()


def dist_of(n: int) -> st.SearchStrategy[np.ndarray]:
    """Probability vectors of length ``n``."""
    return st.lists(_weight, min_size=n, max_size=n).filter(lambda w: sum(w) > 1e-3).map(_normalise)


distributions = st.integers(min_value=1, max_value=8).flatmap(dist_of)
pairs = st.integers(min_value=1, max_value=8).flatmap(lambda n: st.tuples(dist_of(n), dist_of(n)))


# --- entropy -----------------------------------------------------------------------------------


def test_entropy_hand_cases() -> None:
    # H(½,½) = −2·½·ln ½ = ln 2
    assert entropy([0.5, 0.5]) == pytest.approx(LN2)
    # H(1,0) = −1·ln 1 − 0·ln 0 = 0 (0·log 0 = 0)
    assert entropy([1.0, 0.0]) == 0.0
    # H(¼,¼,¼,¼) = −4·¼·ln ¼ = ln 4
    assert entropy([0.25] * 4) == pytest.approx(math.log(4.0))
    # H(0.75, 0.25) = −0.75·ln 0.75 − 0.25·ln 0.25 = 0.215762 + 0.346574 = 0.562335
    assert entropy([0.75, 0.25]) == pytest.approx(0.562335, abs=1e-6)
    # A single label carries no uncertainty.
    assert entropy([1.0]) == 0.0


def test_entropy_accepts_numpy_and_tolerates_rounding() -> None:
    assert entropy(np.array([0.5, 0.5 + 5e-7])) == pytest.approx(LN2, abs=1e-6)


@pytest.mark.parametrize(
    "bad",
    [[], [0.5, 0.4], [1.2, -0.2], [0.5, math.nan], [math.inf, 0.0], [[0.5, 0.5]]],
)
def test_entropy_rejects_non_distributions(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        entropy(bad)


@given(distributions)
def test_entropy_between_zero_and_log_support(p: np.ndarray) -> None:
    h = entropy(p)
    assert 0.0 <= h <= math.log(p.size) + 1e-12


# --- normalize_logprobs ------------------------------------------------------------------------


def test_normalize_logprobs_recovers_probabilities() -> None:
    # log(0.2), log(0.3), log(0.5) already sum to 1 in probability space.
    out = normalize_logprobs([math.log(0.2), math.log(0.3), math.log(0.5)])
    np.testing.assert_allclose(out, [0.2, 0.3, 0.5])


def test_normalize_logprobs_renormalises_partial_mass() -> None:
    # Labels got probabilities 0.1 and 0.3 out of the whole vocabulary: renormalised 1/4, 3/4.
    out = normalize_logprobs([math.log(0.1), math.log(0.3)])
    np.testing.assert_allclose(out, [0.25, 0.75])


def test_normalize_logprobs_is_stable_for_large_and_tiny_values() -> None:
    np.testing.assert_allclose(normalize_logprobs([1000.0, 1000.0]), [0.5, 0.5])
    np.testing.assert_allclose(normalize_logprobs([-2000.0, -2000.0 + math.log(3.0)]), [0.25, 0.75])


def test_normalize_logprobs_minus_inf() -> None:
    np.testing.assert_allclose(normalize_logprobs([-math.inf, 0.0]), [0.0, 1.0])
    # No label got any mass: relative probabilities undefined → uniform.
    np.testing.assert_allclose(normalize_logprobs([-math.inf] * 4), [0.25] * 4)


@pytest.mark.parametrize("bad", [[], [0.0, math.nan], [math.inf, 0.0]])
def test_normalize_logprobs_rejects(bad: list[float]) -> None:
    with pytest.raises(ValueError):
        normalize_logprobs(bad)


@given(
    st.lists(
        st.floats(min_value=-50.0, max_value=0.0, allow_subnormal=False), min_size=1, max_size=8
    ),
    st.floats(min_value=-100.0, max_value=100.0),
)
def test_normalize_logprobs_matches_softmax_and_is_shift_invariant(
    lps: list[float], shift: float
) -> None:
    out = normalize_logprobs(lps)
    expected = np.exp(lps) / np.exp(lps).sum()
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(normalize_logprobs([x + shift for x in lps]), out, atol=1e-9)
    assert out.sum() == pytest.approx(1.0)


# --- JS ----------------------------------------------------------------------------------------


def test_js_hand_cases() -> None:
    # p = (1,0), q = (0,1): m = (½,½); KL(p‖m) = 1·ln(1/½) = ln 2 = KL(q‖m); JS = ½ln2 + ½ln2.
    assert js([1.0, 0.0], [0.0, 1.0]) == pytest.approx(LN2)
    # p = (1,0), q = (½,½): m = (¾,¼).
    # KL(p‖m) = ln(4/3); KL(q‖m) = ½ln(⅔) + ½ln 2 = ½ln(4/3).
    # JS = ½·ln(4/3) + ½·½·ln(4/3) = ¾·ln(4/3) = 0.215762
    assert js([1.0, 0.0], [0.5, 0.5]) == pytest.approx(0.75 * math.log(4 / 3))
    assert js([1.0, 0.0], [0.5, 0.5]) == pytest.approx(0.215762, abs=1e-6)
    assert js([0.2, 0.8], [0.2, 0.8]) == 0.0


@given(pairs)
def test_js_bounded_and_symmetric(pq: tuple[np.ndarray, np.ndarray]) -> None:
    p, q = pq
    d = js(p, q)
    assert 0.0 <= d <= LN2
    assert d == pytest.approx(js(q, p), abs=1e-12)
    assert js(p, p) == pytest.approx(0.0, abs=1e-12)


# --- TV ----------------------------------------------------------------------------------------


def test_tv_hand_cases() -> None:
    # ½(|1−0| + |0−1|) = 1
    assert tv([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0)
    # ½(|0.5−0.2| + |0.3−0.3| + |0.2−0.5|) = ½(0.3 + 0 + 0.3) = 0.3
    assert tv([0.5, 0.3, 0.2], [0.2, 0.3, 0.5]) == pytest.approx(0.3)
    # ½(|0.75−0.5| + |0.25−0.5|) = 0.25
    assert tv([0.75, 0.25], [0.5, 0.5]) == pytest.approx(0.25)
    assert tv([0.1, 0.9], [0.1, 0.9]) == 0.0


@given(pairs)
def test_tv_bounded_and_symmetric(pq: tuple[np.ndarray, np.ndarray]) -> None:
    p, q = pq
    d = tv(p, q)
    assert 0.0 <= d <= 1.0
    assert d == pytest.approx(tv(q, p), abs=1e-12)


# --- KL ----------------------------------------------------------------------------------------


def test_kl_hand_case_with_large_smoothing() -> None:
    # p = (1,0), q = (0,1), ε = ½, |Y| = 2: denominator 1 + 2·½ = 2.
    # p' = ((1+½)/2, (0+½)/2) = (¾, ¼); q' = (¼, ¾).
    # KL(p'‖q') = ¾·ln(¾/¼) + ¼·ln(¼/¾) = ¾ln3 − ¼ln3 = ½ln3 = 0.549306
    assert kl([1.0, 0.0], [0.0, 1.0], smoothing=0.5) == pytest.approx(0.5 * math.log(3.0))
    assert kl([1.0, 0.0], [0.0, 1.0], smoothing=0.5) == pytest.approx(0.549306, abs=1e-6)


def test_kl_hand_case_with_default_smoothing() -> None:
    # ε = 0.001, |Y| = 2: p' = (1.001, 0.001)/1.002, q' = (0.001, 1.001)/1.002.
    # KL = (1.001/1.002)·ln(1001) + (0.001/1.002)·ln(1/1001) = (1.000/1.002)·ln 1001
    #    = 6.908755 / 1.002 = 6.894965
    expected = (1.0 / 1.002) * math.log(1001.0)
    assert kl([1.0, 0.0], [0.0, 1.0]) == pytest.approx(expected)
    assert expected == pytest.approx(6.894965, abs=1e-6)


def test_kl_is_asymmetric_and_zero_on_equal() -> None:
    p, q = [0.9, 0.1, 0.0], [0.3, 0.3, 0.4]
    assert kl(p, q) != pytest.approx(kl(q, p))
    assert kl(p, p) == 0.0


@pytest.mark.parametrize("eps", [0.0, -0.1, math.nan, math.inf])
def test_kl_rejects_bad_smoothing(eps: float) -> None:
    with pytest.raises(ValueError, match="smoothing"):
        kl([1.0, 0.0], [0.0, 1.0], smoothing=eps)


@given(pairs, st.sampled_from([1e-6, 1e-3, 0.1]))
def test_kl_finite_and_non_negative_even_on_disjoint_supports(
    pq: tuple[np.ndarray, np.ndarray], eps: float
) -> None:
    p, q = pq
    d = kl(p, q, smoothing=eps)
    assert math.isfinite(d)
    assert d >= 0.0


@given(st.integers(min_value=2, max_value=8), st.data())
def test_kl_finite_on_point_masses_at_different_labels(n: int, data: st.DataObject) -> None:
    i = data.draw(st.integers(0, n - 1))
    j = data.draw(st.integers(0, n - 1).filter(lambda x: x != i))
    p, q = np.zeros(n), np.zeros(n)
    p[i], q[j] = 1.0, 1.0
    d = kl(p, q)
    assert math.isfinite(d) and d > 0.0


# --- registry ----------------------------------------------------------------------------------


def test_registry_and_default() -> None:
    assert set(DIVERGENCES) == {"kl", "js", "tv"}
    assert DEFAULT_DIVERGENCE == "js"
    p, q = [0.7, 0.3], [0.2, 0.8]
    assert DIVERGENCES["js"](p, q) == js(p, q)
    assert DIVERGENCES["tv"](p, q) == tv(p, q)
    assert DIVERGENCES["kl"](p, q) == kl(p, q)


def test_divergence_dispatch_and_smoothing() -> None:
    p, q = [1.0, 0.0], [0.0, 1.0]
    assert divergence("js", p, q) == pytest.approx(LN2)
    assert divergence("tv", p, q) == pytest.approx(1.0)
    assert divergence("kl", p, q, smoothing=0.5) == pytest.approx(0.5 * math.log(3.0))
    # Smoothing does not affect JS or TV.
    assert divergence("js", p, q, smoothing=0.5) == pytest.approx(LN2)


def test_divergence_unknown_name_lists_choices() -> None:
    with pytest.raises(ValueError, match="hellinger") as info:
        divergence("hellinger", [1.0], [1.0])
    for name in ("js", "kl", "tv"):
        assert name in str(info.value)


@pytest.mark.parametrize("name", ["kl", "js", "tv"])
def test_divergences_reject_length_mismatch(name: str) -> None:
    with pytest.raises(ValueError, match="same length"):
        divergence(name, [0.5, 0.5], [0.2, 0.3, 0.5])
