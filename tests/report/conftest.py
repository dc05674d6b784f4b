"""Real runs of the embedded model shared by the report, compare and gate tests.

Built once per session: a six-item slice of examples/mixed.jsonl (two items of each task)
audited at two temperatures with two perturbations, and a two-item dataset whose input
carries a <script> tag. Everything runs the real `sua-audit` command in a subprocess.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE
from tests.report.browser import REQUIRE_BROWSER_ENV, find_chromium
from tests.support import cli

XSS = "<script>document.title='pwned';window.suaPwned=1</script>"


def sua(*args: str, home: Path | None = None, timeout: float = 900):
    return cli.sua(*args, home=home, timeout=timeout)


@dataclass
class RealRuns:
    warm: Path  # temperature 0.7
    hot: Path  # temperature 1.3, same dataset
    xss: Path  # another dataset, with a <script> in an input
    dataset: Path


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory: pytest.TempPathFactory, session_home: Path) -> RealRuns:
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("report-runs")
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    by_task: dict[str, list[str]] = {}
    for line in lines:
        by_task.setdefault(json.loads(line)["task"], []).append(line)
    subset = root / "subset.jsonl"
    subset.write_text(
        "\n".join(line for rows in by_task.values() for line in rows[:2]) + "\n", encoding="utf-8"
    )
    xss_data = root / "xss.jsonl"
    xss_data.write_text(
        json.dumps(
            {
                "id": "xss-1",
                "task": "classification",
                "input": f"Great service {XSS} and lovely food.",
                "labels": ["negative", "positive"],
                "label": "positive",
            }
        )
        + "\n"
        + json.dumps(
            {"id": "xss-2", "task": "qa", "input": f"What is 2 + 2? {XSS}", "answers": ["4"]}
        )
        + "\n",
        encoding="utf-8",
    )
    runs = {}
    for name, data, extra in (
        ("warm", subset, ["--temperature", "0.7"]),
        ("hot", subset, ["--temperature", "1.3"]),
        ("xss", xss_data, []),
    ):
        out = root / name
        done = sua(
            "run",
            "--dataset",
            str(data),
            "--out",
            str(out),
            "--perturbations",
            "2",
            "--samples",
            "3",
            "--no-progress",
            *extra,
            home=session_home,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        runs[name] = out
    return RealRuns(runs["warm"], runs["hot"], runs["xss"], subset)


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium binary; skips when absent unless SUA_AUDIT_REQUIRE_BROWSER=1 (CI).

    Session-scoped so it reads the variable before the autouse fixture clears SUA_AUDIT_*.
    """
    binary = find_chromium()
    if binary is None:
        reason = "headless Chromium not found; install it with `make browser` (apt chromium)"
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{reason} ({REQUIRE_BROWSER_ENV}=1)", pytrace=False)
        pytest.skip(reason)
    return binary


@pytest.fixture(scope="session")
def server_run(real_runs: RealRuns, llama_server: str, session_home: Path) -> Path:
    """The same six items through a real llama.cpp server (the embedded model's GGUF)."""
    out = real_runs.warm.parent / "server"
    if not (out / "summary.json").is_file():
        done = sua(
            "run",
            "--model",
            "openai/smollm2",
            "--base-url",
            llama_server,
            "--concurrency",
            "4",
            "--timeout",
            "120",
            "--dataset",
            str(real_runs.dataset),
            "--out",
            str(out),
            "--perturbations",
            "2",
            "--samples",
            "3",
            "--no-progress",
            home=session_home,
        )
        assert done.returncode == 0, done.stderr[-3000:]
    return out
