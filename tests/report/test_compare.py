"""`sua-audit compare` on two real runs of the embedded model at two temperatures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.report.conftest import RealRuns, sua

pytestmark = pytest.mark.slow


def _rows(run: Path) -> dict[str, dict]:
    lines = (run / "results.jsonl").read_text().splitlines()
    return {r["id"]: r for r in map(json.loads, lines)}


def _norm(text: object) -> str:
    return " ".join(str(text).split()).casefold().rstrip(".")


def _check_disagreements(run_a: Path, run_b: Path) -> dict:
    done = sua("compare", str(run_a), str(run_b), "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    a, b = _rows(run_a), _rows(run_b)
    listed = {e["id"] for e in data["disagreements"]}
    for item_id in a:
        differs = (
            _norm(a[item_id]["prediction"]) != _norm(b[item_id]["prediction"])
            or a[item_id]["correct"] != b[item_id]["correct"]
        )
        assert (item_id in listed) == differs, item_id
    # Items whose correctness differs are listed first.
    flags = [e["correctness_differs"] for e in data["disagreements"]]
    assert flags == sorted(flags, reverse=True)
    return data


def test_compare_two_temperatures(real_runs: RealRuns) -> None:
    data = _check_disagreements(real_runs.warm, real_runs.hot)
    for run, entry in zip((real_runs.warm, real_runs.hot), data["runs"], strict=True):
        res = json.loads((run / "summary.json").read_text())["results"]
        assert entry["metrics"]["robust_accuracy"]["value"] == pytest.approx(
            res["robust_accuracy"], abs=1e-5
        )
        assert entry["metrics"]["mean_sua_pos"]["value"] == pytest.approx(
            res["mean_scores"]["sua_pos"], abs=1e-5
        )


def test_compare_markdown_and_html(real_runs: RealRuns, tmp_path: Path) -> None:
    md = sua("compare", str(real_runs.warm), str(real_runs.hot))
    assert md.returncode == 0, md.stderr
    ids = [
        json.loads((r / "summary.json").read_text())["run_id"]
        for r in (real_runs.warm, real_runs.hot)
    ]
    header = md.stdout.splitlines()[2]
    assert all(i in header for i in ids)
    for label in ("robust accuracy", "mean [SUA]₊", "collapse rate", "SUA AUROC", "cost (USD)"):
        assert any(line.startswith(f"| {label} |") for line in md.stdout.splitlines()), label
    assert len(md.stdout.splitlines()) < 60
    out = tmp_path / "compare.html"
    html = sua(
        "compare", str(real_runs.warm), str(real_runs.hot), "--format", "html", "--out", str(out)
    )
    assert html.returncode == 0, html.stderr
    page = out.read_text()
    assert page.count('class="compare"') == 1 and all(i in page for i in ids)
    assert "<script" not in page


def test_compare_refuses_different_datasets(real_runs: RealRuns) -> None:
    done = sua("compare", str(real_runs.warm), str(real_runs.xss))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "different datasets" in done.stderr and "xss.jsonl" in done.stderr
    assert done.stdout == ""
    one = sua("compare", str(real_runs.warm))
    assert one.returncode == 2 and "at least two" in one.stderr


@pytest.mark.server
def test_compare_embedded_and_llama_server(real_runs: RealRuns, server_run: Path) -> None:
    """The embedded model in transformers against its GGUF behind llama.cpp: same dataset."""
    data = _check_disagreements(real_runs.warm, server_run)
    models = [r["model"] for r in data["runs"]]
    assert models == ["embedded/smollm2-135m-instruct", "openai/smollm2"]
    md = sua("compare", str(real_runs.warm), str(server_run))
    assert md.returncode == 0, md.stderr
    assert f"Items where the runs disagree: {len(data['disagreements'])}" in md.stdout
