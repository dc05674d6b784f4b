"""SUA-TR on SST-2 (CPU-sized): no training vs plain fine-tuning vs SUA-TR, audited for real.

What it measures: the embedded SmolLM2-135M is fine-tuned on a training split of
``../shared/data/sst2_dev.jsonl`` twice per seed, through the real command line:

* ``baseline`` — ``sua-audit train --baseline`` (cross-entropy only, α = β = 0);
* ``sua-tr`` — ``sua-audit train`` with α, β, λ (default 1, 1, 1), K = 4 rule perturbations;

both with the same seed, batches, steps, learning rate and LoRA settings. The untouched model
(``none``) and every checkpoint are then audited with ``sua-audit run --model hf/<checkpoint>``
on a disjoint evaluation split (the audit's default K = 4 perturbations, seed 0), and these are
computed from each run's results.jsonl:

* accuracy (clean prediction right) and robust accuracy (clean and all K variants right);
* mean [SUA]_+ (the audit's ``sua_pos``, λ = 1) and mean S;
* ECE of the clean confidence max p (10 equal-width bins);
* failure AUROC: how well SUA ranks clean failures above successes (and max-prob for reference).

95% confidence intervals come from a bootstrap over evaluation items (paired between models for
the differences SUA-TR − baseline). Seeds change training (data order, LoRA init); the
evaluation split and its perturbations are the same for every model.

Split (documented, deterministic): training = the first ``--train`` items of the file, evaluation
= the last ``--eval`` items; they are disjoint as long as train + eval ≤ 872.

Sized for a 2-core CPU: on an idle machine one SUA-TR step (batch 4 × (1 + K) prompts) takes
about 11 s, a baseline step about 1 s, an audit of 64 items about 20 s. The defaults (24
training items = 6 steps per run, 2 seeds, 64 evaluation items, lr 5e-4) take about 8 minutes
there; under heavy load from other jobs they took 16-33 minutes (docs/results.md, "SUA-TR").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, dataset_path, emit, quiet_hf, read_jsonl, table

CLI = [sys.executable, "-m", "sua_audit"]


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _sh(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"error: {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    with (run_dir / "results.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def per_item(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per evaluation item: correctness, robustness, SUA, [SUA]_+, S, confidence."""
    ok = [r for r in rows if r["status"] == "ok"]
    return {
        "correct": np.array([bool(r["correct"]) for r in ok]),
        "robust": np.array(
            [bool(r["correct"]) and all(v["correct"] for v in r["variants"]) for r in ok]
        ),
        "sua": np.array([r["sua"] for r in ok], dtype=float),
        "sua_pos": np.array([r["sua_pos"] for r in ok], dtype=float),
        "sensitivity": np.array([r["sensitivity"] for r in ok], dtype=float),
        "entropy": np.array([r["entropy"] for r in ok], dtype=float),
        "confidence": np.array([max(r["distribution"].values()) for r in ok], dtype=float),
    }


def ece(conf: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error with equal-width bins on [0, 1]."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return float(total)


def auroc(score: np.ndarray, failure: np.ndarray) -> float:
    """AUROC of ``score`` for ``failure`` (NaN when only one class is present)."""
    from sklearn.metrics import roc_auc_score

    if failure.all() or not failure.any():
        return math.nan
    return float(roc_auc_score(failure, score))


def metrics(d: dict[str, np.ndarray], idx: np.ndarray | None = None) -> dict[str, float]:
    """The reported figures on the items ``idx`` (all when None)."""
    if idx is not None:
        d = {k: v[idx] for k, v in d.items()}
    fail = ~d["correct"]
    return {
        "accuracy": float(d["correct"].mean()),
        "robust_accuracy": float(d["robust"].mean()),
        "mean_sua_pos": float(d["sua_pos"].mean()),
        "mean_sensitivity": float(d["sensitivity"].mean()),
        "mean_entropy": float(d["entropy"].mean()),
        "ece": ece(d["confidence"], d["correct"]),
        "auroc_sua": auroc(d["sua"], fail),
        "auroc_max_prob": auroc(1.0 - d["confidence"], fail),
    }


def bootstrap(
    runs: dict[str, dict[str, np.ndarray]], n_boot: int, seed: int = 12345
) -> tuple[dict[str, dict[str, list[float]]], dict[str, dict[str, list[float]]]]:
    """Per run and metric: 95% percentile CI over items, and the resampled values.

    Every resample is shared by all runs (same items), so differences between runs are paired.
    """
    rng = np.random.default_rng(seed)
    n = len(next(iter(runs.values()))["correct"])
    samples: dict[str, dict[str, list[float]]] = {r: {} for r in runs}
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        for name, d in runs.items():
            for k, v in metrics(d, idx).items():
                samples[name].setdefault(k, []).append(v)
    cis = {
        name: {
            k: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))]
            for k, v in m.items()
        }
        for name, m in samples.items()
    }
    return cis, samples


