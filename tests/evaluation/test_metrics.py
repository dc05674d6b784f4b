"""Failure-detection metrics on tiny hand-computed cases, and agreement with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from sua_audit.evaluation import metrics as M


def test_auroc_by_hand() -> None:
    # Failures score 0.35 and 0.8; successes 0.1 and 0.4: 3 of 4 pairs ranked right.
    assert M.auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert M.auroc([0.5, 0.5], [1, 0]) == pytest.approx(0.5)  # a tie counts one half
    assert M.auroc([0.9, 0.1], [1, 0]) == pytest.approx(1.0)
    assert np.isnan(M.auroc([0.1, 0.2], [1, 1]))  # one class only


def test_aurc_prr_by_hand() -> None:
    s, f = [0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1]
    # Risks at coverage 1/4..4/4: 0, 1/2, 1/3, 2/4.
    assert M.aurc(s, f) == pytest.approx((0 + 1 / 2 + 1 / 3 + 1 / 2) / 4)
    # Oracle (failures last): 0, 0, 1/3, 1/2; random: 1/2 at every coverage.
    assert M.oracle_aurc(f) == pytest.approx((1 / 3 + 1 / 2) / 4)
    assert M.prr(s, f) == pytest.approx((0.5 - 4 / 12) / (0.5 - 5 / 24))
    assert M.prr([0.9, 0.1, 0.8, 0.2], [1, 0, 1, 0]) == pytest.approx(1.0)
    assert np.isnan(M.prr(s, [1, 1, 1, 1]))


def test_ties_give_the_expected_value_over_orders() -> None:
    f = [1, 0, 0, 1]
    assert M.aurc([0.3] * 4, f) == pytest.approx(0.5)  # constant score: base rate everywhere
    assert M.prr([0.3] * 4, f) == pytest.approx(0.0)
    # 2 of 5 items tie at the boundary of 80% coverage (4 items): half an error expected.
    acc = M.selective_accuracy([0.1, 0.2, 0.3, 0.5, 0.5], [0, 0, 0, 1, 0], 0.8)
    assert acc == pytest.approx(1 - 0.5 / 4)


def test_ece_by_hand() -> None:
    conf, correct = [0.95, 0.95, 0.15, 0.55], [1, 0, 0, 1]
    value, bins = M.ece_bins(conf, correct)
    assert value == pytest.approx(0.45 * 2 / 4 + 0.15 / 4 + 0.45 / 4)
    assert [b["count"] for b in bins] == [0, 1, 0, 0, 0, 1, 0, 0, 0, 2]
    assert bins[9]["accuracy"] == pytest.approx(0.5) and bins[0]["accuracy"] is None
    assert M.ece([1.0, 1.0], [1, 1]) == pytest.approx(0.0)  # confidence 1 lands in the last bin


def test_vectorised_metrics_agree_with_sklearn_on_ties() -> None:
    from sklearn.metrics import average_precision_score, roc_auc_score

    rng = np.random.default_rng(3)
    s = rng.integers(0, 6, size=(300, 25)).astype(float)
    f = rng.integers(0, 2, size=(300, 25)).astype(float)
    f[:, 0], f[:, 1] = 0, 1  # both classes in every row
    auc, ap = M.auroc(s, f), M.auprc(s, f)
    for i in range(s.shape[0]):
        assert auc[i] == pytest.approx(roc_auc_score(f[i], s[i]), abs=1e-12)
        assert ap[i] == pytest.approx(average_precision_score(f[i], s[i]), abs=1e-12)


def test_expected_errors_match_random_tie_breaking() -> None:
    rng = np.random.default_rng(0)
    s = np.array([0.2, 0.2, 0.2, 0.5, 0.5, 0.9])
    f = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0])
    total = np.zeros(6)
    for _ in range(4000):
        order = np.lexsort((rng.random(6), s))
        total += np.cumsum(f[order])
    assert M.expected_cumulative_errors(s, f)[0] == pytest.approx(total / 4000, abs=0.05)


def test_risk_coverage_curve_ends_at_the_error_rate() -> None:
    rng = np.random.default_rng(1)
    s, f = rng.random(500), (rng.random(500) < 0.3).astype(float)
    curve = M.risk_coverage_curve(s, f)
    assert len(curve) <= 101
    assert curve[-1] == [1.0, pytest.approx(f.mean(), abs=1e-6)]
    assert all(a[0] < b[0] for a, b in zip(curve, curve[1:], strict=False))


def test_large_runs_get_fewer_resamples_so_memory_stays_bounded() -> None:
    from sua_audit.evaluation.bootstrap import MAX_RESAMPLED_SLOTS, effective_resamples

    assert effective_resamples(500, 1000) == 1000  # small runs keep what was asked
    assert effective_resamples(100_000, 1000) == 200
    assert effective_resamples(100_000, 1000) * 100_000 <= MAX_RESAMPLED_SLOTS
    assert effective_resamples(10_000_000, 1000) == 200  # never below the floor
    assert effective_resamples(100_000, 50) == 50  # never more than asked


def test_large_runs_are_resampled_in_bounded_blocks() -> None:
    import numpy as np

    from sua_audit.evaluation.bootstrap import CHUNK_SLOTS, per_resample, resample_indices

    small = resample_indices(500, 1000, seed=3)
    assert len(small) == 1 and small[0].shape == (1000, 500)
    blocks = resample_indices(50_000, 1000, seed=3)
    assert len(blocks) > 1 and sum(len(b) for b in blocks) == 1000
    assert all(b.size <= CHUNK_SLOTS for b in blocks)
    again = resample_indices(50_000, 1000, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(blocks, again, strict=True))
    values = np.arange(50_000, dtype=np.float64) % 2  # mean 0.5
    means = per_resample(lambda v: v.mean(axis=1), blocks, values)
    assert means.shape == (1000,) and abs(means.mean() - 0.5) < 0.01 and means.std() > 0
