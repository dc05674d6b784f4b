"""``evaluate``, ``rescore`` and the evaluation at the end of ``run``, as a user runs them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE
from tests.support import cli


def sua(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return cli.sua(*args, columns=200, timeout=timeout)


def sua_in_process(*args: str) -> subprocess.CompletedProcess[str]:
    return cli.sua_in_process(*args, columns=200)


def rows(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines()]


@pytest.fixture
def fake_run(tmp_path: Path) -> Path:
    """A finished run of the fake model on the example dataset (its own cache)."""
    out = tmp_path / "run"
    res = sua(
        "run",
        "--model",
        "fake/echo",
        "--dataset",
        str(EXAMPLE),
        "--perturbations",
        "2",
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "cache.db"),
        "--no-progress",
    )
    assert res.returncode == 0, res.stderr
    return out


def test_run_writes_evaluation_with_options(tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = sua(
        "run",
        "--model",
        "fake/echo",
        "--dataset",
        str(EXAMPLE),
        "--perturbations",
        "2",
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "c.db"),
        "--no-progress",
        "--lambda",
        "auto",
        "--target-risk",
        "0.3",
        "--delta",
        "0.2",
        "--correctness",
        "f1",
    )
    assert res.returncode == 0, res.stderr
    assert "evaluation (f1>=0.5" in res.stderr and "abstention on sua (risk ≤ 0.3" in res.stderr
    ev = json.loads((out / "evaluation.json").read_text())
    assert ev["lambda"]["mode"] == "auto" and ev["correctness_rule"] == "f1>=0.5"
    assert ev["abstention"]["target_risk"] == 0.3 and ev["abstention"]["delta"] == 0.2
    sp = ev["split"]
    assert sp["n_validation"] + sp["n_calibration"] + sp["n_test"] == ev["n_items"] == 13
    # The run's own scores use λ = 1 under --lambda auto.
    assert json.loads((out / "summary.json").read_text())["config"]["lam"] == 1.0


def test_evaluate_command(fake_run: Path) -> None:
    (fake_run / "evaluation.json").unlink()
    res = sua("evaluate", str(fake_run), "--bootstrap", "100", "--seed", "7", "--json")
    assert res.returncode == 0, res.stderr
    ev = json.loads(res.stdout)
    assert ev == json.loads((fake_run / "evaluation.json").read_text())
    assert ev["seed"] == 7 and ev["bootstrap"] == 100 and ev["correctness_rule"] == "contains"
    assert ev["split"]["n_calibration"] == 0
    # Held out for λ auto, entropy_temp and combined: 30% (at least one item).
    assert ev["split"]["n_validation"] == max(1, int(0.3 * ev["n_items"]))


def test_evaluate_rejects_bad_input(tmp_path: Path, fake_run: Path) -> None:
    res = sua_in_process("evaluate", str(tmp_path / "nothing"))
    assert res.returncode == 3 and "not a finished run" in res.stderr
    assert "Traceback" not in res.stderr
    res = sua_in_process("evaluate", str(fake_run), "--lambda", "abc")
    assert res.returncode == 2 and "--lambda" in res.stderr
    res = sua_in_process("evaluate", str(fake_run), "--abstain-on", "bogus")
    assert res.returncode == 2 and "--abstain-on" in res.stderr and "Traceback" not in res.stderr
    res = sua_in_process("evaluate", str(fake_run), "--normalize", "minmax")
    assert res.returncode == 2 and "--normalize" in res.stderr
    res = sua_in_process("evaluate", str(fake_run), "--correctness", "judge")
    assert res.returncode == 2 and "--judge-model" in res.stderr


def test_rescore_makes_no_model_calls(
    fake_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sua_audit.backends.fake import FakeBackend
    from sua_audit.rescoring import rescore_run

    async def refuse(self, request):  # noqa: ANN001, ANN202
        raise AssertionError("rescore called the model")

    monkeypatch.setattr(FakeBackend, "complete", refuse)
    before = rows(fake_run)
    summary = rescore_run(fake_run, lam=0.3, out=tmp_path / "re")
    assert summary["model_calls"] == 0 and summary["cache_hits"] > 0
    after = rows(tmp_path / "re")
    assert [r["id"] for r in after] == [r["id"] for r in before]
    for old, new in zip(before, after, strict=True):
        # S and H do not depend on λ; SUA changes exactly as S − λH.
        assert new["sensitivity"] == old["sensitivity"] and new["entropy"] == old["entropy"]
        assert new["sua"] == pytest.approx(new["sensitivity"] - 0.3 * new["entropy"], abs=1e-12)
        assert new["sua_pos"] == pytest.approx(max(0.0, new["sua"]), abs=1e-12)
        assert old["sua"] == pytest.approx(old["sensitivity"] - old["entropy"], abs=1e-12)
    # Another divergence changes S, still from the cache alone.
    tv = rescore_run(fake_run, divergence="tv", out=tmp_path / "tv")
    assert tv["model_calls"] == 0 and tv["config"]["divergence"] == "tv"
    assert [r["sensitivity"] for r in rows(tmp_path / "tv")] != [r["sensitivity"] for r in before]


def test_rescore_cli_and_missing_cache(fake_run: Path, tmp_path: Path) -> None:
    res = sua("rescore", str(fake_run), "--lambda", "0.5", "--bootstrap", "50", "--json")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    out = fake_run / "rescored-lambda0.5"
    assert summary["model_calls"] == 0 and Path(summary["out_dir"]) == out
    assert json.loads((out / "evaluation.json").read_text())["lambda"]["value"] == 0.5

    from sua_audit.store import Store

    Store.open(tmp_path / "empty.db").close()
    res = sua("rescore", str(fake_run), "--cache", str(tmp_path / "empty.db"))
    assert res.returncode == 3, res.stderr
    assert "not in the cache" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
def test_real_model_run_evaluate_and_rescore(tmp_path: Path) -> None:
    """The embedded model end to end: run (with λ auto and a target risk), then rescore."""
    out = tmp_path / "run"
    res = sua(
        "run",
        "--dataset",
        str(EXAMPLE),
        "--perturbations",
        "2",
        "--out",
        str(out),
        "--no-progress",
        "--lambda",
        "auto",
        "--target-risk",
        "0.4",
    )
    assert res.returncode == 0, res.stderr
    ev = json.loads((out / "evaluation.json").read_text())
    assert ev["n_items"] == 13 and ev["lambda"]["mode"] == "auto"
    assert ev["abstention"] is not None and ev["split"]["n_calibration"] > 0
    res = sua("rescore", str(out), "--lambda", "0.25", "--out", str(tmp_path / "re"), "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["model_calls"] == 0
    for row in rows(tmp_path / "re"):
        assert row["sua"] == pytest.approx(row["sensitivity"] - 0.25 * row["entropy"], abs=1e-12)


def test_judge_rule_goes_through_the_cache(fake_run: Path, tmp_path: Path) -> None:
    import sqlite3

    from sua_audit.evaluation import EvaluationOptions, evaluate_run

    cache = tmp_path / "judge.db"
    judged = EvaluationOptions(correctness="judge", judge_model="fake/echo", bootstrap=20)
    a = evaluate_run(fake_run, judged, cache=str(cache))
    assert a["correctness_rule"] == "judge:fake/echo"
    with sqlite3.connect(cache) as db:
        tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
        table = next(t for t in tables if "complet" in t)
        n_cached = db.execute(f"select count(*) from {table}").fetchone()[0]  # noqa: S608
    assert n_cached > 0
    b = evaluate_run(fake_run, judged, cache=str(cache))
    assert a["accuracy"] == b["accuracy"]
