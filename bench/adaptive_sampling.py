"""Adaptive QA sampling against full sampling: answers saved, and what it does to the scores.

For every QA data set (``--datasets``, from ``../shared/data``) the script runs two real audits
of the first ``--limit`` items with the same seed and the same cache:

    python -m sua_audit run --dataset D --limit N --samples K --model M --cache C --out W/full
    python -m sua_audit run ... --adaptive-samples --out W/adaptive

(the second run's greedy answers come from the cache; its sampled answers are its own requests,
which on the local backend continue the same seeded sequence, so an unsettled variant's samples
equal the full run's). It prints, per data set:

* answers generated: greedy + samples per variant, full vs adaptive, and the share saved
  (from ``results.sampling`` in the adaptive run's summary);
* for each score (oriented: higher = more suspicious), the AUROC of detecting a wrong greedy
  answer under full and adaptive sampling, and their paired difference with a 95% bootstrap
  interval (``--boot`` resamples of the items, the same resamples for both runs);
* for each score, how far adaptive sampling moved it item by item: the mean absolute change and
  Spearman's rho between the two runs' values (defined even when a model gets almost every
  answer wrong and the AUROCs are not);
* robust accuracy (right on the clean input and no variant's answer in another cluster) under
  both, with the paired difference and its interval.

    python bench/adaptive_sampling.py --datasets truthfulqa_dev,nq_open_dev,ambignq_dev \\
        --limit 100 --work W --cache W/adaptive.db
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, dataset_path, emit, quiet_hf, table

#: Scores compared, with the sign that orients them (higher = more suspicious).
SCORES = {
    "sua": 1,
    "sensitivity": 1,
    "sensitivity_max": 1,
    "flip_rate": 1,
    "entropy": 1,
    "semantic_entropy": 1,
    "max_prob": -1,
    "self_consistency": -1,
}


def audit(dataset: str, out: Path, args: argparse.Namespace, *extra: str) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "sua_audit", "run", "--dataset",
        str(dataset_path(f"{dataset}.jsonl")), "--limit", str(args.limit), "--samples",
        str(args.samples), "--model", args.model, "--seed", str(args.seed), "--cache",
        str(args.cache), "--out", str(out), "--json", "--no-progress", "--temperature",
        str(args.temperature), *extra,
    ]  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(done.stdout)
    summary["_wall"] = time.perf_counter() - t0
    return summary


def rows(out: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["status"] != "failed" and row.get("correct") is not None:
            found[row["id"]] = row
    return found


def auroc(scores: np.ndarray, fail: np.ndarray) -> float:
    """P(score of a failure > score of a success), ties counted half (Mann–Whitney)."""
    pos, neg = scores[fail], scores[~fail]
    if not len(pos) or not len(neg):
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(len(order))
    values = np.concatenate([pos, neg])[order]
    i = 0
    while i < len(values):  # average ranks of ties
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def paired(
    a: np.ndarray, b: np.ndarray, fail: np.ndarray, idx: np.ndarray, fn: Any
) -> tuple[float, float, float]:
    """fn(b) − fn(a) on all items, and its 95% percentile interval over the resamples."""
    point = fn(b, fail) - fn(a, fail)
    diffs = np.array([fn(b[i], fail[i]) - fn(a[i], fail[i]) for i in idx])
    diffs = diffs[np.isfinite(diffs)]
    lo, hi = np.percentile(diffs, [2.5, 97.5]) if len(diffs) else (np.nan, np.nan)
    return point, float(lo), float(hi)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho (average ranks for ties); NaN when either side is constant."""
    from scipy.stats import spearmanr

    if np.all(a == a[0]) or np.all(b == b[0]):
        return float("nan")
    return float(spearmanr(a, b).statistic)


def robust(row: dict[str, Any]) -> bool:
    return bool(row["correct"]) and not row.get("flipped_variants")


def compare(
    dataset: str, full: dict[str, Any], adaptive: dict[str, Any], args: Any
) -> dict[str, Any]:
    full_rows, adapt_rows = rows(Path(full["out_dir"])), rows(Path(adaptive["out_dir"]))
    ids = sorted(set(full_rows) & set(adapt_rows))
    fail = np.array([not full_rows[i]["correct"] for i in ids])
    rng = np.random.default_rng(args.seed)
    idx = rng.integers(0, len(ids), size=(args.boot, len(ids)))
    block = adaptive["results"]["sampling"]
    variants = block["variants"]
    answers_full = variants + block["samples_full"]
    answers_adapt = variants + block["samples_drawn"]
    print(
        f"\n{dataset}: {len(ids)} graded items ({int(fail.sum())} wrong), {variants} QA "
        f"variants, {block['settled_after_first_round']} settled after {block['first_round']} "
        f"samples; answers generated {answers_full} → {answers_adapt} "
        f"({1 - answers_adapt / answers_full:.1%} saved); audited-model requests "
        f"{full['model_calls']} (full) and {adaptive['model_calls']} (adaptive, greedy from the "
        "cache)"
    )
    out = []
    result: dict[str, Any] = {
        "items": len(ids),
        "wrong": int(fail.sum()),
        "answers_full": answers_full,
        "answers_adaptive": answers_adapt,
        "sampling": block,
        "delta_auroc": {},
    }
    result["mean_abs_change"], result["spearman"] = {}, {}
    for name, sign in SCORES.items():
        a = np.array([sign * float(full_rows[i].get(name) or 0.0) for i in ids])
        b = np.array([sign * float(adapt_rows[i].get(name) or 0.0) for i in ids])
        point, lo, hi = paired(a, b, fail, idx, auroc)
        result["delta_auroc"][name] = [point, lo, hi]
        change = float(np.abs(b - a).mean())
        rho = spearman(a, b)
        result["mean_abs_change"][name] = change
        result["spearman"][name] = rho
        out.append(
            [
                name,
                f"{auroc(a, fail):.3f}",
                f"{auroc(b, fail):.3f}",
                f"{point:+.3f} [{lo:+.3f}, {hi:+.3f}]",
                f"{change:.4f}",
                f"{rho:.3f}",
            ]
        )
    ra = np.array([float(robust(full_rows[i])) for i in ids])
    rb = np.array([float(robust(adapt_rows[i])) for i in ids])
    point, lo, hi = paired(ra, rb, fail, idx, lambda x, _f: float(x.mean()))
    out.append(
        [
            "robust accuracy",
            f"{ra.mean():.3f}",
            f"{rb.mean():.3f}",
            f"{point:+.3f} [{lo:+.3f}, {hi:+.3f}]",
            f"{float(np.abs(rb - ra).mean()):.4f}",
            "-",
        ]
    )
    result["delta_robust_accuracy"] = [point, lo, hi]
    print(
        table(
            ["score", "AUROC full", "AUROC adaptive", "Δ [95% CI]", "mean |Δ score|", "Spearman"],
            out,
        ),
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="truthfulqa_dev,nq_open_dev,ambignq_dev")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--model", default="embedded/smollm2-135m-instruct")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=0.7, help="QA sampling temperature")
    parser.add_argument("--boot", type=int, default=2000)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    args = parser.parse_args()
    quiet_hf()
    results = {}
    for dataset in args.datasets.split(","):
        full = audit(dataset, args.work / dataset / "full", args)
        adaptive = audit(dataset, args.work / dataset / "adaptive", args, "--adaptive-samples")
        results[dataset] = compare(dataset, full, adaptive, args)
    emit(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
