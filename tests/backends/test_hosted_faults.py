"""The hosted backend against a misbehaving OpenAI-compatible server, end to end.

Every test runs ``sua-audit run --model openai/stub-model --base-url <stub>`` as a user would (a
real process, real exit codes, real files) against :class:`tests.support.stub_openai.StubServer`
serving from a thread of the test process, and checks both sides: what the tool wrote, and what
the server saw (request counts, bodies, which faults fired).

Retry waits stay short without any test-only knob: the one Retry-After used is 0.6 s, and the
exponential backoff starts at 0.5 s with full jitter, so a first retry waits 0.25 s on average.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLE
from tests.support import cli
from tests.support.stub_openai import (
    FaultPlan,
    RecordedRequest,
    StubServer,
    build_completion,
    drop,
    hang,
    last_user_text,
    latency,
    malformed,
    parse_labels,
    status,
)

MODEL = "openai/stub-model"
#: Above the first backoff (at most 0.5 s), so that honouring it is observable.
RETRY_AFTER = 0.6


def sua(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``sua-audit`` in a subprocess (no progress bar, wide terminal, 120 s at most)."""
    return cli.sua(*args, columns=160, timeout=120, env=env)


def audit_args(
    server: StubServer, dataset: Path, out: Path, cache: Path, *extra: str, timeout: float = 1
) -> list[str]:
    return [
        "run",
        "--model",
        MODEL,
        "--base-url",
        server.base_url,
        "--dataset",
        str(dataset),
        "--out",
        str(out),
        "--cache",
        str(cache),
        "--json",
        "--no-progress",
        "--timeout",
        str(timeout),
        *extra,
    ]


def run_ok(*args: str) -> dict[str, Any]:
    """Run, require exit 0, return summary.json as printed on stdout."""
    res = sua(*args)
    assert res.returncode == 0, res.stderr
    summary: dict[str, Any] = json.loads(res.stdout)
    return summary


def rows_of(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def dataset_ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]


def body_key(request: RecordedRequest) -> str:
    """One logical request: its whole JSON body (retries of it send the same body)."""
    return json.dumps(request.json, sort_keys=True)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# A small dataset for the tests that count requests exactly: 2 label items, 2 QA items.
SMALL = [
    {
        "id": "c1",
        "task": "classification",
        "input": "The soup was cold and the waiter ignored us all evening.",
        "labels": ["negative", "positive"],
        "label": "negative",
    },
    {
        "id": "q1",
        "task": "qa",
        "input": "What is the capital of France?",
        "answers": ["Paris"],
    },
    {
        "id": "c2",
        "task": "nli",
        "input": "Premise: A dog runs in a park.\nHypothesis: An animal is outdoors.",
        "premise": "A dog runs in a park.",
        "hypothesis": "An animal is outdoors.",
        "labels": ["entailment", "neutral", "contradiction"],
        "label": "entailment",
    },
    {
        "id": "q2",
        "task": "qa",
        "input": "Which planet is known as the Red Planet?",
        "answers": ["Mars"],
    },
]


# ---------------------------------------------------------------------------------------------
# 1. transient faults of every kind: retried, nothing lost, nothing changed
# ---------------------------------------------------------------------------------------------


