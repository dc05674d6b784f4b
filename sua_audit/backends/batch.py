"""Provider batch APIs (``--batch``): the chat-completions calls of a run, sent as batch jobs.

A hosted backend in batch mode hands each request body to a :class:`BatchQueue` instead of
posting it. The queue gathers the bodies that arrive together (the engine issues a whole chunk
of the dataset at once), writes them as JSONL input files within the provider's limits
(50,000 lines, 200 MB), uploads them, creates one batch per file and polls each with backoff
until it ends. Each body then gets its answer (the line's response body, exactly what the
interactive call would have returned), or a :class:`~sua_audit.errors.RequestFailed` for a
failed line, which the backend retries in a later batch as it retries any failed call.

Everything needed to resume lives in the cache database (:mod:`sua_audit.store.batches`),
written before each step is taken:

1. the job and its lines are recorded (``preparing``) before the upload; a job killed here sent
   nothing and is abandoned, its lines submitted again;
2. the input file's id is recorded once the upload answers (``uploaded``); the batch is created
   with the job's id in its metadata;
3. the batch id is recorded once the create answers; from here the job is polled.

A rerun of the same command after a crash, Ctrl-C or a closed laptop builds the same request
bodies, so the same line keys: lines already answered are served from the ledger, pending ones
wait on their job (resuming the poll), and a job killed between steps 2 and 3 is first looked up
on the server by its input file, so it is never paid twice. Lines a batch did not answer because
it expired or was cancelled are submitted again in a new batch (only those), up to
:data:`MAX_ROUNDS` times.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sua_audit.canonical import canonical_json
from sua_audit.errors import ConfigError, RequestFailed

__all__ = [
    "MAX_BYTES",
    "MAX_LINES",
    "BatchClient",
    "BatchQueue",
    "LiteLLMBatchClient",
    "OpenAIBatchClient",
    "check_batch_support",
    "line_key",
]

logger = logging.getLogger(__name__)

#: Provider batch statuses after which nothing more will be answered.
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
#: OpenAI's limits on one batch input file: 50,000 requests and 200 MB (with room to spare).
MAX_LINES = 50_000
MAX_BYTES = 190 * 1024 * 1024
#: How often a line whose batch expired or was cancelled is submitted again.
MAX_ROUNDS = 3
#: Bodies that arrive within this many seconds of each other go in the same batch.
GATHER_SECONDS = 0.25
ENDPOINT = "/v1/chat/completions"
#: Seconds allowed for uploading or downloading one batch file.
FILE_TIMEOUT = 900.0
#: Attempts at one files/batches call (upload, create, poll, download) before its lines fail.
CONTROL_ATTEMPTS = 6


class BatchClient(Protocol):
    """The files and batches endpoints of one provider (objects as plain dicts)."""

    async def upload(self, filename: str, data: bytes) -> str:
        """Upload a batch input file; its id."""
        ...

    async def create(self, input_file_id: str, metadata: dict[str, str]) -> dict[str, Any]:
        """Create a batch over an uploaded file."""
        ...

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        """A batch's current state."""
        ...

    async def find(self, input_file_id: str, since: float) -> dict[str, Any] | None:
        """The batch created over ``input_file_id`` (no earlier than ``since``, epoch
        seconds), if any."""
        ...

    async def content(self, file_id: str) -> bytes:
        """A file's bytes."""
        ...


class OpenAIBatchClient:
    """:class:`BatchClient` over an ``openai.AsyncOpenAI`` client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def upload(self, filename: str, data: bytes) -> str:
        """Upload with purpose ``batch``."""
        # A 190 MB file takes longer than one chat answer: the run's --timeout is not for it.
        obj = await self.client.files.create(
            file=(filename, data), purpose="batch", timeout=FILE_TIMEOUT
        )
        return str(obj.id)

    async def create(self, input_file_id: str, metadata: dict[str, str]) -> dict[str, Any]:
        """A 24-hour chat-completions batch."""
        obj = await self.client.batches.create(
            input_file_id=input_file_id,
            endpoint=ENDPOINT,
            completion_window="24h",
            metadata=metadata,
        )
        return dict(obj.model_dump())

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        """GET the batch."""
        return dict((await self.client.batches.retrieve(batch_id)).model_dump())

    async def find(self, input_file_id: str, since: float) -> dict[str, Any] | None:
        """Page through the account's batches, newest first, for one over this file; stop at
        the first created before ``since``."""
        async for obj in self.client.batches.list(limit=100):
            if obj.input_file_id == input_file_id:
                return dict(obj.model_dump())
            if obj.created_at < since:
                break
        return None

    async def content(self, file_id: str) -> bytes:
        """The file's raw bytes."""
        response = await self.client.files.content(file_id, timeout=FILE_TIMEOUT)
        return bytes(response.content)


