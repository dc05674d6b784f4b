"""The Python API, used only through its public names (``import sua_audit``,
``sua_audit.errors`` and ``sua_audit.evaluation.EvaluationOptions``): every command as a
function that returns typed objects and prints nothing.

The deterministic ``fake/echo`` model stands in for a real one here; the README's example runs
on the embedded model in ``test_the_readme_example_runs``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import sua_audit
from sua_audit.errors import ConfigError, DatasetError, SuaAuditError
from sua_audit.evaluation import EvaluationOptions

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mixed.jsonl"


@pytest.fixture()
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache.db"


def _audit(tmp_path: Path, cache: Path, name: str = "a", **options: object) -> sua_audit.Run:
    return sua_audit.audit(EXAMPLE, model="fake/echo", out=tmp_path / name, cache=cache, **options)


def test_audit_returns_a_typed_run_and_prints_nothing(
    tmp_path: Path, cache: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    run = _audit(tmp_path, cache, limit=8, perturbations="typo:2")
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")
    assert isinstance(run, sua_audit.Run)
    assert run.path == tmp_path / "a"
    assert run.status == "complete"
    assert run.model == "fake/echo"
    assert run.summary.results.items == 8
    written = json.loads((run.path / "summary.json").read_text())
    assert run.run_id == written["run_id"]
    assert run.summary.results.mean_scores == written["results"]["mean_scores"]
    rows = run.rows()
    assert [r.id for r in rows] == [
        json.loads(line)["id"] for line in EXAMPLE.read_text().splitlines()[:8]
    ]
    assert all(isinstance(r.sua, float) for r in rows)
    # The example has gold answers: the run is evaluated, as `run` evaluates it.
    assert run.evaluation is not None and run.evaluation_note is None
    assert (run.path / "evaluation.json").is_file()
    assert run.evaluation.run.run_id == run.run_id


def test_a_second_audit_is_answered_from_the_cache(tmp_path: Path, cache: Path) -> None:
    first = _audit(tmp_path, cache, limit=4, perturbations="typo:1")
    second = _audit(tmp_path, cache, "b", limit=4, perturbations="typo:1")
    assert first.summary.model_calls and first.summary.model_calls > 0
    assert second.summary.model_calls == 0
    assert second.summary.cache_hits == first.summary.model_calls
    assert [r.sua for r in second.rows()] == [r.sua for r in first.rows()]


def test_rescore_evaluate_report_compare_and_gate(tmp_path: Path, cache: Path) -> None:
    run = _audit(tmp_path, cache, limit=10, perturbations="typo:2")
    rescored = sua_audit.rescore(run, lam=0.25, out=tmp_path / "r")
    assert rescored.summary.model_calls == 0
    assert rescored.summary.config is not None and rescored.summary.config.lam == 0.25
    by_id = {r.id: r for r in run.rows()}
    for row in rescored.rows():
        old = by_id[row.id]
        assert row.sua == pytest.approx(old.sensitivity - 0.25 * old.entropy)

    ev = sua_audit.evaluate(run, target_risk=0.5, bootstrap=50, write=False)
    assert ev.abstention is not None
    assert ev.n_items == run.evaluation.n_items  # type: ignore[union-attr]
    # The same options at once, as the CLI passes them; never both ways in one call.
    grading = EvaluationOptions(target_risk=0.5, bootstrap=50)
    again = sua_audit.evaluate(run, evaluation_options=grading, write=False)
    assert sua_audit.as_dict(again) == sua_audit.as_dict(ev)
    with pytest.raises(TypeError, match="not both"):
        sua_audit.evaluate(run, evaluation_options=grading, delta=0.2, write=False)

    html = sua_audit.report(run, "html")
    assert html.format == "html" and html.text.startswith("<!DOCTYPE html>")
    assert html.run.run_id == run.run_id
    target = html.write(tmp_path / "page.html")
    assert target.read_text() == html.text
    as_json = json.loads(sua_audit.report(str(run.path), "json").text)
    assert as_json["run_id"] == run.run_id and as_json["evaluated"] is True

    comparison = sua_audit.compare([run, rescored])
    assert [r.run_id for r in comparison.runs] == [run.run_id, rescored.run_id]
    assert "| " in comparison.render("md")
    assert comparison.disagreements() == []  # rescoring changes scores, never answers

    checklist = tmp_path / "release.toml"
    checklist.write_text("[limits]\nmin_accuracy = 0.0\nmax_failure_rate = 0.0\n")
    outcome = sua_audit.gate(run, checklist, baseline=rescored)
    assert outcome.passed and not outcome.failures
    checklist.write_text("[limits]\nmin_accuracy = 1.01\n")
    outcome = sua_audit.gate(run, checklist)
    assert not outcome.passed
    assert [f.check.metric for f in outcome.failures] == ["accuracy"]


def test_a_variant_set_made_once_is_audited_without_a_rewriter(tmp_path: Path, cache: Path) -> None:
    plan = "paraphrase:1,typo:1"
    variants = sua_audit.perturb(
        EXAMPLE,
        out=tmp_path / "v.jsonl",
        cache=cache,
        perturbations=plan,
        rewriter_model="fake/rewrite",
        limit=5,
    )
    assert variants.n_items == 5 and variants.n_variants > 0
    assert len(variants.sha256) == 64
    run = _audit(tmp_path, cache, variants=variants.path, limit=5)
    assert run.summary.variants is not None
    assert run.summary.variants.sha256 == variants.sha256
    assert run.summary.rewriter_calls is None


def test_bad_input_raises_before_any_call(tmp_path: Path, cache: Path) -> None:
    with pytest.raises(ConfigError, match="--lambda"):
        _audit(tmp_path, cache, lam="big")
    with pytest.raises(ConfigError, match="--abstain-on"):
        _audit(tmp_path, cache, abstain_on="nonsense")
    with pytest.raises(ConfigError, match="--limit"):
        _audit(tmp_path, cache, limit=0)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "task": "classification"}\n')
    with pytest.raises(DatasetError, match="bad.jsonl:1"):
        sua_audit.audit(bad, model="fake/echo", cache=cache, out=tmp_path / "x")
    assert not cache.exists()
    assert not (tmp_path / "a").exists() and not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="at least two"):
        sua_audit.compare([tmp_path])
    with pytest.raises(ConfigError, match="does not exist"):
        sua_audit.load_run(tmp_path / "missing")
    # Each error carries the exit code the CLI gives it.
    with pytest.raises(SuaAuditError) as info:
        sua_audit.evaluate(tmp_path / "missing")
    assert info.value.exit_code in (2, 3)


def test_importing_the_package_loads_no_heavy_module() -> None:
    code = (
        "import sys, sua_audit; sua_audit.__version__; "
        "print(sorted(m for m in ('torch', 'transformers', 'rich', 'typer', 'sua_audit.api')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "[]"


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README: the Python API section has no python example"
    return match.group(1)


@pytest.mark.slow
def test_the_readme_example_runs(tmp_path: Path) -> None:
    """The README's example, verbatim, on the embedded model, in a copy of the repository's
    examples and checklist (its paths are relative to the repository root)."""
    (tmp_path / "examples").mkdir()
    (tmp_path / "audits").mkdir()
    (tmp_path / "examples" / "mixed.jsonl").write_bytes(EXAMPLE.read_bytes())
    (tmp_path / "audits" / "release.toml").write_bytes(
        (ROOT / "audits" / "release.toml").read_bytes()
    )
    script = tmp_path / "example.py"
    script.write_text(_readme_example(), encoding="utf-8")
    env = {**os.environ, "SUA_AUDIT_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("complete ")
    assert lines[1].startswith("least stable: ")
    assert lines[2].startswith("λ = 0.1: ")
    assert lines[3].startswith("gate ")
    assert (tmp_path / "audits" / "runs" / "api-demo" / "report.html").is_file()
