"""Rendering and gate logic on hand-built runs (unit doubles of real outputs), including an
evaluation dict shaped like evaluation.json, so the evaluated sections are covered even where
the evaluation module is absent. The real-run tests are in the other files of this folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sua_audit.errors import ConfigError
from sua_audit.gating import evaluate_gate, junit_xml, load_checklist
from sua_audit.reports import Run, load_run, read_metric, render_compare, render_report, svg
from sua_audit.reports.markdown import cell


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
    assert len(md.splitlines()) < 70  # a page for a CI job summary


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


# ---------------------------------------------------------------------------------------------
# The verdicts a run records since confident flips, diagnostics and the abstention block:
# hand-built runs written to disk and read back as `sua-audit report` reads them.

RULE = "the clean answer's probability is at least 0.9 and the answer changes (test rule)"


def _row(
    item_id: str,
    *,
    confidence: float,
    flipped: list[int],
    h: float = 0.5,
    s: float = 0.01,
    flip_rate: float = 0.0,
    threshold: float = 0.9,
) -> dict:
    """A scored classification row with a clean variant and two rewrites (index 1 keeps the
    answer, index 2 changes it unless ``flipped`` says otherwise)."""
    answer = "positive"
    variants = [
        {"kind": "clean", "index": 0, "text": f"clean text {item_id}", "prediction": answer},
        {
            "kind": "typo",
            "index": 1,
            "text": f"typo text {item_id}",
            "detail": "typo: one letter",
            "prediction": "negative" if 1 in flipped else answer,
            "correct": 1 not in flipped,
        },
        {
            "kind": "paraphrase",
            "index": 2,
            "text": f"paraphrased text {item_id}",
            "detail": "paraphrase",
            "prediction": "negative" if 2 in flipped else answer,
            "correct": 2 not in flipped,
        },
    ]
    return {
        "id": item_id,
        "task": "classification",
        "status": "ok",
        "input": f"clean text {item_id}",
        "prediction": answer,
        "correct": True,
        "gold": ["positive"],
        "entropy": h,
        "sensitivity": s,
        "sua": s - h,
        "sua_pos": max(s - h, 0.0),
        "sua_norm": 0.0,
        "max_prob": 1 - confidence,
        "flip_rate": flip_rate,
        "confidence": confidence,
        "flipped_variants": flipped,
        "confident_flip": bool(flipped) and confidence >= threshold,
        "abstain": False,
        "variants": variants,
    }


def _failed_row(item_id: str) -> dict:
    return {
        "id": item_id,
        "task": "classification",
        "status": "failed",
        "input": "x",
        "prediction": None,
        "correct": None,
        "sua": None,
        "confidence": None,
        "flipped_variants": [],
        "confident_flip": None,
        "abstain": None,
        "variants": [],
    }


def _write_run(root: Path, rows: list[dict], results: dict | None = None) -> Run:
    """A run folder as `sua-audit run` writes it; ``results`` is merged into summary results."""
    root.mkdir(parents=True, exist_ok=True)
    scored = [r for r in rows if r["status"] == "ok"]
    summary = {
        "run_id": root.name,
        "config": {"model": "fake/echo", "lam": 1.0, "confident_threshold": 0.9},
        "model": {"provider": "fake"},
        "dataset": {"path": "d.jsonl", "sha256": "abc", "items": len(rows)},
        "results": {
            "items": len(rows),
            "items_scored": len(scored),
            "items_failed": len(rows) - len(scored),
            "accuracy": 1.0,
            "robust_accuracy": 0.5,
            "abstained": 0,
            "abstention_rate": 0.0,
            "tau": 0.0,
            "mean_scores": {"sua": -0.4, "sensitivity": 0.01, "entropy": 0.5},
            **(results or {}),
        },
    }
    (root / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (root / "results.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
    )
    return load_run(root, evaluate=False)


def _flip_rows() -> list[dict]:
    return [
        _row("stable-sure", confidence=0.99, flipped=[]),  # confident, never flips
        _row("flip-b", confidence=0.92, flipped=[1]),  # confident flip via the typo
        _row("unsure-flip", confidence=0.40, flipped=[1, 2]),  # flips, but not confident
        _row("flip-a", confidence=0.97, flipped=[2]),  # confident flip via the paraphrase
        _failed_row("broken"),
    ]


def _flips_block(n_flips: int) -> dict:
    return {
        "rule": RULE,
        "threshold": 0.9,
        "n": 4,
        "n_confident": 3,
        "n_flipped": 3,
        "n_confident_flips": n_flips,
        "rate": n_flips / 4,
    }


def _html_block(html: str, element_id: str) -> str:
    found = re.search(
        rf'<div class="item flip" id="{element_id}">.*?</div></div></div>', html, re.S
    )
    assert found, element_id
    return found.group(0)


def test_confident_flips_lists_exactly_the_flagged_items_side_by_side(tmp_path: Path) -> None:
    results = {"confident_flips": _flips_block(2), "confident_flip_rate": 0.5}
    run = _write_run(tmp_path / "run", _flip_rows(), results)
    html = render_report(run, "html")
    section = html.split("<h2>Confident flips</h2>")[1].split("<h2>")[0]
    assert "2 of 4 scored items (50.0%) are confident flips" in section
    assert "at least 0.9 and the answer changes (test rule)" in section
    # Exactly the flagged items, the most confident first.
    assert re.findall(r'id="flip-([^"]+)"', section) == ["flip-a", "flip-b"]
    # The first section of items: before the ranked list.
    assert html.index("<h2>Confident flips</h2>") < html.index("<h2>Items ranked")
    # Original (with its answer and confidence) beside the variant that flipped it.
    a = _html_block(html, "flip-flip-a")
    original, variant = a.split('<div class="original">')[1].split('<div class="variant">')
    assert "clean text flip-a" in original and "positive" in original
    assert "confidence 0.970" in original
    assert "<b>paraphrase</b>" in variant and "paraphrased text flip-a" in variant
    assert "negative" in variant and "typo text flip-a" not in a  # index 2, not 1
    b = _html_block(html, "flip-flip-b")
    assert "<b>typo</b>" in b and "typo text flip-b" in b and "paraphrased" not in b

    md = render_report(run, "md")
    flips_md = md.split("**Confident flips**")[1].split("**What SUA")[0]
    table = [line for line in flips_md.splitlines() if line.startswith("| flip")]
    assert [line.split(" | ")[0] for line in table] == ["| flip-a", "| flip-b"]
    assert "paraphrase: paraphrased text flip-a | negative" in table[0]
    assert "positive (0.970)" in table[0]

    data = json.loads(render_report(run, "json"))
    flips = data["confident_flips"]
    assert [i["id"] for i in flips["items"]] == ["flip-a", "flip-b"]
    assert flips["items"][0]["first_flip"]["text"] == "paraphrased text flip-a"
    assert flips["n_confident_flips"] == 2 and flips["rule"] == RULE
    assert data["metrics"]["confident_flip_rate"]["value"] == 0.5
    assert read_metric(run, "confident_flip_rate").value == 0.5


def test_no_confident_flips_is_one_sentence(tmp_path: Path) -> None:
    rows = [
        _row(f"r{i}", confidence=0.99 if i % 2 else 0.3, flipped=[] if i % 2 else [1])
        for i in range(4)
    ]
    assert not any(r["confident_flip"] for r in rows)
    run = _write_run(tmp_path / "run", rows, {"confident_flips": _flips_block(0)})
    html = render_report(run, "html")
    section = html.split("<h2>Confident flips</h2>")[1].split("<h2>")[0]
    assert "No confident flips were found among the 4 scored items under the rule" in section
    assert 'class="item flip"' not in section
    assert "No confident flips were found" in render_report(run, "md")


def test_old_runs_render_with_not_recorded(tmp_path: Path) -> None:
    """A run written before the new fields: every format renders, nothing is invented."""
    rows = _flip_rows()
    for row in rows:
        for key in ("confidence", "flipped_variants", "confident_flip", "sua_norm"):
            row.pop(key, None)
    run = _write_run(tmp_path / "old", rows)
    html = render_report(run, "html")
    assert "Not recorded by this run" in html.split("<h2>Confident flips</h2>")[1]
    assert "computed by the report from results.jsonl" in html.lower()
    assert "The run abstains when sua (λ = 1.000) &gt; τ = 0.000" in html
    md = render_report(run, "md")
    assert "Not recorded by this run" in md
    data = json.loads(render_report(run, "json"))
    assert data["confident_flips"] is None
    assert data["metrics"]["confident_flip_rate"] == {
        "value": None,
        "ci": None,
        "note": "not recorded by this run",
    }
    assert data["metrics"]["mean_sua_norm"]["note"] == "not recorded by this run"
    assert data["abstention"]["run"]["recorded"] is False


def _diag_rows(s: list[float], h: list[float]) -> list[dict]:
    return [
        _row(f"d{i}", confidence=0.5, flipped=[], s=si, h=hi)
        for i, (si, hi) in enumerate(zip(s, h, strict=True))
    ]


def test_negative_entropy_warning_iff_spearman_above_095(tmp_path: Path) -> None:
    h = [0.1, 0.2, 0.3, 0.4, 0.5]
    # S tiny next to H: SUA = S − H falls as H rises, so it ranks exactly like −H (ρ = 1).
    tiny = _write_run(tmp_path / "tiny", _diag_rows([0.003, 0.001, 0.004, 0.002, 0.005], h))
    # S large: SUA = [0.15, 0.7, 0.05, 0.8, 0.1] has ranks [3, 4, 1, 5, 2]; −H has [5, 4, 3, 2, 1];
    # Σd² = 4 + 0 + 4 + 9 + 1 = 18, so ρ = 1 − 6·18 / (5·24) = 0.1.
    big = _write_run(tmp_path / "big", _diag_rows([0.25, 0.9, 0.35, 1.2, 0.6], h))
    tiny_html, big_html = render_report(tiny, "html"), render_report(big, "html")
    assert "Spearman(SUA, −H) = 1.000" in tiny_html and 'id="sua-warning"' in tiny_html
    assert "acting as negative entropy" in tiny_html
    assert "Spearman(SUA, −H) = 0.100" in big_html and 'id="sua-warning"' not in big_html
    assert "acting as negative entropy" not in big_html
    assert "**Warning:**" in render_report(tiny, "md")
    assert "**Warning:**" not in render_report(big, "md")
    assert read_metric(big, "spearman_sua_neg_entropy").value == pytest.approx(0.1)
    # A recorded block is shown as the run wrote it (its warning escaped, in a callout).
    recorded = {
        "n": 5,
        "mean_sensitivity": 0.003,
        "mean_entropy": 0.6,
        "ratio_s_to_h": 0.005,
        "lambda": 1.0,
        "spearman_sua_neg_entropy": 0.99,
        "warning": "SUA is acting as negative entropy <b>here</b>.",
    }
    run = _write_run(
        tmp_path / "rec", _diag_rows([0.25, 0.9, 0.35, 1.2, 0.6], h), {"diagnostics": recorded}
    )
    html = render_report(run, "html")
    callout = re.search(r'<p class="callout" id="sua-warning">(.*?)</p>', html)
    assert callout and "negative entropy &lt;b&gt;here&lt;/b&gt;." in callout.group(1)
    assert "mean S (0.0030 nats) is 1/200 of λ·mean H" in html
    assert "(this run did not record them)" not in html
    calm = _write_run(
        tmp_path / "calm",
        _diag_rows([0.25, 0.9, 0.35, 1.2, 0.6], h),
        {"diagnostics": {**recorded, "spearman_sua_neg_entropy": 0.9, "warning": None}},
    )
    assert 'id="sua-warning"' not in render_report(calm, "html")


def test_abstention_states_the_score_rule_and_notes(tmp_path: Path) -> None:
    rows = [
        _row(f"q{i}", confidence=0.5, flipped=[], flip_rate=rate)
        for i, rate in enumerate([0.0, 0.5, 0.0, 1.0, 0.25])
    ]
    note = "The rule (abstain when flip_rate > τ = 1) abstained on none of the 5 items."
    block = {
        "score": "flip_rate",
        "rule": "tau",
        "tau": 1.0,
        "coverage_target": None,
        "decided": 5,
        "abstained": 0,
        "rate": 0.0,
        "note": note,
    }
    run = _write_run(tmp_path / "run", rows, {"abstention": block})
    evaluation = _evaluation()
    evaluation["abstention"]["note"] = "Answering every item already meets risk ≤ 0.2."
    run.evaluation = evaluation
    html = render_report(run, "html")
    decision = re.search(r'<p id="decision">(.*?)</p>', html)
    assert decision and "abstains when flip_rate &gt; τ = 1.000" in decision.group(1)
    assert "SUA &gt; τ" not in html and "0 of 5 scored items (0.0%)" in decision.group(1)
    assert re.search(r'id="decision-note">The rule \(abstain when flip_rate', html)
    guarantee = re.search(r'<p id="guarantee">(.*?)</p>', html)
    assert guarantee and "Answering every item already meets risk ≤ 0.2." in guarantee.group(1)
    # The item list is ranked by the run's own score, and says so.
    assert "Items ranked by the run&#39;s abstention score (flip_rate, highest first)" in html
    ranked = html.split('<div id="ranked">')[1]
    assert re.findall(r'<div class="item" id="item-([^"]+)"', ranked) == [
        "q3",
        "q1",
        "q4",
        "q0",
        "q2",
    ]
    md = render_report(run, "md")
    assert note in md.replace("\\_", "_").replace("&gt;", ">")
    assert "abstention score (flip\\_rate)" in md
    data = json.loads(render_report(run, "json"))
    assert data["ranked_by"] == {"score": "flip_rate", "note": None}
    assert data["abstention"]["note"] == note


def test_hostile_text_in_a_flipped_variant_is_escaped(tmp_path: Path) -> None:
    bad = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    rows = _flip_rows()
    for row in rows:
        for v in row.get("variants") or []:
            if v["kind"] != "clean":
                v.update(text=f"t{bad}", detail=f"d{bad}", kind=f"k{bad}", prediction=f"p{bad}")
        row["input"] = f"in{bad}"
    results = {"confident_flips": {**_flips_block(2), "rule": f"rule{bad}"}}
    run = _write_run(tmp_path / "run", rows, results)
    for fmt in ("html", "md"):
        out = render_report(run, fmt)
        assert "<script" not in out and "<img" not in out, fmt
        assert "&lt;script&gt;" in out, fmt
    html = render_report(run, "html")
    assert "t&lt;script&gt;alert(1)&lt;/script&gt;" in _html_block(html, "flip-flip-a")


def _evaluation_with_scores() -> dict:
    ev = _evaluation()
    est = {"value": 0.71, "ci": [0.52, 0.88]}
    unfitted = "not fitted: the validation split has 2 failures and 9 successes"
    ev["perturbation_scores"] = ["sua", "sua_norm", "combined"]
    ev["baselines"] = ["entropy", "max_prob"]
    ev["scores"] = ["sua", "sua_norm", "combined", "entropy", "max_prob"]
    ev["combined"] = {
        "model": "logistic regression",
        "features": ["sensitivity"],
        "reason": unfitted,
    }
    none = {"value": None, "ci": None, "reason": unfitted}
    ev["metrics"]["clean"] = {
        "sua": {"auroc": {"value": 0.40, "ci": [0.30, 0.50]}},
        "sua_norm": {"auroc": est},
        "combined": {"auroc": none},
        "entropy": {"auroc": {"value": 0.60, "ci": [0.50, 0.70]}},
        "max_prob": {"auroc": {"value": 0.58, "ci": [0.45, 0.70]}},
    }
    ev["metrics"]["worst_case"] = {
        name: {"auroc": {"value": 0.5, "ci": [0.4, 0.6]}} for name in ev["metrics"]["clean"]
    }
    ev["metrics"]["worst_case"]["combined"] = {"auroc": none}
    ev["comparison"]["clean"] = {
        "metric": "auroc",
        "best_baseline": "entropy",
        "winner": "sua_norm",
        "sua_minus_best_baseline": {"value": -0.2, "ci": [-0.3, -0.1]},
        "versus": {
            "sua": {
                "minus_best_baseline": {"value": -0.2, "ci": [-0.3, -0.1]},
                "minus_entropy": {"value": -0.2, "ci": [-0.3, -0.1]},
            },
            "sua_norm": {
                "minus_best_baseline": {"value": 0.11, "ci": [0.02, 0.2]},
                "minus_entropy": {"value": 0.11, "ci": [0.02, 0.2]},
            },
        },
    }
    return ev


def test_scores_table_lists_every_score_with_paired_cis(tmp_path: Path) -> None:
    run = _run(tmp_path, _evaluation_with_scores())
    html = render_report(run, "html")
    table = re.search(r'<table class="scores-all">.*?</table>', html, re.S)
    assert table
    body = re.findall(r"<tr(?: class=\"unavailable\")?><td>(.*?)</td>", table.group(0))
    names = [re.sub(r" <span.*", "", cell) for cell in body]
    assert names == ["sua", "sua_norm", "combined", "entropy", "max_prob"]
    rows = {
        n: r for n, r in zip(names, re.findall(r"<tr.*?</tr>", table.group(0))[1:], strict=True)
    }
    assert "winner (clean)" in rows["sua_norm"] and "winner" not in rows["sua"]
    assert '<span class="ok">+0.110 [0.020, 0.200]</span>' in rows["sua_norm"]
    assert '<span class="bad">-0.200 [-0.300, -0.100]</span>' in rows["sua"]
    assert "0.400 [0.300, 0.500]" in rows["sua"] and "0.600 [0.500, 0.700]" in rows["entropy"]
    assert 'class="unavailable"' in rows["combined"] and "not fitted" in rows["combined"]
    md = render_report(run, "md")
    assert "| sua\\_norm (winner) | perturbation | 0.710 [0.520, 0.880]" in md
    assert "Unavailable: combined (not fitted" in md
    data = json.loads(render_report(run, "json"))
    assert [r["score"] for r in data["scores"]] == names
    assert data["scores"][1]["minus_entropy"]["clean"]["ci"] == [0.02, 0.2]
    assert read_metric(run, "sua_norm_auroc").value == 0.71
    assert "not fitted" in (read_metric(run, "combined_auroc").note or "")


def test_wording_the_data_contradict_is_gone() -> None:
    root = Path(__file__).resolve().parents[2] / "sua_audit" / "reports"
    text = "\n".join(
        p.read_text(encoding="utf-8") for p in root.rglob("*") if p.suffix in (".py", ".j2")
    ).lower()
    for phrase in (
        "likely failure",
        "unstable but confident",
        "unstable yet confident",
        "highest sua",
    ):
        assert phrase not in text, phrase


def test_gate_reads_confident_flip_rate(tmp_path: Path) -> None:
    run = _write_run(
        tmp_path / "run",
        _flip_rows(),
        {"confident_flips": _flips_block(2), "confident_flip_rate": 0.5},
    )
    spec_path = tmp_path / "c.toml"
    spec_path.write_text("[limits]\nmax_confident_flip_rate = 0.4\nmax_abstention_rate = 0.1\n")
    outcome = evaluate_gate(run, load_checklist(spec_path))
    status = {r.name: r.status for r in outcome.results}
    assert status == {"max_confident_flip_rate": "fail", "max_abstention_rate": "pass"}
