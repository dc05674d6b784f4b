"""`sua-audit gate` on real run outputs: every exit code, failure lines, JUnit XML."""

from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.report.conftest import RealRuns, sua

pytestmark = pytest.mark.slow


def _summary(run: Path) -> dict:
    return json.loads((run / "summary.json").read_text())


def _checklist(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "checklist.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_pass_exit_0_with_junit(real_runs: RealRuns, tmp_path: Path) -> None:
    res = _summary(real_runs.warm)["results"]
    checklist = _checklist(
        tmp_path,
        f"[limits]\nmin_accuracy = {res['accuracy']}\n"
        f"max_mean_sua_pos = {res['mean_scores']['sua_pos']}\nmax_failure_rate = 0\n",
    )
    junit = tmp_path / "gate.xml"
    done = sua("gate", str(real_runs.warm), "--checklist", str(checklist), "--junit", str(junit))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASS ") == 3 and "FAIL" not in done.stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "0"
    assert {c.get("name") for c in suite.iter("testcase")} == {
        "min_accuracy",
        "max_mean_sua_pos",
        "max_failure_rate",
    }


def test_fail_exit_1_names_metric_value_and_limit(real_runs: RealRuns, tmp_path: Path) -> None:
    res = _summary(real_runs.warm)["results"]
    robust = res["robust_accuracy"]
    sua_pos = res["mean_scores"]["sua_pos"]
    checklist = _checklist(
        tmp_path,
        f"[limits]\nmin_robust_accuracy = {robust + 0.01}\nmax_mean_sua_pos = {sua_pos + 1}\n"
        f"max_mean_sensitivity = -1\n",
    )
    junit = tmp_path / "gate.xml"
    done = sua("gate", str(real_runs.warm), "--checklist", str(checklist), "--junit", str(junit))
    assert done.returncode == 1, done.stdout + done.stderr
    fails = [line for line in done.stdout.splitlines() if line.startswith("FAIL ")]
    assert len(fails) == 2
    assert f"FAIL robust_accuracy: value {robust:.4g}, limit ≥ {robust + 0.01:.4g}" in fails
    assert any(line.startswith("FAIL mean_sensitivity: value ") for line in fails)
    assert "limit ≤ -1" in done.stdout
    assert "PASS mean_sua_pos" in done.stdout
    root = ET.parse(junit).getroot()
    failures = root.findall(".//testcase/failure")
    assert len(failures) == 2
    assert {f.get("message", "").split(":")[0] for f in failures} == {
        "robust_accuracy",
        "mean_sensitivity",
    }


def test_baseline_regression(real_runs: RealRuns, tmp_path: Path) -> None:
    warm, hot = _summary(real_runs.warm)["results"], _summary(real_runs.hot)["results"]
    # Pick a metric that moved between the two temperatures; limit it to half the move.
    moved = [
        (name, hot["mean_scores"][key] - warm["mean_scores"][key])
        for name, key in (
            ("mean_sensitivity", "sensitivity"),
            ("mean_entropy", "entropy"),
            ("mean_sua", "sua"),
        )
        if abs(hot["mean_scores"][key] - warm["mean_scores"][key]) > 1e-6
    ]
    assert moved, "the two temperatures gave identical scores"
    name, change = moved[0]
    key = f"max_rise_{name}" if change > 0 else f"max_drop_{name}"
    # Point comparison (the gate's behaviour before the paired test): half the move fails.
    checklist = _checklist(
        tmp_path, f"[baseline]\n{key} = {abs(change) / 2}\n[options]\nbaseline_test = 'point'\n"
    )
    done = sua(
        "gate",
        str(real_runs.hot),
        "--checklist",
        str(checklist),
        "--baseline",
        str(real_runs.warm),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"FAIL {name} vs baseline:" in done.stdout
    # The default paired test pairs the six items and prints its CI, whatever it decides
    # (on six items a move of this size is rarely significant).
    paired = _checklist(tmp_path, f"[baseline]\n{key} = {abs(change) / 2}\n")
    done = sua(
        "gate", str(real_runs.hot), "--checklist", str(paired), "--baseline", str(real_runs.warm)
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if f" {name} vs baseline:" in x)
    assert "[90% CI " in line and re.search(r"over [1-6] paired items", line)
    assert line.endswith("→ FAIL") == line.startswith("FAIL ")
    # Against itself nothing moved: the same checklist passes.
    same = sua(
        "gate", str(real_runs.hot), "--checklist", str(checklist), "--baseline", str(real_runs.hot)
    )
    assert same.returncode == 0, same.stdout + same.stderr
    # Without --baseline the regression checks are skipped, not failed.
    alone = sua("gate", str(real_runs.hot), "--checklist", str(checklist))
    assert alone.returncode == 0 and "SKIP" in alone.stdout


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("[limits]\nmin_bogus_metric = 1\n", "limits.min_bogus_metric: unknown metric"),
        ("[limits]\nat_least_accuracy = 1\n", "limits.at_least_accuracy"),
        ("[limits]\nmin_accuracy = 'high'\n", "limits.min_accuracy: the limit must be a number"),
        ("[thresholds]\nmin_accuracy = 1\n", "thresholds: unknown entry"),
        ("[limits\nmin_accuracy = 1\n", "not valid TOML"),
        ("[baseline]\nmax_drop_accuracy = -1\n", "baseline.max_drop_accuracy"),
        ("[options]\nmissing = 'maybe'\n", "options.missing"),
        ("[options]\nbaseline_test = 'loose'\n", "options.baseline_test"),
        ("", "no checks"),
    ],
)
def test_bad_checklist_exit_2(real_runs: RealRuns, tmp_path: Path, text: str, expect: str) -> None:
    checklist = _checklist(tmp_path, text)
    done = sua("gate", str(real_runs.warm), "--checklist", str(checklist))
    assert done.returncode == 2, done.stdout + done.stderr
    assert expect in done.stderr and str(checklist) in done.stderr
    assert "Traceback" not in done.stderr