#: LiteLLM providers whose batch files carry OpenAI-shaped request lines, with every batch call
#: (files, create, retrieve, list, content) implemented in LiteLLM.
LITELLM_BATCH_PROVIDERS = ("openai", "azure", "hosted_vllm", "litellm_proxy")


class LiteLLMBatchClient:
    """:class:`BatchClient` through LiteLLM's files and batches functions for one provider."""

    def __init__(self, litellm: Any, provider: str, options: dict[str, Any]) -> None:
        self.litellm = litellm
        self.provider = provider
        self.options = options  # api_base / api_key, when given

    async def upload(self, filename: str, data: bytes) -> str:
        """Upload with purpose ``batch``."""
        obj = await self.litellm.acreate_file(
            file=(filename, data),
            purpose="batch",
            custom_llm_provider=self.provider,
            **self.options,
        )
        return str(obj.id)

    async def create(self, input_file_id: str, metadata: dict[str, str]) -> dict[str, Any]:
        """A 24-hour chat-completions batch."""
        obj = await self.litellm.acreate_batch(
            completion_window="24h",
            endpoint=ENDPOINT,
            input_file_id=input_file_id,
            custom_llm_provider=self.provider,
            metadata=metadata,
            **self.options,
        )
        return dict(obj.model_dump())

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        """GET the batch."""
        obj = await self.litellm.aretrieve_batch(
            batch_id=batch_id, custom_llm_provider=self.provider, **self.options
        )
        return dict(obj.model_dump())

    async def find(self, input_file_id: str, since: float) -> dict[str, Any] | None:
        """Page through the batches, newest first, for one over this file."""
        after = None
        while True:
            page = await self.litellm.alist_batches(
                after=after, limit=100, custom_llm_provider=self.provider, **self.options
            )
            data = page.get("data") if isinstance(page, dict) else getattr(page, "data", None)
            items = [o if isinstance(o, dict) else o.model_dump() for o in data or []]
            for obj in items:
                if obj.get("input_file_id") == input_file_id:
                    return dict(obj)
                if (obj.get("created_at") or 0) < since:
                    return None
            more = (
                page.get("has_more") if isinstance(page, dict) else getattr(page, "has_more", False)
            )
            if not items or not more:
                return None
            after = items[-1]["id"]

    async def content(self, file_id: str) -> bytes:
        """The file's raw bytes."""
        response = await self.litellm.afile_content(
            file_id=file_id, custom_llm_provider=self.provider, **self.options
        )
        return bytes(response.content)


def line_key(base_url: str, body: dict[str, Any]) -> str:
    """The ledger key of one request body sent to one server."""
    text = canonical_json({"base_url": base_url, "body": body})
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:40]


@dataclass(slots=True)
class _Line:
    key: str
    body: dict[str, Any]
    waiters: list[asyncio.Future[dict[str, Any]]]
    rounds: int = 0