def test_mixed_transient_faults_are_retried_and_every_item_is_scored_once(
    tmp_path: Path,
) -> None:
    plan = (
        FaultPlan()
        .add(status(429, retry_after=RETRY_AFTER), every=5, times=2)
        .add(status(500), every=7, times=1)
        .add(status(503), every=9, times=1)
        .add(hang(10), every=11, times=1)  # longer than --timeout 1
        .add(drop(), every=13, times=1)
        .add(drop(reset=True), every=4, times=1)
        .add(malformed(), every=6, times=1)
    )
    faults = 8
    # More attempts than faults in the plan: no request can run out of attempts, whatever
    # order the faults land in, so the run must succeed completely.
    extra = ("--max-attempts", str(faults + 1), "--samples", "3")
    with StubServer(faults=plan) as server:
        summary = run_ok(*audit_args(server, EXAMPLE, tmp_path / "a", tmp_path / "a.db", *extra))
        seen = server.chat_count
        fired = server.fault_counts
        log = server.requests
    assert sum(fired.values()) == faults, fired  # every fault really happened
    assert {f.split("(")[0] for f in fired} == {"status", "hang", "drop", "malformed"}

    rows = rows_of(tmp_path / "a")
    assert [r["id"] for r in rows] == dataset_ids(EXAMPLE)  # each item once, in order
    assert all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows]
    assert summary["results"]["items_scored"] == 13 and summary["results"]["items_failed"] == 0
    assert summary["failed_requests"] == 0 and summary["results"]["failures_by_kind"] == {}

    # Each fault cost exactly one retry; every other request was answered on its first try.
    model = summary["model"]
    assert model["retries"] == faults
    assert model["http_calls"] == seen == summary["model_calls"] + faults
    assert model["rate_limit_slowdowns"] == 2
    # A 429's Retry-After is waited out before that request is sent again (it is longer than
    # any first backoff would be, so a client that ignored it would retry sooner).
    limited = [r for r in log if r.fault is not None and r.fault.http_status == 429]
    assert len(limited) == 2
    for r in limited:
        retry = next(x for x in log if x.seq > r.seq and body_key(x) == body_key(r))
        assert retry.time - r.time >= RETRY_AFTER - 0.01  # (time.time() granularity)

    # The faults changed nothing: a run against a healthy server gives the same rows.
    with StubServer() as healthy:
        clean = run_ok(*audit_args(healthy, EXAMPLE, tmp_path / "b", tmp_path / "b.db", *extra))
    assert clean["model"]["retries"] == 0 and clean["model_calls"] == summary["model_calls"]
    assert rows_of(tmp_path / "b") == rows


# ---------------------------------------------------------------------------------------------
# 2. persistent failures: recorded per item, and a rerun retries exactly those requests
# ---------------------------------------------------------------------------------------------


def test_persistent_failures_are_recorded_and_a_rerun_retries_only_them(tmp_path: Path) -> None:
    # "soup" is in sent-01 only, "spider" in qa-02 only (perturbations may drop the word from
    # some variants: those requests succeed, but the clean variant always fails).
    plan = FaultPlan().add(status(500), contains="soup").add(status(503), contains="spider")
    cache = tmp_path / "c.db"
    with StubServer(faults=plan) as server:
        first = run_ok(
            *audit_args(server, EXAMPLE, tmp_path / "a", cache, "--max-attempts", "2")
        )  # exit 0: failed items are results, not a failed run
        faulted = [r for r in server.requests if r.fault is not None]

        # The server recovers (same URL: the URL is part of the cache key); the same command
        # with the same cache makes only the requests that failed.
        server.faults.clear()
        server.reset()
        second = run_ok(*audit_args(server, EXAMPLE, tmp_path / "b", cache, "--max-attempts", "2"))
        again = server.requests

    rows = rows_of(tmp_path / "a")
    assert [r["id"] for r in rows] == dataset_ids(EXAMPLE)
    failed = {r["id"]: r for r in rows if r["status"] == "failed"}
    assert set(failed) == {"sent-01", "qa-02"}
    for item_id, code in (("sent-01", 500), ("qa-02", 503)):
        error = failed[item_id]["error"]
        assert error["kind"] == "server" and error["status"] == code
        assert error["attempts"] == 2 and error["failed_requests"] >= 1
        assert error["message"].startswith(f"HTTP {code}:")
        assert failed[item_id]["sua"] is None and failed[item_id]["abstain"] is None
    assert all(r["sua"] is not None for r in rows if r["status"] == "ok")

    # --max-attempts 2: each failing request was sent exactly twice, then given up.
    per_body = Counter(body_key(r) for r in faulted)
    assert set(per_body.values()) == {2}
    assert first["failed_requests"] == len(per_body)
    assert first["failed_requests"] == sum(r["error"]["failed_requests"] for r in failed.values())
    assert first["results"]["items_failed"] == 2
    assert first["results"]["failures_by_kind"] == {"server": 2}

    assert len(again) == first["failed_requests"]
    assert {body_key(r) for r in again} == set(per_body)
    assert second["model_calls"] == first["failed_requests"]
    assert second["cache_hits"] == first["model_calls"]
    assert second["failed_requests"] == 0
    rows = rows_of(tmp_path / "b")
    assert [r["id"] for r in rows] == dataset_ids(EXAMPLE)
    assert all(r["status"] == "ok" for r in rows)
    db = sqlite3.connect(cache)
    try:
        query = "select count(*), count(distinct key) from completions"
        total, distinct = db.execute(query).fetchone()
    finally:
        db.close()
    assert total == distinct == first["model_calls"] + second["model_calls"]


