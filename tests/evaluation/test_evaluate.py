"""The evaluation on constructed items: CIs, determinism, paired comparison, splits, λ."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sua_audit.errors import ConfigError
from sua_audit.evaluation.core import (
    EXTRA_BASELINES,
    SCORES,
    EvaluationError,
    Items,
    evaluate_items,
)
from sua_audit.evaluation.correctness import Grader, best_f1, token_f1


def make_items(n: int, seed: int, *, sua_informative: bool) -> Items:
    """Items whose failures SUA = S − H detects (``sua_informative``) or misses.

    Informative: failures are confident (low H) and S is noise, so S − H ranks failures first
    while every baseline is near chance or inverted. Otherwise failures have high H: entropy
    detects them and S − H is inverted.
    """
    rng = np.random.default_rng(seed)
    fail = rng.random(n) < 0.4
    h = np.where(fail, 0.1, 0.6) + rng.normal(0, 0.05, n)
    if not sua_informative:
        h = np.where(fail, 0.6, 0.1) + rng.normal(0, 0.05, n)
    h = np.clip(h, 0.0, 0.69)
    names = ("max_prob", "self_consistency", "semantic_entropy", "sensitivity_max", "flip_rate")
    items = Items(raw={k: [] for k in names})
    for i in range(n):
        items.by_kind.append({})
        noise = float(rng.random())
        items.ids.append(f"x{i}")
        items.family.append("label")
        items.sensitivity.append(0.01 * noise)
        items.entropy.append(float(h[i]))
        for k in items.raw:
            items.raw[k].append(float(rng.random()))
        p = rng.dirichlet([1.0, 1.0])
        items.dist.append(p)
        items.gold_index.append(np.array([0]))
        items.correct.append(not fail[i])
        items.robust.append(not fail[i] and rng.random() < 0.8)
    return items


def test_schema_and_cis_cover_the_point() -> None:
    ev = evaluate_items(
        make_items(120, 0, sua_informative=True), run_id="r", run_lambda=1.0, bootstrap=300
    )
    assert ev["schema"] == 1 and ev["n_items"] == 120
    # A validation split (30%) is always held out for the fitted scores.
    assert ev["split"]["n_test"] == 84 and ev["split"]["n_validation"] == 36
    for label in ("clean", "worst_case"):
        # Runs without meaning clusters have no exact-match semantic entropy beside them.
        assert set(ev["metrics"][label]) == set(SCORES) - set(EXTRA_BASELINES)
        for block in ev["metrics"][label].values():
            for metric in ("auroc", "auprc", "prr", "aurc", "selective_accuracy_at_80"):
                m = block[metric]
                assert m["ci"][0] - 1e-9 <= m["value"] <= m["ci"][1] + 1e-9, (metric, m)
    assert ev["accuracy"]["ci"][0] <= ev["accuracy"]["value"] <= ev["accuracy"]["ci"][1]
    assert len(ev["calibration"]["bins"]) == 10
    assert sum(b["count"] for b in ev["calibration"]["bins"]) == 84
    assert ev["abstention"] is None
    assert len(ev["risk_coverage"]["clean"]["sua"]) <= 101


def test_deterministic_per_seed() -> None:
    items = make_items(80, 1, sua_informative=True)
    a = evaluate_items(items, run_id="r", run_lambda=1.0, seed=3, bootstrap=200)
    b = evaluate_items(items, run_id="r", run_lambda=1.0, seed=3, bootstrap=200)
    c = evaluate_items(items, run_id="r", run_lambda=1.0, seed=4, bootstrap=200)
    assert a == b
    assert (
        a["metrics"]["clean"]["max_prob"]["auroc"]["ci"]
        != c["metrics"]["clean"]["max_prob"]["auroc"]["ci"]
    )
    assert a["accuracy"]["ci"] != c["accuracy"]["ci"]


def test_paired_difference_has_the_constructed_sign() -> None:
    good = evaluate_items(
        make_items(150, 2, sua_informative=True), run_id="r", run_lambda=1.0, bootstrap=300
    )
    comp = good["comparison"]["clean"]
    assert comp["winner"] in ("sua", "sua_pos", "sua_norm", "combined")
    assert comp["sua_minus_best_baseline"]["ci"][0] > 0
    bad = evaluate_items(
        make_items(150, 2, sua_informative=False), run_id="r", run_lambda=1.0, bootstrap=300
    )
    comp = bad["comparison"]["clean"]
    assert comp["winner"] not in ("sua", "sua_pos")
    assert comp["sua_minus_best_baseline"]["ci"][1] < 0


def test_lambda_auto_uses_validation_only_and_reports_on_test() -> None:
    items = make_items(200, 3, sua_informative=True)
    ev = evaluate_items(
        items, run_id="r", run_lambda=1.0, lam="auto", target_risk=0.3, delta=0.1, bootstrap=100
    )
    sp = ev["split"]
    assert sp["n_validation"] == 60 and sp["n_calibration"] == 60 and sp["n_test"] == 80
    assert not set(sp["validation_ids"]) & set(sp["calibration_ids"])
    assert ev["failure_labels"]["clean"]["n"] == 80
    assert ev["lambda"]["mode"] == "auto" and ev["lambda"]["value"] in ev["lambda"]["grid"]
    # Entropy carries the signal with the sign SUA needs: a positive λ must be chosen.
    assert ev["lambda"]["value"] > 0
    ab = ev["abstention"]
    assert ab["calibration_n"] == 60 and ab["test_n"] == 80
    assert ev["temperature"]["fitted_on"] == "validation"


def test_fixed_lambda_recomputes_sua() -> None:
    items = make_items(60, 4, sua_informative=True)
    ev0 = evaluate_items(items, run_id="r", run_lambda=1.0, lam=0.0, bootstrap=50)
    # λ = 0: SUA is S itself.
    assert (
        ev0["metrics"]["clean"]["sua"]["auroc"] == ev0["metrics"]["clean"]["sensitivity"]["auroc"]
    )


def test_one_class_gives_null_with_reason() -> None:
    items = make_items(30, 5, sua_informative=True)
    items.correct = [True] * 30
    items.robust = [True] * 30
    ev = evaluate_items(items, run_id="r", run_lambda=1.0, bootstrap=50)
    auc = ev["metrics"]["clean"]["sua"]["auroc"]
    assert auc["value"] is None and "one class" in auc["reason"]
    assert ev["comparison"]["clean"]["winner"] is None


def test_bad_options() -> None:
    items = make_items(20, 6, sua_informative=True)
    with pytest.raises(ConfigError):
        evaluate_items(items, run_id="r", run_lambda=1.0, target_risk=1.5)
    with pytest.raises(ConfigError):
        evaluate_items(items, run_id="r", run_lambda=1.0, lam=math.nan)
    with pytest.raises(EvaluationError):
        evaluate_items(Items(), run_id="r", run_lambda=1.0)


def test_token_f1_and_rules() -> None:
    assert token_f1("the Eiffel Tower", "Eiffel tower in Paris") == pytest.approx(2 * 1 * 0.5 / 1.5)
    assert token_f1("", "x") == 0.0
    assert best_f1("eight legs", ["8", "eight"]) == pytest.approx(2 / 3)
    f1 = Grader("f1", f1_threshold=0.5)
    assert f1.name == "f1>=0.5" and f1.qa_correct("q", "eight legs", ["eight"])
    exact = Grader("exact")
    assert not exact.qa_correct("q", "eight legs", ["eight"])
    assert exact.qa_correct("q", "The Eight.", ["eight"])
    with pytest.raises(ConfigError):
        Grader("judge")
    with pytest.raises(ConfigError):
        Grader("fuzzy")
    assert Grader("judge", judge_model="fake/echo").name == "judge:fake/echo"


def test_evaluation_options_default_to_the_rules_own_defaults() -> None:
    from sua_audit.evaluation import EvaluationOptions
    from sua_audit.evaluation.bootstrap import DEFAULT_BOOTSTRAP
    from sua_audit.evaluation.correctness import DEFAULT_F1_THRESHOLD, DEFAULT_RULE

    default = EvaluationOptions()
    assert default.correctness == DEFAULT_RULE
    assert default.f1_threshold == DEFAULT_F1_THRESHOLD
    assert default.bootstrap == DEFAULT_BOOTSTRAP
