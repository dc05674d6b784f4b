"""The batch queue against an in-memory provider: gathering, answers, per-line failures,
expiry, and resuming from the ledger at every step a kill -9 could stop it.

The loopback HTTP stub (tests/support) exercises the real SDK path; these tests drive the
queue's logic directly, including states only a kill between two statements can leave.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from sua_audit.backends.batch import BatchQueue, line_key
from sua_audit.errors import RequestFailed
from sua_audit.store import Store
from sua_audit.store.batches import BatchLedger

URL = "http://provider.test/v1"


def answer(body: dict[str, Any]) -> dict[str, Any]:
    text = "echo " + body["messages"][-1]["content"]
    return {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }


class Provider:
    """Files and batches held in memory. A batch ends on its ``polls_to_end``-th read; lines
    whose content is in ``fail`` come back as 500s, those in ``unfinished`` are left out when
    the batch is one of ``cut_short`` (by number, from 0) and ends ``end_status`` (``expired``
    / ``cancelled``) instead of completed."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.creates = 0
        self.uploads = 0
        self.reads = 0
        self.polls_to_end = 2
        self.fail: set[str] = set()
        self.unfinished: set[str] = set()
        self.end_status = "expired"
        self.cut_short: set[int] = set()
        self.fail_create = False

    # BatchClient
    async def upload(self, filename: str, data: bytes) -> str:
        self.uploads += 1
        file_id = f"file-{len(self.files)}"
        self.files[file_id] = data
        return file_id

    async def create(self, input_file_id: str, metadata: dict[str, str]) -> dict[str, Any]:
        self.creates += 1
        batch_id = f"batch_{len(self.batches)}"
        self.batches[batch_id] = {
            "id": batch_id,
            "input_file_id": input_file_id,
            "status": "validating",
            "metadata": metadata,
            "created_at": time.time(),
            "reads": 0,
            "output_file_id": None,
            "error_file_id": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
        }
        if self.fail_create:
            raise KeyboardInterrupt  # the create reached the provider; its answer did not
        return dict(self.batches[batch_id])

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        self.reads += 1
        batch = self.batches[batch_id]
        batch["reads"] += 1
        if batch["status"] not in ("completed", "expired", "cancelled", "failed"):
            if batch["reads"] >= self.polls_to_end:
                self._finish(batch)
            else:
                batch["status"] = "in_progress"
        return dict(batch)

    async def find(self, input_file_id: str, since: float) -> dict[str, Any] | None:
        for batch in self.batches.values():
            if batch["input_file_id"] == input_file_id:
                return dict(batch)
        return None

    async def content(self, file_id: str) -> bytes:
        return self.files[file_id]

    def _finish(self, batch: dict[str, Any]) -> None:
        short = int(batch["id"].removeprefix("batch_")) in self.cut_short
        out, err = [], []
        for raw in self.files[batch["input_file_id"]].decode().splitlines():
            line = json.loads(raw)
            content = line["body"]["messages"][-1]["content"]
            if content in self.unfinished and short:
                err.append(
                    {
                        "custom_id": line["custom_id"],
                        "response": None,
                        "error": {"code": "batch_expired", "message": "expired"},
                    }
                )
            elif content in self.fail:
                err.append(
                    {
                        "custom_id": line["custom_id"],
                        "response": {
                            "status_code": 500,
                            "body": {"error": {"message": "boom", "type": "server_error"}},
                        },
                        "error": None,
                    }
                )
            else:
                out.append(
                    {
                        "custom_id": line["custom_id"],
                        "response": {"status_code": 200, "body": answer(line["body"])},
                        "error": None,
                    }
                )
        for records, field in ((out, "output_file_id"), (err, "error_file_id")):
            if records:
                file_id = f"file-{len(self.files)}"
                self.files[file_id] = "".join(json.dumps(r) + "\n" for r in records).encode()
                batch[field] = file_id
        batch["status"] = self.end_status if short else "completed"
        batch["request_counts"] = {
            "total": len(out) + len(err),
            "completed": len(out),
            "failed": len(err),
        }


def body(text: str) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], "max_tokens": 4}


def queue(provider: Provider, store: Store, **kw: Any) -> BatchQueue:
    options: dict[str, Any] = {"poll": 0.001, "gather": 0.01, **kw}
    return BatchQueue(provider, BatchLedger(store), base_url=URL, model="m", **options)


