"""The scores that can win: signed λ auto, sua_norm, combined, flip_rate and per-kind S as
scores, abstention on any score, and the paired comparisons against entropy."""

from __future__ import annotations

import numpy as np
import pytest

from sua_audit.errors import ConfigError
from sua_audit.evaluation.core import (
    BASELINES,
    LAMBDA_GRID,
    Items,
    evaluate_items,
    fit_combined,
)

RAW = ("max_prob", "self_consistency", "semantic_entropy", "sensitivity_max", "flip_rate")


def make(
    s: np.ndarray,
    h: np.ndarray,
    fail: np.ndarray,
    *,
    flip: np.ndarray | None = None,
    by_kind: list[dict[str, float]] | None = None,
    seed: int = 0,
) -> Items:
    rng = np.random.default_rng(seed)
    items = Items(raw={k: [] for k in RAW})
    for i in range(s.size):
        items.ids.append(f"x{i}")
        items.family.append("label")
        items.sensitivity.append(float(s[i]))
        items.entropy.append(float(h[i]))
        for k in RAW:
            value = float(rng.random())
            if k == "sensitivity_max":
                value = float(s[i]) * 1.5
            if k == "flip_rate" and flip is not None:
                value = float(flip[i])
            items.raw[k].append(value)
        items.by_kind.append(by_kind[i] if by_kind else {"typo": float(s[i])})
        items.dist.append(np.array([0.5, 0.5]))
        items.gold_index.append(np.array([0]))
        items.correct.append(not bool(fail[i]))
        items.robust.append(not bool(fail[i]))
    return items


def unstable_and_uncertain(n: int = 400, seed: int = 1) -> Items:
    """Failures have higher S AND higher H; S is 100× smaller than H (as measured)."""
    rng = np.random.default_rng(seed)
    fail = rng.random(n) < 0.4
    s = np.where(fail, 0.004, 0.002) + rng.normal(0, 0.0015, n)
    h = np.where(fail, 0.5, 0.4) + rng.normal(0, 0.1, n)
    return make(np.clip(s, 0, None), np.clip(h, 0.01, 0.69), fail, seed=seed)


def test_lambda_auto_searches_a_signed_grid_and_says_what_negative_means() -> None:
    assert min(LAMBDA_GRID) < 0 < max(LAMBDA_GRID) and 0.0 in LAMBDA_GRID
    ev = evaluate_items(
        unstable_and_uncertain(), run_id="r", run_lambda=1.0, lam="auto", bootstrap=200
    )
    lam = ev["lambda"]
    # Failures are uncertain: any λ > 0 subtracts the evidence; the search goes negative.
    assert lam["mode"] == "auto" and lam["value"] < 0
    assert "AND the model is uncertain" in lam["meaning"]
    # On the test split the chosen λ beats the paper's λ = 1 (which ranks like −H).
    fixed = evaluate_items(unstable_and_uncertain(), run_id="r", run_lambda=1.0, bootstrap=200)
    auto_auc = ev["metrics"]["clean"]["sua"]["auroc"]["value"]
    fixed_auc = fixed["metrics"]["clean"]["sua"]["auroc"]["value"]
    assert auto_auc > 0.6 > fixed_auc


def test_sua_norm_and_fixed_lambda_are_recorded() -> None:
    ev = evaluate_items(
        unstable_and_uncertain(), run_id="r", run_lambda=1.0, normalize="z", bootstrap=100
    )
    assert ev["normalize"] == "z" and ev["lambda"]["mode"] == "fixed"
    assert ev["lambda"]["value_norm"] == 1.0
    assert ev["metrics"]["clean"]["sua_norm"]["auroc"]["value"] is not None
    with pytest.raises(ConfigError, match="--normalize"):
        evaluate_items(unstable_and_uncertain(), run_id="r", run_lambda=1.0, normalize="max")


def test_flip_rate_and_per_kind_sensitivity_are_evaluated_scores() -> None:
    n = 300
    rng = np.random.default_rng(3)
    fail = rng.random(n) < 0.5
    flip = np.where(fail, 0.75, 0.0)  # flips exactly on failures
    kinds = [{"typo": float(rng.random()), "word": float(f)} for f in fail]
    items = make(rng.random(n) * 0.01, rng.random(n), fail, flip=flip, by_kind=kinds)
    ev = evaluate_items(items, run_id="r", run_lambda=1.0, bootstrap=100)
    assert {"flip_rate", "s_typo", "s_word"} <= set(ev["scores"])
    assert ev["metrics"]["clean"]["flip_rate"]["auroc"]["value"] == pytest.approx(1.0)
    assert ev["metrics"]["clean"]["s_word"]["auroc"]["value"] == pytest.approx(1.0)
    assert ev["comparison"]["clean"]["winner"] in ("flip_rate", "s_word", "combined")
    vs = ev["comparison"]["clean"]["versus"]["flip_rate"]
    assert vs["minus_entropy"]["ci"][0] > 0  # significantly better than entropy
    assert set(ev["baselines"]) == set(BASELINES)
    assert "flip_rate" in ev["perturbation_scores"] and "entropy" not in ev["perturbation_scores"]