# ---------------------------------------------------------------------------------------------
# 3. errors that no retry can fix are not retried
# ---------------------------------------------------------------------------------------------


def filtered_answer_for(marker: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A responder: healthy answers, except a content-filtered 200 for prompts with ``marker``."""

    def respond(request: dict[str, Any]) -> dict[str, Any]:
        if marker not in last_user_text(request):
            return build_completion(request)
        return {
            "choices": [
                {
                    "index": i,
                    "message": {"role": "assistant", "content": ""},
                    "logprobs": None,
                    "finish_reason": "content_filter",
                }
                for i in range(request.get("n") or 1)
            ]
        }

    return respond


def test_non_retryable_errors_are_tried_once_and_recorded(tmp_path: Path) -> None:
    plan = (
        FaultPlan()
        .add(status(400, code="context_length_exceeded"), contains="soup")
        .add(status(400, code="content_filter"), contains="spider")
    )
    # Red Planet: a 200 whose answer the vendor's filter stopped (finish_reason).
    responder = filtered_answer_for("Red Planet")
    with StubServer(faults=plan, responder=responder) as server:
        args = audit_args(server, EXAMPLE, tmp_path / "a", tmp_path / "c.db")
        summary = run_ok(*args, "--max-attempts", "5")
        requests = server.requests

    rows = rows_of(tmp_path / "a")
    assert [r["id"] for r in rows] == dataset_ids(EXAMPLE)  # the run went on past them
    failed = {r["id"]: r["error"] for r in rows if r["status"] == "failed"}
    assert set(failed) == {"sent-01", "qa-02", "qa-03"}
    assert failed["sent-01"]["kind"] == "context_length"
    assert failed["qa-02"]["kind"] == "content_filter"
    assert failed["qa-03"]["kind"] == "content_filter"
    for item_id in ("sent-01", "qa-02"):
        assert failed[item_id]["status"] == 400 and failed[item_id]["attempts"] == 1
        assert failed[item_id]["message"].startswith("HTTP 400:")
    assert "content filter" in failed["qa-03"]["message"]
    assert summary["results"]["failures_by_kind"] == {"context_length": 1, "content_filter": 2}

    # Each of those prompts reached the server once, although 5 attempts were allowed.
    for marker in ("soup", "spider", "Red Planet"):
        mine = [r for r in requests if marker in r.last_user]
        assert mine, marker
        assert set(Counter(body_key(r) for r in mine).values()) == {1}, marker
    assert summary["model"]["retries"] == 0
    assert summary["failed_requests"] == sum(f["failed_requests"] for f in failed.values())
    # The other items were answered as usual (the refusals taught the backend nothing wrong).
    assert summary["results"]["answer_paths"] == {"top_logprobs": 8 * 5, "n": 2 * 5}


# ---------------------------------------------------------------------------------------------
# 4. a rejected key stops the run before anything is written
# ---------------------------------------------------------------------------------------------


def test_unauthorized_from_the_start_exits_3_and_writes_no_outputs(tmp_path: Path) -> None:
    out, cache = tmp_path / "out", tmp_path / "c.db"
    # The server wants a key; none is set, so the backend sends its placeholder: 401 every time.
    with StubServer(api_key="sk-expected-key-0000") as server:
        args = audit_args(server, EXAMPLE, out, cache, "--concurrency", "4")
        res = sua(*args)
        requests = server.requests
    assert res.returncode == 3, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: HTTP 401"), res.stderr
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert not out.exists()  # no results.jsonl, no summary.json, not even the folder

    # It stopped at the first answers instead of sending every request (85) to be refused,
    # and never retried a 401.
    assert 1 <= len(requests) <= 8
    assert set(Counter(body_key(r) for r in requests).values()) == {1}
    assert {r.headers.get("authorization") for r in requests} == {"Bearer no-key-needed"}
    db = sqlite3.connect(cache)
    try:
        assert db.execute("select count(*) from completions").fetchone() == (0,)
        assert db.execute("select status from runs").fetchall() == [("failed",)]
    finally:
        db.close()


# ---------------------------------------------------------------------------------------------
# 4b. a Retry-After of a day fails its item at once and freezes nothing
# ---------------------------------------------------------------------------------------------


def test_a_day_long_retry_after_fails_its_item_and_the_run_goes_on(tmp_path: Path) -> None:
    # Prompts with "soup" (item sent-01 only) get 429 with Retry-After: 86400 every time. Past
    # the default --max-retry-wait (60 s) the request fails for good at once, and the shared
    # rate-limit pause is not applied, so the other items are answered as usual. (Before: every
    # request waited a day.) The subprocess limit is far below one capped 60 s wait.
    plan = FaultPlan().add(status(429, retry_after=86400), contains="soup")
    with StubServer(faults=plan) as server:
        args = audit_args(server, EXAMPLE, tmp_path / "a", tmp_path / "c.db")
        res = cli.sua(*args, "--max-attempts", "6", columns=160, timeout=45)
        limited = server.requests_for("soup")
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    rows = rows_of(tmp_path / "a")
    assert [r["id"] for r in rows] == dataset_ids(EXAMPLE)
    failed = {r["id"]: r["error"] for r in rows if r["status"] == "failed"}
    assert set(failed) == {"sent-01"}
    error = failed["sent-01"]
    assert error["kind"] == "rate_limit" and error["status"] == 429 and error["attempts"] == 1
    assert "86400" in error["message"] and "--max-retry-wait" in error["message"]
    assert summary["results"]["failures_by_kind"] == {"rate_limit": 1}
    assert summary["results"]["items_scored"] == 12
    # Each rate-limited request was sent once; nothing was retried.
    assert set(Counter(body_key(r) for r in limited).values()) == {1}
    assert summary["model"]["retries"] == 0
    assert summary["model"]["rate_limit_slowdowns"] == len(limited)


# ---------------------------------------------------------------------------------------------
# 5. the cheapest answer path the server supports, with exact request counts
# ---------------------------------------------------------------------------------------------


def no_logprobs(request: dict[str, Any]) -> dict[str, Any]:
    """A responder for a server without log-probabilities (it honours ``n``)."""
    labels = parse_labels(last_user_text(request)) or ["Paris"]
    n = request.get("n") or 1
    return {
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": labels[i % len(labels)]},
                "logprobs": None,
                "finish_reason": "stop",
            }
            for i in range(n)
        ]
    }


K, SAMPLES = 2, 3
VARIANTS = K + 1


@pytest.mark.parametrize(
    ("server_kw", "label_path", "qa_path", "requests"),
    [
        # label items: 1 call per variant; QA: greedy + 1 call with n per variant
        ({}, "top_logprobs", "n", 2 * VARIANTS + 2 * VARIANTS * 2),
        # QA: greedy + SAMPLES seeded calls per variant, plus the one n-call that showed the
        # server ignores n (--concurrency 1: only one is in flight when it is learned)
        ({"ignore_n": True}, "top_logprobs", "seeded", 2 * VARIANTS * (1 + 1 + SAMPLES) + 1),
        # label items: 1 n-call of samples per variant, plus the one logprobs call that showed
        # the server returns none
        ({"responder": no_logprobs}, "samples", "n", 1 + 2 * VARIANTS + 2 * VARIANTS * 2),
    ],
    ids=["logprobs-and-n", "n-ignored", "no-logprobs"],
)
def test_answer_paths_and_request_counts(
    tmp_path: Path, server_kw: dict[str, Any], label_path: str, qa_path: str, requests: int
) -> None:
    dataset = write_jsonl(tmp_path / "small.jsonl", SMALL)
    extra = ("--perturbations", str(K), "--samples", str(SAMPLES), "--concurrency", "1")
    with StubServer(**server_kw) as server:
        summary = run_ok(*audit_args(server, dataset, tmp_path / "o", tmp_path / "c.db", *extra))
        seen = server.requests
    assert len(seen) == requests
    rows = rows_of(tmp_path / "o")
    assert [r["id"] for r in rows] == ["c1", "q1", "c2", "q2"]
    assert all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows]
    for row in rows:
        want = qa_path if row["task"] == "qa" else label_path
        assert [v["path"] for v in row["variants"]] == [want] * VARIANTS, row["id"]
        if row["task"] == "qa":
            assert all(len(v["samples"]) == SAMPLES for v in row["variants"])
    assert summary["results"]["answer_paths"] == {label_path: 2 * VARIANTS, qa_path: 2 * VARIANTS}
    assert summary["model"]["retries"] == 0

    bodies = [r.json for r in seen]
    label_calls = [b for b in bodies if parse_labels(last_user_text(b))]
    if label_path == "top_logprobs":
        assert len(label_calls) == 2 * VARIANTS
        assert all(b["logprobs"] and b["max_tokens"] == 1 for b in label_calls)
    if qa_path == "seeded":
        seeded = [b for b in bodies if "seed" in b and not b.get("n")]
        assert len(seeded) == 2 * VARIANTS * SAMPLES
        assert len({(last_user_text(b), b["seed"]) for b in seeded}) == len(seeded)
    if qa_path == "n":
        assert sum(1 for b in bodies if b.get("n") == SAMPLES) == 2 * VARIANTS * (
            1 if label_path == "top_logprobs" else 2
        )


# ---------------------------------------------------------------------------------------------
# 6. one sample failing for good stops its siblings' retries
# ---------------------------------------------------------------------------------------------


def seeded(request: dict[str, Any]) -> bool:
    """A sampled answer sent on its own with a seed (not the greedy one, not an n-call)."""
    return "seed" in request and (request.get("temperature") or 0) > 0 and not request.get("n")


def test_a_failed_seeded_sample_cancels_its_siblings(tmp_path: Path) -> None:
    """When one of an item's seeded samples fails for good, the item has failed: its sibling
    samples must not go on retrying (paid requests whose answers nobody uses) while the rest
    of the run goes on."""
    dataset = write_jsonl(tmp_path / "two.jsonl", [SMALL[3], SMALL[1]])
    # The faults hit the clean question only (its one typo variant differs from it somewhere).
    clean = SMALL[3]["input"]
    plan = (
        FaultPlan()
        .add(status(400, code="content_filter"), contains=clean, when=seeded, times=1)
        # Its siblings fail too, retryably: each would be sent --max-attempts times, 0.5 s apart,
        .add(status(503, retry_after=0.5), contains=clean, when=seeded)
        # while the other item's answers keep the run going for longer than that.
        .add(latency(0.8), contains=SMALL[1]["input"])
    )
    extra = ("--perturbations", "typo:1", "--samples", "4", "--max-attempts", "3")
    with StubServer(faults=plan, ignore_n=True) as server:
        args = audit_args(server, dataset, tmp_path / "o", tmp_path / "c.db", *extra, timeout=5)
        summary = run_ok(*args)
        samples = [r for r in server.requests_for(clean) if seeded(r.json)]
    failed, ok = rows_of(tmp_path / "o")
    assert failed["status"] == "failed" and failed["error"]["kind"] == "content_filter"
    assert ok["status"] == "ok"
    # Each sample was sent at most once (some not at all): none was retried after the item
    # had failed, although the run went on for seconds.
    assert 1 <= len(samples) <= 4
    assert set(Counter(body_key(r) for r in samples).values()) == {1}
    assert summary["failed_requests"] == 1  # the one request whose samples these were