@pytest.fixture
def store(tmp_path) -> Store:
    return Store.open(tmp_path / "cache.db")


async def send_all(q: BatchQueue, texts: list[str]) -> list[Any]:
    return await asyncio.gather(*(q.send(body(t)) for t in texts), return_exceptions=True)


def contents(answers: list[Any]) -> list[str]:
    return [a["choices"][0]["message"]["content"] for a in answers]


def test_bodies_arriving_together_go_in_one_batch_and_get_their_own_answers(store) -> None:
    provider = Provider()
    q = queue(provider, store)
    answers = asyncio.run(send_all(q, ["a", "b", "c", "a"]))
    assert contents(answers) == ["echo a", "echo b", "echo c", "echo a"]
    assert provider.creates == 1 and provider.uploads == 1
    lines = provider.files["file-0"].decode().splitlines()
    assert len(lines) == 3  # the repeated body went once
    assert {json.loads(x)["custom_id"] for x in lines} == {line_key(URL, body(t)) for t in "abc"}
    assert q.describe()["lines_submitted"] == 3


def test_the_line_limit_splits_a_chunk_into_several_batches(store) -> None:
    provider = Provider()
    q = queue(provider, store, max_lines=2)
    answers = asyncio.run(send_all(q, ["a", "b", "c", "d", "e"]))
    assert contents(answers) == [f"echo {t}" for t in "abcde"]
    assert provider.creates == 3


def test_a_failed_line_fails_only_its_request_with_its_kind(store) -> None:
    provider = Provider()
    provider.fail = {"b"}
    answers = asyncio.run(send_all(queue(provider, store), ["a", "b"]))
    assert answers[0]["choices"][0]["message"]["content"] == "echo a"
    assert isinstance(answers[1], RequestFailed) and answers[1].kind == "server"
    assert "boom" in str(answers[1])
    # Asked again (the backend's retry), it goes in a new batch; the answered one does not.
    provider.fail = set()
    again = asyncio.run(send_all(queue(provider, store), ["a", "b"]))
    assert contents(again) == ["echo a", "echo b"]
    assert provider.creates == 2
    assert len(provider.files["file-2"].decode().splitlines()) == 1


def test_an_expired_batch_is_sent_again_for_its_unanswered_lines_only(store) -> None:
    provider = Provider()
    provider.unfinished = {"b", "c"}
    provider.cut_short = {0}
    assert contents(asyncio.run(send_all(queue(provider, store), list("abc")))) == [
        "echo a",
        "echo b",
        "echo c",
    ]
    assert provider.creates == 2
    resent = [json.loads(x)["body"]["messages"][0]["content"] for x in _input(provider, 1)]
    assert sorted(resent) == ["b", "c"]


def test_a_line_that_never_finishes_fails_after_the_last_round(store) -> None:
    provider = Provider()
    provider.unfinished = {"a"}
    provider.cut_short = {0, 1, 2, 3}
    provider.end_status = "cancelled"
    (result,) = asyncio.run(send_all(queue(provider, store), ["a"]))
    assert isinstance(result, RequestFailed) and result.kind == "timeout"
    assert provider.creates == 4  # the first batch and three more rounds


def test_answered_lines_are_served_from_the_ledger_without_any_call(store) -> None:
    provider = Provider()
    asyncio.run(send_all(queue(provider, store), ["a", "b"]))
    calls = (provider.uploads, provider.creates, provider.reads)
    q = queue(provider, store)
    assert contents(asyncio.run(send_all(q, ["b", "a"]))) == ["echo b", "echo a"]
    assert (provider.uploads, provider.creates, provider.reads) == calls
    assert q.describe()["lines_from_ledger"] == 2


def test_a_rerun_resumes_polling_a_submitted_batch_instead_of_paying_again(store) -> None:
    provider = Provider()
    provider.polls_to_end = 10**9  # never ends while the first run watches

    async def first_run() -> None:
        q = queue(provider, store)
        task = asyncio.ensure_future(send_all(q, ["a", "b"]))
        while not provider.batches or provider.reads < 2:
            await asyncio.sleep(0.01)
        task.cancel()  # Ctrl-C, or the process killed while polling
        await q.aclose()

    asyncio.run(first_run())
    assert provider.creates == 1
    provider.polls_to_end = 1
    q = queue(provider, store)
    assert contents(asyncio.run(send_all(q, ["a", "b"]))) == ["echo a", "echo b"]
    assert provider.creates == 1 and provider.uploads == 1
    assert q.describe()["jobs_resumed"] == 1


