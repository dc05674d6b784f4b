"""Requests per (item, variant) when a hosted backend scores labels from log-probabilities.

For each case, a fresh stub server (``tests/support/stub_openai.py``, latency 0, in its own
process) answers a full ``python -m sua_audit run --model openai/x --base-url STUB --cache-mode
off`` on the first N items of a classification (or NLI) dataset. The stub returns
``top_logprobs`` for label questions, so every variant should cost exactly one request
(target 1). The count is the stub's own (every request it served, whatever the path, counted
server-side), divided by items × (K+1) and by the variants actually written to
``results.jsonl``. The summary's ``http_calls`` (the client's count) and answer paths are
reported beside it.

Cases: ``sst2`` (``../shared/data/sst2_dev.jsonl``, classification) and ``snli``
(``../shared/data/snli_dev.jsonl``, NLI, also scored from log-probabilities), plus ``synthetic``
(a generated two-label dataset, needs no shared data).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import SHARED_DATA, dataset_path, emit, read_jsonl, table
from _stub import StubProcess, cli_run_args, run_measured, write_classification_dataset

TARGET = 1.0
CASES = {"sst2": "sst2_dev.jsonl", "snli": "snli_dev.jsonl", "synthetic": None}


def run_case(name: str, n: int, k: int, workdir: Path) -> dict[str, Any]:
    """One CLI run against a fresh stub; requests per variant."""
    subset = workdir / f"{name}.jsonl"
    source = CASES[name]
    if source is None:
        write_classification_dataset(subset, n, seed=1)
    else:
        rows = read_jsonl(dataset_path(source), n)
        subset.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = workdir / f"out-{name}"
    with StubProcess(latency=0.0, record=False) as stub:
        m = run_measured(
            [
                sys.executable,
                "-m",
                "sua_audit",
                *cli_run_args(subset, stub.base_url, out, "--perturbations", str(k)),
            ]
        )
    if m.returncode != 0:
        print(m.stderr[-3000:], file=sys.stderr)
        return {"case": name, "ok": False, "returncode": m.returncode}
    summary = m.summary_json()
    variants = 0
    items = 0
    with (out / "results.jsonl").open(encoding="utf-8") as f:
        for line in f:
            items += 1
            variants += len(json.loads(line)["variants"])
    planned = items * (k + 1)
    served = stub.served
    return {
        "case": name,
        "ok": summary["failed_requests"] == 0 and served is not None,
        "items": items,
        "k": k,
        "planned_variants": planned,
        "variants": variants,
        "stub_requests": served,
        "http_calls": summary["model"]["http_calls"],
        "model_calls": summary["model_calls"],
        "retries": summary["model"]["retries"],
        "answer_paths": summary["results"]["answer_paths"],
        "per_planned_variant": None if served is None else served / planned,
        "per_variant": None if served is None else served / variants,
        "wall_s": m.wall_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="items per case")
    parser.add_argument("--k", type=int, default=4, help="perturbed variants per item")
    parser.add_argument(
        "--cases", nargs="+", choices=list(CASES), default=list(CASES), help="cases to run"
    )
    args = parser.parse_args()
    for name in args.cases:
        if CASES[name] is not None and not (SHARED_DATA / CASES[name]).is_file():
            dataset_path(CASES[name])  # exits with the standard message
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases:
            r = run_case(name, args.n, args.k, Path(tmp))
            results.append(r)
            print(f"  {name}: {r}", flush=True)
    print()
    print(
        table(
            [
                "case",
                "items",
                "variants (planned)",
                "stub requests",
                "http_calls",
                "requests / variant",
                "paths",
            ],
            [
                [
                    r["case"],
                    r.get("items", "-"),
                    f"{r.get('variants', '-')} ({r.get('planned_variants', '-')})",
                    r.get("stub_requests", "-"),
                    r.get("http_calls", "-"),
                    r.get("per_variant", "-"),
                    r.get("answer_paths", "-"),
                ]
                for r in results
            ],
        )
    )
    met = all(r.get("per_variant") == TARGET for r in results if r["ok"])
    ok = all(r["ok"] for r in results)
    print(f"\ntarget requests per (item, variant) = 1: {'met' if met and ok else 'missed'}")
    emit(
        {
            "bench": "hosted_requests",
            "n": args.n,
            "k": args.k,
            "results": results,
            "target": TARGET,
            "target_met": met and ok,
            "ok": ok,
        }
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
