"""Shared fixtures: an isolated sua-audit home, no provider keys, paths to shared data."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property tests check values, not speed: on a 2-core machine shared with a model job, input
# generation and single examples can take seconds, which is no failure of the code under test.
settings.register_profile("sua-audit", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("sua-audit")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
EXAMPLE = REPO / "examples" / "mixed.jsonl"


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One home per test session, so the embedded model is converted at most once."""
    return tmp_path_factory.mktemp("sua-home")


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, session_home: Path) -> None:
    monkeypatch.setenv("SUA_AUDIT_HOME", str(session_home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "error")
    for var in list(os.environ):
        if var.endswith("_API_KEY") or var.startswith("SUA_AUDIT_") and var != "SUA_AUDIT_HOME":
            monkeypatch.delenv(var, raising=False)


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or skip when this clone has no shared folder beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared evaluation data not found at {SHARED_DATA} (absent in a user's clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def embedded_dir(session_home: Path) -> Path:
    """The converted embedded model (converted once per session)."""
    pytest.importorskip("transformers")
    old = os.environ.get("SUA_AUDIT_HOME")
    os.environ["SUA_AUDIT_HOME"] = str(session_home)
    try:
        from sua_audit.backends.embedded import ensure_converted

        return ensure_converted()
    finally:
        if old is None:
            os.environ.pop("SUA_AUDIT_HOME", None)
        else:
            os.environ["SUA_AUDIT_HOME"] = old


REQUIRE_SERVER_ENV = "SUA_AUDIT_REQUIRE_SERVER"


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """Base URL (``http://127.0.0.1:<port>/v1``) of a real llama.cpp server on the embedded model.

    Skips when ``llama-cpp-python[server]`` is not installed, unless SUA_AUDIT_REQUIRE_SERVER=1
    (set by CI), which turns the skip into a failure. Session-scoped fixtures are set up before
    the autouse ``_isolate`` fixture removes SUA_AUDIT_* variables, so the variable is still seen.
    """
    required = os.environ.get(REQUIRE_SERVER_ENV) == "1"
    # A subprocess, as in `make llama-server`: importing llama_cpp here would load libllama into
    # the test process for nothing, and a broken native build should not crash pytest itself.
    probe = subprocess.run(
        [sys.executable, "-c", "import llama_cpp.server"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        reason = "llama-cpp-python[server] is not installed; run `make llama-server`"
        if required:
            detail = "\n".join(probe.stderr.strip().splitlines()[-5:])
            pytest.fail(f"{reason} ({REQUIRE_SERVER_ENV}=1)\n{detail}", pytrace=False)
        pytest.skip(reason)

    from tests.support.llama_server import running_llama_server

    with contextlib.ExitStack() as stack:
        try:
            base_url = stack.enter_context(running_llama_server())
        except RuntimeError as exc:  # exited early or never ready: the message carries its log
            pytest.fail(str(exc), pytrace=False)
        yield base_url