class BatchQueue:
    """Send chat-completions bodies as provider batch jobs; see the module docstring.

    ``note`` receives one line of status whenever a job changes (the CLI shows it beside the
    progress bar). ``poll`` is the first wait between two reads of a job; it grows by half each
    time up to ``max_poll``.
    """

    def __init__(
        self,
        client: BatchClient,
        ledger: Any,
        *,
        base_url: str,
        model: str,
        poll: float = 5.0,
        max_poll: float = 60.0,
        max_lines: int = MAX_LINES,
        max_bytes: int = MAX_BYTES,
        gather: float = GATHER_SECONDS,
        model_in_file: str | None = None,
        note: Callable[[str], None] | None = None,
        now: Callable[[], str] | None = None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.base_url = base_url
        self.model = model
        self.poll = poll
        self.max_poll = max(max_poll, poll)
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.gather = gather
        # LiteLLM's "openai/gpt-4o" is "gpt-4o" to the provider that reads the file.
        self.model_in_file = model_in_file
        self.note = note or (lambda text: logger.info("%s", text))
        self._now = now or _utc_now
        self._lines: dict[str, _Line] = {}
        self._incoming: list[str] = []
        self._flush_task: asyncio.Task[None] | None = None
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Counts for the run summary.
        self.jobs_submitted = 0
        self.jobs_resumed = 0
        self.lines_submitted = 0
        self.lines_from_ledger = 0

    # -- the backend's side --------------------------------------------------------------------

    async def send(self, body: dict[str, Any]) -> dict[str, Any]:
        """The response body for ``body``, once its batch has answered."""
        key = line_key(self.base_url, body)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        line = self._lines.get(key)
        if line is not None:
            line.waiters.append(future)  # the same body asked twice at once: one line
        else:
            self._lines[key] = _Line(key, body, [future])
            self._incoming.append(key)
            if self._flush_task is None or self._flush_task.done():
                self._flush_task = self._spawn(self._flush_later())
        return await future

    def describe(self) -> dict[str, Any]:
        """What the run did through batches, for the summary."""
        return {
            "jobs_submitted": self.jobs_submitted,
            "jobs_resumed": self.jobs_resumed,
            "lines_submitted": self.lines_submitted,
            "lines_from_ledger": self.lines_from_ledger,
        }

    async def aclose(self) -> None:
        """Stop polling (the jobs go on at the provider; a rerun resumes them)."""
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- gathering and submitting --------------------------------------------------------------

    def _spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._surface)
        return task

    def _surface(self, task: asyncio.Task[None]) -> None:
        """A bug in a background task fails the lines it held instead of hanging them."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        logger.error("batch task failed: %r", exc)
        for line in list(self._lines.values()):
            self._fail(line, exc if isinstance(exc, Exception) else RuntimeError(str(exc)))

    async def _flush_later(self) -> None:
        # Wait until the bodies stop arriving (the engine creates a chunk's requests at once).
        seen = -1
        while seen != len(self._incoming):
            seen = len(self._incoming)
            await asyncio.sleep(self.gather)
        keys, self._incoming = self._incoming, []
        await self._dispatch(keys)

    async def _dispatch(self, keys: list[str]) -> None:
        """Serve what the ledger already has, wait on jobs already submitted, submit the rest."""
        known = self.ledger.lines(keys)
        fresh: list[str] = []
        resume: set[str] = set()
        for key in keys:
            row = known.get(key)
            line = self._lines.get(key)
            if line is None:
                continue
            if row is not None and row["status"] == "done" and row["response"] is not None:
                self.lines_from_ledger += 1
                self._answer(line, row["response"])
            elif (
                row is not None
                and row["status"] == "pending"
                and row["input_file_id"] is not None
                and row["job_status"] != "abandoned"
            ):
                # Uploaded, so maybe paid for: follow the job (even one that ended: a kill
                # after it ended and before its files were read left the line pending).
                resume.add(row["job_id"])
            else:
                fresh.append(key)
        for job_id in sorted(resume):
            if job_id not in self._watchers:
                self.jobs_resumed += 1
                self.note(f"batch: resuming job {job_id} from the cache's ledger")
                self._watchers[job_id] = self._spawn(self._watch(job_id))
        for part in self._split(fresh):
            await self._submit(part)

    def _split(self, keys: list[str]) -> list[list[str]]:
        parts: list[list[str]] = []
        current: list[str] = []
        size = 0
        for key in keys:
            n = len(self._jsonl_line(self._lines[key])) + 1
            if current and (len(current) >= self.max_lines or size + n > self.max_bytes):
                parts.append(current)
                current, size = [], 0
            current.append(key)
            size += n
        if current:
            parts.append(current)
        return parts

    def _jsonl_line(self, line: _Line) -> str:
        body = line.body
        if self.model_in_file is not None:
            body = {**body, "model": self.model_in_file}
        return json.dumps(
            {"custom_id": line.key, "method": "POST", "url": ENDPOINT, "body": body},
            separators=(",", ":"),
            ensure_ascii=False,
        )

    async def _submit(self, keys: list[str]) -> None:
        job_id = f"sua-{uuid.uuid4().hex[:16]}"
        data = "".join(self._jsonl_line(self._lines[k]) + "\n" for k in keys).encode("utf-8")
        self.ledger.new_job(job_id, self.base_url, self.model, keys, self._now())
        try:
            file_id = await self._control(self.client.upload, f"{job_id}.jsonl", data)
        except RequestFailed as failure:
            self.ledger.update_job(job_id, self._now(), status="abandoned")
            for key in keys:
                if key in self._lines:
                    self._fail(self._lines[key], failure)
            return
        self.ledger.update_job(job_id, self._now(), input_file_id=file_id, status="uploaded")
        self.jobs_submitted += 1
        self.lines_submitted += len(keys)
        self._watchers[job_id] = self._spawn(self._watch(job_id))

    # -- one job, from its file to its answers -------------------------------------------------

    async def _watch(self, job_id: str) -> None:
        try:
            await self._follow(job_id)
        except RequestFailed as failure:
            waiting = self._waiting_in(job_id)
            if failure.kind == "not_found":
                # The provider no longer has the batch or its files (they expire): nothing
                # to resume, so its unanswered lines go in a new batch.
                self.ledger.update_job(job_id, self._now(), status="abandoned")
                await self._resend(waiting, f"job {job_id} is gone at the provider ({failure})")
            else:
                # The provider would not answer about this job: its lines fail (and are
                # retried like any failed call); the job stays in the ledger to resume later.
                for key in waiting:
                    self._fail(self._lines[key], failure)
        finally:
            self._watchers.pop(job_id, None)

    def _waiting_in(self, job_id: str) -> list[str]:
        """Keys this run still waits for whose ledger line is in ``job_id``."""
        rows = self.ledger.lines(list(self._lines))
        return [key for key, row in rows.items() if row["job_id"] == job_id]

    async def _follow(self, job_id: str) -> None:
        job = self.ledger.job(job_id)
        assert job is not None
        batch_id = job["batch_id"]
        if batch_id is None:
            # Killed between the upload and the create's answer? Then the batch may exist.
            since = _epoch(job["created_utc"]) - 3600
            found = await self._control(self.client.find, job["input_file_id"], since)
            if found is None:
                found = await self._control(
                    self.client.create, job["input_file_id"], {"sua_audit_job": job_id}
                )
            batch_id = str(found["id"])
            self.ledger.update_job(job_id, self._now(), batch_id=batch_id, status=found["status"])
        wait = self.poll
        last = None
        while True:
            batch = await self._control(self.client.retrieve, batch_id)
            status = str(batch.get("status"))
            counts = batch.get("request_counts") or {}
            shown = (status, counts.get("completed"), counts.get("failed"))
            if shown != last:
                last = shown
                self.ledger.update_job(job_id, self._now(), status=status)
                self.note(
                    f"batch {batch_id}: {status}, {counts.get('completed') or 0} of "
                    f"{counts.get('total') or job['lines']} answered"
                    + (f", {counts['failed']} failed" if counts.get("failed") else "")
                )
            if status in TERMINAL:
                break
            await asyncio.sleep(wait * random.uniform(0.9, 1.1))
            wait = min(self.max_poll, wait * 1.5)
        await self._collect(job_id, batch)

    async def _collect(self, job_id: str, batch: dict[str, Any]) -> None:
        """Read the job's output and error files and settle its lines."""
        status = str(batch.get("status"))
        done: list[tuple[str, dict[str, Any]]] = []
        failed: list[tuple[str, dict[str, Any]]] = []
        for file_id in (batch.get("output_file_id"), batch.get("error_file_id")):
            if not file_id:
                continue
            data = await self._control(self.client.content, str(file_id))
            for raw in data.decode("utf-8").splitlines():
                if not raw.strip():
                    continue
                record = json.loads(raw)
                key = str(record.get("custom_id"))
                response = record.get("response") or {}
                code = int(response.get("status_code") or 0)
                body = response.get("body")
                if code == 200 and isinstance(body, dict):
                    done.append((key, body))
                else:
                    failed.append((key, _line_error(record)))
        self.ledger.settle(done, failed, self._now())
        self.ledger.update_job(
            job_id,
            self._now(),
            status=status,
            output_file_id=batch.get("output_file_id"),
            error_file_id=batch.get("error_file_id"),
        )
        settled = {key for key, _ in done} | {key for key, _ in failed}
        for key, body in done:
            if key in self._lines:
                self._answer(self._lines[key], body)
        again: list[str] = []
        for key, error in failed:
            line = self._lines.get(key)
            if line is None:
                continue
            if error.get("code") in ("batch_expired", "batch_cancelled"):
                again.append(key)
            else:
                self._fail(line, _failure(error))
        # Lines of this job the run waits for that neither file mentions.
        missing = [k for k in self._waiting_in(job_id) if k not in settled]
        if status == "failed":
            reason = _batch_errors(batch)
            for key in missing:
                self._fail(
                    self._lines[key],
                    RequestFailed("bad_request", f"batch {batch.get('id')} failed: {reason}"),
                )
            return
        again += missing
        await self._resend(again, f"batch {batch.get('id')} ended {status}")

    async def _resend(self, keys: list[str], why: str) -> None:
        """Submit lines again in new batches, each at most :data:`MAX_ROUNDS` times."""
        resend = []
        for key in keys:
            line = self._lines[key]
            line.rounds += 1
            if line.rounds > MAX_ROUNDS:
                self._fail(
                    line,
                    RequestFailed("timeout", f"unanswered after {line.rounds} batches ({why})"),
                )
            else:
                resend.append(key)
        if resend:
            self.note(f"{why}; sending its {len(resend)} unanswered requests again")
            for part in self._split(resend):
                await self._submit(part)

    # -- helpers -------------------------------------------------------------------------------

    def _answer(self, line: _Line, body: dict[str, Any]) -> None:
        self._lines.pop(line.key, None)
        for waiter in line.waiters:
            if not waiter.done():
                waiter.set_result(body)

    def _fail(self, line: _Line, exc: Exception) -> None:
        self._lines.pop(line.key, None)
        for waiter in line.waiters:
            if not waiter.done():
                waiter.set_exception(exc)

    async def _control(self, call: Callable[..., Any], *args: Any) -> Any:
        """One files/batches call, retried with backoff on transient failures."""
        import openai

        from sua_audit.backends.hosted import RETRYABLE, backoff_seconds
        from sua_audit.backends.openai_backend import classify_sdk_error

        for attempt in range(1, CONTROL_ATTEMPTS + 1):
            try:
                return await call(*args)
            except Exception as exc:  # noqa: BLE001 - classified below or re-raised
                failure = classify_sdk_error(openai, exc, 60.0)
                if failure is None:
                    raise
                if failure.kind not in RETRYABLE or attempt == CONTROL_ATTEMPTS:
                    raise failure from exc
                logger.info(
                    "batch: %s (%s); trying again", failure, getattr(call, "__name__", "call")
                )
                await asyncio.sleep(
                    backoff_seconds(attempt, failure.retry_after, base=1.0, cap=60.0)
                )
        raise AssertionError("unreachable")  # pragma: no cover


