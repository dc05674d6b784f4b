"""``run --prompts-dir`` / ``SUA_AUDIT_PROMPTS_DIR`` and a bad ``--system-prompt``, as a user
runs them (the behaviour itself is tested in-process in tests/test_task_prompts.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sua_audit.prompting import PromptLibrary
from tests.support.cli import sua, sua_in_process

ITEM = {"id": "q1", "task": "qa", "input": "What is the capital of France?", "answers": ["Paris"]}


def _qa_override(folder: Path, text: str) -> str:
    (folder / "task").mkdir(parents=True)
    (folder / "task" / "qa.j2").write_text(text)
    return PromptLibrary(folder).get("task", "qa").ref


def test_the_prompts_dir_variable_is_the_default_and_the_flag_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = tmp_path / "qa.jsonl"
    dataset.write_text(json.dumps(ITEM) + "\n")
    from_env = _qa_override(tmp_path / "env", "Q: {{ input }}\nA:")
    from_flag = _qa_override(tmp_path / "flag", "Question: {{ input }}\nShort answer:")
    monkeypatch.setenv("SUA_AUDIT_PROMPTS_DIR", str(tmp_path / "env"))
    args = ["run", "--model", "fake/echo", "--dataset", str(dataset), "-k", "1", "--json"]
    args += ["--samples", "1", "--cache", str(tmp_path / "c.db"), "--no-progress"]
    by_env = sua(*args, "--out", str(tmp_path / "a"))
    assert by_env.returncode == 0, by_env.stderr
    summary = json.loads(by_env.stdout)
    assert summary["prompts"]["task"] == {"qa": from_env}
    assert summary["config"]["prompts_dir"] == str((tmp_path / "env").resolve())
    by_flag = sua(*args, "--out", str(tmp_path / "b"), "--prompts-dir", str(tmp_path / "flag"))
    assert by_flag.returncode == 0, by_flag.stderr
    assert json.loads(by_flag.stdout)["prompts"]["task"] == {"qa": from_flag}


def test_a_missing_system_prompt_exits_2_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "deployed.txt"
    (tmp_path / "qa.jsonl").write_text(json.dumps(ITEM) + "\n")
    res = sua_in_process(
        "run", "--model", "fake/echo", "--dataset", str(tmp_path / "qa.jsonl"),
        "--system-prompt", str(missing), "--out", str(tmp_path / "o"),
        "--cache", str(tmp_path / "c.db"),
    )  # fmt: skip
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert res.stderr.strip() == f"error: --system-prompt {missing}: no such file."
    assert not (tmp_path / "o").exists()
