"""Perturbation plans through a whole audit: model rewriters, budgets, ambiguity, acceptance."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_run import _lines
from tests.conftest import EXAMPLE
from tests.support.cli import sua, sua_in_process

AMBIGUOUS_NLI = {
    "id": "amb-1",
    "task": "nli",
    "input": "Premise: I saw her duck.\nHypothesis: She has a duck.",
    "premise": "I saw her duck.",
    "hypothesis": "She has a duck.",
    "labels": ["entailment", "neutral", "contradiction"],
    "gold_labels": ["entailment", "neutral"],
    "ambiguous": True,
}


def _run(tmp_path: Path, name: str, *args: str) -> tuple[dict, list[dict]]:
    out = tmp_path / name
    res = sua(
        "run", "--model", "fake/echo", "--rewriter-model", "fake/rewrite",
        "--cache", str(tmp_path / "c.db"), "--out", str(out), "--json", *args,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout), _lines(out / "results.jsonl")


def test_model_rewrites_are_made_filtered_counted_and_cached(tmp_path: Path) -> None:
    plan = "paraphrase:2,typo:1@1,ambiguity:1"
    summary, rows = _run(tmp_path, "a", "--dataset", str(EXAMPLE), "--perturbations", plan)
    pert = summary["results"]["perturbation"]
    assert pert["plan"] == plan and pert["budgets"] == {"typo": 1}
    assert pert["meaning_filter"]["name"] == "lexical"
    assert pert["templates"]["paraphrase"].startswith("paraphrase/default@")
    para = pert["rewrites"]["paraphrase"]
    assert para["proposed"] > 0 and 0 < para["accepted"] <= para["proposed"]
    assert para["acceptance_rate"] == para["accepted"] / para["proposed"]
    assert summary["rewriter_calls"] > 0
    kinds_seen = set()
    for row in rows:
        kinds = [v["kind"] for v in row["variants"]]
        assert kinds[0] == "clean" and len(kinds) <= 1 + 4
        kinds_seen.update(kinds)
        for v in row["variants"][1:]:
            if v["kind"] == "paraphrase":
                assert v["text"] != row["variants"][0]["text"]
                assert "paraphrase/default@" in v["detail"]
            if v["kind"] == "ambiguity":
                assert v["flags"] == ["multi_answer"]
        # S averages only meaning-keeping variants.
        core = [v["divergence"] for v in row["variants"][1:] if "flags" not in v]
        if core:
            assert abs(row["sensitivity"] - sum(core) / len(core)) < 1e-9
    assert {"paraphrase", "typo"} <= kinds_seen
    # The same command again: neither the audited model nor the rewriter is called.
    again, rows_again = _run(tmp_path, "b", "--dataset", str(EXAMPLE), "--perturbations", plan)
    assert again["model_calls"] == 0 and again["rewriter_calls"] == 0
    assert [r["variants"] for r in rows_again] == [r["variants"] for r in rows]


def test_ambiguous_items_report_collapse(tmp_path: Path) -> None:
    data = tmp_path / "amb.jsonl"
    data.write_text(json.dumps(AMBIGUOUS_NLI) + "\n" + EXAMPLE.read_text().splitlines()[0] + "\n")
    summary, rows = _run(tmp_path, "a", "--dataset", str(data), "--perturbations", "2")
    amb = rows[0]["ambiguity"]
    assert amb["applicable"] and amb["m"] == 2
    assert amb["kappa"] == max(0.0, __import__("math").log(2) - rows[0]["entropy"])
    assert "ambiguity" not in rows[1]  # one gold label: not applicable
    agg = summary["results"]["ambiguity"]
    assert agg["n_applicable"] == 1
    assert agg["collapse_rate"] == float(amb["collapsed"])


def test_model_kinds_without_a_usable_rewriter_fail_cleanly(tmp_path: Path) -> None:
    res = sua_in_process(
        "run", "--model", "fake/echo", "--rewriter-model", "nosuch/x",
        "--dataset", str(EXAMPLE), "--perturbations", "paraphrase:1", "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert res.returncode == 2 and "Unknown model provider" in res.stderr
    assert not (tmp_path / "o").exists()


def test_bad_plan_and_attack_file_are_usage_errors(tmp_path: Path) -> None:
    res = sua_in_process("run", "--model", "fake/echo", "--dataset", str(EXAMPLE), "-k", "typo:x")
    assert res.returncode == 2 and "--perturbations" in res.stderr
    bad = tmp_path / "attacks.jsonl"
    bad.write_text("{not json\n")
    res = sua_in_process(
        "run", "--model", "fake/echo", "--dataset", str(EXAMPLE),
        "-k", "instruction:1", "--instruction-attacks", str(bad),
    )  # fmt: skip
    assert res.returncode == 2 and "attacks.jsonl:1" in res.stderr
