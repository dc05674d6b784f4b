"""Typed run files (sua_audit.schema): the published schemas are current, what `run` writes
fits its models, older files are read, and a file the code cannot read is exit 3 in one line.

tests/data/runs/before-versions is a run folder in the format written before schema_version:
four label rows and two QA rows of an early run of the embedded model (summary counts set to
six items, no ``outputs`` record, as the oldest runs), and an evaluation.json without
``schema_version`` nor ``run`` binding. Every text, item id and path in it is replaced by an
invented placeholder: the numbers and the shape are what matter here.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sua_audit.errors import RunReadError
from sua_audit.reports import load_run
from sua_audit.results import (
    load_results,
    load_summary,
    read_evaluation,
    read_results,
    read_summary,
    write_outputs,
)
from sua_audit.schema import (
    SCHEMA_VERSION,
    Evaluation,
    ResultRow,
    Summary,
    check_written,
    json_schemas,
)
from tests.conftest import EXAMPLE, REPO
from tests.support.cli import sua

SCHEMAS = REPO / "schemas"
BEFORE_VERSIONS = REPO / "tests" / "data" / "runs" / "before-versions"
EVIDENCE = REPO.parent / "evidence"


def one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in res.stderr, res.stderr[-3000:]
    assert res.returncode == 3, (res.returncode, res.stdout, res.stderr)
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
    return res.stderr


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _dump(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def rebind(run: Path) -> None:
    """Record results.jsonl's current hash in summary.json (a row edited on purpose)."""
    data = (run / "results.jsonl").read_bytes()
    summary = _json(run / "summary.json")
    summary["outputs"] = {
        "results_sha256": hashlib.sha256(data).hexdigest(),
        "results_rows": data.count(b"\n"),
    }
    _dump(run / "summary.json", summary)


# -- the published schema files ---------------------------------------------------------------


def test_published_schemas_are_current() -> None:
    regenerate = "python -m sua_audit.schema --write schemas/"
    for name, text in json_schemas().items():
        path = SCHEMAS / name
        assert path.is_file(), f"{path} is missing; run `{regenerate}` and commit it"
        assert path.read_text(encoding="utf-8") == text, (
            f"{path} is not what sua_audit/schema.py generates; run `{regenerate}` and commit it"
        )


def test_schema_check_command(tmp_path: Path) -> None:
    from sua_audit.schema import main

    assert main(["--check", str(SCHEMAS)]) == 0
    assert main(["--check", str(tmp_path)]) == 1
    assert main(["--write", str(tmp_path)]) == 0
    assert main(["--check", str(tmp_path)]) == 0


def test_published_schemas_require_the_version() -> None:
    for name in ("summary.schema.json", "evaluation.schema.json"):
        schema = json.loads((SCHEMAS / name).read_text(encoding="utf-8"))
        assert "schema_version" in schema["required"]
        assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
        assert schema["additionalProperties"] is False


