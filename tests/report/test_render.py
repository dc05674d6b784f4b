"""Rendering and gate logic on hand-built runs (unit doubles of real outputs), including an
evaluation dict shaped like evaluation.json, so the evaluated sections are covered even where
the evaluation module is absent. The real-run tests are in the other files of this folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sua_audit.errors import ConfigError
from sua_audit.gate import evaluate_gate, junit_xml, load_checklist
from sua_audit.report import Run, load_run, render_compare, render_report, svg
from sua_audit.report.markdown import cell


def _item(i: int, *, correct: bool | None, sua: float, h: float) -> dict:
    s = sua + h
    return {
        "id": f"it-{i}",
        "task": "classification",
        "status": "ok",
        "input": f"input {i}",
        "prediction": "positive" if i % 2 else "negative",
        "correct": correct,
        "gold": ["positive"],
        "entropy": h,
        "sensitivity": s,
        "sua": sua,
        "sua_pos": max(sua, 0.0),
        "max_prob": 0.1 * (i % 5),
        "self_consistency": 0.1 * (i % 5),
        "abstain": sua > 0,
        "variants": [
            {"kind": "clean", "text": f"input {i}", "prediction": "positive", "correct": correct},
            {"kind": "typo", "text": f"inptu {i}", "prediction": "negative", "divergence": s},
        ],
    }


def _run(tmp_path: Path, evaluation: dict | None = None, sha: str = "abc") -> Run:
    items = [_item(i, correct=i % 3 != 0, sua=0.2 - 0.05 * i, h=0.3 + 0.02 * i) for i in range(10)]
    summary = {
        "run_id": "r1",
        "config": {"model": "fake/echo", "lam": 1.0, "temperature": 0.7},
        "model": {"provider": "fake"},
        "dataset": {"path": "d.jsonl", "sha256": sha, "items": 10},
        "results": {
            "items": 10,
            "items_scored": 10,
            "items_failed": 0,
            "accuracy": 0.6,
            "robust_accuracy": 0.4,
            "abstained": 4,
            "abstention_rate": 0.4,
            "selective_accuracy": 0.5,
            "tau": 0.0,
            "mean_scores": {"sua_pos": 0.05, "sensitivity": 0.3, "entropy": 0.4, "sua": -0.1},
            "mean_sensitivity_by_kind": {"typo": 0.3, "word": 0.1},
            "ambiguity": {"collapse_rate": 0.25},
        },
        "cost": {"usd": 0.0},
    }
    return Run(tmp_path, summary, items, evaluation, None if evaluation else "no gold here")


def _evaluation(*, feasible: bool = True) -> dict:
    est = {"value": 0.71, "ci": [0.52, 0.88]}
    return {
        "schema": 1,
        "correctness_rule": "label",
        "n_items": 10,
        "bootstrap": 200,
        "seed": 0,
        "lambda": {"mode": "fixed", "value": 1.0, "grid": None, "criterion": None},
        "accuracy": {"value": 0.6, "ci": [0.3, 0.9]},
        "robust_accuracy": {"value": 0.4, "ci": [0.1, 0.7]},
        "failure_labels": {
            "clean": {"n": 10, "failures": 4},
            "worst_case": {"n": 10, "failures": 6},
        },
        "metrics": {
            "clean": {
                "sua": {"auroc": est, "auprc": est, "prr": est, "aurc": est},
                "entropy": {"auroc": {"value": 0.55, "ci": [0.3, 0.8]}},
            },
            "worst_case": {"sua": {"auroc": {"value": None, "ci": None, "reason": "one class"}}},
        },
        "comparison": {
            "clean": {
                "metric": "auroc",
                "best_baseline": "entropy",
                "sua_minus_best_baseline": {"value": 0.16, "ci": [-0.1, 0.4]},
                "winner": "sua",
            }
        },
        "calibration": {
            "confidence": "max p of the clean prediction",
            "ece": {"value": 0.12, "ci": [0.05, 0.2]},
            "bins": [
                {"lo": 0.5, "hi": 0.6, "count": 4, "mean_confidence": 0.55, "accuracy": 0.5},
                {"lo": 0.9, "hi": 1.0, "count": 6, "mean_confidence": 0.95, "accuracy": 0.83},
            ],
        },
        "risk_coverage": {
            "clean": {
                "sua": [[0.1, 0.0], [0.5, 0.2], [1.0, 0.4]],
                "entropy": [[0.1, 1.0], [1.0, 0.4]],
            }
        },
        "abstention": {
            "score": "sua",
            "target_risk": 0.2,
            "delta": 0.1,
            "method": "Learn-then-Test (binomial)",
            "tau": -0.123 if feasible else None,
            "feasible": feasible,
            "calibration_n": 40,
            "test_n": 30,
            "test_coverage": 0.6 if feasible else 0.0,
            "test_risk": 0.15 if feasible else None,
        },
    }


def test_html_shows_evaluation_with_cis_and_guarantee(tmp_path: Path) -> None:
    html = render_report(_run(tmp_path, _evaluation()), "html")
    assert "0.710 [0.520, 0.880]" in html  # SUA AUROC with its CI
    assert "95% CI 0.520–0.880" in html
    assert "τ = -0.123" in html and "probability at least 0.90" in html
    assert "at most α = 0.20" in html and "one class" not in html.split("Plots")[1]
    risk_cov = re.search(r'<svg[^>]*id="plot-risk-coverage".*?</svg>', html, re.S)
    assert risk_cov and risk_cov.group(0).count("<polyline") == 2  # the evaluation's curves
    reliab = re.search(r'<svg[^>]*id="plot-reliability".*?</svg>', html, re.S)
    assert reliab and reliab.group(0).count('class="bar"') == 2
    assert "winner: <b>sua</b>" in html


def test_infeasible_abstention_is_said(tmp_path: Path) -> None:
    md = render_report(_run(tmp_path, _evaluation(feasible=False)), "md")
    assert "no threshold on sua keeps the risk" in md
    assert len(md.splitlines()) < 40


def test_not_evaluated_still_renders_every_plot(tmp_path: Path) -> None:
    html = render_report(_run(tmp_path), "html")
    assert "not evaluated" in html.lower() and "no gold here" in html
    for plot in ("risk-coverage", "reliability", "s-vs-h", "sensitivity-by-kind", "sua-histogram"):
        assert f'id="plot-{plot}"' in html
    assert 'class="plot empty"' not in html  # curves and bins computed from the items
    data = json.loads(render_report(_run(tmp_path), "json"))
    assert data["evaluated"] is False and data["metrics"]["sua_auroc"]["value"] is None
    assert [w["id"] for w in data["worst_items"]][:2] == ["it-0", "it-1"]


def test_gate_reads_evaluation_metrics(tmp_path: Path) -> None:
    spec_path = tmp_path / "c.toml"
    spec_path.write_text(
        "[limits]\nmin_sua_auroc = 0.7\nmax_ece = 0.1\nmin_sua_auroc_worst_case = 0.5\n"
    )
    outcome = evaluate_gate(_run(tmp_path, _evaluation()), load_checklist(spec_path))
    status = {r.name: (r.status, r.message) for r in outcome.results}
    assert status["min_sua_auroc"][0] == "pass"
    assert status["max_ece"] == ("fail", "ece: value 0.12, limit ≤ 0.1")
    assert status["min_sua_auroc_worst_case"][0] == "fail"
    assert "one class" in status["min_sua_auroc_worst_case"][1]
    xml = junit_xml(outcome)
    assert xml.count("<testcase") == 3 and xml.count("<failure") == 2
    # Not evaluated: with missing = "skip" the evaluation checks are skipped, not passed.
    spec_path.write_text('[limits]\nmin_sua_auroc = 0.7\n[options]\nmissing = "skip"\n')
    outcome = evaluate_gate(_run(tmp_path), load_checklist(spec_path))
    assert outcome.passed and outcome.results[0].status == "skip"


def test_markdown_cells_are_inert() -> None:
    out = cell("a|b <script>x</script> [link](http://e) *bold*\nnext line", limit=200)
    assert "|" not in out.replace("\\|", "") and "<" not in out
    assert "\n" not in out and "\\[link\\]" in out and "\\*bold\\*" in out
    assert len(cell("x" * 500, limit=50)) == 50


def test_compare_refuses_other_datasets(tmp_path: Path) -> None:
    a, b = _run(tmp_path), _run(tmp_path, sha="def")
    with pytest.raises(ConfigError, match="different datasets"):
        render_compare([a, b], "md")
    same = render_compare([a, _run(tmp_path)], "md")
    assert "disagree: 0" in same


def test_load_run_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_run(tmp_path / "nope")
    with pytest.raises(ConfigError, match="no summary.json"):
        load_run(tmp_path)
    with pytest.raises(ConfigError, match="unknown format"):
        render_report(_run(tmp_path), "pdf")


@pytest.mark.parametrize("values", [[0.0], [1.0, 1.0, 1.0], [-3.0, 2.0]])
def test_svg_edge_cases_render(values: list[float]) -> None:
    out = svg.histogram(values, marker=0.0, plot_id="h", title="t <x>", x_label="x")
    assert out.startswith("<svg") and "t &lt;x&gt;" in out and "nan" not in out
    bars = svg.bars([("k<b>", 0.0)], plot_id="b", title="t", x_label="x", y_label="y")
    assert "k&lt;b&gt;" in bars and "nan" not in bars
    sh = svg.scatter_sh([(0.0, 0.0, "unknown")], lam=0.0, tau=0.0, plot_id="s", title="t")
    assert "nan" not in sh


def test_every_untrusted_field_is_escaped(tmp_path: Path) -> None:
    bad = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    run = _run(tmp_path, _evaluation())
    run.summary["config"]["model"] = f"m{bad}"
    run.summary["dataset"]["path"] = f"d{bad}.jsonl"
    run.summary["results"]["mean_sensitivity_by_kind"] = {f"k{bad}": 0.2}
    for row in run.items:
        row.update(id=f"{row['id']}{bad}", input=bad, prediction=bad, gold=[bad])
        for v in row["variants"]:
            v.update(text=bad, prediction=bad, detail=bad, kind=f"typo{bad}")
    for fmt in ("html", "md"):
        out = render_report(run, fmt)
        assert "<script" not in out and "<img" not in out, fmt
        assert "&lt;script&gt;" in out
    other = _run(tmp_path, _evaluation())
    for row in other.items:
        row["prediction"] = "different"
    run.items = [dict(r, id=o["id"]) for r, o in zip(run.items, other.items, strict=True)]
    for fmt in ("html", "md"):
        out = render_compare([run, other], fmt)
        assert "<script" not in out and "<img" not in out, fmt


def test_disagreements_are_listed_and_ordered(tmp_path: Path) -> None:
    a, b = _run(tmp_path), _run(tmp_path)
    b.items[3]["prediction"] = "Something else"  # text differs, correctness the same
    b.items[6]["correct"] = not a.items[6]["correct"]  # correctness differs
    b.items[6]["sua"] = a.items[6]["sua"] - 0.5
    b.items[1]["prediction"] = a.items[1]["prediction"].upper() + " "  # same after normalising
    b.items[8].update(status="failed", error={"kind": "timeout"}, prediction=None, correct=None)
    b.items[8]["sua"] = None
    data = json.loads(render_compare([a, b], "json"))
    assert [e["id"] for e in data["disagreements"]] == ["it-6", "it-8", "it-3"]
    assert data["disagreements"][0]["correctness_differs"] is True
    html = render_compare([a, b], "html")
    assert "(3 of 10)" in html and "Something else" in html
    assert "failed (timeout)" in html and "failed (timeout)" in render_compare([a, b], "md")
