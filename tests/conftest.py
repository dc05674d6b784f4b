"""Shared fixtures: an isolated sua-audit home, no provider keys, paths to shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