def test_combined_is_fitted_on_validation_only() -> None:
    ev = evaluate_items(unstable_and_uncertain(), run_id="r", run_lambda=1.0, bootstrap=100)
    info = ev["combined"]
    assert info["fitted_on"] == "validation" and info["n_validation"] == ev["split"]["n_validation"]
    assert set(info["coefficients"]) == {
        "sensitivity",
        "sensitivity_max",
        "entropy",
        "flip_rate",
        "s_typo",
    }
    # Higher H and higher S both mean failure here: positive weights on the informative parts.
    assert info["coefficients"]["entropy"] > 0
    assert ev["metrics"]["clean"]["combined"]["auroc"]["value"] > 0.6
    assert "minus_best_baseline" in ev["comparison"]["clean"]["versus"]["combined"]
    # Labels outside validation never reach the fit: flipping every test label changes nothing.
    items = unstable_and_uncertain()
    val = set(ev["split"]["validation_ids"])
    flipped = unstable_and_uncertain()
    flipped.correct = [
        c if i in val else not c for i, c in zip(items.ids, items.correct, strict=True)
    ]
    ev2 = evaluate_items(flipped, run_id="r", run_lambda=1.0, bootstrap=100)
    assert ev2["combined"]["coefficients"] == info["coefficients"]


def test_combined_not_fitted_says_why_and_cannot_be_abstained_on() -> None:
    x = np.random.default_rng(0).random((10, 2))
    fail = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 0], dtype=float)
    scores, info = fit_combined(x, fail, list(range(10)), ["a", "b"])
    assert scores is None and "1 failures and 9 successes" in info["reason"]
    few = make(np.full(20, 0.01), np.full(20, 0.5), np.arange(20) < 2)
    ev = evaluate_items(few, run_id="r", run_lambda=1.0, bootstrap=50)
    assert ev["metrics"]["clean"]["combined"]["auroc"]["value"] is None
    assert "not fitted" in ev["metrics"]["clean"]["combined"]["auroc"]["reason"]
    with pytest.raises(ConfigError, match="abstain-on combined"):
        evaluate_items(
            few, run_id="r", run_lambda=1.0, abstain_on="combined", target_risk=0.3, bootstrap=50
        )


def test_calibrated_abstention_on_any_score() -> None:
    n = 600
    rng = np.random.default_rng(5)
    fail = rng.random(n) < 0.3
    flip = np.where(fail, rng.uniform(0.5, 1.0, n), rng.uniform(0.0, 0.4, n))
    items = make(rng.random(n) * 0.01, rng.random(n), fail, flip=flip)
    ev = evaluate_items(
        items,
        run_id="r",
        run_lambda=1.0,
        abstain_on="flip_rate",
        target_risk=0.1,
        delta=0.1,
        bootstrap=50,
    )
    ab = ev["abstention"]
    assert ab["score"] == "flip_rate" and ab["feasible"]
    # flip_rate separates failures perfectly at 0.45 (coverage 0.7 at risk 0): the certified
    # threshold answers more than half of the test items at a risk near the target.
    assert ab["test_risk"] <= 0.12 and ab["test_coverage"] > 0.5
    with pytest.raises(ConfigError, match="unknown score"):
        evaluate_items(items, run_id="r", run_lambda=1.0, abstain_on="bogus")
    # On sua (≈ −H, uninformative here) the same target is infeasible: it says so in words.
    ev2 = evaluate_items(
        items, run_id="r", run_lambda=1.0, target_risk=0.02, delta=0.05, bootstrap=50
    )
    if not ev2["abstention"]["feasible"]:
        assert "abstains on every item" in ev2["abstention"]["note"]


def test_combined_is_the_logistic_fit_on_validation_standardised_by_validation() -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(11)
    x = rng.normal(size=(40, 2)) * [1.0, 100.0] + [0.0, 5.0]
    fail = (x[:, 0] + rng.normal(0, 0.5, 40) > 0).astype(float)
    val = list(range(0, 40, 2))
    scores, info = fit_combined(x, fail, val, ["a", "b"])
    mean, sd = x[val].mean(axis=0), x[val].std(axis=0)
    ref = LogisticRegression(C=1.0, max_iter=1000).fit((x[val] - mean) / sd, fail[val])
    assert scores is not None
    assert scores == pytest.approx(ref.predict_proba((x - mean) / sd)[:, 1])
    assert info["coefficients"]["a"] == pytest.approx(ref.coef_[0][0], abs=1e-6)
    assert info["coefficients"]["a"] > abs(info["coefficients"]["b"])  # a carries the signal


def test_exact_match_semantic_entropy_is_evaluated_beside_meaning_clusters() -> None:
    # A QA run clustered by meaning records semantic_entropy_exact per item; the evaluation
    # then reports it as one more baseline, next to semantic_entropy, with its own AUROC.
    items = unstable_and_uncertain()
    fail = np.array([not c for c in items.correct])
    items.raw["semantic_entropy_exact"] = [float(f) * 0.5 + 0.25 for f in fail]
    ev = evaluate_items(items, run_id="r", run_lambda=1.0, bootstrap=100)
    assert "semantic_entropy_exact" in ev["scores"]
    assert "semantic_entropy_exact" in ev["baselines"]
    assert "semantic_entropy_exact" not in ev["perturbation_scores"]
    block = ev["metrics"]["clean"]["semantic_entropy_exact"]
    test_fail = fail[
        [
            items.ids.index(i)
            for i in items.ids
            if i not in set(ev["split"]["validation_ids"] + ev["split"]["calibration_ids"])
        ]
    ]
    assert test_fail.any() and not test_fail.all()
    assert block["auroc"]["value"] == pytest.approx(1.0)  # it separates failures perfectly
    assert ev["comparison"]["clean"]["best_baseline"] == "semantic_entropy_exact"

    plain = evaluate_items(unstable_and_uncertain(), run_id="r", run_lambda=1.0, bootstrap=50)
    assert "semantic_entropy_exact" not in plain["scores"]
    assert plain["baselines"] == list(BASELINES)
