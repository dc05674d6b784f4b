"""SUA-TR on the real embedded SmolLM2-135M: one step, then the checkpoint is audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import sua

pytest.importorskip("peft")
pytestmark = pytest.mark.slow


def test_embedded_model_trains_and_its_checkpoint_is_audited(
    shared_data: Path, tmp_path: Path, embedded_dir: Path
) -> None:
    ck = tmp_path / "ck"
    data = shared_data / "sst2_dev.jsonl"
    train = sua(
        "train", "--dataset", str(data), "--limit", "2", "--batch-size", "2",
        "-k", "2", "--max-steps", "1", "--out", str(ck), "--device", "cpu", timeout=None,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr
    summary = json.loads((ck / "train_summary.json").read_text())
    assert summary["steps"] == 1 and summary["base_model"] == str(embedded_dir)
    assert 0 < summary["loss_curve"][0]["ce"] < 5
    run = sua(
        "run", "--model", f"hf/{ck}", "--dataset", str(data), "--limit", "2",
        "--perturbations", "2", "--out", str(tmp_path / "run"), "--no-progress", timeout=None,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    rows = [json.loads(x) for x in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["status"] == "ok" for r in rows)
    assert all(abs(sum(r["distribution"].values()) - 1) < 1e-6 for r in rows)
