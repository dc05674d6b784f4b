"""The answer-clustering check on real answers: MiniLM cosine vs hand labels.

``bench/data/answer_pairs_smollm.jsonl`` holds 150 pairs of distinct answers that SmolLM2-135M
gave to the same question (its clean-variant greedy answer and samples in the runs of
docs/results.md: 50 pairs from each of TruthfulQA, NQ-open and AmbigNQ dev), each labelled by
hand: ``same`` is true when both answers commit to the same answer to the question (the same
entity, value or claim; two replies that both give no answer count as the same). The pairs were
drawn with ``random.Random(15)`` per data set, stratified by cosine (20 at ≥ 0.65, 15 below, 15
in 0.5–0.8) so that both labels occur: the file is not a random sample of all pairs, and
precision at a threshold is only comparable between methods, not an estimate for a run. Items are
named by data set and id only (the questions stay in ../shared/data). One labeller.

Printed: AUROC of the cosine (with and without the number guard of
``sua_audit.equivalence``), and accuracy, balanced accuracy, precision and recall of "same" at
a few thresholds, including the shipped default.

With ``--judge NAME=SPEC`` (repeatable; ``@URL`` after the spec names an OpenAI-compatible
server, e.g. llama.cpp on loopback) each judge is scored the same way: the shipped
``--equivalence judge`` component, shown the question (read from ../shared/data by the pair's
data set and id), asked in both orders; its score is min P(yes). Judge requests are cached in
``--cache`` like any run's.

    python bench/answer_pairs.py
    python bench/answer_pairs.py --cache W/judge.db --judge smollm=embedded/smollm2-135m-instruct \
        --judge llama-gemma=openai/gemma-3-270m@http://127.0.0.1:8765/v1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from _common import ROOT, dataset_path, emit, quiet_hf, table

PAIRS = ROOT / "bench" / "data" / "answer_pairs_smollm.jsonl"


def rates(labels: list[bool], scores: list[float], t: float) -> dict[str, float]:
    tp = sum(1 for y, s in zip(labels, scores, strict=True) if y and s >= t)
    fp = sum(1 for y, s in zip(labels, scores, strict=True) if not y and s >= t)
    tn = sum(1 for y, s in zip(labels, scores, strict=True) if not y and s < t)
    fn = sum(1 for y, s in zip(labels, scores, strict=True) if y and s < t)
    pos, neg = tp + fn, tn + fp
    return {
        "accuracy": (tp + tn) / len(labels),
        "balanced_accuracy": (tp / pos + tn / neg) / 2 if pos and neg else float("nan"),
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": tp / pos if pos else float("nan"),
    }


def questions(rows: list[dict[str, Any]]) -> list[str]:
    """The question of each pair, from its data set in ../shared/data."""
    wanted: dict[str, dict[str, str]] = {}
    for name in sorted({r["dataset"] for r in rows}):
        with dataset_path(f"{name}.jsonl").open(encoding="utf-8") as fh:
            items = (json.loads(line) for line in fh if line.strip())
            wanted[name] = {str(i["id"]): i["input"] for i in items}
    return [wanted[r["dataset"]][str(r["id"])] for r in rows]


async def judge_scores(
    spec: str, rows: list[dict[str, Any]], cache: Path | None
) -> tuple[list[float | str], float, dict[str, Any]]:
    """min P(yes) over both orders per pair (an error message for a failed one), seconds, and
    the judge's description."""
    from sua_audit.backends import get_backend
    from sua_audit.engine import Generator
    from sua_audit.equivalence import JudgeEquivalence
    from sua_audit.prompting import PromptLibrary
    from sua_audit.store import Store

    model, _, url = spec.partition("@")
    if url:
        os.environ.setdefault("OPENAI_API_KEY", "unused-local-server")
    backend = get_backend(model, base_url=url or None, concurrency=4, timeout=300)
    store = Store.open(cache) if cache is not None else None
    try:
        generator = Generator(backend, store, cache_mode="use" if store else "off")
        judge = JudgeEquivalence(generator, PromptLibrary())
        t0 = time.perf_counter()
        by_question: dict[str, list[int]] = {}
        for i, q in enumerate(questions(rows)):
            by_question.setdefault(q, []).append(i)

        async def one_question(q: str, idx: list[int]) -> None:
            both = await judge.scores([(rows[i]["a"], rows[i]["b"]) for i in idx], context=q)
            for i, (fwd, bwd) in zip(idx, both, strict=True):
                if isinstance(fwd, str) or isinstance(bwd, str):
                    out[i] = fwd if isinstance(fwd, str) else str(bwd)
                else:
                    out[i] = min(fwd, bwd)

        out: list[float | str] = ["not scored"] * len(rows)
        await asyncio.gather(*(one_question(q, idx) for q, idx in by_question.items()))
        return out, time.perf_counter() - t0, judge.describe()
    finally:
        await backend.aclose()
        if store is not None:
            store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--judge", action="append", default=[], metavar="NAME=SPEC[@URL]",
        help="a judge to score as well (repeatable)",
    )  # fmt: skip
    parser.add_argument("--cache", type=Path, default=None, help="request cache of the judges")
    args = parser.parse_args()
    quiet_hf()
    from sklearn.metrics import roc_auc_score

    from sua_audit.equivalence import (
        DEFAULT_ANSWER_THRESHOLD,
        EmbeddingEquivalence,
        MiniLMEncoder,
    )

    rows = [json.loads(x) for x in Path(PAIRS).read_text(encoding="utf-8").splitlines() if x]
    labels = [bool(r["same"]) for r in rows]
    pairs = [(r["a"], r["b"]) for r in rows]
    raw = asyncio.run(EmbeddingEquivalence(MiniLMEncoder(), number_guard=False).compare(pairs))
    guarded = asyncio.run(EmbeddingEquivalence(MiniLMEncoder()).compare(pairs))
    cos = [float(m.score or 0.0) for m in raw]
    cos_guard = [0.0 if m.detail else float(m.score or 0.0) for m in guarded]
    print(f"{len(rows)} pairs, {sum(labels)} labelled same")
    figures: dict[str, object] = {"pairs": len(rows), "same": sum(labels)}
    body = []
    for name, scores in (("cosine", cos), ("cosine + number guard", cos_guard)):
        auroc = roc_auc_score(labels, scores)
        figures[f"auroc_{name}"] = round(auroc, 3)
        for t in sorted({0.6, DEFAULT_ANSWER_THRESHOLD, 0.7, 0.8, 0.85}):
            r = rates(labels, scores, t)
            figures[f"{name}@{t}"] = {k: round(v, 3) for k, v in r.items()}
            body.append([name, f"{auroc:.3f}", t, *(f"{r[k]:.3f}" for k in r)])
    # Exact match after normalisation: every pair here is two distinct strings (that is how
    # they were drawn), so it calls them all different.
    r = rates(labels, [0.0] * len(labels), 0.5)
    body.append(["exact match", "0.500", "-", *(f"{r[k]:.3f}" for k in r)])
    for entry in args.judge:
        name, _, spec = entry.partition("=")
        if not spec:
            parser.error(f"--judge {entry!r}: write NAME=SPEC")
        scored, seconds, describe = asyncio.run(judge_scores(spec, rows, args.cache))
        errors = [x for x in scored if isinstance(x, str)]
        if errors:
            raise SystemExit(f"error: judge {name}: {len(errors)} pairs failed, first: {errors[0]}")
        scores = [float(x) for x in scored]
        auroc = roc_auc_score(labels, scores)
        calls = describe["model_calls"]
        print(f"judge {name}: {spec}, {calls} model calls, {seconds:.1f} s")
        figures[f"judge_{name}"] = {"auroc": round(auroc, 3), "calls": calls, "seconds": seconds}
        for t in (0.3, 0.5, 0.7):
            r = rates(labels, scores, t)
            figures[f"judge_{name}@{t}"] = {k: round(v, 3) for k, v in r.items()}
            body.append([f"judge {name}", f"{auroc:.3f}", t, *(f"{r[k]:.3f}" for k in r)])
    print(
        table(["score", "AUROC", "threshold", "accuracy", "bal. acc", "precision", "recall"], body)
    )
    emit({"bench": "answer_pairs", **figures})


if __name__ == "__main__":
    main()
