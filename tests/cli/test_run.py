"""``sua-audit run`` as a user runs it: real processes, real exit codes, real files.

Refusals of bad flags, values and inputs before any work (and ``--help``) go through
``main()`` in this process: the same exit codes and messages, without an interpreter start.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE
from tests.support.cli import sua, sua_in_process

SCORE_KEYS = {
    "id",
    "task",
    "prediction",
    "correct",
    "entropy",
    "sensitivity",
    "sensitivity_max",
    "sua",
    "sua_pos",
    "self_consistency",
    "max_prob",
    "semantic_entropy",
    "abstain",
    "variants",
}


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_fake_run_writes_outputs_and_rerun_is_free(tmp_path: Path) -> None:
    cache, out = tmp_path / "c.db", tmp_path / "run"
    args = ["run", "--model", "fake/echo", "--dataset", str(EXAMPLE), "--cache", str(cache)]
    first = sua(*args, "--out", str(out), "--json")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)  # stdout is only the JSON summary
    assert summary["model_calls"] > 0 and summary["cache_hits"] == 0
    assert "accuracy" in first.stderr  # the human table goes to stderr
    rows = _lines(out / "results.jsonl")
    assert len(rows) == summary["results"]["items"] == 13
    for row in rows:
        assert SCORE_KEYS <= set(row), row.keys()
        assert len(row["variants"]) == 5  # clean + 4 perturbations
        assert {"kind", "text", "prediction"} <= set(row["variants"][1])
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["dataset"]["sha256"] and on_disk["config"]["perturbations"] == "4"
    second = sua(*args, "--out", str(tmp_path / "run2"), "--json")
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert again["model_calls"] == 0
    assert again["cache_hits"] == summary["model_calls"]
    assert _lines(tmp_path / "run2" / "results.jsonl") == rows  # same answers, same scores


def test_bad_dataset_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "input": "x"}\n{"id": "a", "input": ""}\n')
    out, cache = tmp_path / "out", tmp_path / "c.db"
    res = sua_in_process(
        "run",
        "--model",
        "fake/echo",
        "--dataset",
        str(bad),
        "--out",
        str(out),
        "--cache",
        str(cache),
    )
    assert res.returncode == 2
    assert f"{bad}:2: id:" in res.stderr and f"{bad}:2: input:" in res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists() and not cache.exists()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--coverage", "1.5"], "--coverage"),
        (["--tau", "0", "--coverage", "0.5"], "not both"),
        (["--divergence", "hellinger"], "--divergence"),
        (["--perturbations", "-1"], "--perturbations"),
        (["--model", "nosuch/x"], "Unknown model provider"),
        (["--model", "litellm/gpt-4o"], "needs a provider and a model"),
        (
            [
                "--max-cost",
                "1",
                "--model",
                "openai/unpriced-model",
                "--base-url",
                "http://127.0.0.1:9/v1",
            ],
            "no price is known",
        ),
        (["--model", "hf/does/not/exist"], "config.json not found"),
        (["--limit", "0"], "--limit"),
        (["--abstain-on", "bogus"], "--abstain-on"),
        (["--abstain-on", "entropy"], "no natural threshold"),
        (["--abstain-on", "s_paraphrase", "--tau", "0.1"], "no 'paraphrase' variants"),
        (["--normalize", "minmax"], "--normalize"),
        (["--lambda", "nan"], "--lambda"),
        (["--confident-threshold", "0"], "--confident-threshold"),
    ],
)
def test_bad_options_exit_2(tmp_path: Path, extra: list[str], needle: str) -> None:
    res = sua_in_process(
        "run",
        "--dataset",
        str(EXAMPLE),
        "--cache",
        str(tmp_path / "c.db"),
        "--out",
        str(tmp_path / "o"),
        "--model",
        "fake/echo",
        *extra,
    )
    assert res.returncode in (2, 3), res.stderr
    assert needle in res.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "c.db").exists()


def test_missing_openai_key_names_the_variable(tmp_path: Path) -> None:
    unset = dict.fromkeys(("OPENAI_API_KEY", "OPENAI_BASE_URL", "SUA_AUDIT_BASE_URL"))
    res = sua_in_process(
        "run",
        "--model",
        "gpt-4o",
        "--dataset",
        str(EXAMPLE),
        "--cache",
        str(tmp_path / "c.db"),
        "--out",
        str(tmp_path / "o"),
        env=unset,
    )
    assert res.returncode == 2, res.stderr
    assert "OPENAI_API_KEY" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "c.db").exists() and not (tmp_path / "o").exists()


def test_max_cost_refuses_before_any_call(tmp_path: Path) -> None:
    res = sua_in_process(
        "run",
        "--model",
        "openai/some-model",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--dataset",
        str(EXAMPLE),
        "--cache",
        str(tmp_path / "c.db"),
        "--out",
        str(tmp_path / "o"),
        "--price-in",
        "1000",
        "--price-out",
        "1000",
        "--max-cost",
        "0.01",
    )
    assert res.returncode == 2, res.stderr
    assert "above --max-cost" in res.stderr and "requests" in res.stderr
    assert not (tmp_path / "c.db").exists()


def test_max_cost_counts_a_hosted_rewriter(tmp_path: Path) -> None:
    # The audited model is free; the rewrites priced from LiteLLM's table push it over.
    if importlib.util.find_spec("litellm") is None:  # its price table; importing it is slow
        pytest.skip("litellm (the price table) is not installed")
    res = sua_in_process(
        "run",
        "--model",
        "fake/echo",
        "--rewriter-model",
        "openai/gpt-4o",
        "--perturbations",
        "paraphrase:4",
        "--dataset",
        str(EXAMPLE),
        "--cache",
        str(tmp_path / "c.db"),
        "--out",
        str(tmp_path / "o"),
        "--price-in",
        "0",
        "--price-out",
        "0",
        "--max-cost",
        "0.00001",
    )
    assert res.returncode == 2, res.stderr
    assert "for rewrites" in res.stderr and "above --max-cost" in res.stderr
    assert not (tmp_path / "c.db").exists()


def test_max_cost_counts_a_hosted_answer_judge(tmp_path: Path) -> None:
    # The audited model is free; the judge of --equivalence judge, priced from LiteLLM's table,
    # pushes it over; nothing runs.
    if importlib.util.find_spec("litellm") is None:
        pytest.skip("litellm (the price table) is not installed")
    res = sua_in_process(
        "run", "--model", "fake/echo", "--equivalence", "judge", "--equivalence-model",
        "openai/gpt-4o", "--dataset", str(EXAMPLE), "--cache", str(tmp_path / "c.db"),
        "--out", str(tmp_path / "o"), "--price-in", "0", "--price-out", "0",
        "--max-cost", "0.00001",
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "for the answer judge" in res.stderr and "above --max-cost" in res.stderr
    assert not (tmp_path / "c.db").exists()


def test_missing_dataset_exits_2(tmp_path: Path) -> None:
    res = sua_in_process("run", "--model", "fake/echo", "--dataset", str(tmp_path / "nope.jsonl"))
    assert res.returncode == 2 and "nope.jsonl" in res.stderr


def test_kill_9_then_resume_without_duplicates(tmp_path: Path) -> None:
    """A run killed mid-way keeps its finished requests; the rerun only does the rest."""
    cache = tmp_path / "c.db"
    args = [
        "run",
        "--model",
        "fake/slow",
        "--dataset",
        str(EXAMPLE),
        "--cache",
        str(cache),
        "--samples",
        "3",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sua_audit", *args, "--out", str(tmp_path / "a")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    done = 0
    while time.time() < deadline:
        time.sleep(0.2)
        if cache.exists():
            try:
                done = (
                    sqlite3.connect(cache).execute("select count(*) from completions").fetchone()[0]
                )
            except sqlite3.OperationalError:
                continue
            if done >= 10:
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert done >= 10
    assert not (tmp_path / "a" / "summary.json").exists()  # no half-finished outputs
    kept = sqlite3.connect(cache).execute("select count(*) from completions").fetchone()[0]
    res = sua(*args, "--out", str(tmp_path / "b"), "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["cache_hits"] == kept
    total = summary["cache_hits"] + summary["model_calls"]
    rows = sqlite3.connect(cache).execute("select count(*), count(distinct key) from completions")
    assert rows.fetchone() == (total, total)  # every request stored once, none twice


def test_help_is_fast_and_lists_commands() -> None:
    res = sua_in_process("--help")
    assert res.returncode == 0 and "run" in res.stdout
    res = sua_in_process("run", "--help")
    assert "--perturbations" in res.stdout and "--coverage" in res.stdout
    code = "import sys, sua_audit.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch','transformers','numpy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # heavy libraries stay unloaded for --help


@pytest.mark.slow
def test_embedded_model_end_to_end(tmp_path: Path, embedded_dir: Path) -> None:
    """The real embedded model on a few items of every task; the rerun makes no model calls."""
    cache = tmp_path / "c.db"
    args = [
        "run",
        "--dataset",
        str(EXAMPLE),
        "--cache",
        str(cache),
        "--perturbations",
        "2",
        "--samples",
        "2",
        "--max-tokens",
        "12",
        "--json",
    ]
    res = sua(*args, "--out", str(tmp_path / "a"))
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["model"]["provider"] == "hf" and summary["model"]["dtype"]
    assert summary["results"]["tasks"] == {"classification": 5, "nli": 4, "qa": 4}
    # 9 label items x 3 variants + 4 QA items x 3 variants x (greedy + one request for 2 samples)
    assert summary["model_calls"] == 9 * 3 + 4 * 3 * 2
    rows = _lines(tmp_path / "a" / "results.jsonl")
    for row in rows:
        assert row["entropy"] >= 0 and row["sensitivity"] >= 0
        assert row["sua"] == pytest.approx(row["sensitivity"] - row["entropy"], abs=1e-9)
        if row["task"] != "qa":
            assert sum(row["distribution"].values()) == pytest.approx(1, abs=1e-4)
            assert row["prediction"] in row["distribution"]
        else:
            assert all(len(v["samples"]) == 2 for v in row["variants"])
    res2 = sua(*args, "--out", str(tmp_path / "b"))
    assert res2.returncode == 0, res2.stderr
    assert json.loads(res2.stdout)["model_calls"] == 0


@pytest.mark.slow
def test_embedded_model_verdicts_end_to_end(tmp_path: Path, embedded_dir: Path) -> None:
    """The real embedded model: diagnostics, confident flips and an abstention that acts or says
    why not; then, from the cache, another score and rule with zero model calls."""
    cache = tmp_path / "c.db"
    common = ["--cache", str(cache), "--perturbations", "3", "--samples", "2"]
    res = sua(
        "run", "--dataset", str(EXAMPLE), *common, "--max-tokens", "12", "--out",
        str(tmp_path / "a"), "--json", "--no-progress",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    out = summary["results"]
    diag = out["diagnostics"]
    assert diag["n"] == out["items_scored"] and diag["mean_entropy"] > 0
    assert diag["ratio_s_to_h"] == pytest.approx(diag["mean_sensitivity"] / diag["mean_entropy"])
    assert "Spearman(SUA, −H)" in res.stderr
    ab = out["abstention"]
    assert ab["score"] == "sua" and ab["decided"] == out["items_scored"]
    # The default rule either acts (some, not all) or says in one sentence why it did not.
    if ab["abstained"] in (0, ab["decided"]):
        assert ab["note"] and ab["note"] in res.stderr
    rows = _lines(tmp_path / "a" / "results.jsonl")
    flips = out["confident_flips"]
    assert flips["n_confident_flips"] == sum(bool(r["confident_flip"]) for r in rows)
    for r in rows:
        assert r["confident_flip"] == (
            bool(r["flipped_variants"]) and r["confidence"] >= flips["threshold"]
        )
        assert r["abstain"] == (r["abstain_score"] > out["tau"])
    # The same run from the cache, deciding on sua_norm and on flip_rate with a coverage.
    res2 = sua("rescore", str(tmp_path / "a"), "--abstain-on", "sua_norm", "--json")
    assert res2.returncode == 0, res2.stderr
    re = json.loads(res2.stdout)
    assert re["model_calls"] == 0 and re["results"]["abstention"]["score"] == "sua_norm"
    rows2 = _lines(Path(re["out_dir"]) / "results.jsonl")
    assert all(r["abstain"] == (r["sua_norm"] > 0) for r in rows2)
    res3 = sua(
        "rescore", str(tmp_path / "a"), "--abstain-on", "flip_rate", "--coverage", "0.5",
        "--lambda", "auto", "--json",
    )  # fmt: skip
    assert res3.returncode == 0, res3.stderr
    assert json.loads(res3.stdout)["results"]["abstention"]["rule"] == "coverage"
    ev = json.loads((Path(json.loads(res3.stdout)["out_dir"]) / "evaluation.json").read_text())
    assert ev["lambda"]["mode"] == "auto" and ev["lambda"]["meaning"]
    assert "flip_rate" in ev["scores"] and "sua_norm" in ev["scores"]


def test_cost_estimate_is_shown_before_the_run_and_cost_after(tmp_path: Path) -> None:
    res = sua(
        "run",
        "--model",
        "fake/echo",
        "--dataset",
        str(EXAMPLE),
        "--cache",
        str(tmp_path / "c.db"),
        "--out",
        str(tmp_path / "o"),
        "--price-in",
        "2",
        "--price-out",
        "8",
        "--json",
    )
    assert res.returncode == 0, res.stderr
    assert "cost estimate: $" in res.stderr
    summary = json.loads(res.stdout)
    cost = summary["cost"]
    assert cost["price_source"] and 0 < cost["estimate_usd"] <= cost["worst_case_usd"]
    tokens = summary["tokens"]
    expected = (tokens["prompt"] * 2 + tokens["completion"] * 8) / 1e6
    assert cost["usd"] == pytest.approx(expected)
    assert cost["usd"] <= cost["worst_case_usd"]


def test_runs_are_evaluated_whatever_their_size() -> None:
    from sua_audit.evaluation import auto_evaluation_skip

    summary = {"status": "ok", "out_dir": "x", "results": {"items_with_gold": 1_000_000}}
    assert auto_evaluation_skip(summary) is None
    assert auto_evaluation_skip({**summary, "results": {"items_with_gold": 0}}) is not None


@pytest.mark.slow
def test_a_run_above_20000_items_is_evaluated(tmp_path: Path) -> None:
    """Runs above 20,000 items with gold used to skip the evaluation; now `run` evaluates
    them (fake backend, no cache; minutes on 2 cores, hence slow)."""
    import random

    from sua_audit.cli import app

    rng = random.Random(0)
    data = tmp_path / "big.jsonl"
    with data.open("w", encoding="utf-8") as fh:
        for i in range(20_001):
            text = " ".join(rng.choice(("good", "bad", "film", "plot", "slow")) for _ in range(8))
            label = rng.choice(["negative", "positive"])
            item = {"id": f"b{i}", "task": "classification", "input": text, "label": label}
            fh.write(json.dumps({**item, "labels": ["negative", "positive"]}) + "\n")
    out = tmp_path / "run"
    args = ["run", "--model", "fake/echo", "--dataset", str(data), "--perturbations", "1"]
    app([*args, "--cache-mode", "off", "--no-progress", "--out", str(out)], standalone_mode=False)
    ev = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    assert ev["n_items"] == 20_001 and ev["split"]["n_test"] > 14_000
    assert ev["metrics"]["clean"]["sua"]["auroc"]["ci"] is not None
