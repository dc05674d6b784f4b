"""Adaptive QA sampling: the stop rule, and a real run against the loopback server.

The server answers the France question "Paris" whatever the seed (settled after the first
round) and every other question with a word chosen by the request's seed (never settled), and
ignores ``n``, so the backend draws one seeded request per answer. Then an adaptive run's
samples must be a prefix of a full run's: the second round continues the first round's seeded
sequence instead of repeating it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sua_audit.auditing import first_round, settled
from sua_audit.config import AuditConfig
from tests.conftest import EXAMPLE
from tests.support import cli
from tests.support.stub_openai import StubServer, build_completion, last_user_text

WORDS = ("Rome", "Oslo", "Lima", "Bern", "Kyiv")


def responder(request: dict[str, Any]) -> str | dict[str, Any]:
    if request.get("logprobs"):  # label scoring: the stub's own answer
        return build_completion(request)
    if "France" in last_user_text(request) or request.get("temperature") == 0:
        return "Paris"
    return WORDS[int(request.get("seed") or 0) % len(WORDS)]


@pytest.mark.parametrize(
    ("k", "adaptive", "first"), [(5, True, 3), (6, True, 3), (2, True, 2), (5, False, 5)]
)
def test_the_first_round_is_half_of_k_rounded_up(k: int, adaptive: bool, first: int) -> None:
    config = AuditConfig(dataset="x.jsonl", samples=k, adaptive_samples=adaptive)
    assert first_round(config) == first


def test_settled_means_the_greedy_answer_and_every_sample_agree_after_normalising() -> None:
    assert settled("Paris", ["Paris", "paris", "PARIS."])
    assert not settled("Paris", ["Paris", "Lyon", "Paris"])
    assert not settled("Paris", ["Lyon", "Lyon", "Lyon"])


def run(server: StubServer, tmp: Path, name: str, *extra: str) -> dict[str, Any]:
    res: subprocess.CompletedProcess[str] = cli.sua(
        "run", "--model", "openai/stub-model", "--base-url", server.base_url,
        "--dataset", str(EXAMPLE), "--perturbations", "distractor:2", "--samples", "5",
        "--cache", str(tmp / f"{name}.db"), "--out", str(tmp / name), "--json",
        "--no-progress", *extra, columns=160, timeout=180,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    summary: dict[str, Any] = json.loads(res.stdout)
    return summary


def qa_rows(out: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    return {r["id"]: r for r in rows if r["task"] == "qa"}


def test_adaptive_samples_are_a_prefix_of_full_sampling_and_save_requests(
    tmp_path: Path,
) -> None:
    with StubServer(responder=responder, ignore_n=True) as server:
        full = run(server, tmp_path, "full")
        full_calls = server.chat_count
        adaptive = run(server, tmp_path, "adaptive", "--adaptive-samples")
        adaptive_calls = server.chat_count - full_calls
    assert full["failed_requests"] == adaptive["failed_requests"] == 0
    assert full["results"].get("sampling") is None
    block = adaptive["results"]["sampling"]
    # 4 QA items × 3 variants; the France item's 3 variants settle after 3 samples.
    assert block["variants"] == 12 and block["settled_after_first_round"] == 3
    assert block["samples_drawn"] == 12 * 5 - 3 * 2 and block["samples_full"] == 60
    # One seeded call per answer (the server ignores n): 6 fewer answers, 6 fewer calls.
    assert adaptive_calls == full_calls - 6
    assert adaptive["config"]["adaptive_samples"] is True
    full_rows, adaptive_rows = qa_rows(tmp_path / "full"), qa_rows(tmp_path / "adaptive")
    for item_id, row in adaptive_rows.items():
        for v_full, v_adapt in zip(full_rows[item_id]["variants"], row["variants"], strict=True):
            drawn = v_adapt["samples"]
            assert drawn == v_full["samples"][: len(drawn)]
            assert len(drawn) == (3 if item_id == "qa-01" else 5)
        # A settled variant's samples are one answer either way: the same scores.
        for name in ("sensitivity", "entropy", "sua"):
            assert row[name] == pytest.approx(full_rows[item_id][name]), (item_id, name)


def test_an_adaptive_rerun_is_answered_from_the_cache(tmp_path: Path) -> None:
    with StubServer(responder=responder, ignore_n=True) as server:
        first = run(server, tmp_path, "a", "--adaptive-samples")
        served = server.chat_count
        again = run(server, tmp_path, "a", "--adaptive-samples")
        assert server.chat_count == served
    assert first["model_calls"] > 0 and again["model_calls"] == 0
    assert again["results"]["sampling"] == first["results"]["sampling"]
