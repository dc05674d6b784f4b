"""Temperature scaling of entropy_temp: recovers a known temperature; T = 1 changes nothing."""

from __future__ import annotations

import numpy as np
import pytest

from sua_audit.evaluation import temperature


def test_fit_recovers_an_overconfident_model() -> None:
    rng = np.random.default_rng(0)
    n, k, true_t = 1500, 3, 2.5
    logits = rng.normal(0, 3, size=(n, k))
    model = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    truth = np.exp(logits / true_t) / np.exp(logits / true_t).sum(axis=1, keepdims=True)
    labels = [rng.choice(k, p=p) for p in truth]
    t = temperature.fit(list(model), [np.array([y]) for y in labels], [True] * n)
    assert t == pytest.approx(true_t, rel=0.2)


def test_scale_and_entropy() -> None:
    p = np.array([0.7, 0.2, 0.1, 0.0])
    assert temperature.scale(p, 1.0) == pytest.approx(p)
    assert temperature.entropy_at(p, 1.0) == pytest.approx(-np.sum(p[:3] * np.log(p[:3])))
    assert temperature.entropy_at(p, 100.0) == pytest.approx(np.log(3), abs=0.01)  # zeros stay 0
    assert temperature.entropy_at(p, 0.05) < 1e-6


def test_cross_fit_covers_every_item_once() -> None:
    rng = np.random.default_rng(1)
    dists = [rng.dirichlet([1, 1]) for _ in range(23)]
    items = list(range(3, 23))
    per_item, folds = temperature.cross_fit(
        ["label"] * 23, dists, [np.array([0])] * 23, [True] * 23, items, seed=0
    )
    assert sorted(per_item) == items and len(folds) == 5