# -- what `run` writes ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished, evaluated run of the fake model on the example (all three tasks)."""
    base = tmp_path_factory.mktemp("schema-run")
    res = sua(
        "run", "--model", "fake/echo", "--dataset", str(EXAMPLE), "--cache", str(base / "c.db"),
        "--out", str(base / "run"), "--no-progress",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    return base / "run"


def copy_of(run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(run, out)
    return out


def test_a_fake_run_writes_version_1_files(fake_run: Path) -> None:
    summary = _json(fake_run / "summary.json")
    evaluation = _json(fake_run / "evaluation.json")
    assert next(iter(summary)) == "schema_version" and summary["schema_version"] == SCHEMA_VERSION
    assert evaluation["schema_version"] == SCHEMA_VERSION and evaluation["schema"] == 1
    # Every field a version-1 file needs is there, with its type.
    context = {"schema_version": SCHEMA_VERSION}
    Summary.model_validate(summary, context=context)
    Evaluation.model_validate(evaluation, context=context)
    rows = read_results(fake_run, read_summary(fake_run))
    assert {r["task"] for r in rows} == {"qa", "classification", "nli"}
    for row in rows:
        check_written(ResultRow, row)
    typed = load_summary(fake_run)
    assert typed.results.items == len(rows) and typed.outputs is not None
    assert [r.id for r in load_results(fake_run, summary)] == [r["id"] for r in rows]


def test_future_schema_version_is_refused(fake_run: Path, tmp_path: Path) -> None:
    run = copy_of(fake_run, tmp_path)
    summary = _json(run / "summary.json")
    summary["schema_version"] = SCHEMA_VERSION + 1
    _dump(run / "summary.json", summary)
    checklist = tmp_path / "gate.toml"
    checklist.write_text("[limits]\nmin_accuracy = 0.0\n", encoding="utf-8")
    for args in (
        ["gate", str(run), "--checklist", str(checklist)],
        ["report", str(run), "-f", "md", "--out", "-"],
        ["evaluate", str(run)],
    ):
        err = one_line_error(sua(*args))
        assert f"schema_version {SCHEMA_VERSION + 1}" in err and "Upgrade sua-audit" in err


def test_future_evaluation_version_is_refused(fake_run: Path, tmp_path: Path) -> None:
    run = copy_of(fake_run, tmp_path)
    evaluation = _json(run / "evaluation.json")
    evaluation["schema_version"] = SCHEMA_VERSION + 1
    _dump(run / "evaluation.json", evaluation)
    err = one_line_error(sua("report", str(run), "-f", "md", "--out", "-"))
    assert "evaluation.json" in err and "Upgrade sua-audit" in err


def test_missing_required_field_is_named(fake_run: Path, tmp_path: Path) -> None:
    run = copy_of(fake_run, tmp_path)
    summary = _json(run / "summary.json")
    del summary["results"]["abstention"]
    _dump(run / "summary.json", summary)
    err = one_line_error(sua("report", str(run), "-f", "md", "--out", "-"))
    assert "summary.json" in err and "results" in err and "'abstention'" in err


def test_mistyped_row_field_is_named(fake_run: Path, tmp_path: Path) -> None:
    run = copy_of(fake_run, tmp_path)
    lines = (run / "results.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    row = json.loads(lines[1])
    row["variants"][0]["correct"] = "yes"
    lines[1] = json.dumps(row, ensure_ascii=False) + "\n"
    (run / "results.jsonl").write_text("".join(lines), encoding="utf-8")
    rebind(run)  # the same row with a valid binding: only its shape is wrong
    err = one_line_error(sua("report", str(run), "-f", "md", "--out", "-"))
    assert "results.jsonl:2: variants.0.correct: Input should be a valid boolean" in err


def test_mistyped_evaluation_is_refused(fake_run: Path, tmp_path: Path) -> None:
    run = copy_of(fake_run, tmp_path)
    evaluation = _json(run / "evaluation.json")
    evaluation["n_items"] = "13"
    _dump(run / "evaluation.json", evaluation)
    with pytest.raises(RunReadError, match=r"evaluation.json': n_items: .*valid integer"):
        read_evaluation(run / "evaluation.json", read_summary(run))


# -- files from before schema_version ----------------------------------------------------------


def test_files_from_before_versions_are_read(tmp_path: Path) -> None:
    run = copy_of(BEFORE_VERSIONS, tmp_path)
    loaded = load_run(run)
    assert "schema_version" not in loaded.summary and "outputs" not in loaded.summary
    assert len(loaded.items) == 6 and loaded.evaluation is not None
    typed = load_summary(run)
    assert typed.schema_version is None and typed.prompts is None  # defaulted
    assert [r.task for r in load_results(run)] == ["classification"] * 4 + ["qa"] * 2
    res = sua("report", str(run), "-f", "md", "--out", "-")
    assert res.returncode == 0, res.stderr[-3000:]


def test_an_old_run_evaluated_now_gets_a_version_1_evaluation(tmp_path: Path) -> None:
    run = copy_of(BEFORE_VERSIONS, tmp_path)
    (run / "evaluation.json").unlink()
    loaded = load_run(run)  # evaluates, and writes evaluation.json through its model
    assert loaded.evaluation is not None
    evaluation = _json(run / "evaluation.json")
    assert evaluation["schema_version"] == SCHEMA_VERSION
    assert evaluation["run"] == {"run_id": loaded.run_id, "results_sha256": None}
    Evaluation.model_validate(evaluation, context={"schema_version": SCHEMA_VERSION})


def test_a_versioned_file_must_be_complete(tmp_path: Path) -> None:
    """The same summary declaring version 1 lacks what version 1 requires."""
    run = copy_of(BEFORE_VERSIONS, tmp_path)
    summary = _json(run / "summary.json")
    summary["schema_version"] = 1
    _dump(run / "summary.json", summary)
    with pytest.raises(RunReadError) as err:
        read_summary(run)
    assert "missing fields 'variants', 'prompts', 'outputs'" in str(err.value)
    assert "\n" not in str(err.value)


# -- writers ----------------------------------------------------------------------------------


def test_rows_the_fake_model_cannot_make_fit_the_model() -> None:
    """Rows from paths a fake run does not reach: an ambiguity rewrite (multi_answer: its own
    entropy and divergence, the item's entropy gain), an item with several gold labels (its
    collapse block), and a failed item (a timeout: no HTTP status)."""
    from sua_audit.auditing import AuditOutcome, _failed_row, _score_item
    from sua_audit.config import AuditConfig
    from sua_audit.dataset import Item
    from sua_audit.errors import RequestFailed
    from sua_audit.perturbation import Variant
    from tests.scoring.test_audit_rows import _completion

    config = AuditConfig(dataset="d")
    item = Item(
        id="x", task="nli", input="a dog runs", labels=("entailment", "neutral"),
        gold_labels=("entailment", "neutral"), line=1,
    )  # fmt: skip
    variants = [
        Variant("clean", 0, {"input": "a dog runs"}, "original"),
        Variant("typo", 1, {"input": "a dgo runs"}, "typo"),
        Variant("ambiguity", 2, {"input": "it runs"}, "vaguer", flags=("multi_answer",)),
    ]
    scored = _score_item(item, variants, [_completion(p) for p in (0.9, 0.8, 0.5)], config)
    assert scored["ambiguity"]["applicable"] and "ambiguity_entropy_gain" in scored
    failed = _failed_row(
        Item(id="y", task="qa", input="why?", line=2),
        variants[:2],
        [RequestFailed("timeout", "no answer in 60 s", attempts=3)],
    )
    outcome = AuditOutcome()
    try:
        outcome.add(scored)
        outcome.add(failed)
        outcome.decision = [0.1, float("nan")]
        outcome.sua_norm = [0.0, float("nan")]
        rows = list(outcome.rows())
    finally:
        outcome.close()
    for row in rows:
        check_written(ResultRow, row)
    assert rows[1]["error"]["status"] is None


def test_writer_refuses_a_row_that_does_not_fit(fake_run: Path, tmp_path: Path) -> None:
    summary = _json(fake_run / "summary.json")
    rows = read_results(fake_run, summary)
    summary.pop("outputs")
    bad = [*rows[:2], {**rows[2], "sua": "high"}]
    with pytest.raises(ValueError, match=r"ResultRow .* sua: Input should be a valid number"):
        write_outputs(tmp_path / "out", bad, summary)
    assert not (tmp_path / "out" / "summary.json").exists()  # no finished run is left
    unknown = [*rows[:2], {**rows[2], "new_score": 1.0}]
    with pytest.raises(ValueError, match="does not know: new_score"):
        write_outputs(tmp_path / "out", unknown, summary)


def test_writer_refuses_a_summary_that_does_not_fit(fake_run: Path, tmp_path: Path) -> None:
    summary = _json(fake_run / "summary.json")
    rows = read_results(fake_run, summary)
    del summary["tokens"]
    with pytest.raises(ValueError, match="missing field 'tokens'"):
        write_outputs(tmp_path / "out", rows, summary)
    assert not (tmp_path / "out" / "summary.json").exists()


# -- the evidence runs (on machines that have them) -------------------------------------------


def _evidence_runs() -> list[Path]:
    if not EVIDENCE.is_dir():
        return []
    return sorted(p.parent for p in EVIDENCE.glob("**/run-*/summary.json"))


@pytest.mark.skipif(
    not _evidence_runs(),
    reason=f"no evidence run folders under {EVIDENCE} (they exist only on the project's "
    "benchmark machine; the committed fixture covers files from before versions)",
)
@pytest.mark.parametrize("run", _evidence_runs(), ids=lambda p: str(p.relative_to(EVIDENCE)))
def test_evidence_runs_fit_the_models(run: Path) -> None:
    summary = read_summary(run)
    rows = read_results(run, summary)
    assert rows
    if (run / "evaluation.json").is_file():
        read_evaluation(run / "evaluation.json", summary)
