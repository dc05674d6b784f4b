"""Issue 14, hosted part: a huge Retry-After cannot freeze a run, and a bad ``--base-url`` or
model spec is refused before anything runs.

The throttle tests drive a real :class:`OpenAIBackend` against the loopback stub server (real
HTTP, real 429 responses with ``Retry-After`` headers), each under a wall-clock limit well below
the waits a frozen backend would sit through, so a regression fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sua_audit.backends import (
    BASE_URL_EXAMPLE,
    base_url_problem,
    get_backend,
    model_spec_problem,
    parse_model_spec,
)
from sua_audit.backends.base import Completion, CompletionRequest, GenerationParams, Message
from sua_audit.backends.openai_backend import OpenAIBackend
from sua_audit.config import AuditConfig
from sua_audit.errors import ConfigError, RequestFailed
from sua_audit.runner import make_config
from tests.conftest import EXAMPLE
from tests.support.stub_openai import FaultPlan, StubServer, status

DAY = 86400.0


def ask(text: str) -> CompletionRequest:
    return CompletionRequest(
        messages=(Message("user", text),), params=GenerationParams(temperature=0.0, max_tokens=4)
    )


def backend_for(server: StubServer, **options: float) -> OpenAIBackend:
    opts: dict[str, float] = {"concurrency": 4, "timeout": 5, "max_attempts": 6, **options}
    return OpenAIBackend("stub-model", base_url=server.base_url, **opts)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# 1. Retry-After beyond --max-retry-wait: that request fails as rate_limit, nobody else waits
# ---------------------------------------------------------------------------------------------


def test_retry_after_of_a_day_fails_every_request_at_once_as_rate_limit() -> None:
    """A server that answers every request with ``429, Retry-After: 86400``: the batch ends in
    seconds, each request tried once and failed for good as ``rate_limit``."""

    async def batch(server: StubServer) -> tuple[list[Completion | BaseException], float]:
        backend = backend_for(server)  # the default cap (60 s)
        t0 = time.monotonic()
        try:
            results = await asyncio.wait_for(
                asyncio.gather(
                    *(backend.complete(ask(f"question {i}")) for i in range(8)),
                    return_exceptions=True,
                ),
                timeout=30,  # a backend that waits out (or caps to 60 s) the Retry-After fails
            )
        finally:
            await backend.aclose()
        return results, time.monotonic() - t0

    with StubServer(faults=FaultPlan().add(status(429, retry_after=DAY))) as server:
        results, elapsed = asyncio.run(batch(server))
        sent = server.chat_count
    assert elapsed < 15
    assert sent == 8  # one attempt each: retrying a day-long 429 within the run is pointless
    assert all(isinstance(r, RequestFailed) for r in results), results
    for failure in results:
        assert isinstance(failure, RequestFailed)
        assert failure.kind == "rate_limit" and failure.status == 429
        assert failure.attempts == 1
        assert "86400" in str(failure) and "--max-retry-wait 60" in str(failure)
        assert failure.to_dict()["kind"] == "rate_limit"


@pytest.mark.parametrize(
    ("retry_after", "cap"),
    [(DAY, None), (3.0, 0.5)],
    ids=["a-day-default-cap", "3s-over-a-0.5s-cap"],
)
def test_a_retry_after_past_the_cap_pauses_no_other_request(
    retry_after: float, cap: float | None
) -> None:
    """One prompt always gets a Retry-After past the cap; the others, sent right after it failed,
    are answered at once (they used to wait until the Retry-After had passed)."""
    plan = FaultPlan().add(status(429, retry_after=retry_after), contains="soup")

    async def scenario(server: StubServer) -> tuple[RequestFailed, float, float, int]:
        options = {} if cap is None else {"max_retry_wait": cap}
        backend = backend_for(server, concurrency=2, **options)
        try:
            t0 = time.monotonic()
            try:
                await backend.complete(ask("the soup was cold"))
            except RequestFailed as exc:
                failure = exc
            else:  # pragma: no cover - the assertion below reports it
                raise AssertionError("the rate-limited request succeeded")
            failed_after = time.monotonic() - t0
            t1 = time.monotonic()
            answers = await asyncio.gather(*(backend.complete(ask(f"tea {i}")) for i in range(6)))
            answered_after = time.monotonic() - t1
            assert all(a.text for a in answers)
        finally:
            await backend.aclose()
        return failure, failed_after, answered_after, backend.limit.throttles

    with StubServer(faults=plan) as server:
        failure, failed_after, answered_after, throttles = asyncio.run(
            asyncio.wait_for(scenario(server), timeout=30)
        )
        soup_sent = len(server.requests_for("soup"))
    assert failure.kind == "rate_limit" and failure.attempts == 1 and soup_sent == 1
    assert failed_after < 2.0  # not retried after waiting the cap
    assert answered_after < 2.0  # the others were not paused (old: for retry_after seconds)
    assert throttles == 1  # the 429 still halved the concurrency limit


def test_a_retry_after_within_the_cap_is_still_honoured() -> None:
    """Below the cap nothing changed: the request waits the Retry-After out, then succeeds."""
    plan = FaultPlan().add(status(429, retry_after=0.6), contains="soup", times=1)

    async def scenario(server: StubServer) -> tuple[float, int]:
        backend = backend_for(server, max_retry_wait=5)
        try:
            t0 = time.monotonic()
            answer = await backend.complete(ask("the soup was cold"))
            assert answer.text
            return time.monotonic() - t0, backend.retries
        finally:
            await backend.aclose()

    with StubServer(faults=plan) as server:
        elapsed, retries = asyncio.run(asyncio.wait_for(scenario(server), timeout=30))
    assert retries == 1 and 0.55 <= elapsed < 5


def test_max_retry_wait_is_a_validated_config_field() -> None:
    assert AuditConfig(dataset="x.jsonl").max_retry_wait == 60.0
    assert make_config("x.jsonl", max_retry_wait=2.5).max_retry_wait == 2.5
    for bad in (0, -1, math.inf, math.nan):
        with pytest.raises(ConfigError, match="^--max-retry-wait: "):
            make_config("x.jsonl", max_retry_wait=bad)


def test_get_backend_passes_and_checks_max_retry_wait() -> None:
    backend = get_backend("openai/m", base_url="http://127.0.0.1:9/v1", max_retry_wait=7)
    assert isinstance(backend, OpenAIBackend)
    assert backend.max_retry_wait == 7 and backend.limit.max_pause == 7
    assert get_backend("openai/m", base_url="http://127.0.0.1:9/v1").max_retry_wait == 60  # type: ignore[attr-defined]
    for bad in (0.0, -3.0, math.inf, math.nan):
        with pytest.raises(ConfigError, match="--max-retry-wait"):
            get_backend("openai/m", base_url="http://127.0.0.1:9/v1", max_retry_wait=bad)


# ---------------------------------------------------------------------------------------------
# 2. --base-url
# ---------------------------------------------------------------------------------------------

BAD_URLS = [
    "",
    "   ",
    "not a url",
    "ftp://host/v1",
    "http://",
    "localhost:8000/v1",
    "http://host:99999/v1",
    "http://ho st/v1",
    "file:///etc/passwd",
]
GOOD_URLS = [
    "http://host:8000/v1",
    "https://api.example.com/v1",
    "http://127.0.0.1:8080",
    "http://[::1]:8000/v1",
    "HTTPS://Example.COM",
    "http://user:pw@host:8000/v1",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_base_url_is_a_one_line_config_error(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_config("x.jsonl", base_url=url)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("--base-url: ") and BASE_URL_EXAMPLE in message
    with pytest.raises(ConfigError, match="^--base-url: .*http://host:8000/v1"):
        get_backend("openai/m", base_url=url)  # refused before any client or request exists


@pytest.mark.parametrize("url", GOOD_URLS)
def test_good_base_urls_pass(url: str) -> None:
    assert base_url_problem(url) is None
    assert make_config("x.jsonl", base_url=url).base_url == url


def test_base_url_errors_never_repeat_credentials() -> None:
    message = base_url_problem("ftp://auditor:hunter2-secret@host/v1")
    assert message is not None and "hunter2" not in message and "auditor" not in message


def test_a_bad_base_url_from_the_environment_names_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUA_AUDIT_BASE_URL", "not a url")
    with pytest.raises(ConfigError, match="^SUA_AUDIT_BASE_URL: .*http://host:8000/v1"):
        get_backend("openai/m")
    monkeypatch.setenv("SUA_AUDIT_BASE_URL", "")  # empty counts as unset
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1/")
    assert get_backend("openai/m").base_url == "http://127.0.0.1:9/v1"  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# 3. model specs
# ---------------------------------------------------------------------------------------------

BAD_SPECS = [
    "",
    "   ",
    " gpt-4o",
    "openai/",
    "openai",
    "openai/  ",
    "litellm/",
    "litellm",
    "litellm/anthropic",
    "litellm/anthropic/",
    "litellm//claude",
    "hf/",
    "hf",
    "embedded/other-model",
    "nosuch/x",
]


@pytest.mark.parametrize("spec", BAD_SPECS)
def test_bad_model_spec_is_a_one_line_config_error_listing_the_forms(spec: str) -> None:
    assert model_spec_problem(spec) is not None
    for field, flag in (("model", "--model"), ("rewriter_model", "--rewriter-model")):
        with pytest.raises(ConfigError) as info:
            make_config("x.jsonl", **{field: spec})
        message = str(info.value)
        assert "\n" not in message and message.startswith(f"{flag}: ")
        assert "openai/<model>" in message and "litellm/<provider>/<model>" in message
        assert "hf/<directory>" in message
    with pytest.raises(ConfigError, match="^--model: .*openai/<model>"):
        get_backend(spec)  # no backend is imported, no model loaded


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        (None, ("embedded", "smollm2-135m-instruct")),
        ("embedded/smollm2-135m-instruct", ("embedded", "smollm2-135m-instruct")),
        ("gpt-4o", ("openai", "gpt-4o")),
        ("openai/gpt-4o", ("openai", "gpt-4o")),
        ("openai/meta-llama/Llama-3-8B", ("openai", "meta-llama/Llama-3-8B")),
        ("litellm/anthropic/claude-3-5-haiku", ("litellm", "anthropic/claude-3-5-haiku")),
        ("hf/models/my model", ("hf", "models/my model")),
        ("fake/echo", ("fake", "echo")),
        ("fake", ("fake", "")),
    ],
)
def test_good_model_specs_parse(spec: str | None, parsed: tuple[str, str]) -> None:
    assert model_spec_problem(spec) is None
    assert parse_model_spec(spec) == parsed


# ---------------------------------------------------------------------------------------------
# 2 + 3 from the command line: exit 2, one line, nothing written, nothing sent
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--base-url", "not a url", "http://host:8000/v1"),
        ("--base-url", "", "http://host:8000/v1"),
        ("--model", "", "litellm/<provider>/<model>"),
        ("--model", "hf/", "litellm/<provider>/<model>"),
    ],
)
def test_cli_refuses_bad_url_or_spec_before_the_run(
    tmp_path: Path, flag: str, value: str, needle: str
) -> None:
    out, cache = tmp_path / "out", tmp_path / "cache.db"
    with StubServer() as server:
        options = {"--model": "openai/stub-model", "--base-url": server.base_url, flag: value}
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "sua_audit",
                "run",
                *(x for pair in options.items() for x in pair),
                "--dataset",
                str(EXAMPLE),
                "--out",
                str(out),
                "--cache",
                str(cache),
                "--no-progress",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "COLUMNS": "160"},
            check=False,
        )
        sent = server.count
    assert res.returncode == 2, res.stderr
    errors = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"error: {flag}: "), res.stderr
    assert needle in errors[0]
    assert "Traceback" not in res.stderr
    assert sent == 0 and not out.exists() and not cache.exists()
