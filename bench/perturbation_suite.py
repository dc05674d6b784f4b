"""Perturbation suite on real data: paraphrase acceptance, mean S per kind, wall time per item.

Runs ``sua-audit run`` with the embedded model (audited and rewriter) on the first N items of
../shared/data/sst2_dev.jsonl and truthfulqa_dev.jsonl with a plan that uses every kind, in a
fresh cache (so the wall time includes writing the rewrites), and prints per dataset:

* the acceptance rate of each model-written kind (proposed → accepted by the meaning check,
  with the main rejection reasons) and the slots left unfilled;
* the mean sensitivity S per perturbation kind (JS, nats; which kind moves the model most);
* wall time per item, and the rewriter's share of the requests.

    python bench/perturbation_suite.py [--limit 100] [--qa-limit N] [--plan ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, dataset_path, emit, quiet_hf

DEFAULT_PLAN = "paraphrase:2,typo:1,synonym:1,deletion:1,homoglyph:1,distractor:1,instruction:1"
DATASETS = ("sst2_dev.jsonl", "truthfulqa_dev.jsonl")


def run_one(name: str, limit: int, plan: str, workdir: Path) -> dict:
    out = workdir / name.replace(".jsonl", "")
    cmd = [
        sys.executable, "-m", "sua_audit", "run", "--dataset", str(dataset_path(name)),
        "--limit", str(limit), "--perturbations", plan, "--samples", "5",
        "--cache", str(workdir / "cache.db"), "--out", str(out), "--json", "--no-progress",
    ]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    res = summary["results"]
    rewrites = res["perturbation"]["rewrites"]
    print(f"\n== {name}: first {limit} items, plan {plan}")
    print(
        f"wall {wall:.1f} s = {wall / limit:.2f} s/item; audited-model requests "
        f"{summary['model_calls']}, rewriter requests {summary['rewriter_calls']}"
    )
    for kind, r in sorted(rewrites.items()):
        top = sorted(r["rejected"].items(), key=lambda kv: -kv[1])[:4]
        rate = "n/a" if r["acceptance_rate"] is None else f"{r['acceptance_rate']:.2f}"
        print(
            f"  {kind:<12} proposed {r['proposed']:>4}  accepted {r['accepted']:>4}  "
            f"rate {rate}  unfilled slots {r['unfilled_slots']:>3}  top rejections {top}"
        )
    by_kind = res["mean_sensitivity_by_kind"]
    print(
        "  mean S by kind: "
        + ", ".join(f"{k} {v:.3f}" for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1]))
    )
    print(
        f"  accuracy {res['accuracy']}, robust accuracy {res['robust_accuracy']}, "
        f"mean S {res['mean_scores']['sensitivity']:.3f}"
    )
    return {
        "dataset": name,
        "items": limit,
        "wall_seconds": round(wall, 1),
        "seconds_per_item": round(wall / limit, 2),
        "rewrites": rewrites,
        "mean_sensitivity_by_kind": by_kind,
        "accuracy": res["accuracy"],
        "robust_accuracy": res["robust_accuracy"],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument(
        "--qa-limit", type=int, default=None, help="items of truthfulqa_dev (default: --limit)"
    )
    parser.add_argument("--plan", default=DEFAULT_PLAN)
    args = parser.parse_args()
    quiet_hf()
    limits = {"sst2_dev.jsonl": args.limit, "truthfulqa_dev.jsonl": args.qa_limit or args.limit}
    print(f"sizes: {limits}; load average at start {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_one(name, limits[name], args.plan, Path(tmp)) for name in DATASETS]
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    emit({"benchmark": "perturbation_suite", "plan": args.plan, "results": results})


if __name__ == "__main__":
    main()
