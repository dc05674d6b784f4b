"""Hostile-user probes of issue 14, kept as regression tests: run folders are written as a
unit, the gate never passes on a run it did not see, every failure has its exit code before any
model call is paid for, and no input ends in a traceback.

Real processes where the process is the point (``python -m sua_audit``: runs, signals, the
hosted path against the loopback OpenAI-compatible stub server); refusals of flags and values
before any work run in this process through ``main()``, which maps errors to the same exit
codes and messages.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE
from tests.support.cli import REPO, sua, sua_in_process
from tests.support.stub_openai import FaultPlan, StubServer, status

KEY = "sk-hardening-0123456789"

#: How a helper runs the CLI: ``sua`` (a real process) or ``sua_in_process``.
Invoke = Callable[..., subprocess.CompletedProcess[str]]


def no_traceback(res: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in res.stderr + res.stdout, res.stderr[-3000:]


def fake_run(out: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    res = sua(
        "run", "--model", "fake/echo", "--dataset", str(EXAMPLE), "--cache", str(cache),
        "--out", str(out), "--no-progress", *extra,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    return res


def hosted_run(
    server_url: str, out: Path, cache: Path, *extra: str, invoke: Invoke = sua
) -> subprocess.CompletedProcess[str]:
    return invoke(
        "run", "--model", "openai/stub", "--base-url", server_url, "--dataset", str(EXAMPLE),
        "--cache", str(cache), "--out", str(out), "--no-progress", "--max-attempts", "1",
        "--limit", "4", *extra, env={"OPENAI_API_KEY": KEY},
    )  # fmt: skip


@pytest.fixture
def checklist(tmp_path: Path) -> Path:
    path = tmp_path / "gate.toml"
    path.write_text("[limits]\nmin_accuracy = 0.0\nmax_mean_sua_pos = 10\n")
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished, evaluated fake run, copied by tests that damage it."""
    base = tmp_path_factory.mktemp("finished")
    fake_run(base / "run", base / "c.db")
    assert (base / "run" / "evaluation.json").is_file()
    return base / "run"


