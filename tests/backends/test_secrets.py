"""The API key is used, and written nowhere: not the cache, the outputs, the logs or the terminal.

A random sentinel key goes into ``OPENAI_API_KEY`` of a real ``sua-audit run`` process (with
DEBUG logging, so every log line of sua-audit, openai and httpx reaches stderr) against the
stub server, whose faults echo the key back in error messages the way vendors do. Then every
byte the run left behind is searched for the key.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from sua_audit.backends.base import CompletionRequest, GenerationParams, Message
from sua_audit.backends.openai_backend import TRANSPORT_ENV, OpenAIBackend
from sua_audit.errors import RequestFailed, install_log_redaction, redact_log_text, redact_record
from tests.conftest import EXAMPLE
from tests.support.stub_openai import FaultPlan, StubServer, status


def sentinel(shape: str) -> str:
    """A fresh key; ``plain`` has no ``sk-`` shape, so only the environment can unmask it."""
    token = secrets.token_hex(16)
    return f"sk-sentinel-{token}" if shape == "sk" else f"sentinel{token}"


def masked(key: str) -> str:
    """The key as OpenAI echoes it in a 401 (``sk-senti************cdef``)."""
    return key[:8] + "*" * (len(key) - 12) + key[-4:]


def run(
    server: StubServer, tmp_path: Path, key: str, *extra: str, transport: str = "httpx"
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``sua-audit --log-level DEBUG run`` with ``key`` in the environment; all files in
    ``tmp_path`` (home, cache, outputs). ``transport``: the SDK's HTTP transport; httpx by
    default, whose DEBUG lines print every header (the hardest case for redaction)."""
    out = tmp_path / "out"
    env = {
        **os.environ,
        TRANSPORT_ENV: transport,
        "OPENAI_API_KEY": key,
        "SUA_AUDIT_HOME": str(tmp_path / "home"),
        "COLUMNS": "160",
    }
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "sua_audit",
            "--log-level",
            "DEBUG",
            "run",
            "--model",
            "openai/stub-model",
            "--base-url",
            server.base_url,
            "--dataset",
            str(EXAMPLE),
            "--out",
            str(out),
            "--cache",
            str(tmp_path / "home" / "cache.db"),
            "--json",
            "--no-progress",
            "--timeout",
            "2",
            "--max-attempts",
            "2",
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    return res, out


def files_containing(root: Path, needles: list[str]) -> dict[str, list[str]]:
    """Every file under ``root`` (SQLite databases with their -wal/-shm files included, read as
    raw bytes) that contains one of ``needles``."""
    hits: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found = [n for n in needles if n.encode() in data]
            if found:
                hits[str(path.relative_to(root))] = found
    return hits


def assert_nowhere(key: str, res: subprocess.CompletedProcess[str], tmp_path: Path) -> None:
    # The masked form shows no more of the key than the vendor itself does; redact() still
    # removes it when it is key-shaped (sk-...), as vendors' keys are.
    needles = [key, masked(key)] if key.startswith("sk-") else [key]
    for needle in needles:
        assert needle not in res.stdout
        assert needle not in res.stderr
    assert files_containing(tmp_path, needles) == {}


def bearer_of(server: StubServer) -> set[str | None]:
    return {r.headers.get("authorization") for r in server.requests}


@pytest.mark.parametrize("shape", ["sk", "plain"])
def test_key_is_sent_and_stored_nowhere(tmp_path: Path, shape: str) -> None:
    key = sentinel(shape)
    # Items with "soup" fail for good, with a 500 whose message quotes the key (a proxy that
    # echoes the request headers): the message is recorded in results.jsonl and logged.
    echo = status(500, message=f"upstream rejected Authorization: Bearer {key} ({masked(key)})")
    plan = FaultPlan().add(echo, contains="soup")
    with StubServer(api_key=key, faults=plan) as server:
        res, out = run(server, tmp_path, key)
        auth = bearer_of(server)
    assert res.returncode == 0, res.stderr
    assert auth == {f"Bearer {key}"}  # the key was really used, on every request

    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    failed = [r for r in rows if r["status"] == "failed"]
    assert [r["id"] for r in failed] == ["sent-01"]
    assert "[redacted]" in failed[0]["error"]["message"]
    assert "HTTP 500" in res.stderr  # DEBUG logging printed the failure too
    summary: dict[str, Any] = json.loads(res.stdout)
    assert summary["model_calls"] > 0 and summary["failed_requests"] > 0
    cache = tmp_path / "home" / "cache.db"
    assert cache.stat().st_size > 0
    assert_nowhere(key, res, tmp_path)


