"""The Files and Batch APIs of the stub OpenAI server (see :mod:`tests.support.stub_openai`).

:class:`BatchStore` keeps uploaded files and batches in memory and answers ``/v1/files...`` and
``/v1/batches...`` for :class:`~tests.support.stub_openai.StubServer`, which owns it and routes
those paths to :meth:`BatchStore.handle`. Shapes follow what the ``openai`` SDK sends and expects.

A batch's life is a pure function of the time since it was created, evaluated on every read (no
background threads): of ``batch_seconds`` in all, the first share (``batch_phases[0]``) is
``validating``, the second ``in_progress`` (lines finish one after another, evenly spread, in input
order, so ``request_counts.completed`` grows; all at once at its end with ``batch_progress=False``),
the third ``finalizing``; then ``completed``. Every line's answer is computed once, when the batch
is created (with the server's ``responder`` / ``ignore_n``, as a chat request would be); time only
reveals it. The output and error files are written when the batch reaches its final status.

Outcomes a test can arrange:

* per-line failures: ``batch_line_faults`` (a :class:`FaultPlan` whose rules see each line's body
  as a chat request, ``on`` / ``every`` counting lines 1-based within the batch; or a callable
  ``(custom_id, body) -> Fault | int | None``). A ``status`` fault (or an int status) puts the line
  into the error file with that status and the OpenAI error body; any other fault kind gives a 500.
  Lines whose body the chat endpoint would refuse (``build_completion`` raises) fail the same way.
* an invalid input file: the batch goes ``validating`` -> ``failed`` with ``errors.data`` listing
  ``{code, message, param, line}`` per problem, as OpenAI reports it.
* expiry: ``batch_expire`` (the Nth created batch, a set of those numbers, or a predicate over the
  list of input lines) makes a batch stop after ``batch_expire_fraction`` of its lines and end
  ``expired``; the unfinished lines go to the error file with ``error.code == "batch_expired"``.
* cancel: ``POST /v1/batches/{id}/cancel`` (or :meth:`BatchStore.cancel`) freezes the finished
  lines, shows ``cancelling`` for ``batch_cancel_seconds``, then ``cancelled``; the finished lines
  are in the output/error files, the unfinished ones in neither.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import math
import threading
import traceback
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from tests.support.stub_openai import (
    CHAT_PATH,
    Fault,
    FaultPlan,
    RequestError,
    Rule,
    build_completion,
    status,
)

if TYPE_CHECKING:
    from tests.support.stub_openai import StubServer

__all__ = [
    "BATCHES_PATH",
    "BATCH_EXPIRED_MESSAGE",
    "FILES_PATH",
    "BatchStore",
    "ExpireSpec",
    "LineFaults",
    "handles",
]

FILES_PATH = "/v1/files"
BATCHES_PATH = "/v1/batches"
BATCH_EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."
COMPLETION_WINDOW_SECONDS = 24 * 3600

LineFaultFn = Callable[[str, dict[str, Any]], "Fault | int | None"]
LineFaults = FaultPlan | Iterable[Rule] | LineFaultFn | None
ExpireSpec = int | Collection[int] | Callable[[list[dict[str, Any]]], bool] | None

_TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


def handles(path: str) -> bool:
    """Whether ``path`` belongs to the Files or Batch API."""
    return any(path == p or path.startswith(p + "/") for p in (FILES_PATH, BATCHES_PATH))


def _not_found(kind: str, object_id: str, param: str = "id") -> RequestError:
    return RequestError(f"No such {kind} object: {object_id}", param=param, status_=404)


@dataclass
class StoredFile:
    """One file held by the stub (uploaded input, or a batch's output/error file)."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int

    def object(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


@dataclass
class _Line:
    """One input line and the answer it will get once it is finished."""

    custom_id: str
    request_id: str
    status_code: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status_code < 400


@dataclass
class _Batch:
    id: str
    number: int  # 1-based creation order
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any] | None
    model: str | None
    created: float  # clock time
    custom_ids: list[str]
    lines: list[_Line]
    errors: list[dict[str, Any]]  # validation errors: non-empty -> the batch fails
    t_in: float  # validating ends
    t_fin: float  # in_progress ends
    t_end: float  # finalizing ends
    progress: bool
    expire_keep: int | None  # lines finished before it expires; None: it does not expire
    cancel_seconds: float
    # A stop from the API or the test side: (final status, start time, end time, lines finished).
    stop: tuple[str, float, float, int] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    sealed: bool = False  # output/error files written
    answered: int = 0  # finished lines already counted in batch_lines_answered

    def finished_naturally(self, t: float) -> int:
        total = len(self.lines)
        if t < self.t_in or total == 0:
            done = 0
        elif t >= self.t_fin:
            done = total
        elif not self.progress:
            done = 0
        else:
            done = min(total, math.floor(total * (t - self.t_in) / (self.t_fin - self.t_in)))
        return done if self.expire_keep is None else min(done, self.expire_keep)


@dataclass
class _View:
    """A batch as of one moment."""

    status: str
    finished: int
    stamps: dict[str, float | None] = field(default_factory=dict)


class BatchStore:
    """Files and batches of one :class:`StubServer`; every method is thread-safe.

    It reads the server's ``batch_*`` attributes when a batch is created, its ``responder`` /
    ``ignore_n`` / ``strict_models`` / ``models`` to answer lines, and shares its lock.
    """

    def __init__(self, server: StubServer, lock: threading.Lock) -> None:
        self._server = server
        self._lock = lock
        self._files: dict[str, StoredFile] = {}
        self._batches: dict[str, _Batch] = {}
        self._file_seq = 0
        self._batch_seq = 0
        self.files_uploaded = 0
        self.batches_created = 0
        self.lines_answered = 0

    handles = staticmethod(handles)

    # -- clock and ids ------------------------------------------------------------------------

    def _now(self) -> float:
        return float(self._server.batch_clock())

    def _new_file(self, filename: str, purpose: str, data: bytes, created: float) -> StoredFile:
        """Store a file; call with the lock held."""
        self._file_seq += 1
        stored = StoredFile(f"file-stub{self._file_seq}", filename, purpose, data, int(created))
        self._files[stored.id] = stored
        return stored

    # -- test-side API -------------------------------------------------------------------------

    def file_content(self, file_id: str) -> bytes:
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise KeyError(file_id)
        return stored.data

    def files(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.object() for f in self._files.values()]

    def batch(self, batch_id: str) -> dict[str, Any]:
        now = self._now()
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                raise KeyError(batch_id)
            return self._object(batch, now)

    def batches(self) -> list[dict[str, Any]]:
        now = self._now()
        with self._lock:
            return [self._object(b, now) for b in self._batches.values()]

    def custom_ids(self) -> dict[str, list[str]]:
        with self._lock:
            return {b.id: list(b.custom_ids) for b in self._batches.values()}

    def answered(self) -> int:
        now = self._now()
        with self._lock:
            for batch in self._batches.values():
                self._view(batch, now)
            return self.lines_answered

    def reset_counters(self) -> None:
        with self._lock:
            self.files_uploaded = self.batches_created = self.lines_answered = 0

    def complete(self, batch_id: str) -> dict[str, Any]:
        """Finish every line now and end ``completed`` (a batch that failed validation: failed)."""
        return self._force(batch_id, "completed")

    def expire(self, batch_id: str) -> dict[str, Any]:
        """End ``expired`` now, keeping the lines finished so far."""
        return self._force(batch_id, "expired")

    def cancel(self, batch_id: str) -> dict[str, Any]:
        """What ``POST /v1/batches/{id}/cancel`` does; RequestError (409) once it has ended."""
        now = self._now()
        with self._lock:
            batch = self._get_batch(batch_id)
            view = self._view(batch, now)
            if view.status in _TERMINAL or view.status == "cancelling":
                raise RequestError(
                    f"Cannot cancel a batch with status '{view.status}'.", status_=409
                )
            done = 0 if batch.errors else view.finished
            batch.stop = ("cancelled", now, now + batch.cancel_seconds, done)
            return self._object(batch, now)

    def _force(self, batch_id: str, final: str) -> dict[str, Any]:
        now = self._now()
        with self._lock:
            batch = self._get_batch(batch_id)
            view = self._view(batch, now)
            if view.status not in _TERMINAL:
                if batch.errors:
                    batch.stop = ("failed", now, now, 0)
                elif final == "completed":
                    batch.stop = ("completed", now, now, len(batch.lines))
                else:
                    batch.stop = (final, now, now, view.finished)
            return self._object(batch, now)

    def _get_batch(self, batch_id: str) -> _Batch:
        batch = self._batches.get(batch_id)
        if batch is None:
            raise _not_found("Batch", batch_id)
        return batch

    # -- state -----------------------------------------------------------------------------

    def _view(self, batch: _Batch, now: float) -> _View:
        """The batch as of ``now``; seals its files the first time it is seen ended. Lock held."""
        stop = batch.stop
        t = now if stop is None else min(now, stop[1])
        stamps: dict[str, float | None] = {}
        if batch.errors:
            state, done = ("validating", 0) if t < batch.t_in else ("failed", 0)
            if state == "failed":
                stamps["failed_at"] = batch.t_in
        else:
            done = batch.finished_naturally(t)
            if t < batch.t_in:
                state = "validating"
            else:
                stamps["in_progress_at"] = batch.t_in
                if batch.expire_keep is not None:
                    state = "in_progress" if t < batch.t_end else "expired"
                    if state == "expired":
                        stamps["expired_at"] = batch.t_end
                elif t < batch.t_fin:
                    state = "in_progress"
                else:
                    stamps["finalizing_at"] = batch.t_fin
                    state = "finalizing" if t < batch.t_end else "completed"
                    if state == "completed":
                        stamps["completed_at"] = batch.t_end
        if stop is not None and state not in _TERMINAL:
            final, start, end, done = stop
            if final == "cancelled":
                stamps["cancelling_at"] = start
                if now < end:
                    state = "cancelling"
                else:
                    state = "cancelled"
                    stamps["cancelled_at"] = end
            else:
                state = final
                if final == "completed":
                    stamps.setdefault("in_progress_at", start)
                    stamps.setdefault("finalizing_at", start)
                stamps[f"{final}_at"] = start
        view = _View(state, done, stamps)
        answered = 0 if batch.errors else done
        if answered > batch.answered:
            self.lines_answered += answered - batch.answered
            batch.answered = answered
        if state in _TERMINAL and not batch.sealed:
            self._seal(batch, view)
        return view

    def _seal(self, batch: _Batch, view: _View) -> None:
        """Write the output and error files of an ended batch. Lock held."""
        batch.sealed = True
        if batch.errors:
            return
        when = max(v for v in view.stamps.values() if v is not None)
        output: list[bytes] = []
        errors: list[bytes] = []
        for index, line in enumerate(batch.lines):
            entry: dict[str, Any] = {"id": f"batch_req_stub{batch.number}_{index + 1}"}
            entry["custom_id"] = line.custom_id
            if index < view.finished:
                entry["response"] = {
                    "status_code": line.status_code,
                    "request_id": line.request_id,
                    "body": line.body,
                }
                entry["error"] = None
                (output if line.ok else errors).append(_jsonl(entry))
            elif view.status == "expired":
                entry["response"] = None
                entry["error"] = {"code": "batch_expired", "message": BATCH_EXPIRED_MESSAGE}
                errors.append(_jsonl(entry))
        if output:
            name = f"{batch.id}_output.jsonl"
            batch.output_file_id = self._new_file(name, "batch_output", b"".join(output), when).id
        if errors:
            name = f"{batch.id}_error.jsonl"
            batch.error_file_id = self._new_file(name, "batch_output", b"".join(errors), when).id

    def _object(self, batch: _Batch, now: float) -> dict[str, Any]:
        """The Batch object as the API returns it. Lock held."""
        view = self._view(batch, now)
        started = view.status != "validating" and not batch.errors
        finished = batch.lines[: view.finished]
        usage = None
        if started:
            prompt = output = 0
            for line in finished:
                counts = line.body.get("usage") if line.ok else None
                if isinstance(counts, dict):
                    prompt += int(counts.get("prompt_tokens") or 0)
                    output += int(counts.get("completion_tokens") or 0)
            usage = {
                "input_tokens": prompt,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": prompt + output,
            }
        stamps = {
            name: None if value is None else int(value) for name, value in view.stamps.items()
        }
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "model": batch.model,
            "errors": {"object": "list", "data": list(batch.errors)}
            if batch.errors and view.status == "failed"
            else None,
            "input_file_id": batch.input_file_id,
            "completion_window": batch.completion_window,
            "status": view.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": int(batch.created),
            "in_progress_at": stamps.get("in_progress_at"),
            "expires_at": int(batch.created) + COMPLETION_WINDOW_SECONDS,
            "finalizing_at": stamps.get("finalizing_at"),
            "completed_at": stamps.get("completed_at"),
            "failed_at": stamps.get("failed_at"),
            "expired_at": stamps.get("expired_at"),
            "cancelling_at": stamps.get("cancelling_at"),
            "cancelled_at": stamps.get("cancelled_at"),
            "request_counts": {
                "total": len(batch.lines) if started else 0,
                "completed": sum(1 for line in finished if line.ok),
                "failed": sum(1 for line in finished if not line.ok),
            },
            "metadata": batch.metadata,
            "usage": usage,
        }

    # -- HTTP ------------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes, str]:
        """Answer one Files/Batch API request: (status, payload, content type).

        Raises RequestError for a 4xx the server reports as an OpenAI error document.
        """
        path, _, query = target.partition("?")
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        parts = path.strip("/").split("/")[1:]  # drop "v1"
        resource, rest = parts[0], parts[1:]
        if resource == "files":
            if not rest:
                if method == "POST":
                    return _json(self._upload(headers, body))
                if method == "GET":
                    return _json(self._list_files(params))
            elif len(rest) == 1:
                if method == "GET":
                    return _json(self._file(rest[0]).object())
                if method == "DELETE":
                    return _json(self._delete_file(rest[0]))
            elif len(rest) == 2 and rest[1] == "content" and method == "GET":
                return 200, self._file(rest[0]).data, "application/octet-stream"
        elif resource == "batches":
            if not rest:
                if method == "POST":
                    return _json(self._create(_json_body(body)))
                if method == "GET":
                    return _json(self._list_batches(params))
            elif len(rest) == 1 and method == "GET":
                return _json(self.batch_or_404(rest[0]))
            elif len(rest) == 2 and rest[1] == "cancel" and method == "POST":
                return _json(self.cancel(rest[0]))
        if (resource == "files" and len(rest) <= 2) or (resource == "batches" and len(rest) <= 2):
            raise RequestError("Method not allowed", status_=405)
        raise RequestError(f"Unknown path {path}", code="unknown_url", status_=404)

    def batch_or_404(self, batch_id: str) -> dict[str, Any]:
        now = self._now()
        with self._lock:
            return self._object(self._get_batch(batch_id), now)

    def _file(self, file_id: str) -> StoredFile:
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None:
            raise _not_found("File", file_id)
        return stored

    def _delete_file(self, file_id: str) -> dict[str, Any]:
        with self._lock:
            if self._files.pop(file_id, None) is None:
                raise _not_found("File", file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    def _upload(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        fields, files = _parse_multipart(headers.get("content-type", ""), body)
        purpose = fields.get("purpose")
        if purpose is None:
            raise RequestError("Missing required parameter: 'purpose'.", param="purpose")
        if purpose != "batch":
            raise RequestError(
                f"The stub server only stores files with purpose 'batch', not {purpose!r}.",
                param="purpose",
            )
        if "file" not in files:
            raise RequestError("Missing required parameter: 'file'.", param="file")
        filename, data = files["file"]
        now = self._now()
        with self._lock:
            stored = self._new_file(filename or "upload.jsonl", purpose, data, now)
            self.files_uploaded += 1
        return stored.object()

    def _list_files(self, params: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            items = [f.object() for f in self._files.values()]
        if "purpose" in params:
            items = [f for f in items if f["purpose"] == params["purpose"]]
        if params.get("order", "desc") == "desc":
            items.reverse()
        return _page(items, params, default_limit=10_000, kind="File")

    def _list_batches(self, params: dict[str, str]) -> dict[str, Any]:
        now = self._now()
        with self._lock:
            items = [self._object(b, now) for b in reversed(self._batches.values())]
        return _page(items, params, default_limit=20, kind="Batch")

    def _create(self, request: dict[str, Any]) -> dict[str, Any]:
        server = self._server
        input_file_id = request.get("input_file_id")
        if not isinstance(input_file_id, str) or not input_file_id:
            raise RequestError(
                "Missing required parameter: 'input_file_id'.", param="input_file_id"
            )
        endpoint = request.get("endpoint")
        if endpoint != CHAT_PATH:
            raise RequestError(
                f"The stub server only runs batches for {CHAT_PATH}, not {endpoint!r}.",
                param="endpoint",
            )
        window = request.get("completion_window")
        if window != "24h":
            raise RequestError(
                "Invalid value for 'completion_window': only '24h' is supported.",
                param="completion_window",
            )
        metadata = request.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, dict)
            or len(metadata) > 16
            or not all(isinstance(v, str) for v in metadata.values())
        ):
            raise RequestError("metadata must map at most 16 keys to strings.", param="metadata")
        with self._lock:
            stored = self._files.get(input_file_id)
        if stored is None:
            raise _not_found("File", input_file_id, param="input_file_id")
        if stored.purpose != "batch":
            raise RequestError(
                f"File {input_file_id} has purpose {stored.purpose!r}, not 'batch'.",
                param="input_file_id",
            )
        with self._lock:
            self._batch_seq += 1
            number = self._batch_seq
        inputs, errors = _validate_file(
            stored.data,
            endpoint,
            max_lines=server.batch_max_lines,
            known_models=server.models if server.strict_models else None,
        )
        model = inputs[0]["body"]["model"] if inputs and not errors else None
        lines = [] if errors else self._answer(number, inputs)
        expire_keep = None
        if not errors and _expires(server.batch_expire, number, inputs):
            fraction = min(max(float(server.batch_expire_fraction), 0.0), 1.0)
            expire_keep = math.floor(fraction * len(lines))
        seconds = max(float(server.batch_seconds), 0.0)
        phases = [max(float(p), 0.0) for p in server.batch_phases]
        scale = seconds / (sum(phases) or 1.0)
        created = self._now()
        cancel_seconds = server.batch_cancel_seconds
        if cancel_seconds is None:
            cancel_seconds = phases[2] * scale
        batch = _Batch(
            id=f"batch_stub{number}",
            number=number,
            input_file_id=input_file_id,
            endpoint=endpoint,
            completion_window=window,
            metadata=dict(metadata) if metadata is not None else None,
            model=model,
            created=created,
            custom_ids=[str(line.get("custom_id")) for line in inputs],
            lines=lines,
            errors=errors,
            t_in=created + phases[0] * scale,
            t_fin=created + (phases[0] + phases[1]) * scale,
            t_end=created + seconds,
            progress=bool(server.batch_progress),
            expire_keep=expire_keep,
            cancel_seconds=max(float(cancel_seconds), 0.0),
        )
        with self._lock:
            self._batches[batch.id] = batch
            self.batches_created += 1
            return self._object(batch, created)

    def _answer(self, number: int, inputs: list[dict[str, Any]]) -> list[_Line]:
        """Every line's eventual answer (run outside the lock: responders may be slow)."""
        server = self._server
        lines = []
        for index, item in enumerate(inputs, start=1):
            body = item["body"]
            request_id = f"req_stub_batch{number}_{index}"
            try:
                fault = _line_fault(server.batch_line_faults, index, item["custom_id"], body)
                if fault is None:
                    answer = build_completion(
                        body,
                        responder=server.responder,
                        ignore_n=server.ignore_n,
                        completion_id=f"chatcmpl-stub-batch{number}-{index}",
                    )
                    lines.append(_Line(item["custom_id"], request_id, 200, answer))
                    continue
            except RequestError as exc:
                fault = exc.fault
            except Exception:
                server._record_error(traceback.format_exc())
                fault = status(500, message="stub server: responder or fault predicate raised")
            lines.append(
                _Line(item["custom_id"], request_id, fault.http_status, fault.error_body())
            )
        return lines


# -- helpers -------------------------------------------------------------------------------------


def _json(document: Any) -> tuple[int, bytes, str]:
    return 200, json.dumps(document).encode(), "application/json"


def _jsonl(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode() + b"\n"


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise RequestError("We could not parse the JSON body of your request.")
    return parsed


def _page(
    items: list[dict[str, Any]], params: dict[str, str], *, default_limit: int, kind: str
) -> dict[str, Any]:
    """A cursor page (``limit``, ``after``) over ``items``, already in listing order."""
    try:
        limit = int(params.get("limit", default_limit))
    except ValueError:
        limit = -1
    if not 1 <= limit <= max(default_limit, 100):
        raise RequestError("limit must be an integer in [1, 100].", param="limit")
    after = params.get("after")
    if after is not None:
        ids = [item["id"] for item in items]
        if after not in ids:
            raise _not_found(kind, after, param="after")
        items = items[ids.index(after) + 1 :]
    data = items[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(items) > limit,
    }


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, Any]]:
    """Form fields and files (name -> (filename, bytes)) of a multipart/form-data body."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise RequestError("Expected a multipart/form-data body.", param="file")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise RequestError("Could not parse the multipart/form-data body.", param="file")
    fields: dict[str, str] = {}
    files: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            files[name] = (filename, data)
        else:
            fields[name] = data.decode("utf-8", "replace")
    return fields, files


def _error(code: str, message: str, line: int | None, param: str | None = None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def _validate_file(
    data: bytes, endpoint: str, *, max_lines: int, known_models: list[str] | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Parse a batch input file: (input lines, errors as OpenAI lists them; empty if valid)."""
    inputs: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    model: str | None = None
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
        except ValueError:
            item = None
        if not isinstance(item, dict):
            errors.append(
                _error("invalid_json_line", "This line is not parseable as valid JSON.", number)
            )
            continue
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            errors.append(
                _error(
                    "missing_required_parameter",
                    "Missing required parameter: 'custom_id'.",
                    number,
                    "custom_id",
                )
            )
        elif custom_id in seen:
            errors.append(
                _error(
                    "duplicate_custom_id",
                    "The custom_id for this request is a duplicate of another request. The "
                    "custom_id parameter must be unique for each request in a batch.",
                    number,
                    "custom_id",
                )
            )
        else:
            seen.add(custom_id)
        if item.get("method") != "POST":
            errors.append(_error("invalid_method", "The method must be 'POST'.", number, "method"))
        if item.get("url") != endpoint:
            errors.append(
                _error(
                    "url_mismatch",
                    f"The provided URL {item.get('url')!r} does not match the batch endpoint "
                    f"{endpoint!r}.",
                    number,
                    "url",
                )
            )
        body = item.get("body")
        line_model = body.get("model") if isinstance(body, dict) else None
        if not isinstance(line_model, str) or not line_model:
            errors.append(
                _error(
                    "missing_required_parameter",
                    "Missing required parameter: 'body.model'.",
                    number,
                    "body.model",
                )
            )
        elif model is None:
            model = line_model
            if known_models is not None and line_model not in known_models:
                errors.append(
                    _error(
                        "model_not_found",
                        f"The model `{line_model}` does not exist.",
                        number,
                        "body.model",
                    )
                )
        elif line_model != model:
            errors.append(
                _error(
                    "model_mismatch",
                    f"All requests of a batch must use the same model: this line uses "
                    f"{line_model!r}, an earlier line {model!r}.",
                    number,
                    "body.model",
                )
            )
        inputs.append(item)
    if not inputs and not errors:
        errors.append(_error("empty_file", "The batch input file is empty.", None))
    elif len(inputs) > max_lines:
        errors.append(
            _error(
                "too_many_tasks",
                f"The batch input file has {len(inputs)} requests; at most {max_lines} are "
                "allowed.",
                None,
            )
        )
    return inputs, errors


def _line_fault(faults: LineFaults, index: int, custom_id: str, body: Any) -> Fault | None:
    """The fault for one batch line (``index`` is 1-based within the batch), or None."""
    if faults is None:
        return None
    request = body if isinstance(body, dict) else {}
    if isinstance(faults, FaultPlan):
        fault = faults.match(index, CHAT_PATH, request)
    elif callable(faults):
        found = faults(custom_id, request)
        fault = status(found) if isinstance(found, int) else found
    else:
        raise TypeError("batch_line_faults must be a FaultPlan or a callable")
    if fault is None:
        return None
    if fault.kind != "status":
        return status(500)
    return fault


def _expires(spec: ExpireSpec, number: int, inputs: list[dict[str, Any]]) -> bool:
    if spec is None:
        return False
    if isinstance(spec, int):
        return number == spec
    if callable(spec):
        return bool(spec(inputs))
    return number in spec