def damaged(finished: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(finished, run)
    return run


# -- 1. the gate never passes on a previous run's numbers ------------------------------------


def test_failed_rerun_into_the_same_out_leaves_nothing_of_the_old_run(
    tmp_path: Path, checklist: Path
) -> None:
    out, cache = tmp_path / "run", tmp_path / "c.db"
    fake_run(out, cache)
    (out / "report.md").write_text("old report\n")
    assert sua("gate", str(out), "--checklist", str(checklist)).returncode == 0
    with StubServer(faults=FaultPlan().add(status(400))) as server:
        res = hosted_run(server.base_url, out, cache)
    no_traceback(res)
    assert res.returncode == 3, res.stderr[-2000:]
    assert "no item could be scored" in res.stderr
    assert not (out / "evaluation.json").exists()  # the older run's evaluation is gone
    assert not (out / "report.md").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["results"]["items_scored"] == 0
    gate = sua("gate", str(out), "--checklist", str(checklist))
    assert gate.returncode == 3, gate.stdout + gate.stderr
    assert "PASS" not in gate.stdout and "passed" not in gate.stdout


def test_evaluation_of_another_run_is_refused(tmp_path: Path, checklist: Path) -> None:
    cache = tmp_path / "c.db"
    fake_run(tmp_path / "a", cache)
    fake_run(tmp_path / "b", cache, "--seed", "1")
    shutil.copy(tmp_path / "a" / "evaluation.json", tmp_path / "b" / "evaluation.json")
    for args in (
        ["gate", str(tmp_path / "b"), "--checklist", str(checklist)],
        ["report", str(tmp_path / "b"), "-f", "md", "--out", "-"],
    ):
        res = sua(*args)
        no_traceback(res)
        assert res.returncode == 3, res.stdout + res.stderr
        assert "belongs to run" in res.stderr and "sua-audit evaluate" in res.stderr
    # Evaluating afresh binds it to b again.
    assert sua("evaluate", str(tmp_path / "b")).returncode == 0
    assert sua("gate", str(tmp_path / "b"), "--checklist", str(checklist)).returncode == 0


# -- 5. broken run folders are exit 3, never a verdict ---------------------------------------


def _empty(run: Path) -> None:
    (run / "results.jsonl").write_text("")


def _duplicate(run: Path) -> None:
    text = (run / "results.jsonl").read_text()
    (run / "results.jsonl").write_text(text + text)


def _truncate(run: Path) -> None:
    data = (run / "results.jsonl").read_bytes()
    (run / "results.jsonl").write_bytes(data[: len(data) - 40])


def _edit_a_row(run: Path) -> None:
    lines = (run / "results.jsonl").read_text().splitlines(keepends=True)
    row = json.loads(lines[0])
    row["correct"] = not row["correct"]
    lines[0] = json.dumps(row, ensure_ascii=False) + "\n"
    (run / "results.jsonl").write_text("".join(lines))


def _empty_summary(run: Path) -> None:
    (run / "summary.json").write_text("{}")


def _accuracy_high(run: Path) -> None:
    summary = json.loads((run / "summary.json").read_text())
    summary["results"]["accuracy"] = "high"
    (run / "summary.json").write_text(json.dumps(summary))


def _corrupt_evaluation(run: Path) -> None:
    (run / "evaluation.json").write_text('{"run_id": ')


@pytest.mark.parametrize(
    "damage",
    [_empty, _duplicate, _truncate, _edit_a_row, _empty_summary, _accuracy_high,
     _corrupt_evaluation],
)  # fmt: skip
def test_broken_run_folders_are_exit_3(
    damage, finished: Path, tmp_path: Path, checklist: Path
) -> None:
    run = damaged(finished, tmp_path)
    damage(run)
    commands = [
        ["gate", str(run), "--checklist", str(checklist)],
        ["report", str(run), "-f", "md", "--out", "-"],
    ]
    if damage is not _corrupt_evaluation:
        commands.append(["evaluate", str(run)])
    for args in commands:
        res = sua(*args)
        no_traceback(res)
        assert res.returncode == 3, (damage.__name__, args[0], res.stdout, res.stderr)
        assert "PASS" not in res.stdout
        assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1, res.stderr
    if damage is _corrupt_evaluation:  # evaluate is the repair the message names
        assert sua("evaluate", str(run)).returncode == 0
        assert sua("gate", str(run), "--checklist", str(checklist)).returncode == 0


def test_junit_to_a_folder_is_refused_before_any_verdict(
    finished: Path, tmp_path: Path, checklist: Path
) -> None:
    res = sua_in_process(
        "gate", str(finished), "--checklist", str(checklist), "--junit", str(tmp_path)
    )
    no_traceback(res)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "passed" not in res.stdout and "--junit" in res.stderr


@pytest.mark.parametrize("limit", ["nan", "inf", "-inf"])
def test_non_finite_gate_limit_is_a_usage_error(finished: Path, tmp_path: Path, limit) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(f"[limits]\nmin_accuracy = {limit}\n")
    res = sua_in_process("gate", str(finished), "--checklist", str(bad))
    no_traceback(res)
    assert res.returncode == 2 and "finite" in res.stderr, res.stderr


# -- 3. a run in which every item failed is exit 3 -------------------------------------------


def test_every_item_failed_is_exit_3_with_the_failures_written(tmp_path: Path) -> None:
    with StubServer(faults=FaultPlan().add(status(400))) as server:
        res = hosted_run(server.base_url, tmp_path / "o", tmp_path / "c.db")
    no_traceback(res)
    assert res.returncode == 3, res.stderr[-2000:]
    assert "bad_request" in res.stderr and "rerun" in res.stderr
    rows = [json.loads(x) for x in (tmp_path / "o" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all(r.get("failure") or r.get("error") for r in rows), rows[0]


def test_429_to_everything_is_exit_3(tmp_path: Path) -> None:
    with StubServer(faults=FaultPlan().add(status(429, retry_after=0.01))) as server:
        res = hosted_run(server.base_url, tmp_path / "o", tmp_path / "c.db", "--max-attempts", "2")
    no_traceback(res)
    assert res.returncode == 3 and "rate_limit" in res.stderr, res.stderr[-2000:]


@pytest.mark.parametrize("url", ["not a url", "ftp://127.0.0.1/v1", "http://"])
def test_bad_base_url_is_refused_before_the_run(tmp_path: Path, url: str) -> None:
    res = hosted_run(url, tmp_path / "o", tmp_path / "c.db", invoke=sua_in_process)
    no_traceback(res)
    assert res.returncode == 2 and "--base-url" in res.stderr, res.stderr[-2000:]
    assert not (tmp_path / "o").exists() and _no_calls(tmp_path / "c.db")


def test_closed_port_is_exit_3(tmp_path: Path) -> None:
    res = hosted_run("http://127.0.0.1:9/v1", tmp_path / "o", tmp_path / "c.db")
    no_traceback(res)
    assert res.returncode == 3 and "connection" in res.stderr, res.stderr[-2000:]


def test_partial_failure_rule(tmp_path: Path) -> None:
    """One item's requests fail: the default allows it (status partial, exit 0);
    --max-failed-share 0 makes any failed item exit 3."""
    first = json.loads(EXAMPLE.read_text().splitlines()[0])["input"]
    plan = FaultPlan().add(status(400), contains=first[:30])
    with StubServer(faults=plan) as server:
        ok = hosted_run(server.base_url, tmp_path / "a", tmp_path / "c.db")
        strict = hosted_run(
            server.base_url, tmp_path / "b", tmp_path / "c.db", "--max-failed-share", "0"
        )
    assert ok.returncode == 0, ok.stderr[-2000:]
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["status"] == "partial"
    assert summary["results"]["items_failed"] >= 1 and summary["results"]["items_scored"] >= 1
    no_traceback(strict)
    assert strict.returncode == 3 and "--max-failed-share" in strict.stderr, strict.stderr


def test_a_partial_run_rescores_with_its_failures_and_a_pruned_cache_is_exit_3(
    tmp_path: Path,
) -> None:
    """A failed request is never cached, so the items that failed in the run have no answers
    to rescore: they stay failed with the run's own error. An item the run scored whose
    answers are gone from the cache stops the rescore (exit 3, nothing written)."""
    first = json.loads(EXAMPLE.read_text().splitlines()[0])["input"]
    plan = FaultPlan().add(status(400), contains=first[:30])
    with StubServer(faults=plan) as server:
        res = hosted_run(server.base_url, tmp_path / "a", tmp_path / "c.db")
    assert res.returncode == 0, res.stderr[-2000:]
    run = json.loads((tmp_path / "a" / "summary.json").read_text())
    rows = [json.loads(x) for x in (tmp_path / "a" / "results.jsonl").read_text().splitlines()]
    failed = {r["id"]: r["error"] for r in rows if r["status"] == "failed"}
    assert failed and len(failed) < len(rows)

    # No server now: the rescore calls nothing.
    again = sua("rescore", str(tmp_path / "a"), "--lambda", "0.5", "--out", str(tmp_path / "r"))
    no_traceback(again)
    assert again.returncode == 0, again.stderr[-2000:]
    rescored = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert rescored["model_calls"] == 0
    assert rescored["results"]["failures_by_kind"] == run["results"]["failures_by_kind"]
    new_rows = [json.loads(x) for x in (tmp_path / "r" / "results.jsonl").read_text().splitlines()]
    assert {r["id"]: r["error"] for r in new_rows if r["status"] == "failed"} == failed

    pruned = tmp_path / "pruned.db"
    shutil.copy(tmp_path / "c.db", pruned)
    with sqlite3.connect(pruned) as db:
        db.execute("DELETE FROM completions")
    gone = sua(
        "rescore", str(tmp_path / "a"), "--lambda", "0.5", "--cache", str(pruned),
        "--out", str(tmp_path / "r2"),
    )  # fmt: skip
    no_traceback(gone)
    assert gone.returncode == 3 and "not in the cache" in gone.stderr, gone.stderr
    assert len(gone.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "r2").exists()


# -- 4. usage errors are exit 2, Ctrl-C prints the resume line --------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--limit", "abc"],
        ["run", "--bogus"],
        ["run"],
        ["nosuchcommand"],
        ["gate"],
        ["report", "--format"],
        ["run", "--dataset", str(EXAMPLE), "--concurrency", "many"],
    ],
)
def test_usage_errors_exit_2_without_traceback(args: list[str]) -> None:
    res = sua_in_process(*args)
    no_traceback(res)
    assert res.returncode == 2, res.stderr
    assert "Error" in res.stderr or "error" in res.stderr


def test_ctrl_c_prints_the_resume_line(tmp_path: Path) -> None:
    # 40 copies of the example (unique ids): long enough that Ctrl-C lands mid-run.
    data = tmp_path / "many.jsonl"
    rows = [json.loads(x) for x in EXAMPLE.read_text().splitlines()]
    data.write_text(
        "".join(json.dumps({**r, "id": f"{r['id']}-{i}"}) + "\n" for i in range(40) for r in rows)
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "sua_audit", "run", "--model", "fake/slow", "--dataset",
         str(data), "--cache", str(tmp_path / "c.db"), "--out", str(tmp_path / "o"),
         "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        # A shell's background job ignores SIGINT, and children inherit that: restore it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if (tmp_path / "c.db").exists():
            with sqlite3.connect(tmp_path / "c.db") as db:
                try:
                    if db.execute("select count(*) from completions").fetchone()[0] > 0:
                        break
                except sqlite3.OperationalError:
                    pass
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "rerun the same command to resume" in err
    assert "Traceback" not in err
    assert not (tmp_path / "o" / "summary.json").exists()


# -- 6 and 10. outputs and option values are checked before the first model call -------------


def _no_calls(cache: Path) -> bool:
    if not cache.exists():
        return True
    with sqlite3.connect(cache) as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master")}
        return (
            "completions" not in tables
            or not db.execute("select count(*) from completions").fetchone()[0]
        )


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--out", "FILE"], "--out"),
        (["--out", "FILE/below"], "--out"),
        (["--out", ""], "--out"),
        (["--tau", "nan"], "--tau"),
        (["--tau", "inf"], "--tau"),
        (["--cache", "DIR"], "--cache"),
        (["-k", "0"], "--perturbations"),
        (["--max-failed-share", "1.5"], "--max-failed-share"),
    ],
)
def test_bad_outputs_and_values_exit_2_before_any_call(
    tmp_path: Path, extra: list[str], needle: str
) -> None:
    (tmp_path / "FILE").write_text("not a folder")
    (tmp_path / "DIR").mkdir()
    extra = [x.replace("FILE", str(tmp_path / "FILE")).replace("DIR", str(tmp_path / "DIR"))
             if x else x for x in extra]  # fmt: skip
    cache = tmp_path / "c.db"
    args = ["run", "--model", "fake/echo", "--dataset", str(EXAMPLE), "--no-progress"]
    if "--cache" not in extra:
        args += ["--cache", str(cache)]
    res = sua_in_process(*args, *extra)
    no_traceback(res)
    assert res.returncode == 2, res.stderr[-2000:]
    assert needle in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert _no_calls(cache)
    assert (tmp_path / "FILE").read_text() == "not a folder"