@pytest.mark.parametrize("shape", ["sk", "plain"])
def test_rejected_key_echoed_by_the_server_is_not_printed(tmp_path: Path, shape: str) -> None:
    key = sentinel(shape)
    rejected = status(
        401,
        code="invalid_api_key",
        message=f"Incorrect API key provided: {key}. Masked: {masked(key)}.",
    )
    with StubServer(faults=FaultPlan().add(rejected)) as server:
        res, out = run(server, tmp_path, key, "--concurrency", "2")
        auth = bearer_of(server)
    assert auth == {f"Bearer {key}"}
    assert res.returncode == 3, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "HTTP 401" in errors[0] and "[redacted]" in errors[0]
    assert not out.exists()
    assert_nowhere(key, res, tmp_path)


def test_credentials_in_the_base_url_are_not_stored(tmp_path: Path) -> None:
    password = "pw" + secrets.token_hex(12)
    with StubServer() as server:
        url = server.base_url.replace("http://", f"http://auditor:{password}@")
        out = tmp_path / "out"
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "sua_audit",
                "run",
                "--model",
                "openai/stub-model",
                "--base-url",
                url,
                "--dataset",
                str(EXAMPLE),
                "--limit",
                "2",
                "--out",
                str(out),
                "--cache",
                str(tmp_path / "cache.db"),
                "--json",
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "SUA_AUDIT_HOME": str(tmp_path / "home")},
            timeout=120,
            check=False,
        )
        auth = bearer_of(server)
    assert res.returncode == 0, res.stderr
    assert len(auth) == 1 and auth != {"Bearer no-key-needed"}  # httpx sent them (Basic)
    assert password not in res.stdout and password not in res.stderr
    assert files_containing(tmp_path, [password]) == {}


# ---------------------------------------------------------------------------------------------
# DEBUG logs of the HTTP libraries (httpx, httpcore, openai) print response headers
# ---------------------------------------------------------------------------------------------


class EchoingServer(StubServer):
    """The stub behind a proxy that echoes the caller's key in response headers (every
    response, errors included): bare, and as a bearer token under an unrelated name."""

    def __init__(self, key: str, **options: Any) -> None:
        super().__init__(api_key=key, **options)
        self.key = key

    async def _write(
        self,
        writer: asyncio.StreamWriter,
        code: int,
        body: Any,
        keep_alive: bool,
        extra_headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        echoed = [("x-debug-key", self.key), ("x-echo-authorization", f"Bearer {self.key}")]
        await super()._write(writer, code, body, keep_alive, [*extra_headers, *echoed])


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """Every log record at DEBUG, from every logger, formatted into a string buffer."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def ask(text: str) -> CompletionRequest:
    return CompletionRequest(
        messages=(Message("user", text),), params=GenerationParams(temperature=0.0, max_tokens=4)
    )


@pytest.mark.parametrize("shape", ["sk", "plain"])
def test_debug_logs_of_the_http_libraries_never_show_the_key(
    shape: str, debug_log: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = sentinel(shape)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv(TRANSPORT_ENV, "httpx")  # its DEBUG lines print every header
    echo = status(500, message=f"upstream rejected Authorization: Bearer {key}")
    plan = FaultPlan().add(echo, contains="soup")

    async def two_requests(server: StubServer) -> RequestFailed:
        backend = OpenAIBackend("stub-model", base_url=server.base_url, timeout=5, max_attempts=1)
        try:
            assert (await backend.complete(ask("tea or coffee"))).text
            with pytest.raises(RequestFailed) as info:
                await backend.complete(ask("the soup was cold"))
            return info.value
        finally:
            await backend.aclose()

    uninstall = install_log_redaction()
    try:
        with EchoingServer(key, faults=plan) as server:
            failure = asyncio.run(two_requests(server))
            auth = bearer_of(server)
        logging.getLogger("sua_audit.test").debug("failed: %s (key %s)", failure, key)
    finally:
        uninstall()
    log = debug_log.getvalue()
    assert auth == {f"Bearer {key}"}  # the key was really sent, and really echoed back
    assert "x-debug-key" in log and "x-echo-authorization" in log  # headers were logged
    assert "HTTP/1.1 500" in log or " 500" in log
    assert key not in log and masked(key) not in log
    assert "[redacted]" in log


def test_without_redaction_the_echoed_key_reaches_the_debug_log(
    debug_log: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The leak the test above guards against is real (so that test can fail)."""
    key = sentinel("plain")
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv(TRANSPORT_ENV, "httpx")

    async def one(server: StubServer) -> None:
        backend = OpenAIBackend("stub-model", base_url=server.base_url, timeout=5, max_attempts=1)
        try:
            await backend.complete(ask("tea or coffee"))
        finally:
            await backend.aclose()

    with EchoingServer(key) as server:
        asyncio.run(one(server))
    assert key in debug_log.getvalue()


def test_redact_log_text_covers_headers_tokens_and_url_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "envsecret0123456789")
    cases = [
        "Authorization: Bearer tok3n-not-in-env",
        "{'authorization': 'Bearer tok3n-not-in-env', 'accept': 'json'}",
        "[(b'Authorization', b'Basic dXNlcjpwYXNzd29yZA==')]",
        "(b'x-api-key', b'tok3n-not-in-env')",
        "headers={'api-key': 'tok3n-not-in-env'}",
        "sent with bearer tok3n-not-in-env",
        "POST http://auditor:tok3n-not-in-env@host:8000/v1/chat/completions",
        "x-echo: envsecret0123456789",
        "Incorrect API key provided: sk-proj-tok3n****wxyz",
    ]
    for text in cases:
        clean = redact_log_text(text)
        assert "tok3n" not in clean and "envsecret" not in clean, clean
        assert "dXNlcjpwYXNzd29yZA" not in clean and "[redacted]" in clean, clean
    assert redact_log_text("POST http://host:8000/v1 200 OK") == "POST http://host:8000/v1 200 OK"


