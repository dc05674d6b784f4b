"""The gate's paired test on [baseline] checks: hand-computed runs, options, and its level.

The runs here are small results.jsonl / summary.json pairs written by hand, so every number
the gate prints can be worked out on paper; the simulation calls the statistics directly.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sua_audit.errors import ConfigError
from sua_audit.gate_stats import (
    NoPairs,
    decide,
    mcnemar_exact,
    paired_change,
    paired_values,
)
from sua_audit.gating import Check, Checklist, evaluate_gate, load_checklist
from sua_audit.reports import load_run
from tests.report.conftest import sua

SHA = "ab" * 32


def _row(i: int, correct: bool | None, **extra: Any) -> dict[str, Any]:
    variants = extra.pop("variants", [{"kind": "original", "correct": correct}])
    return {
        "id": f"q{i}",
        "task": "classification",
        "status": "ok",
        "correct": correct,
        "sua": -0.5,
        "sua_pos": 0.0,
        "sensitivity": 0.01,
        "entropy": 0.5,
        "flip_rate": 0.0,
        "abstain": False,
        "variants": variants,
        **extra,
    }


def _failed(i: int) -> dict[str, Any]:
    return {"id": f"q{i}", "task": "classification", "status": "failed", "correct": None}


def _write_run(path: Path, rows: list[dict[str, Any]], **results: Any) -> Path:
    path.mkdir(parents=True)
    graded = [r for r in rows if isinstance(r.get("correct"), bool)]
    summary = {
        "run_id": path.name,
        "dataset": {"path": "data.jsonl", "sha256": SHA},
        "results": {
            "items": len(rows),
            "accuracy": sum(r["correct"] for r in graded) / len(graded) if graded else None,
            **results,
        },
    }
    (path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (path / "results.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def _checklist(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "checklist.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _gate(tmp_path: Path, base_rows: list, run_rows: list, text: str, **results: Any):
    base = load_run(_write_run(tmp_path / "base", base_rows, **results), evaluate=False)
    run = load_run(_write_run(tmp_path / "run", run_rows, **results), evaluate=False)
    return evaluate_gate(run, load_checklist(_checklist(tmp_path, text)), base)


# ---------------------------------------------------------------------------------------------
# Hand-computed cases.


def test_mcnemar_exact_by_hand() -> None:
    # 8 of 10 discordant pairs moved the worse way: P(X ≥ 8), X ~ Bin(10, 1/2)
    # = (C(10,8) + C(10,9) + C(10,10)) / 2^10 = (45 + 10 + 1) / 1024.
    assert mcnemar_exact(8, 2) == pytest.approx(56 / 1024, abs=1e-15)
    assert mcnemar_exact(3, 0) == pytest.approx(1 / 8, abs=1e-15)
    assert mcnemar_exact(0, 5) == 1.0
    assert mcnemar_exact(0, 0) == 1.0
    # Symmetric split: P(X ≥ 2 | n = 4) = (6 + 4 + 1) / 16.
    assert mcnemar_exact(2, 2) == pytest.approx(11 / 16, abs=1e-15)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_large_drop_fails_all_rules(tmp_path: Path) -> None:
    # 20 items all right in the baseline; the run gets the first 10 wrong: drop 0.5.
    base = [_row(i, True) for i in range(20)]
    run = [_row(i, i >= 10) for i in range(20)]
    out = _gate(tmp_path, base, run, "[baseline]\nmax_drop_accuracy = 0.05\n")
    (res,) = out.results
    assert res.status == "fail" and res.paired is not None
    assert res.paired.n == 20 and res.paired.change == pytest.approx(0.5)
    assert res.paired.lo > 0.05  # the lower end is far above the limit
    assert (res.paired.worse, res.paired.better) == (10, 0)
    assert res.paired.mcnemar_p == pytest.approx(1 / 1024)
    assert res.message.startswith("accuracy vs baseline: drop 0.5 [90% CI ")
    assert "over 20 paired items (1 → 0.5), limit ≤ 0.05" in res.message
    assert "exact McNemar p 0.0009766 for any drop (10 vs 0 discordant)" in res.message
    assert res.message.endswith(": significant → FAIL")


def test_one_flip_in_twenty_depends_on_the_rule(tmp_path: Path) -> None:
    # One of 20 items goes right → wrong: drop 0.05 against a limit of 0.02.
    # Bootstrap count of that item X ~ Bin(20, 1/20): P(X = 0) = 0.95^20 = 0.358 > 0.05, so
    # the 5% percentile is 0; P(X ≤ 2) = 0.925 < 0.95 ≤ P(X ≤ 3) = 0.984, so the 95% one is
    # 3/20 = 0.15.
    base = [_row(i, True) for i in range(20)]
    run = [_row(i, i != 0) for i in range(20)]
    limit = "[baseline]\nmax_drop_accuracy = 0.02\n"
    (sig,) = _gate(tmp_path / "a", base, run, limit).results
    assert sig.paired is not None
    assert sig.paired.lo == 0.0 and sig.paired.hi == pytest.approx(0.15)
    assert sig.status == "pass"
    assert sig.message.endswith("above the limit but not significant → PASS")
    (upper,) = _gate(
        tmp_path / "b", base, run, limit + "[options]\nbaseline_test = 'upper'\n"
    ).results
    assert upper.status == "fail"
    assert upper.message.endswith("the CI's upper end is above the limit → FAIL")
    (point,) = _gate(
        tmp_path / "c", base, run, limit + "[options]\nbaseline_test = 'point'\n"
    ).results
    assert point.status == "fail" and point.paired is None
    assert point.message == "accuracy vs baseline: drop 0.05 (1 → 0.95), limit ≤ 0.02"


def test_constant_shift_of_a_score(tmp_path: Path) -> None:
    # Every item's entropy rises by exactly 0.2: the CI collapses to [0.2, 0.2].
    base = [_row(i, True, entropy=0.1 * i) for i in range(10)]
    run = [_row(i, True, entropy=0.1 * i + 0.2) for i in range(10)]
    (fail,) = _gate(tmp_path / "a", base, run, "[baseline]\nmax_rise_mean_entropy = 0.1\n").results
    assert fail.status == "fail" and fail.paired is not None
    assert fail.paired.lo == pytest.approx(0.2) and fail.paired.hi == pytest.approx(0.2)
    assert fail.paired.mcnemar_p is None and "McNemar" not in fail.message
    assert "mean_entropy vs baseline: rise 0.2 [90% CI 0.2, 0.2] over 10 paired items" in (
        fail.message
    )
    (ok,) = _gate(tmp_path / "b", base, run, "[baseline]\nmax_rise_mean_entropy = 0.3\n").results
    assert ok.status == "pass" and ok.message.endswith("within the limit → PASS")


def test_pairs_only_items_graded_in_both(tmp_path: Path) -> None:
    base = [_row(i, True) for i in range(6)] + [_failed(6), _row(7, None), _row(8, True)]
    run = [_row(i, True) for i in range(6)] + [_row(6, True), _row(7, True), _failed(8)]
    run.append(_row(9, False))  # not in the baseline at all
    ids, before, after = paired_values(base, run, "accuracy")
    assert ids == [f"q{i}" for i in range(6)]
    assert before.tolist() == after.tolist() == [1.0] * 6
    # failure_rate pairs every item present in both runs (q0..q8), failed or not.
    ids, before, after = paired_values(base, run, "failure_rate")
    assert len(ids) == 9 and before.sum() == 1 and after.sum() == 1
    (res,) = _gate(tmp_path, base, run, "[baseline]\nmax_drop_accuracy = 0\n").results
    assert "over 6 paired items" in res.message and res.status == "pass"


def test_robust_accuracy_ignores_multi_answer_variants() -> None:
    ok = [{"kind": "original", "correct": True}, {"kind": "paraphrase", "correct": True}]
    amb = {"kind": "ambiguity", "correct": False, "flags": ["multi_answer"]}
    para_wrong = {"kind": "paraphrase", "correct": False}
    base = [_row(0, True, variants=ok), _row(1, True, variants=ok)]
    run = [_row(0, True, variants=[*ok, amb]), _row(1, True, variants=[*ok, para_wrong])]
    _, before, after = paired_values(base, run, "robust_accuracy")
    assert before.tolist() == [1.0, 1.0] and after.tolist() == [1.0, 0.0]


def test_disjoint_ids_fail_clearly(tmp_path: Path) -> None:
    base = [_row(i, True) for i in range(5)]
    run = [_row(i, True) for i in range(10, 15)]
    (res,) = _gate(tmp_path, base, run, "[baseline]\nmax_drop_accuracy = 0.5\n").results
    assert res.status == "fail"
    assert "share no item id (different datasets?)" in res.message


def test_missing_per_item_field_is_unavailable(tmp_path: Path) -> None:
    # confident_flip is a newer row field: older runs lack it, the metric is then unavailable.
    base = load_run(_write_run(tmp_path / "b", [_row(i, True) for i in range(3)]), evaluate=False)
    run = load_run(
        _write_run(tmp_path / "r", [_row(i, True, confident_flip=i == 0) for i in range(3)]),
        evaluate=False,
    )
    with pytest.raises(NoPairs, match="'confident_flip' value in the baseline"):
        paired_values(base.items, run.items, "confident_flip_rate")
    check = Check("max_rise_confident_flip_rate", "confident_flip_rate", "max_rise", 0.1)
    for missing, status in (("skip", "skip"), ("fail", "fail")):
        spec = Checklist(tmp_path / "c.toml", (), (check,), missing)  # type: ignore[arg-type]
        (res,) = evaluate_gate(run, spec, base).results
        assert res.status == status and "confident_flip" in res.message
    # With the field in both runs the check is paired: 1 of 3 flips vs none.
    spec = Checklist(tmp_path / "c.toml", (), (check,))
    (res,) = evaluate_gate(run, spec, run).results
    assert res.status == "pass" and "rise 0 " in res.message


def test_point_metrics_say_so(tmp_path: Path) -> None:
    rows = [_row(i, True) for i in range(3)]
    base = load_run(_write_run(tmp_path / "b", rows), evaluate=False)
    run = load_run(_write_run(tmp_path / "r", rows), evaluate=False)
    base.summary["cost"], run.summary["cost"] = {"usd": 1.0}, {"usd": 2.0}
    spec = load_checklist(_checklist(tmp_path, "[baseline]\nmax_rise_cost_usd = 0.5\n"))
    (res,) = evaluate_gate(run, spec, base).results
    assert res.status == "fail"
    assert res.message == (
        "cost_usd vs baseline: rise 1 (1 → 2), limit ≤ 0.5 (no per-item values: point comparison)"
    )


def test_cli_line_and_junit(tmp_path: Path) -> None:
    base = _write_run(tmp_path / "base", [_row(i, True) for i in range(20)])
    run = _write_run(tmp_path / "run", [_row(i, i >= 10) for i in range(20)])
    checklist = _checklist(
        tmp_path, "[baseline]\nmax_drop_accuracy = 0.05\nmax_rise_mean_entropy = 0\n"
    )
    junit = tmp_path / "gate.xml"
    done = sua(
        "gate", str(run), "-c", str(checklist), "--baseline", str(base), "--junit", str(junit)
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    fail = next(line for line in lines if line.startswith("FAIL "))
    assert fail.startswith("FAIL accuracy vs baseline: drop 0.5 [90% CI ")
    assert fail.endswith(
        "over 20 paired items (1 → 0.5), limit ≤ 0.05; exact McNemar p "
        "0.0009766 for any drop (10 vs 0 discordant): significant → FAIL"
    )
    assert any(
        line.startswith("PASS mean_entropy vs baseline: rise 0 [90% CI 0, 0] over 20 paired")
        for line in lines
    )
    (failure,) = ET.parse(junit).getroot().findall(".//testcase/failure")
    assert failure.get("message") == fail.removeprefix("FAIL ")


# ---------------------------------------------------------------------------------------------
# Options.


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ("baseline_test = 'maybe'", "options.baseline_test: must be 'significant', 'upper'"),
        ("alpha = 0.5", "options.alpha: must be a number above 0 and below 0.5"),
        ("alpha = 0", "options.alpha"),
        ("alpha = 'low'", "options.alpha"),
        ("alpha = true", "options.alpha"),
        ("resamples = 10", "options.resamples: must be a whole number from 100"),
        ("resamples = 2000.5", "options.resamples"),
        ("seed = -1", "options.seed: must be a whole number ≥ 0"),
        ("seed = 'zero'", "options.seed"),
        ("level = 0.9", "options.level: unknown option. Options: missing, baseline_test"),
    ],
)
def test_bad_options(tmp_path: Path, options: str, field: str) -> None:
    path = _checklist(tmp_path, f"[baseline]\nmax_drop_accuracy = 0.05\n[options]\n{options}\n")
    with pytest.raises(ConfigError) as info:
        load_checklist(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and field in message and "\n" not in message


def test_options_read() -> None:
    from tests.conftest import REPO

    spec = load_checklist(REPO / "audits" / "release.toml")
    assert (spec.baseline_test, spec.alpha, spec.resamples, spec.seed) == (
        "significant",
        0.05,
        2000,
        0,
    )


def test_seeded_and_alpha_sets_the_level(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    before = rng.random(50)
    after = before - 0.05 + rng.normal(0, 0.1, 50)
    one = paired_change(before, after, "drop", seed=7)
    assert one == paired_change(before, after, "drop", seed=7)
    assert one != paired_change(before, after, "drop", seed=8)
    wide = paired_change(before, after, "drop", alpha=0.005, seed=7)
    assert wide.lo < one.lo < one.change < one.hi < wide.hi
    assert one.level == pytest.approx(0.9) and wide.level == pytest.approx(0.99)


# ---------------------------------------------------------------------------------------------
# Simulation: the significant rule holds its level at the boundary and has power beyond it.

N_SIM, N_ITEMS, ALPHA, LIMIT = 400, 200, 0.05, 0.05
#: Three binomial standard errors of a rejection share of α over N_SIM runs (≈ 0.033).
MC_MARGIN = 3 * math.sqrt(ALPHA * (1 - ALPHA) / N_SIM)


def _fail_share_binary(p_worse: float, p_better: float, seed: int) -> float:
    """Share of FAILs over N_SIM simulated (baseline, run) accuracy pairs of N_ITEMS items.

    Per item the baseline is right with probability 0.7; the pair is discordant right → wrong
    with probability ``p_worse`` and wrong → right with ``p_better``; true drop = their
    difference.
    """
    rng = np.random.default_rng(seed)
    fails = 0
    for _ in range(N_SIM):
        u = rng.random(N_ITEMS)
        worse = u < p_worse
        better = (u >= p_worse) & (u < p_worse + p_better)
        same_right = (u >= p_worse + p_better) & (u < 0.7 + p_better)
        before = (worse | same_right).astype(float)
        after = (better | same_right).astype(float)
        change = paired_change(before, after, "drop", alpha=ALPHA, binary=True)
        fails += decide(change, LIMIT, "significant").fail
    return fails / N_SIM


def test_simulation_level_at_the_boundary() -> None:
    # True drop = 0.10 − 0.05 = 0.05 = the limit: H0 holds (at its edge).
    share = _fail_share_binary(0.10, 0.05, seed=11)
    assert share <= ALPHA + MC_MARGIN, share


def test_simulation_power_at_three_times_the_limit() -> None:
    # True drop = 0.20 − 0.05 = 0.15 = 3 × limit. Normal approximation: sd of d ≈ 0.477,
    # se ≈ 0.034, power ≈ Φ(0.10 / 0.034 − 1.645) ≈ 0.9.
    share = _fail_share_binary(0.20, 0.05, seed=12)
    assert share >= 0.8, share


def test_simulation_level_for_a_skewed_score() -> None:
    # A continuous, skewed per-item score (like [SUA]₊: mostly small, a few large): the run's
    # score rises by exactly the limit on average, with exponential noise per item.
    rng = np.random.default_rng(13)
    fails = 0
    for _ in range(N_SIM):
        before = rng.exponential(0.05, N_ITEMS)
        after = before + rng.exponential(LIMIT, N_ITEMS)  # mean rise = LIMIT
        change = paired_change(before, after, "rise", alpha=ALPHA)
        fails += decide(change, LIMIT, "significant").fail
    assert fails / N_SIM <= ALPHA + MC_MARGIN, fails / N_SIM