def test_compare_checks_the_run_count_before_its_out(tmp_path: Path) -> None:
    (tmp_path / "DIR").mkdir()
    one = sua_in_process("compare", str(tmp_path / "a"), "--out", str(tmp_path / "DIR"))
    assert one.returncode == 2 and "at least two" in one.stderr, one.stderr
    two = sua_in_process(
        "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "DIR")
    )
    assert two.returncode == 2 and "--out" in two.stderr and "folder" in two.stderr, two.stderr


def test_gold_options_without_gold_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "nogold.jsonl"
    rows = [json.loads(x) for x in EXAMPLE.read_text().splitlines()]
    with data.open("w") as fh:
        for row in rows:
            for key in ("label", "answers", "answer"):
                row.pop(key, None)
            fh.write(json.dumps(row) + "\n")
    for extra in (["--lambda", "auto"], ["--target-risk", "0.2"]):
        res = sua_in_process(
            "run", "--model", "fake/echo", "--dataset", str(data), "--cache",
            str(tmp_path / "c.db"), "--out", str(tmp_path / "o"), *extra,
        )  # fmt: skip
        no_traceback(res)
        assert res.returncode == 2 and "needs gold answers" in res.stderr, res.stderr
    assert _no_calls(tmp_path / "c.db")


def test_read_only_cache_is_refused_when_it_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cache the process may not write: SQLite opens it read-only (as an unprivileged user
    would get on a 0444 file; this test runs as root in CI, so the open mode is forced)."""
    from sua_audit.errors import ConfigError
    from sua_audit.store import Store

    Store.open(tmp_path / "c.db").close()
    real_connect = sqlite3.connect

    def read_only(path: str, *args: object, **kwargs: object) -> sqlite3.Connection:
        return real_connect(f"file:{path}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    with pytest.raises(ConfigError, match="read-only"):
        Store.open(tmp_path / "c.db")


# -- 9. rescore from another working directory ------------------------------------------------


def test_rescore_finds_a_moved_dataset_by_flag_and_checks_its_hash(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(EXAMPLE, work / "data.jsonl")
    res = sua(
        "run", "--model", "fake/echo", "--dataset", "data.jsonl", "--cache",
        str(tmp_path / "c.db"), "--out", str(tmp_path / "run"), "--no-progress", cwd=work,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["config"]["dataset"] == str(work / "data.jsonl")  # absolute
    assert summary["dataset"]["path"] == str(work / "data.jsonl")

    # From another directory, the absolute path is found.
    moved = sua("rescore", str(tmp_path / "run"), "--lambda", "0.5", cwd=tmp_path)
    assert moved.returncode == 0, moved.stderr[-2000:]

    # The file moved: a clear error, then --dataset finds it.
    (work / "data.jsonl").rename(tmp_path / "elsewhere.jsonl")
    lost = sua("rescore", str(tmp_path / "run"), "--lambda", "0.5", "--out", str(tmp_path / "r"))
    no_traceback(lost)
    assert lost.returncode == 2 and "--dataset" in lost.stderr, lost.stderr
    found = sua(
        "rescore", str(tmp_path / "run"), "--lambda", "0.5", "--out", str(tmp_path / "r"),
        "--dataset", str(tmp_path / "elsewhere.jsonl"),
    )  # fmt: skip
    assert found.returncode == 0, found.stderr[-2000:]

    # Another file under the flag is refused by its sha256.
    other = tmp_path / "other.jsonl"
    other.write_text(EXAMPLE.read_text().replace("soup", "stew"))
    wrong = sua(
        "rescore", str(tmp_path / "run"), "--lambda", "0.5", "--out", str(tmp_path / "r2"),
        "--dataset", str(other),
    )  # fmt: skip
    no_traceback(wrong)
    assert wrong.returncode == 3 and "sha256" in wrong.stderr, wrong.stderr