def test_a_kill_between_create_and_its_answer_finds_the_batch_instead_of_creating_again(
    store,
) -> None:
    provider = Provider()
    provider.fail_create = True
    with pytest.raises(KeyboardInterrupt):
        asyncio.run(send_all(queue(provider, store), ["a"]))
    (job,) = BatchLedger(store).jobs()
    assert job["input_file_id"] == "file-0" and job["batch_id"] is None
    provider.fail_create = False
    provider.polls_to_end = 1
    assert contents(asyncio.run(send_all(queue(provider, store), ["a"]))) == ["echo a"]
    assert provider.creates == 1 and provider.uploads == 1
    assert BatchLedger(store).jobs()[0]["batch_id"] == "batch_0"


def test_a_job_killed_before_its_upload_answered_is_abandoned_and_sent_anew(store) -> None:
    ledger = BatchLedger(store)
    ledger.new_job("sua-dead", URL, "m", [line_key(URL, body("a"))], "2026-01-01T00:00:00+00:00")
    provider = Provider()
    assert contents(asyncio.run(send_all(queue(provider, store), ["a"]))) == ["echo a"]
    assert provider.uploads == 1 and provider.creates == 1


def test_a_kill_after_the_batch_ended_reads_its_files_instead_of_resubmitting(store) -> None:
    provider = Provider()
    provider.polls_to_end = 1

    async def killed_while_reading() -> None:
        q = queue(provider, store)

        async def no_files(file_id: str) -> bytes:
            raise KeyboardInterrupt

        provider_content = provider.content
        provider.content = no_files  # type: ignore[method-assign]
        try:
            await send_all(q, ["a"])
        finally:
            provider.content = provider_content  # type: ignore[method-assign]

    with pytest.raises(KeyboardInterrupt):
        asyncio.run(killed_while_reading())
    assert contents(asyncio.run(send_all(queue(provider, store), ["a"]))) == ["echo a"]
    assert provider.creates == 1 and provider.uploads == 1


def test_a_batch_that_failed_validation_fails_its_lines_with_the_reason(store) -> None:
    provider = Provider()

    async def failing_retrieve(batch_id: str) -> dict[str, Any]:
        batch = provider.batches[batch_id]
        batch["status"] = "failed"
        batch["errors"] = {"data": [{"code": "invalid_model", "line": 1, "message": "no such"}]}
        return dict(batch)

    provider.retrieve = failing_retrieve  # type: ignore[method-assign]
    (result,) = asyncio.run(send_all(queue(provider, store), ["a"]))
    assert isinstance(result, RequestFailed) and result.kind == "bad_request"
    assert "invalid_model line 1: no such" in str(result)


def _input(provider: Provider, batch: int) -> list[str]:
    return provider.files[provider.batches[f"batch_{batch}"]["input_file_id"]].decode().splitlines()


def test_a_job_the_provider_no_longer_has_is_sent_again_instead_of_failing(store) -> None:
    provider = Provider()
    provider.polls_to_end = 10**9

    async def first_run() -> None:
        q = queue(provider, store)
        task = asyncio.ensure_future(send_all(q, ["a"]))
        while provider.reads < 1:
            await asyncio.sleep(0.01)
        task.cancel()
        await q.aclose()

    asyncio.run(first_run())
    provider.batches.clear()  # the provider dropped the batch (and so its results)
    provider.polls_to_end = 1

    async def gone(batch_id: str) -> dict[str, Any]:
        if batch_id not in provider.batches:
            raise RequestFailed("not_found", "HTTP 404: No batch found")
        return await Provider.retrieve(provider, batch_id)

    provider.retrieve = gone  # type: ignore[method-assign]
    q = queue(provider, store)
    assert contents(asyncio.run(send_all(q, ["a"]))) == ["echo a"]
    assert provider.uploads == 2
    assert [j["status"] for j in BatchLedger(store).jobs()] == ["abandoned", "completed"]