def test_usage_errors_exit_2(real_runs: RealRuns, tmp_path: Path) -> None:
    checklist = _checklist(tmp_path, "[limits]\nmin_accuracy = 0\n")
    missing = sua("gate", str(tmp_path / "no-such-run"), "--checklist", str(checklist))
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    no_file = sua("gate", str(real_runs.warm), "--checklist", str(tmp_path / "none.toml"))
    assert no_file.returncode == 2 and "none.toml" in no_file.stderr
    other = sua(
        "gate", str(real_runs.warm), "--checklist", str(checklist), "--baseline", str(real_runs.xss)
    )
    assert other.returncode == 2 and "different datasets" in other.stderr


def test_corrupt_results_exit_3(real_runs: RealRuns, tmp_path: Path) -> None:
    checklist = _checklist(tmp_path, "[limits]\nmin_accuracy = 0\n")
    run = tmp_path / "broken"
    shutil.copytree(real_runs.warm, run)
    with (run / "results.jsonl").open("a") as fh:
        fh.write('{"id": "cut-off", "task": \n')
    done = sua("gate", str(run), "--checklist", str(checklist))
    assert done.returncode == 3, done.stdout + done.stderr
    assert "results.jsonl:7: not valid JSON" in done.stderr
    (run / "summary.json").write_text("{not json")
    done = sua("gate", str(run), "--checklist", str(checklist))
    assert done.returncode == 3 and "summary.json" in done.stderr


def test_example_checklist_runs(real_runs: RealRuns) -> None:
    from tests.conftest import REPO

    done = sua("gate", str(real_runs.warm), "--checklist", str(REPO / "audits" / "release.toml"))
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert "gate passed" in done.stdout or "gate FAILED" in done.stdout
