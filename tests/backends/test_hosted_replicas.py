"""Several replicas of one model (``--base-url`` given several times), end to end.

Each test runs ``sua-audit run`` in a real process against loopback
:class:`tests.support.stub_openai.StubServer` replicas and checks both sides: what the tool
wrote (results, summary, cache) and what each replica saw.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from tests.backends.test_hosted_faults import (
    MODEL,
    body_key,
    dataset_ids,
    rows_of,
    run_ok,
    sua,
    write_jsonl,
)
from tests.conftest import EXAMPLE
from tests.support.cli import sua_in_process
from tests.support.stub_openai import StubServer

#: Chat requests the replica that is stopped answers first.
STOP_AFTER = 30
CONCURRENCY = 4


def unique_copies(copies: int) -> list[dict[str, Any]]:
    """``copies`` copies of the example dataset, each item with its own id and its own text
    (the same text twice would be one request, answered once and cached for both)."""
    rows = [json.loads(line) for line in EXAMPLE.read_text().splitlines()]
    out = []
    for i in range(copies):
        for row in rows:
            row = {**row, "id": f"{row['id']}-{i}"}
            if row["task"] == "nli":
                row["premise"] = f"{row['premise']} (case {i})"
                row["input"] = f"Premise: {row['premise']}\nHypothesis: {row['hypothesis']}"
            else:
                row["input"] = f"{row['input']} (case {i})"
            out.append(row)
    return out


def run_args(urls: list[str], dataset: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "run", "--model", MODEL, *(a for url in urls for a in ("--base-url", url)),
        "--dataset", str(dataset), "--out", str(out), "--cache", str(cache), "--json",
        "--no-progress", "--timeout", "2", "--concurrency", str(CONCURRENCY), *extra,
    ]  # fmt: skip


def cache_counts(cache: Path) -> tuple[int, int]:
    db = sqlite3.connect(cache)
    try:
        row = db.execute("select count(*), count(distinct key) from completions").fetchone()
        return int(row[0]), int(row[1])
    finally:
        db.close()


def test_a_replica_stopped_mid_run_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    dataset = write_jsonl(tmp_path / "many.jsonl", unique_copies(3))  # 39 items
    with (
        StubServer(latency=0.02) as a,
        StubServer(latency=0.02) as b,
        StubServer(latency=0.02) as c,
    ):

        def stop_c() -> None:
            # GET /models is one request; then STOP_AFTER chat requests (some still in flight)
            c.wait_for(1 + STOP_AFTER, timeout=60)
            c.stop()

        stopper = threading.Thread(target=stop_c)
        stopper.start()
        args = run_args(
            [a.base_url, b.base_url, c.base_url], dataset, tmp_path / "r", tmp_path / "r.db"
        )
        summary = run_ok(*args)
        stopper.join(10)
        seen = {"a": a.requests, "b": b.requests, "c": c.requests}

        # The same audit against one replica, on a fresh cache: the reference.
        single = run_ok(*run_args([a.base_url], dataset, tmp_path / "s", tmp_path / "s.db"))

    # Every item answered, once, in order, and exactly as one healthy server answers them.
    rows = rows_of(tmp_path / "r")
    assert [r["id"] for r in rows] == dataset_ids(dataset)
    assert all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows]
    assert summary["results"]["items_scored"] == 39 and summary["failed_requests"] == 0
    assert rows == rows_of(tmp_path / "s")
    assert summary["model_calls"] == single["model_calls"]

    # The cache holds one row per unique request, each written once.
    assert cache_counts(tmp_path / "r.db") == (summary["model_calls"],) * 2

    # Each replica checked the model first; c answered before it stopped, a and b did the rest.
    for name, log in seen.items():
        assert log[0].path == "/v1/models", name
    chat = {
        name: [r for r in log if r.path.endswith("/chat/completions")] for name, log in seen.items()
    }
    # (a request or two may reach c between the count and the stop)
    assert STOP_AFTER <= len(chat["c"]) <= STOP_AFTER + CONCURRENCY
    per = {e["url"]: e for e in summary["model"]["endpoints"]}
    stopped = per[c.base_url]
    assert stopped["marked_down"] >= 1 and stopped["failures"] >= 3
    assert stopped["answered"] <= len(chat["c"])
    assert per[a.base_url]["failures"] == per[b.base_url]["failures"] == 0
    assert per[a.base_url]["answered"] == len(chat["a"]) > stopped["answered"]
    assert per[b.base_url]["answered"] == len(chat["b"]) > stopped["answered"]
    assert sum(e["answered"] for e in per.values()) == summary["model_calls"]
    assert summary["model"]["http_calls"] == sum(e["calls"] for e in per.values())
    assert summary["model"]["retries"] == stopped["failures"]
    assert summary["model"]["base_urls"] == sorted([a.base_url, b.base_url, c.base_url])

    # Nothing was answered twice by the live replicas; the only requests seen twice are those
    # c had received when it stopped (at most --concurrency in flight on it), sent again.
    live = Counter(body_key(r) for r in chat["a"] + chat["b"])
    assert set(live.values()) == {1}
    everywhere = Counter(body_key(r) for r in chat["a"] + chat["b"] + chat["c"])
    assert len(everywhere) == summary["model_calls"]
    twice = sum(n - 1 for n in everywhere.values())
    assert twice == len(chat["c"]) - stopped["answered"] <= CONCURRENCY


def test_a_replica_without_the_model_is_refused_before_any_chat_request(tmp_path: Path) -> None:
    dataset = write_jsonl(tmp_path / "d.jsonl", unique_copies(1))
    with StubServer() as a, StubServer(models=("another-model",)) as b:
        # the variable's comma-separated form names both replicas
        res = sua(
            *run_args([], dataset, tmp_path / "o", tmp_path / "c.db"),
            env={"SUA_AUDIT_BASE_URL": f"{a.base_url},{b.base_url}"},
        )
        chats = a.chat_count + b.chat_count
        asked = (a.count, b.count)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and b.base_url in lines[0] and "stub-model" in lines[0], res.stderr
    assert a.base_url not in lines[0] and "another-model" in lines[0]
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert chats == 0 and asked == (1, 1)  # GET /models on each, nothing else
    assert not (tmp_path / "o").exists()


def test_a_replica_that_does_not_answer_at_start_is_exit_3(tmp_path: Path) -> None:
    dataset = write_jsonl(tmp_path / "d.jsonl", unique_copies(1))
    closed = "http://127.0.0.1:9/v1"
    with StubServer() as a:
        res = sua(*run_args([a.base_url, closed], dataset, tmp_path / "o", tmp_path / "c.db"))
        chats = a.chat_count
    assert res.returncode == 3, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and closed in lines[0] and "connection" in lines[0], res.stderr
    assert chats == 0 and not (tmp_path / "o").exists()


def test_one_url_runs_as_before(tmp_path: Path) -> None:
    dataset = write_jsonl(tmp_path / "d.jsonl", unique_copies(1)[:3])
    with StubServer() as a:
        summary = run_ok(*run_args([a.base_url], dataset, tmp_path / "o", tmp_path / "c.db"))
        paths = {r.path for r in a.requests}
    assert paths == {"/v1/chat/completions"}  # no GET /models for one server
    assert summary["model"]["base_url"] == a.base_url
    assert "endpoints" not in summary["model"] and "base_urls" not in summary["model"]
    assert summary["config"]["base_url"] == a.base_url
    db = sqlite3.connect(tmp_path / "c.db")
    try:
        (request_json,) = db.execute("select request_json from completions limit 1").fetchone()
    finally:
        db.close()
    assert json.loads(request_json)["backend"] == {
        "provider": "openai",
        "model": "stub-model",
        "base_url": a.base_url,
    }


def test_batch_with_several_replicas_is_refused(tmp_path: Path) -> None:
    res = sua_in_process(
        *run_args(["http://a:1/v1", "http://b:1/v1"], EXAMPLE, tmp_path / "o", tmp_path / "c"),
        "--batch",
    )
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--batch" in lines[0] and "one provider endpoint" in lines[0]
