"""The API key is used, and written nowhere: not the cache, the outputs, the logs or the terminal.

A random sentinel key goes into ``OPENAI_API_KEY`` of a real ``sua-audit run`` process (with
DEBUG logging, so every log line of sua-audit, openai and httpx reaches stderr) against the
stub server, whose faults echo the key back in error messages the way vendors do. Then every
byte the run left behind is searched for the key.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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
    server: StubServer, tmp_path: Path, key: str, *extra: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``sua-audit --log-level DEBUG run`` with ``key`` in the environment; all files in
    ``tmp_path`` (home, cache, outputs)."""
    out = tmp_path / "out"
    env = {
        **os.environ,
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
