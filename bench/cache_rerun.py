"""A full ``sua-audit run`` and its identical rerun: what the request cache saves.

What it measures, for two cases — the first 24 items of ``../shared/data/sst2_dev.jsonl``
(classification: exact label scoring) and the first 8 items of
``../shared/data/truthfulqa_dev.jsonl`` (QA: greedy + 5 samples per variant) — each written to a
subset file in a temporary folder:

1. the first run: ``python -m sua_audit run --dataset SUBSET --cache FRESH.db --out DIR --json``
   on the embedded model with default settings, against a fresh cache;
2. the identical rerun (same command, same cache, a new ``--out``), ``--reruns`` times.

For each it records the subprocess wall time (process start, imports, pipeline, output, and the
model load when the model is loaded) and the ``wall_seconds`` of ``summary.json`` (measured
inside ``audit()``: from after dataset validation to the end, so without interpreter start-up
and imports). The headline is the subprocess ratio rerun/first (target <= 5%), using the median
rerun. The rerun must make zero model calls (exit 1 otherwise).

The local backend loads its weights on the first request the cache cannot answer, so a rerun
answered wholly from the cache should never load the model (``summary["model"]["load_seconds"]``
is then null, reported as "not loaded") nor import torch. One extra, untimed rerun per case checks
the latter: it runs the same command in an interpreter that reports afterwards whether torch or
transformers is in ``sys.modules``.

A first run can only be first once per cache, so the two sides cannot be alternated like the
other benchmarks; instead a small warm-up run (cache off) loads the model files into the page
cache before any timing, and the reruns are repeated and their median taken.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, dataset_path, emit, median, read_jsonl, table

TARGET_RATIO = 0.05
HEAVY = ("torch", "transformers")

# Runs the CLI in this interpreter, then prints which heavy modules it imported (on stderr's
# last line), whatever the CLI's exit status.
CHECK_IMPORTS = (
    "import json, runpy, sys\n"
    "sys.argv = ['sua-audit', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('sua_audit', run_name='__main__')\n"
    "except SystemExit:\n"
    "    pass\n"
    f"print('HEAVY ' + json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr)\n"
)


def write_subset(src: Path, n: int, dest: Path) -> Path:
    """The first ``n`` items of ``src`` as their own JSONL file."""
    rows = read_jsonl(src, n)
    dest.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return dest


def run_args(dataset: Path, cache: Path, out: Path, *extra: str) -> list[str]:
    """The ``sua-audit run`` arguments every run uses."""
    return [
        "run",
        "--dataset",
        str(dataset),
        "--cache",
        str(cache),
        "--out",
        str(out),
        "--json",
        "--no-progress",
        *extra,
    ]


def sua_run(dataset: Path, cache: Path, out: Path, *extra: str) -> tuple[float, dict[str, Any]]:
    """Run ``sua-audit run`` in a subprocess; return its wall time and summary.json."""
    cmd = [sys.executable, "-m", "sua_audit", *run_args(dataset, cache, out, *extra)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        sys.exit(f"error: sua-audit run exited {proc.returncode}: {' '.join(cmd)}")
    summary_path = out / "summary.json"
    summary: dict[str, Any] = json.loads(summary_path.read_text(encoding="utf-8"))
    printed = json.loads(proc.stdout)
    if printed.get("run_id") != summary.get("run_id"):
        sys.exit("error: --json output and summary.json disagree")
    return wall, summary


def heavy_imports(dataset: Path, cache: Path, out: Path) -> list[str]:
    """Which of torch / transformers an (untimed) rerun imports."""
    cmd = [sys.executable, "-c", CHECK_IMPORTS, *run_args(dataset, cache, out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("HEAVY ")]
    if not lines:
        sys.stderr.write(proc.stderr[-4000:])
        sys.exit("error: the import check printed no result")
    loaded: list[str] = json.loads(lines[-1][len("HEAVY ") :])
    return loaded


def load_seconds(summary: dict[str, Any]) -> float | None:
    """The model load time of a run, or None when the model was never loaded."""
    value = summary.get("model", {}).get("load_seconds")
    return None if value is None else float(value)


def fmt_load(value: float | None) -> str:
    return "not loaded" if value is None else f"{value:.2f}"


def run_case(name: str, dataset: Path, tmp: Path, reruns: int) -> dict[str, Any]:
    """First run against a fresh cache, then ``reruns`` identical reruns."""
    cache = tmp / f"{name}-cache.db"
    first_wall, first = sua_run(dataset, cache, tmp / f"{name}-out-0")
    rerun_walls, rerun_inproc, rerun_calls, rerun_hits, loads = [], [], [], [], []
    for i in range(1, reruns + 1):
        wall, summary = sua_run(dataset, cache, tmp / f"{name}-out-{i}")
        rerun_walls.append(wall)
        rerun_inproc.append(float(summary["wall_seconds"]))
        rerun_calls.append(int(summary["model_calls"]))
        rerun_hits.append(int(summary["cache_hits"]))
        loads.append(load_seconds(summary))
    loaded = [x for x in loads if x is not None]
    rerun_wall = median(rerun_walls)
    rerun_in = median(rerun_inproc)
    first_in = float(first["wall_seconds"])
    return {
        "case": name,
        "items": first["dataset"]["items"],
        "first_model_calls": first["model_calls"],
        "first_wall_s": round(first_wall, 3),
        "first_wall_seconds": round(first_in, 3),
        "first_model_load_s": load_seconds(first),
        "rerun_wall_s": round(rerun_wall, 3),
        "rerun_wall_s_all": [round(w, 3) for w in rerun_walls],
        "rerun_wall_seconds": round(rerun_in, 3),
        "rerun_model_loaded": len(loaded),
        "rerun_model_load_s": round(median(loaded), 3) if loaded else None,
        "rerun_model_calls": max(rerun_calls),
        "rerun_cache_hits": min(rerun_hits),
        "rerun_heavy_imports": heavy_imports(dataset, cache, tmp / f"{name}-out-check"),
        "ratio_subprocess": round(rerun_wall / first_wall, 4),
        "ratio_wall_seconds": round(rerun_in / first_in, 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sst2-n", type=int, default=24, help="sst2_dev items (default 24)")
    parser.add_argument("--qa-n", type=int, default=8, help="truthfulqa_dev items (default 8)")
    parser.add_argument("--reruns", type=int, default=3, help="reruns per case (default 3)")
    args = parser.parse_args()
    if min(args.sst2_n, args.qa_n, args.reruns) < 1:
        parser.error("--sst2-n, --qa-n and --reruns must be at least 1")
    sst2 = dataset_path("sst2_dev.jsonl")
    tqa = dataset_path("truthfulqa_dev.jsonl")

    with tempfile.TemporaryDirectory(prefix="sua-bench-") as d:
        tmp = Path(d)
        cases = [
            ("sst2", write_subset(sst2, args.sst2_n, tmp / f"sst2_dev_{args.sst2_n}.jsonl")),
            ("truthfulqa", write_subset(tqa, args.qa_n, tmp / f"truthfulqa_dev_{args.qa_n}.jsonl")),
        ]
        # Warm-up: converts the embedded model if needed and pulls its files and the libraries
        # into the page cache, so the first timed run does not pay for a cold disk.
        sua_run(
            cases[0][1], tmp / "warm.db", tmp / "warm-out", "--limit", "1", "--cache-mode", "off"
        )
        results = [run_case(name, path, tmp, args.reruns) for name, path in cases]

    print(f"cache rerun: first run vs identical rerun (median of {args.reruns}), embedded model")
    print(
        table(
            [
                "case",
                "items",
                "calls 1st",
                "1st wall s",
                "1st in-proc s",
                "1st load s",
                "rerun wall s",
                "rerun in-proc s",
                "rerun load",
                "rerun calls",
                "rerun hits",
                "rerun imports",
                "ratio wall",
                "ratio in-proc",
            ],
            [
                [
                    r["case"],
                    r["items"],
                    r["first_model_calls"],
                    r["first_wall_s"],
                    r["first_wall_seconds"],
                    fmt_load(r["first_model_load_s"]),
                    r["rerun_wall_s"],
                    r["rerun_wall_seconds"],
                    fmt_load(r["rerun_model_load_s"]),
                    r["rerun_model_calls"],
                    r["rerun_cache_hits"],
                    ", ".join(r["rerun_heavy_imports"]) or "no torch",
                    f"{r['ratio_subprocess']:.1%}",
                    f"{r['ratio_wall_seconds']:.1%}",
                ]
                for r in results
            ],
        )
    )
    zero_calls = all(r["rerun_model_calls"] == 0 for r in results)
    never_loaded = all(r["rerun_model_loaded"] == 0 for r in results)
    no_torch = all(not r["rerun_heavy_imports"] for r in results)
    met_sub = all(r["ratio_subprocess"] <= TARGET_RATIO for r in results)
    met_in = all(r["ratio_wall_seconds"] <= TARGET_RATIO for r in results)
    print(
        f"rerun model calls all 0: {zero_calls}; reruns never loaded the model: {never_loaded}; "
        f"reruns never imported torch/transformers: {no_torch}"
    )
    print(
        f"target rerun/first <= {TARGET_RATIO:.0%}: subprocess wall "
        f"{'met' if met_sub else 'NOT met'} (max {max(r['ratio_subprocess'] for r in results):.1%}), "
        f"in-process wall_seconds {'met' if met_in else 'NOT met'}"
    )
    emit(
        {
            "bench": "cache_rerun",
            "reruns": args.reruns,
            "cases": results,
            "rerun_model_calls_zero": zero_calls,
            "rerun_model_never_loaded": never_loaded,
            "rerun_no_torch_import": no_torch,
            "target_ratio": TARGET_RATIO,
            "target_met_subprocess": met_sub,
            "target_met_wall_seconds": met_in,
            "max_ratio_subprocess": max(r["ratio_subprocess"] for r in results),
            "max_ratio_wall_seconds": max(r["ratio_wall_seconds"] for r in results),
        }
    )
    if not zero_calls:
        print("error: a rerun made model calls; the cache did not answer every request")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
