"""Tests of the stub server's Files and Batch APIs, driven through the real ``openai`` SDK.

Most tests give the server a hand-moved clock (``batch_clock``), so each lifecycle step is checked
at an exact moment without sleeping; two tests use real time, one of them in a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.support.stub_batches import BATCH_EXPIRED_MESSAGE, BATCHES_PATH
from tests.support.stub_openai import CHAT_PATH, FaultPlan, StubServer, build_completion, status

REPO = Path(__file__).resolve().parents[2]
T0 = 1_700_000_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now

    def at(self, seconds: float) -> None:
        self.now = T0 + seconds


def body(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "stub-model", "messages": [{"role": "user", "content": content}], **extra}


def line(custom_id: str, content: str, **extra: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": CHAT_PATH,
        "body": body(content, **extra),
    }


def jsonl(items: list[Any]) -> bytes:
    return "".join(
        (item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items
    ).encode()


def questions(count: int, prefix: str = "q") -> list[dict[str, Any]]:
    return [
        line(f"{prefix}{i}", f"Question {i}: is it red, green or blue?", temperature=0)
        for i in range(count)
    ]


def without_volatile(completion: dict[str, Any]) -> dict[str, Any]:
    """A completion without the fields that depend on when and as what it was made."""
    return {k: v for k, v in completion.items() if k not in ("id", "created")}


def read_jsonl(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(raw) for raw in client.files.content(file_id).content.splitlines()]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(clock: Clock) -> Iterator[StubServer]:
    with StubServer(batch_seconds=10, batch_clock=clock) as s:
        yield s


def sdk(server: StubServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0, timeout=10)


@pytest.fixture
def client(server: StubServer) -> Iterator[openai.OpenAI]:
    with sdk(server) as c:
        yield c


def submit(client: openai.OpenAI, items: list[Any], **kw: Any) -> Any:
    uploaded = client.files.create(file=("in.jsonl", jsonl(items)), purpose="batch")
    return client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        **kw,
    )


# -- files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1}\n{"b": 2}\n',
        b'{"a": 1}\r\n{"b": "\xc3\xa9t\xc3\xa9"}\r\n',
        b'{"a": 1}',
        b"\n\n--not-a-boundary\r\n\r\n",
    ],
    ids=["lf", "crlf-utf8", "no-final-newline", "blank-lines"],
)
def test_upload_roundtrip_is_byte_exact(
    client: openai.OpenAI, server: StubServer, data: bytes
) -> None:
    uploaded = client.files.create(file=("in.jsonl", data), purpose="batch")
    assert uploaded.id.startswith("file-")
    assert (uploaded.object, uploaded.purpose, uploaded.status) == ("file", "batch", "processed")
    assert (uploaded.bytes, uploaded.filename, uploaded.created_at) == (len(data), "in.jsonl", T0)
    assert client.files.retrieve(uploaded.id) == uploaded
    response = client.files.with_raw_response.content(uploaded.id)
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.content == data
    assert server.file_content(uploaded.id) == data
    assert [f.id for f in client.files.list()] == [uploaded.id]
    assert server.files_uploaded == 1


def test_file_errors_and_delete(client: openai.OpenAI, server: StubServer) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=("in.jsonl", b"{}\n"), purpose="fine-tune")
    assert refused.value.param == "purpose"
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve("file-missing")
    uploaded = client.files.create(file=("in.jsonl", b"{}\n"), purpose="batch")
    deleted = client.files.delete(uploaded.id)
    assert (deleted.id, deleted.deleted) == (uploaded.id, True)
    with pytest.raises(openai.NotFoundError):
        client.files.content(uploaded.id)
    assert server.files_uploaded == 1


# -- the happy lifecycle ----------------------------------------------------------------------------


def test_happy_lifecycle(client: openai.OpenAI, server: StubServer, clock: Clock) -> None:
    items = questions(4) + [line("free", "Tell me something.", seed=3)]
    batch = submit(client, items, metadata={"run": "r1"})
    assert batch.id.startswith("batch_") and batch.object == "batch"
    assert (batch.status, batch.endpoint, batch.completion_window) == (
        "validating",
        CHAT_PATH,
        "24h",
    )
    assert batch.metadata == {"run": "r1"}
    assert (batch.created_at, batch.expires_at) == (T0, T0 + 24 * 3600)
    assert batch.output_file_id is batch.error_file_id is batch.in_progress_at is None
    assert batch.request_counts.total == 0

    # 10 s: validating 1 s, in_progress 8 s (a line every 1.6 s), finalizing 1 s.
    seen = []
    for moment in (0.5, 1.0, 2.0, 4.0, 8.0, 9.5):
        clock.at(moment)
        now = client.batches.retrieve(batch.id)
        seen.append((now.status, now.request_counts.completed, now.request_counts.total))
        assert now.output_file_id is None
    assert seen == [
        ("validating", 0, 0),
        ("in_progress", 0, 5),
        ("in_progress", 0, 5),
        ("in_progress", 1, 5),
        ("in_progress", 4, 5),
        ("finalizing", 5, 5),
    ]
    assert server.batch_lines_answered == 5

    clock.at(10.0)
    done = client.batches.retrieve(batch.id)
    assert done.status == "completed"
    assert (done.in_progress_at, done.finalizing_at, done.completed_at) == (T0 + 1, T0 + 9, T0 + 10)
    assert done.failed_at is done.expired_at is done.cancelled_at is done.errors is None
    assert done.error_file_id is None
    assert done.request_counts.model_dump() == {"total": 5, "completed": 5, "failed": 0}
    assert done.model == "stub-model"

    output = read_jsonl(client, done.output_file_id)
    assert [entry["custom_id"] for entry in output] == [item["custom_id"] for item in items]
    assert len({entry["id"] for entry in output}) == 5
    for entry, item in zip(output, items, strict=True):
        assert entry["id"].startswith("batch_req_")
        assert entry["error"] is None
        assert entry["response"]["status_code"] == 200
        assert entry["response"]["request_id"]
        assert without_volatile(entry["response"]["body"]) == without_volatile(
            build_completion(item["body"])
        )
    prompt = sum(entry["response"]["body"]["usage"]["prompt_tokens"] for entry in output)
    assert done.usage is not None and done.usage.input_tokens == prompt
    output_file = client.files.retrieve(done.output_file_id)
    assert output_file.purpose == "batch_output"

    assert server.batches_created == 1
    assert server.batch_custom_ids == {batch.id: [item["custom_id"] for item in items]}
    assert [b["id"] for b in server.batches] == [batch.id]
    assert server.batch(batch.id)["status"] == "completed"
    assert server.chat_count == 0  # batch lines are no chat-completions requests
    assert server.errors == []


def test_outputs_are_deterministic_and_honour_the_responder(clock: Clock) -> None:
    items = questions(3) + [line("n", "Say hi.", n=3)]
    contents = []
    for _ in range(2):
        with (
            StubServer(batch_seconds=0, batch_clock=clock, ignore_n=True) as server,
            sdk(server) as client,
        ):
            batch = submit(client, items)
            assert batch.status == "completed"  # no time to wait for at all
            contents.append(read_jsonl(client, batch.output_file_id))
    first, second = ([without_volatile(e["response"]["body"]) for e in c] for c in contents)
    assert first == second
    assert len(first[-1]["choices"]) == 1  # ignore_n

    scripted = StubServer(batch_seconds=0, batch_clock=clock, responder=lambda r: "scripted")
    with scripted as server, sdk(server) as client:
        batch = submit(client, items[:2])
        output = read_jsonl(client, batch.output_file_id)
    assert [e["response"]["body"]["choices"][0]["message"]["content"] for e in output] == [
        "scripted",
        "scripted",
    ]


def test_no_progress_finishes_every_line_at_once(clock: Clock) -> None:
    with (
        StubServer(batch_seconds=10, batch_progress=False, batch_clock=clock) as server,
        sdk(server) as client,
    ):
        batch = submit(client, questions(4))
        clock.at(8.9)
        assert client.batches.retrieve(batch.id).request_counts.completed == 0
        clock.at(9.0)
        assert client.batches.retrieve(batch.id).request_counts.completed == 4


# -- per-line failures ------------------------------------------------------------------------------


def test_per_line_errors_go_to_the_error_file(clock: Clock) -> None:
    plan = (
        FaultPlan()
        .add(status(400, code="context_length_exceeded"), contains="too long")
        .add(status(500), on=4)
    )
    items = [
        line("ok1", "Fine question?"),
        line("long", "This one is too long."),
        {"custom_id": "bad", "method": "POST", "url": CHAT_PATH, "body": {"model": "stub-model"}},
        line("fourth", "Fourth line fails by number."),
        line("ok2", "Another fine question?"),
    ]
    with (
        StubServer(batch_seconds=10, batch_clock=clock, batch_line_faults=plan) as server,
        sdk(server) as client,
    ):
        batch = submit(client, items)
        clock.at(4.3)  # a line every 1.6 s from 1 s: two finished, one answered, one failed
        running = client.batches.retrieve(batch.id)
        assert running.request_counts.model_dump() == {"total": 5, "completed": 1, "failed": 1}
        clock.at(10)
        done = client.batches.retrieve(batch.id)
        assert done.status == "completed"
        assert done.request_counts.model_dump() == {"total": 5, "completed": 2, "failed": 3}
        output = read_jsonl(client, done.output_file_id)
        errors = read_jsonl(client, done.error_file_id)
        assert server.batch_lines_answered == 5
    assert [e["custom_id"] for e in output] == ["ok1", "ok2"]
    assert [e["custom_id"] for e in errors] == ["long", "bad", "fourth"]
    assert [e["response"]["status_code"] for e in errors] == [400, 400, 500]
    assert all(e["error"] is None and e["id"].startswith("batch_req_") for e in errors)
    assert all(e["response"]["request_id"] for e in errors)
    details = [e["response"]["body"]["error"] for e in errors]
    assert details[0]["code"] == "context_length_exceeded"
    assert details[0]["type"] == "invalid_request_error"
    assert details[1]["param"] == "messages"  # what the chat endpoint says of that body
    assert details[2]["type"] == "server_error"


def test_line_fault_callable_and_an_all_failed_batch(clock: Clock) -> None:
    calls: list[str] = []

    def fail_all(custom_id: str, request: dict[str, Any]) -> int:
        calls.append(custom_id)
        assert request["model"] == "stub-model"
        return 429

    with (
        StubServer(batch_seconds=0, batch_clock=clock, batch_line_faults=fail_all) as server,
        sdk(server) as client,
    ):
        done = submit(client, questions(2))
    assert calls == ["q0", "q1"]
    assert done.status == "completed"
    assert done.output_file_id is None
    assert done.error_file_id is not None
    assert done.request_counts.model_dump() == {"total": 2, "completed": 0, "failed": 2}
    assert server.file_content(done.error_file_id).count(b'"status_code": 429') == 2


def test_a_raising_responder_fails_lines_with_500(clock: Clock) -> None:
    def boom(request: dict[str, Any]) -> str:
        raise RuntimeError("scripted failure")

    with (
        StubServer(batch_seconds=0, batch_clock=clock, responder=boom) as server,
        sdk(server) as client,
    ):
        done = submit(client, questions(1))
        errors = read_jsonl(client, done.error_file_id)
        assert errors[0]["response"]["status_code"] == 500
        assert "scripted failure" in server.errors[0]


# -- invalid input -----------------------------------------------------------------------------------


def test_invalid_input_file_fails_the_batch(
    client: openai.OpenAI, server: StubServer, clock: Clock
) -> None:
    other_model = line("c", "Hi?")
    other_model["body"]["model"] = "other-model"
    items = [
        line("a", "Hi?"),
        "{not json",
        line("a", "Again?"),
        other_model,
        {**line("d", "Hi?"), "url": "/v1/embeddings"},
        {**line("e", "Hi?"), "method": "GET"},
        {"method": "POST", "url": CHAT_PATH, "body": body("no id")},
    ]
    batch = submit(client, items)
    assert batch.status == "validating"
    assert batch.errors is None
    clock.at(1.0)
    failed = client.batches.retrieve(batch.id)
    assert failed.status == "failed"
    assert failed.failed_at == T0 + 1
    assert failed.in_progress_at is None
    assert failed.output_file_id is failed.error_file_id is None
    assert failed.request_counts.model_dump() == {"total": 0, "completed": 0, "failed": 0}
    assert failed.errors is not None and failed.errors.object == "list"
    found = [(e.code, e.line) for e in failed.errors.data or []]
    assert found == [
        ("invalid_json_line", 2),
        ("duplicate_custom_id", 3),
        ("model_mismatch", 4),
        ("url_mismatch", 5),
        ("invalid_method", 6),
        ("missing_required_parameter", 7),
    ]
    assert all(e.message for e in failed.errors.data or [])
    assert server.batches_created == 1
    assert server.batch_lines_answered == 0
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)


def test_empty_and_unknown_model_files(clock: Clock) -> None:
    with (
        StubServer(batch_seconds=0, batch_clock=clock, strict_models=True) as server,
        sdk(server) as client,
    ):
        empty = submit(client, ["", "  "])
        unknown = line("x", "Hi?")
        unknown["body"]["model"] = "gpt-nothing"
        wrong = submit(client, [unknown])
    assert empty.status == wrong.status == "failed"
    assert [(e.code, e.line) for e in empty.errors.data] == [("empty_file", None)]
    assert [(e.code, e.param) for e in wrong.errors.data] == [("model_not_found", "body.model")]


def test_create_refusals(client: openai.OpenAI, server: StubServer) -> None:
    with pytest.raises(openai.NotFoundError):
        client.batches.create(
            input_file_id="file-missing", endpoint=CHAT_PATH, completion_window="24h"
        )
    uploaded = client.files.create(file=("in.jsonl", jsonl(questions(1))), purpose="batch")
    with pytest.raises(openai.BadRequestError) as refused:
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h"
        )
    assert refused.value.param == "endpoint"
    with pytest.raises(openai.BadRequestError):
        client.batches.create(
            input_file_id=uploaded.id,
            endpoint=CHAT_PATH,
            completion_window="1h",  # type: ignore[arg-type]
        )
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_missing")
    assert server.batches_created == 0


# -- expiry and cancelling ---------------------------------------------------------------------------


def test_the_nth_batch_expires_with_partial_output(
    client: openai.OpenAI, server: StubServer, clock: Clock
) -> None:
    server.batch_expire = 2
    first = submit(client, questions(4, "a"))
    second = submit(client, questions(4, "b"))
    clock.at(9.5)
    running = client.batches.retrieve(second.id)
    assert (running.status, running.request_counts.completed) == ("in_progress", 2)
    clock.at(10)
    assert client.batches.retrieve(first.id).status == "completed"
    expired = client.batches.retrieve(second.id)
    assert expired.status == "expired"
    assert expired.expired_at == T0 + 10
    assert expired.completed_at is None
    assert expired.request_counts.model_dump() == {"total": 4, "completed": 2, "failed": 0}
    output = read_jsonl(client, expired.output_file_id)
    errors = read_jsonl(client, expired.error_file_id)
    assert [e["custom_id"] for e in output] == ["b0", "b1"]
    assert [e["custom_id"] for e in errors] == ["b2", "b3"]
    for entry in errors:
        assert entry["response"] is None
        assert entry["error"] == {"code": "batch_expired", "message": BATCH_EXPIRED_MESSAGE}
    assert server.batch_lines_answered == 6


def test_expiry_by_predicate_and_fraction(clock: Clock) -> None:
    def slow(inputs: list[dict[str, Any]]) -> bool:
        return any(item["custom_id"].startswith("slow") for item in inputs)

    with (
        StubServer(
            batch_seconds=0, batch_clock=clock, batch_expire=slow, batch_expire_fraction=0.25
        ) as server,
        sdk(server) as client,
    ):
        fast = submit(client, questions(4, "fast"))
        late = submit(client, questions(4, "slow"))
        assert fast.status == "completed"
        assert late.status == "expired"
        assert len(read_jsonl(client, late.output_file_id)) == 1
        assert len(read_jsonl(client, late.error_file_id)) == 3


def test_cancel_mid_way_keeps_the_finished_lines(
    client: openai.OpenAI, server: StubServer, clock: Clock
) -> None:
    batch = submit(client, questions(4))
    clock.at(5.0)  # two lines finished
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling"
    assert cancelling.cancelling_at == T0 + 5
    assert cancelling.request_counts.completed == 2
    with pytest.raises(openai.ConflictError):
        client.batches.cancel(batch.id)
    clock.at(5.5)
    still = client.batches.retrieve(batch.id)
    assert (still.status, still.request_counts.completed) == ("cancelling", 2)
    assert still.output_file_id is None
    clock.at(6.0)  # cancelling lasts the finalizing share: 1 s
    cancelled = client.batches.retrieve(batch.id)
    assert cancelled.status == "cancelled"
    assert cancelled.cancelled_at == T0 + 6
    assert cancelled.completed_at is None
    assert cancelled.error_file_id is None
    assert [e["custom_id"] for e in read_jsonl(client, cancelled.output_file_id)] == ["q0", "q1"]
    clock.at(100)
    assert client.batches.retrieve(batch.id).request_counts.completed == 2
    assert server.batch_lines_answered == 2


def test_test_side_controls(client: openai.OpenAI, server: StubServer, clock: Clock) -> None:
    done = submit(client, questions(3, "a"))
    expiring = submit(client, questions(4, "b"))
    waiting = submit(client, questions(2, "c"))
    clock.at(1.0)
    forced = server.complete_batch(done.id)
    assert forced["status"] == "completed"
    assert forced["completed_at"] == T0 + 1
    assert client.batches.retrieve(done.id).request_counts.completed == 3
    clock.at(5.0)
    assert server.expire_batch(expiring.id)["status"] == "expired"
    assert [
        e["custom_id"]
        for e in read_jsonl(client, client.batches.retrieve(expiring.id).error_file_id)
    ] == ["b2", "b3"]
    assert server.cancel_batch(waiting.id)["status"] == "cancelling"
    clock.at(100)
    assert client.batches.retrieve(waiting.id).status == "cancelled"
    assert server.complete_batch(done.id)["status"] == "completed"  # no-op once ended
    assert [b["status"] for b in server.batches] == ["completed", "expired", "cancelled"]


# -- listing and HTTP faults ---------------------------------------------------------------------------


def test_list_is_newest_first_with_cursor_pages(client: openai.OpenAI, server: StubServer) -> None:
    ids = [submit(client, questions(1, f"b{i}-")).id for i in range(5)]
    newest_first = ids[::-1]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == newest_first[:2]
    assert page.has_more is True
    raw = client.batches.with_raw_response.list(limit=2, after=newest_first[1]).http_response.json()
    assert raw["object"] == "list"
    assert [b["id"] for b in raw["data"]] == newest_first[2:4]
    assert (raw["first_id"], raw["last_id"], raw["has_more"]) == (*newest_first[2:4], True)
    assert [b.id for b in client.batches.list(limit=2)] == newest_first  # auto-paging
    last = client.batches.list(limit=10, after=newest_first[3])
    assert [b.id for b in last.data] == newest_first[4:]
    assert last.has_more is False
    with pytest.raises(openai.BadRequestError):
        client.batches.list(limit=0)


def test_server_faults_reach_the_batch_endpoints(clock: Clock) -> None:
    plan = FaultPlan().add(status(503), path=BATCHES_PATH, times=1)
    with (
        StubServer(faults=plan, batch_seconds=0, batch_clock=clock) as server,
        sdk(server) as client,
    ):
        uploaded = client.files.create(file=("in.jsonl", jsonl(questions(1))), purpose="batch")
        with pytest.raises(openai.InternalServerError):
            client.batches.create(
                input_file_id=uploaded.id, endpoint=CHAT_PATH, completion_window="24h"
            )
        assert server.batches_created == 0
        assert submit(client, questions(1)).status == "completed"
        assert server.fault_counts["status(503)"] == 1
        assert server.count == 4 and server.chat_count == 0
        server.reset()
        assert (server.files_uploaded, server.batches_created, server.batch_lines_answered) == (
            0,
            0,
            0,
        )


# -- real time -----------------------------------------------------------------------------------------


def wait_until_ended(client: openai.OpenAI, batch_id: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        assert time.monotonic() < deadline, f"batch still {batch.status}"
        time.sleep(0.05)


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_real_time_lifecycle_with_the_async_client(transport: str) -> None:
    """The async client, over both transports the SDK offers (aiohttp sends multipart itself)."""
    if transport == "aiohttp":
        pytest.importorskip("aiohttp")

    async def run(server: StubServer) -> Any:
        http_client = openai.DefaultAioHttpClient() if transport == "aiohttp" else None
        async with openai.AsyncOpenAI(
            base_url=server.base_url, api_key="x", max_retries=0, http_client=http_client
        ) as client:
            uploaded = await client.files.create(
                file=("in.jsonl", jsonl(questions(3))), purpose="batch"
            )
            batch = await client.batches.create(
                input_file_id=uploaded.id, endpoint=CHAT_PATH, completion_window="24h"
            )
            statuses = [batch.status]
            while batch.status != "completed":
                await asyncio.sleep(0.02)
                batch = await client.batches.retrieve(batch.id)
                statuses.append(batch.status)
            content = await client.files.content(batch.output_file_id or "")
            return statuses, content.content

    with StubServer(batch_seconds=0.3) as server:
        statuses, content = asyncio.run(run(server))
        assert server.file_content(server.batches[0]["input_file_id"]) == jsonl(questions(3))
    assert statuses[0] == "validating"
    assert [json.loads(raw)["custom_id"] for raw in content.splitlines()] == ["q0", "q1", "q2"]


def test_main_runs_batches_in_its_own_process() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.stub_openai", "--batch-seconds", "0.5"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A test run started as a shell's background job ignores SIGINT, and children inherit
        # that: restore it, or the interrupt below never reaches the stub.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        with openai.OpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=10) as client:
            batch = submit(client, questions(3))
            assert batch.status == "validating"
            done = wait_until_ended(client, batch.id)
            assert done.status == "completed"
            output = read_jsonl(client, done.output_file_id)
        assert [e["custom_id"] for e in output] == ["q0", "q1", "q2"]
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "1 batches, 3 batch lines" in out