def _utc_now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _epoch(utc: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(utc).timestamp()


def _line_error(record: dict[str, Any]) -> dict[str, Any]:
    """``{status, code, message}`` of a failed line (an error file line, or a non-200 response)."""
    error = record.get("error")
    if isinstance(error, dict) and error:
        return {
            "status": 0,
            "code": str(error.get("code") or ""),
            "message": str(error.get("message") or ""),
        }
    response = record.get("response") or {}
    body = response.get("body") if isinstance(response.get("body"), dict) else {}
    inner = body.get("error", body) if isinstance(body, dict) else {}
    inner = inner if isinstance(inner, dict) else {"message": str(inner)}
    return {
        "status": int(response.get("status_code") or 0),
        "code": str(inner.get("code") or inner.get("type") or ""),
        "message": str(inner.get("message") or "")[:300],
    }


def _failure(error: dict[str, Any]) -> RequestFailed:
    from sua_audit.backends.openai_backend import classify_status

    status = int(error.get("status") or 0)
    message = str(error.get("message") or error.get("code") or "no detail")
    kind = classify_status(status, str(error.get("code") or ""), message) if status else "server"
    return RequestFailed(kind, f"batch line HTTP {status}: {message}", status=status or None)


def _batch_errors(batch: dict[str, Any]) -> str:
    errors = (batch.get("errors") or {}).get("data") or []
    if not errors:
        return "no reason given"
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    line = f" line {first.get('line')}" if first.get("line") is not None else ""
    return f"{first.get('code')}{line}: {first.get('message')}{more}"


def check_batch_support(provider: str, name: str | None) -> None:
    """Refuse ``--batch`` for a backend (or LiteLLM provider) that cannot send batches."""
    if provider == "openai":
        return
    if provider == "litellm":
        vendor = (name or "").partition("/")[0]
        if vendor in LITELLM_BATCH_PROVIDERS:
            return
        raise ConfigError(
            f"--batch through LiteLLM works for the providers {', '.join(LITELLM_BATCH_PROVIDERS)}"
            f" (OpenAI-shaped batch files); not for {vendor or name!r}. Drop --batch, or audit "
            "the model through one of those."
        )
    raise ConfigError(
        f"--batch works with OpenAI and OpenAI-compatible servers (openai/MODEL, with "
        f"--base-url for another server, or litellm/<{'|'.join(LITELLM_BATCH_PROVIDERS)}>/MODEL); "
        f"the {provider} backend cannot send batches. Drop --batch."
    )