def main() -> None:
    """Run the experiment and print tables plus one BENCH_JSON line."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--train", type=int, default=24, help="training items (first N of the file)")
    ap.add_argument("--eval", type=int, default=64, help="evaluation items (last M of the file)")
    ap.add_argument("--seeds", default="0,1", help="training seeds, comma-separated")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--beta", type=float, default=1.0)
    ap.add_argument("--lam", type=float, default=1.0)
    ap.add_argument("--k", type=int, default=4, help="perturbations per training example")
    ap.add_argument("--extra-train-args", default="", help="more `sua-audit train` options")
    ap.add_argument(
        "--audit-dtype",
        default="auto",
        help="--dtype of the audits (float32 keeps bf16 batch noise out of S on a GPU)",
    )
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="skip training where WORK/ckpt/<mode>-s<seed> already holds a checkpoint "
        "(e.g. baselines copied from an earlier run with the same sizes)",
    )
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
    ap.add_argument("--work", type=Path, default=Path("/tmp/sua-tr-bench"))
    ap.add_argument("--json-out", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    quiet_hf()

    source = dataset_path("sst2_dev.jsonl")
    all_rows = read_jsonl(source, 872)
    if args.train + args.eval > len(all_rows):
        sys.exit(f"error: --train + --eval must be <= {len(all_rows)} (disjoint splits).")
    args.work.mkdir(parents=True, exist_ok=True)
    train_path, eval_path = args.work / "train.jsonl", args.work / "eval.jsonl"
    _write(train_path, all_rows[: args.train])
    _write(eval_path, all_rows[len(all_rows) - args.eval :])
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1"}
    cache = args.work / "cache.db"
    seeds = [int(s) for s in args.seeds.split(",")]
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    summaries: dict[str, Any] = {}

    def audit(name: str, model: list[str]) -> dict[str, np.ndarray]:
        out = args.work / "runs" / name
        timings[f"audit:{name}"] = _sh(
            [
                *CLI,
                "run",
                *model,
                "--dataset",
                str(eval_path),
                "--out",
                str(out),
                "--perturbations",
                "4",
                "--seed",
                "0",
                "--cache",
                str(cache),
                "--no-progress",
                "--dtype",
                args.audit_dtype,
            ],
            env,
        )
        print(f"audited {name} in {timings[f'audit:{name}']:.0f}s", file=sys.stderr, flush=True)
        return per_item(_rows(out))

    runs: dict[str, dict[str, np.ndarray]] = {"none": audit("none", [])}
    for seed in seeds:
        for mode in ("baseline", "sua-tr"):
            name = f"{mode}-s{seed}"
            ck = args.work / "ckpt" / name
            cmd = [
                *CLI,
                "train",
                "--dataset",
                str(train_path),
                "--out",
                str(ck),
                "--overwrite",
                "--seed",
                str(seed),
                "--batch-size",
                str(args.batch_size),
                "--epochs",
                str(args.epochs),
                "--lr",
                str(args.lr),
                "-k",
                str(args.k),
                "--alpha",
                str(args.alpha),
                "--beta",
                str(args.beta),
                "--lambda",
                str(args.lam),
                *args.extra_train_args.split(),
            ]
            if mode == "baseline":
                cmd.append("--baseline")
            if args.reuse and (ck / "train_summary.json").is_file():
                print(f"reusing the checkpoint {ck}", file=sys.stderr, flush=True)
            else:
                timings[f"train:{name}"] = _sh(cmd, env)
                took = timings[f"train:{name}"]
                print(f"trained {name} in {took:.0f}s", file=sys.stderr, flush=True)
            summary = json.loads((ck / "train_summary.json").read_text(encoding="utf-8"))
            summaries[name] = {"config": summary["config"]} | {
                k: summary[k] for k in ("steps", "wall_seconds", "trainable_parameters")
            }
            curve = summary["loss_curve"]
            summaries[name]["first_last_ce"] = [curve[0]["ce"], curve[-1]["ce"]]
            train_terms = {}
            for term in ("sensitivity", "entropy", "sua_pos"):
                vals = [r[term] for r in curve if r[term] is not None]
                train_terms[term] = float(np.mean(vals)) if vals else None
            summaries[name]["mean_train_terms"] = train_terms
            runs[name] = audit(name, ["--model", f"hf/{ck}"])

    point = {name: metrics(d) for name, d in runs.items()}
    # Cross-check with the audit's own evaluation (sua_audit.evaluation), when the run wrote it.
    official: dict[str, Any] = {}
    for name in runs:
        ev_path = args.work / "runs" / name / "evaluation.json"
        if ev_path.is_file():
            ev = json.loads(ev_path.read_text(encoding="utf-8"))
            official[name] = {
                "accuracy": ev["accuracy"],
                "robust_accuracy": ev["robust_accuracy"],
                "ece": ev["calibration"]["ece"],
                "auroc_sua": ev["metrics"]["clean"]["sua"]["auroc"],
                "auroc_max_prob": ev["metrics"]["clean"]["max_prob"]["auroc"],
            }
    if official:
        print("\nFrom each run's evaluation.json (sua_audit.evaluation):")
        ks = ["accuracy", "robust_accuracy", "ece", "auroc_sua", "auroc_max_prob"]
        print(
            table(
                ["model", *ks],
                [
                    [n]
                    + [
                        f"{o[k]['value']:.3f} [{o[k]['ci'][0]:.3f}, {o[k]['ci'][1]:.3f}]"
                        for k in ks
                    ]
                    for n, o in official.items()
                ],
            )
        )
    boot, samples = bootstrap(runs, args.boot)
    keys = ["accuracy", "robust_accuracy", "mean_sua_pos", "ece", "auroc_sua"]
    rows = []
    for name in runs:
        rows.append(
            [name]
            + [
                f"{point[name][k]:.3f} [{boot[name][k][0]:.3f}, {boot[name][k][1]:.3f}]"
                for k in keys
            ]
        )
    print(table(["model", *keys], rows))
    diffs: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        a, b = samples[f"sua-tr-s{seed}"], samples[f"baseline-s{seed}"]
        diffs[f"s{seed}"] = {}
        for k in keys:
            d = np.array(a[k]) - np.array(b[k])
            est = point[f"sua-tr-s{seed}"][k] - point[f"baseline-s{seed}"][k]
            diffs[f"s{seed}"][k] = [
                est,
                float(np.nanpercentile(d, 2.5)),
                float(np.nanpercentile(d, 97.5)),
            ]
    print("\nSUA-TR minus baseline (paired bootstrap 95% CI):")
    print(
        table(
            ["seed", *keys],
            [
                [s] + [f"{v[0]:+.3f} [{v[1]:+.3f}, {v[2]:+.3f}]" for v in d.values()]
                for s, d in diffs.items()
            ],
        )
    )
    means = {
        mode: {k: float(np.mean([point[f"{mode}-s{s}"][k] for s in seeds])) for k in point["none"]}
        for mode in ("baseline", "sua-tr")
    }
    total = time.perf_counter() - t_start
    print(
        f"\nwall time {total:.0f}s; train items {args.train}, eval items {args.eval}, seeds {seeds}"
    )
    result = {
        "benchmark": "sua_tr",
        "sizes": {
            "train": args.train,
            "eval": args.eval,
            "seeds": seeds,
            "k_train": args.k,
            "k_eval": 4,
            "batch_size": args.batch_size,
            "epochs": args.epochs,
            "lr": args.lr,
            "alpha": args.alpha,
            "beta": args.beta,
            "lambda": args.lam,
            "boot": args.boot,
        },
        "split": {"train": "first N items of sst2_dev.jsonl", "eval": "last M items"},
        "eval_positive_share": float(
            np.mean([r["label"] == "positive" for r in all_rows[-args.eval :]])
        ),
        "point": point,
        "ci95": boot,
        "diff_sua_tr_minus_baseline": diffs,
        "evaluation_json": official,
        "mean_over_seeds": means,
        "training": summaries,
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "wall_seconds": round(total, 1),
    }
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    emit(result)


if __name__ == "__main__":
    main()
