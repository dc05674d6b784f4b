"""Rewriters measured: acceptance per kind and meaning-check precision, per rewriter model.

For every rewriter (``--rewriter NAME=SPEC``, any ``--model`` spec; ``@URL`` after the spec sets
the OpenAI-compatible server, e.g. a llama.cpp server on loopback), every data set and every
meaning check (``--filters``), ``sua-audit perturb`` writes a variant set of the first
``--limit`` items. The rewriter's samples are seeded and cached, so the second and third meaning
check reuse the first one's rewrites: the checks are compared on the same proposals.

Printed per (rewriter, data set, kind, check):

* acceptance: rewrites accepted / proposed (from the set's header), and slots left unfilled;
* precision: of the accepted rewrites that carry a hand label (``--labels``), the share
  labelled as meaning the same as the original, with a Wilson 95% interval and how many of
  the accepted ones were labelled.

Hand labels: ``--to-label OUT --sample N`` writes, per (rewriter, data set), a seeded sample of N
accepted rewrites (an equal share drawn from each check's accepts, strictest check first,
skipping those already labelled) as
JSONL with ``"same": null``; a person fills ``same`` (true / false) and appends the lines to the
labels file. Labels are keyed by the (original, rewrite) text pair (``key``, :func:`pair_key`),
so a label serves every check and every rerun that yields the same rewrite; the committed file
keeps the key, data set, item id, kind and label but not the texts (the originals are the
shared data sets' items, which stay out of the repository; the bench regenerates the rewrites
from its seeded cache).

What ``same`` means: for ``paraphrase`` and ``adversarial``, a reader would say the rewrite
says the same thing (the claim, sentiment or question kept; a dropped non-essential qualifier
is allowed, an added claim, a changed subject or an answer in place of the question is not);
for ``ambiguity``, the rewrite is the same question made less specific (it must still be a
question whose answers include the original's).

    python bench/rewriters.py --rewriter smollm=embedded/smollm2-135m-instruct \\
        --rewriter gemma=hf/$(python bench/_gemma.py) \\
        --rewriter llama-gemma=openai/gemma-3-270m@http://127.0.0.1:8765/v1 \\
        --limit 100 --cache W/rewriters.db --work W/rewriters --labels bench/data/rewrite_labels.jsonl
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import ROOT, dataset_path, emit, quiet_hf, table

DATASETS = {"sst2_dev": "paraphrase:2,adversarial:1", "truthfulqa_dev": "paraphrase:2,ambiguity:1"}
FILTERS = ("off", "lexical", "embedding")


def pair_key(original: str, rewrite: str) -> str:
    """The label key of one (original, rewrite) pair: whitespace-folded texts, hashed."""
    text = " ".join(original.split()) + "\0" + " ".join(rewrite.split())
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def perturb(
    name: str, spec: str, dataset: str, check: str, args: argparse.Namespace
) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
    model, _, url = spec.partition("@")
    out = args.work / name / f"{dataset}-{check}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable, "-m", "sua_audit", "perturb", "--dataset",
        str(dataset_path(f"{dataset}.jsonl")), "--limit", str(args.limit), "--perturbations",
        DATASETS[dataset], "--rewriter-model", model, "--meaning-filter", check, "--seed",
        str(args.seed), "--cache", str(args.cache), "--out", str(out),
    ]  # fmt: skip
    env = dict(os.environ)
    if url:
        env["SUA_AUDIT_BASE_URL"] = url
        env.setdefault("OPENAI_API_KEY", "unused-local-server")
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    header, items = lines[0], lines[1:]
    rewrites = []
    for item in items:
        original = item["variants"][0]["text"]
        for v in item["variants"][1:]:
            if v["kind"] in ("paraphrase", "adversarial", "ambiguity"):
                rewrites.append(
                    {
                        "id": item["id"],
                        "kind": v["kind"],
                        "original": original,
                        "rewrite": v["text"],
                    }
                )
    return header, rewrites, wall


def load_labels(path: Path | None) -> dict[str, bool]:
    labels: dict[str, bool] = {}
    if path is None or not path.is_file():
        return labels
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if not isinstance(row.get("same"), bool):
            sys.exit(f"error: {path}:{n}: same must be true or false, got {row.get('same')!r}")
        key = row.get("key") or pair_key(row["original"], row["rewrite"])
        labels[key] = row["same"]
    return labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rewriter", action="append", required=True, help="NAME=SPEC[@URL]")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--filters", default=",".join(FILTERS))
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--labels", type=Path, default=None)
    parser.add_argument("--to-label", type=Path, default=None)
    parser.add_argument("--sample", type=int, default=40)
    args = parser.parse_args()
    quiet_hf()
    rewriters = []
    for entry in args.rewriter:
        name, sep, spec = entry.partition("=")
        if not sep or not name or not spec:
            parser.error(
                f"--rewriter {entry!r}: write NAME=SPEC (e.g. smollm=embedded/smollm2-135m-instruct)"
            )
        rewriters.append((name, spec))
    datasets = [d for d in args.datasets.split(",") if d]
    for d in datasets:
        if d not in DATASETS:
            parser.error(f"--datasets: {d!r} is not one of {', '.join(DATASETS)}")
    checks = [c for c in args.filters.split(",") if c]
    labels = load_labels(args.labels)
    rows, figures, to_label = [], [], []
    for name, spec in rewriters:
        for dataset in datasets:
            union: dict[str, dict[str, Any]] = {}
            accepted_by: dict[str, list[str]] = {}
            for check in checks:
                header, rewrites, wall = perturb(name, spec, dataset, check, args)
                for r in rewrites:
                    union.setdefault(pair_key(r["original"], r["rewrite"]), r)
                accepted_by[check] = sorted(
                    {pair_key(r["original"], r["rewrite"]) for r in rewrites}
                )
                for kind, stats in sorted(header["rewrites"].items()):
                    mine = [r for r in rewrites if r["kind"] == kind]
                    judged = [
                        labels[k]
                        for r in mine
                        if (k := pair_key(r["original"], r["rewrite"])) in labels
                    ]
                    same = sum(judged)
                    lo, hi = wilson(same, len(judged))
                    precision = (
                        f"{same / len(judged):.2f} [{lo:.2f}, {hi:.2f}]" if judged else "n/a"
                    )
                    rate = stats.get("acceptance_rate")
                    rows.append(
                        [
                            name, dataset, kind, check, stats["proposed"], stats["accepted"],
                            "n/a" if rate is None else f"{rate:.2f}", stats["unfilled_slots"],
                            precision, f"{len(judged)}/{len(mine)}", f"{wall:.0f}",
                        ]
                    )  # fmt: skip
                    figures.append(
                        {
                            "rewriter": name, "spec": spec, "dataset": dataset, "kind": kind,
                            "check": check, **stats, "labelled": len(judged),
                            "labelled_same": same, "variants": len(mine),
                            "rewriter_calls": header.get("rewriter_calls"),
                            "rewriter_cache_hits": header.get("rewriter_cache_hits"),
                            "wall_s": round(wall, 1),
                        }
                    )  # fmt: skip
            if args.to_label is not None:
                # An equal share from each check's accepted rewrites (the strictest check's
                # first), so every check's precision rests on labels of its own accepts.
                rng = random.Random(f"{args.seed}:{name}:{dataset}")
                chosen: list[str] = []
                for i, check in enumerate(sorted(checks, key=FILTERS.index, reverse=True)):
                    share = (args.sample - len(chosen)) // (len(checks) - i)
                    fresh = [k for k in accepted_by[check] if k not in labels and k not in chosen]
                    chosen += rng.sample(fresh, min(share, len(fresh)))
                for k in sorted(chosen):
                    to_label.append(
                        {"rewriter": name, "dataset": dataset, **union[k], "same": None}
                    )
    print(
        table(
            [
                "rewriter", "data set", "kind", "meaning check", "proposed", "accepted",
                "acceptance", "unfilled", "precision [95% CI]", "labelled", "wall s",
            ],
            rows,
        )
    )  # fmt: skip
    if args.to_label is not None:
        args.to_label.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in to_label), encoding="utf-8"
        )
        print(f"wrote {len(to_label)} rewrites to label to {args.to_label}")
    emit({"bench": "rewriters", "limit": args.limit, "seed": args.seed, "rows": figures})


if __name__ == "__main__":
    main()
