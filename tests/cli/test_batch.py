"""``sua-audit run --batch`` against the loopback stub's files and batches endpoints.

Real processes, real cache, the real openai SDK: the answers must equal an interactive run's,
land in the cache under the same keys, survive per-line errors and expiry, and a kill -9 while
the batch runs must not make the rerun pay again.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import EXAMPLE
from tests.support import cli
from tests.support.cli import REPO
from tests.support.stub_openai import StubServer

MODEL = "openai/stub-model"
SCORES = ("sensitivity", "entropy", "sua", "correct", "prediction")


def args(server: StubServer, out: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "run", "--model", MODEL, "--base-url", server.base_url, "--dataset", str(EXAMPLE),
        "--out", str(out), "--cache", str(cache), "--json", "--no-progress", "--timeout", "5",
        "--batch-poll", "0.05", *extra,
    ]  # fmt: skip


def sua(*argv: str) -> subprocess.CompletedProcess[str]:
    return cli.sua(*argv, columns=160, timeout=180)


def rows(out: Path) -> dict[str, dict[str, Any]]:
    lines = (out / "results.jsonl").read_text().splitlines()
    return {r["id"]: r for r in map(json.loads, lines)}


def summary(res: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert res.returncode == 0, res.stderr[-3000:]
    data: dict[str, Any] = json.loads(res.stdout)
    return data


def same_scores(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for item_id in a:
        for name in SCORES:
            assert a[item_id].get(name) == b[item_id].get(name), (item_id, name)


def test_a_batch_run_scores_like_an_interactive_run_and_fills_the_same_cache(
    tmp_path: Path,
) -> None:
    with StubServer() as live:
        interactive = summary(sua(*args(live, tmp_path / "i", tmp_path / "i.db")[:-2]))
    with StubServer(batch_seconds=0.3) as server:
        batched = summary(sua(*args(server, tmp_path / "b", tmp_path / "b.db", "--batch")))
        assert server.chat_count == 0  # every answer came through a batch
        assert server.batches_created == 1 and server.files_uploaded == 1
        assert batched["model"]["batch"]["lines_submitted"] == server.batch_lines_answered
        assert batched["config"]["batch"] is True
        # The answers sit in the cache under the interactive keys: nothing is asked again.
        again = summary(sua(*args(server, tmp_path / "again", tmp_path / "b.db")[:-2]))
        assert again["model_calls"] == 0 and server.chat_count == 0
    assert batched["model_calls"] == interactive["model_calls"] > 0
    same_scores(rows(tmp_path / "i"), rows(tmp_path / "b"))


def test_per_line_errors_fail_their_items_and_a_rerun_sends_only_those(tmp_path: Path) -> None:
    bad = "cold and the waiter"  # one item of the example set, and its variants

    def fault(custom_id: str, body: dict[str, Any]) -> int | None:
        text = json.dumps(body)
        return 400 if bad in text or "waiter ignored" in text else None

    with StubServer(batch_seconds=0.2, batch_line_faults=fault) as server:
        first = summary(sua(*args(server, tmp_path / "a", tmp_path / "c.db", "--batch")))
        assert first["failed_requests"] > 0
        failed_ids = {i for i, r in rows(tmp_path / "a").items() if r.get("error")}
        assert failed_ids == {"sent-01"}
        sent_first = server.batch_lines_answered
        server.batch_line_faults = None  # the provider recovers
        second = summary(sua(*args(server, tmp_path / "b", tmp_path / "c.db", "--batch")))
        assert server.batches_created == 2
        (resent,) = list(server.batch_custom_ids.values())[1:]
        assert len(resent) == first["failed_requests"] < sent_first
        assert second["failed_requests"] == 0


def test_a_retryable_line_error_is_asked_again_in_a_later_batch_of_the_same_run(
    tmp_path: Path,
) -> None:
    seen: set[str] = set()

    def once(custom_id: str, body: dict[str, Any]) -> int | None:
        if custom_id in seen:
            return None
        seen.add(custom_id)
        return 500 if "waiter ignored" in json.dumps(body) else None

    with StubServer(batch_seconds=0.2, batch_line_faults=once) as server:
        done = summary(sua(*args(server, tmp_path / "a", tmp_path / "c.db", "--batch")))
        assert done["failed_requests"] == 0 and done["status"] == "complete"
        assert server.batches_created == 2


def test_an_expired_batch_is_sent_again_for_its_unanswered_lines_only(tmp_path: Path) -> None:
    with StubServer(batch_seconds=0.3, batch_expire=1, batch_expire_fraction=0.5) as server:
        done = summary(sua(*args(server, tmp_path / "a", tmp_path / "c.db", "--batch")))
        assert done["failed_requests"] == 0
        first, second = server.batch_custom_ids.values()
        expired = server.batches[0]
        assert expired["status"] == "expired"
        assert len(second) == len(first) - expired["request_counts"]["completed"] > 0
        assert set(second) < set(first)


def test_kill_9_while_the_batch_runs_then_the_rerun_resumes_it_without_paying_again(
    tmp_path: Path,
) -> None:
    cache = tmp_path / "c.db"
    with StubServer(batch_seconds=6.0) as server:
        argv = args(server, tmp_path / "a", cache, "--batch")
        proc = subprocess.Popen(
            [sys.executable, "-m", "sua_audit", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        deadline = time.monotonic() + 60
        while server.batches_created == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # past the create's answer: the batch id is in the ledger
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert server.batches_created == 1
        assert server.batches[0]["status"] in ("validating", "in_progress")
        with sqlite3.connect(cache) as db:
            ((batch_id,),) = db.execute("select batch_id from batch_jobs").fetchall()
        assert batch_id == server.batches[0]["id"]
        assert not (tmp_path / "a" / "summary.json").exists()
        rerun = summary(sua(*argv))
        assert server.batches_created == 1 and server.files_uploaded == 1
        assert rerun["model"]["batch"]["jobs_resumed"] == 1
        assert rerun["model"]["batch"]["lines_submitted"] == 0
        assert rerun["failed_requests"] == 0


def test_batch_needs_the_cache_and_an_openai_compatible_backend(tmp_path: Path) -> None:
    off = cli.sua_in_process(
        "run", "--model", MODEL, "--base-url", "http://127.0.0.1:9/v1", "--dataset",
        str(EXAMPLE), "--out", str(tmp_path / "o"), "--batch", "--cache-mode", "off",
    )  # fmt: skip
    assert off.returncode == 2 and "--cache-mode off" in off.stderr
    fake = cli.sua_in_process(
        "run", "--model", "fake/echo", "--dataset", str(EXAMPLE), "--out", str(tmp_path / "f"),
        "--cache", str(tmp_path / "c.db"), "--batch",
    )  # fmt: skip
    assert fake.returncode == 2 and "cannot send batches" in fake.stderr
    assert not (tmp_path / "o").exists() and not (tmp_path / "f").exists()


def test_through_litellm_a_batch_run_sends_the_providers_model_name(tmp_path: Path) -> None:
    with StubServer(batch_seconds=0.2) as server:
        argv = args(server, tmp_path / "a", tmp_path / "c.db", "--batch", "--limit", "3")
        argv[argv.index(MODEL)] = "litellm/openai/stub-model"
        done = summary(cli.sua(*argv, columns=160, timeout=180, env={"OPENAI_API_KEY": None}))
        assert done["failed_requests"] == 0 and server.chat_count == 0
        assert server.batches_created == 1
        (job,) = server.batches
        data = server.file_content(job["input_file_id"]).decode().splitlines()
        assert {json.loads(line)["body"]["model"] for line in data} == {"stub-model"}


def test_litellm_providers_without_openai_shaped_batches_are_refused(tmp_path: Path) -> None:
    res = cli.sua_in_process(
        "run", "--model", "litellm/anthropic/claude-x", "--dataset", str(EXAMPLE), "--out",
        str(tmp_path / "o"), "--cache", str(tmp_path / "c.db"), "--batch",
    )  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert "not for 'anthropic'" in res.stderr and "openai, azure" in res.stderr