def test_redact_record_covers_message_args_and_exceptions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "envsecret0123456789"
    monkeypatch.setenv("SOME_TOKEN", secret)

    def record(msg: str, args: Any, exc: BaseException | None = None) -> logging.LogRecord:
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        return logging.LogRecord("httpcore.http11", logging.DEBUG, __file__, 1, msg, args, exc_info)

    in_args = redact_record(record("headers=%s", ([(b"x-key", secret.encode())],)))
    assert secret not in in_args.getMessage() and "[redacted]" in in_args.getMessage()
    in_dict = redact_record(record("%(h)s", ({"h": secret},)))
    assert in_dict.getMessage() == "[redacted]"
    in_msg = redact_record(record(f"key {secret}", None))
    assert secret not in in_msg.getMessage()
    untouched = record("%d requests", (3,))
    assert redact_record(untouched).args == (3,)  # nothing secret: left for lazy formatting
    try:
        raise RuntimeError(f"proxy said {secret}")
    except RuntimeError as exc:
        failed = redact_record(record("request failed", None, exc))
    text = logging.Formatter().format(failed)
    assert "RuntimeError" in text and secret not in text


def test_install_log_redaction_is_idempotent_and_undoable(debug_log: io.StringIO) -> None:
    before = logging.getLogRecordFactory()
    uninstall = install_log_redaction()
    try:
        again = install_log_redaction()
        again()  # the second install did nothing, so undoing it does nothing
        logging.getLogger("httpx").debug("Authorization: Bearer abcdefgh12345")
    finally:
        uninstall()
    assert logging.getLogRecordFactory() is before
    logging.getLogger("httpx").debug("after: Bearer abcdefgh12345")
    log = debug_log.getvalue()
    assert "Authorization: Bearer [redacted]" in log
    assert "after: Bearer abcdefgh12345" in log  # uninstalled


def test_cli_debug_log_never_shows_an_echoed_key(tmp_path: Path) -> None:
    key = sentinel("plain")
    with EchoingServer(key) as server:
        res, _ = run(server, tmp_path, key, "--limit", "2")
    assert res.returncode == 0, res.stderr
    assert "x-debug-key" in res.stderr  # httpcore's DEBUG lines with the headers were printed
    assert_nowhere(key, res, tmp_path)


def test_on_the_default_aiohttp_transport_the_key_is_nowhere_either(tmp_path: Path) -> None:
    key = sentinel("plain")
    with EchoingServer(key) as server:
        res, _ = run(server, tmp_path, key, "--limit", "2", transport="")
    assert res.returncode == 0, res.stderr
    assert_nowhere(key, res, tmp_path)
