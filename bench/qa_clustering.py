"""QA answer clustering: exact match vs meaning clusters, on finished runs (no audited-model call).

For each QA run folder given, ``sua-audit rescore RUN --equivalence METHOD`` re-clusters the
cached answers with every method asked for, and this prints per run and method:

* clusters per item (the size of the answer support that S and H are computed on) and the
  share of items where the method found fewer clusters than exact match;
* mean semantic entropy, and Spearman's rho between each method's semantic entropy and exact
  match's (how much the ranking of items changes);
* the evaluation's AUROC of semantic entropy as a failure predictor, or the evaluation's own
  reason when it has none (too few right answers);
* the rescore's wall time and the equivalence work it did (texts encoded, judge calls).

    python bench/qa_clustering.py --cache W/cache.db W/smollm/run-truthfulqa_dev-100-k4 ...
        [--methods exact,embedding,judge --judge-model M]

A judge is asked only for verdicts not yet in the cache, so the first judge rescore calls it
and a second does not. ``--work`` keeps the rescored folders (default: a temporary folder).
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

from _common import ROOT, emit, table

METHODS = ("exact", "embedding", "judge")


def rescore(run: Path, method: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "sua_audit", "rescore", str(run), "--equivalence", method,
        "--out", str(out), "--cache", str(args.cache),
    ]  # fmt: skip
    if method == "judge":
        cmd += ["--equivalence-model", args.judge_model]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r.get("status") == "ok" and r.get("task") == "qa"]
    summary = json.loads((out / "summary.json").read_text())
    evaluation_path = out / "evaluation.json"
    auroc: dict[str, Any] = {}
    if evaluation_path.is_file():
        evaluation = json.loads(evaluation_path.read_text())
        auroc = evaluation["metrics"]["clean"].get("semantic_entropy", {}).get("auroc", {})
    return {
        "wall_s": round(wall, 2),
        "ids": [r["id"] for r in rows],
        "clusters": [len(r["clusters"]) for r in rows],
        "semantic_entropy": [r["semantic_entropy"] for r in rows],
        "auroc": auroc.get("value"),
        "auroc_ci": auroc.get("ci"),
        "auroc_reason": auroc.get("reason"),
        "equivalence": summary.get("results", {}).get("equivalence"),
    }


def spearman(x: list[float], y: list[float]) -> float | None:
    from scipy.stats import spearmanr

    if len(set(x)) < 2 or len(set(y)) < 2:
        return None
    return float(spearmanr(x, y).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="QA run folders (sua-audit run)")
    parser.add_argument("--cache", type=Path, required=True, help="the runs' request cache")
    parser.add_argument("--methods", default="exact,embedding")
    parser.add_argument("--judge-model", default=None, help="judge for --methods ...,judge")
    parser.add_argument("--work", type=Path, default=None, help="keep rescored folders here")
    args = parser.parse_args()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    for m in methods:
        if m not in METHODS:
            parser.error(f"--methods: unknown method {m!r} (choose from {', '.join(METHODS)})")
    if "judge" in methods and not args.judge_model:
        parser.error("--methods judge needs --judge-model")
    if methods[0] != "exact":
        methods.insert(0, "exact")  # the reference every other method is compared with

    work = args.work or Path(tempfile.mkdtemp(prefix="qa-clustering-"))
    figures: dict[str, Any] = {}
    for run in args.runs:
        per: dict[str, dict[str, Any]] = {}
        for method in methods:
            per[method] = rescore(run, method, args, work / f"{run.name}-{method}")
        ref = per["exact"]
        rows = []
        for method, got in per.items():
            if got["ids"] != ref["ids"]:
                sys.exit(f"error: {run}: rescored items differ between exact and {method}")
            n = len(got["ids"])
            fewer = sum(a < b for a, b in zip(got["clusters"], ref["clusters"], strict=True))
            rho = spearman(got["semantic_entropy"], ref["semantic_entropy"])
            auroc = (
                f"{got['auroc']:.3f} [{got['auroc_ci'][0]:.2f}, {got['auroc_ci'][1]:.2f}]"
                if got["auroc"] is not None
                else f"n/a ({got['auroc_reason'] or 'no gold'})"
            )
            eq = got["equivalence"] or {}
            work_done = eq.get("texts_encoded", eq.get("model_calls", ""))
            rows.append(
                [
                    method,
                    n,
                    f"{sum(got['clusters']) / n:.2f}",
                    f"{fewer / n:.2f}",
                    f"{sum(got['semantic_entropy']) / n:.3f}",
                    "1" if method == "exact" else ("n/a" if rho is None else f"{rho:.3f}"),
                    auroc,
                    got["wall_s"],
                    work_done,
                ]
            )
            figures[f"{run.name}/{method}"] = {
                k: v for k, v in got.items() if k not in ("ids", "clusters", "semantic_entropy")
            } | {
                "mean_clusters": sum(got["clusters"]) / n,
                "share_fewer_clusters": fewer / n,
                "mean_semantic_entropy": sum(got["semantic_entropy"]) / n,
                "spearman_vs_exact": rho,
            }
        print(f"\n== {run}")
        print(
            table(
                [
                    "clustering",
                    "items",
                    "clusters/item",
                    "fewer than exact",
                    "mean SE (nats)",
                    "rho vs exact",
                    "AUROC of SE (clean failures)",
                    "rescore s",
                    "encoded / judged",
                ],
                rows,
            )
        )
    emit({"bench": "qa_clustering", "methods": methods, "runs": figures})


if __name__ == "__main__":
    main()
