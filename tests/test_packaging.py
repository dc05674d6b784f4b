"""The wheel carries the prompt templates of the top-level prompts/ folder inside the package,
and the report templates of sua_audit/reports/templates."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

#: What pip says when the build backend cannot be had (no index, no wheel cache).
_NO_BACKEND = ("No matching distribution", "Could not find a version", "Network is unreachable")


def _build_wheel(out: Path) -> Path:
    try:
        import hatchling  # noqa: F401

        isolation = ["--no-build-isolation"]  # the backend is here: no index needed
    except ImportError:
        isolation = []  # pip fetches hatchling (the local package index serves it)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(out)]
        + isolation,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        if any(s in proc.stdout + proc.stderr for s in _NO_BACKEND):
            pytest.skip("the build backend (hatchling) cannot be installed here")
        raise AssertionError(f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}")
    (wheel,) = out.glob("sua_audit-*.whl")
    return wheel


def test_the_wheel_ships_every_template_of_prompts_inside_the_package(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {
        "sua_audit/prompts/" + p.relative_to(REPO / "prompts").as_posix()
        for p in (REPO / "prompts").rglob("*")
        if p.is_file()
    }
    assert any(name.endswith(".j2") for name in shipped)
    assert shipped <= names, sorted(shipped - names)
    assert not any(name.startswith("prompts/") for name in names)


def test_the_wheel_ships_the_report_templates(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    folder = REPO / "sua_audit" / "reports" / "templates"
    shipped = {
        "sua_audit/reports/templates/" + p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file()
    }
    assert {"report.html.j2", "compare.html.j2", "report.md.j2", "compare.md.j2"} <= {
        name.rsplit("/", 1)[-1] for name in shipped
    }
    assert shipped <= names, sorted(shipped - names)
