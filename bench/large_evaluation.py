"""Evaluation of large runs: seconds and peak memory of ``sua-audit evaluate`` at 10k and 100k.

The script audits a small synthetic two-label classification dataset (``--base`` items,
default 2,000) with the fake backend, which needs no model:

    python -m sua_audit run --model fake/echo --dataset DATA --perturbations 1
        --cache-mode off --no-progress --out BASE

and then writes, for each size in ``--items`` (default 10,000 and 100,000), a run folder of
that many rows: the base run's rows repeated in order under new ids (``<id>-r<k>``), with a
summary.json whose counts and results sha256 match the new file. Each score value therefore
occurs about N / base times, which gives the tie groups more members than a real run has; the
rest of the format is the run's own. Each folder is then evaluated by

    python -m sua_audit evaluate RUN

in its own process, and the script reports its wall time, CPU time and peak memory
(``ru_maxrss`` from ``os.wait4``), and the resamples and test items evaluation.json records.
Targets: under 60 s and 500 MB at 100,000 items.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import emit, table
from _stub import run_measured, write_classification_dataset

TARGET_S = 60.0
TARGET_MB = 500.0


def base_run(n: int, workdir: Path) -> Path:
    """A finished fake-backend run of ``n`` synthetic items (cache off)."""
    dataset = write_classification_dataset(workdir / f"base-{n}.jsonl", n)
    out = workdir / "base"
    cmd = [sys.executable, "-m", "sua_audit", "run", "--model", "fake/echo"]
    cmd += ["--dataset", str(dataset), "--perturbations", "1", "--cache-mode", "off"]
    cmd += ["--no-progress", "--out", str(out)]
    m = run_measured(cmd)
    if m.returncode != 0:
        raise SystemExit(f"base run failed ({m.returncode}):\n{m.stderr[-2000:]}")
    return out


def scaled_run(base: Path, n: int, workdir: Path) -> Path:
    """A run folder of ``n`` rows: the base run's rows repeated under new ids."""
    rows = (base / "results.jsonl").read_text(encoding="utf-8").splitlines()
    out = workdir / f"run-{n}"
    out.mkdir()
    digest = hashlib.sha256()
    with (out / "results.jsonl").open("wb") as fh:
        for i in range(n):
            row = json.loads(rows[i % len(rows)])
            row["id"] = f"{row['id']}-r{i // len(rows)}"
            line = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
            digest.update(line)
            fh.write(line)
    summary = json.loads((base / "summary.json").read_text(encoding="utf-8"))
    scale = n / len(rows)
    results = summary["results"]
    for key in ("items", "items_scored", "items_failed", "items_with_gold"):
        if isinstance(results.get(key), int):
            results[key] = round(results[key] * scale)
    summary["run_id"] = f"{summary['run_id']}-x{n}"
    summary["out_dir"] = str(out)
    summary["outputs"]["results_sha256"] = digest.hexdigest()
    summary["outputs"]["results_rows"] = n
    (out / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return out


def evaluate(run: Path) -> dict[str, Any]:
    """``sua-audit evaluate RUN`` in its own process: seconds, CPU and peak memory."""
    m = run_measured([sys.executable, "-m", "sua_audit", "evaluate", str(run)])
    if m.returncode != 0:
        raise SystemExit(f"evaluate {run} failed ({m.returncode}):\n{m.stderr[-2000:]}")
    ev = json.loads((run / "evaluation.json").read_text(encoding="utf-8"))
    return {
        "items": ev["n_items"],
        "test_items": ev["split"]["n_test"],
        "resamples": ev["bootstrap"],
        "wall_s": round(m.wall_s, 2),
        "cpu_s": round(m.cpu_s, 2),
        "peak_mb": round(m.maxrss_mb, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--base", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sua-large-eval-") as tmp:
        workdir = Path(tmp)
        base = base_run(args.base, workdir)
        measured = [evaluate(scaled_run(base, n, workdir)) for n in args.items]
    cols = ["items", "test_items", "resamples", "wall_s", "cpu_s", "peak_mb"]
    print(table(cols, [[m[c] for c in cols] for m in measured]))
    largest = max(measured, key=lambda m: m["items"])
    met = largest["wall_s"] < TARGET_S and largest["peak_mb"] < TARGET_MB
    print(
        f"target at {largest['items']} items: < {TARGET_S:.0f} s and < {TARGET_MB:.0f} MB: "
        + ("met" if met else "missed")
    )
    emit({"evaluations": measured, "target_met": met})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
