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

    python bench/answer_pairs.py
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from _common import ROOT, emit, quiet_hf, table

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


def main() -> None:
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
    print(
        table(["score", "AUROC", "threshold", "accuracy", "bal. acc", "precision", "recall"], body)
    )
    emit({"bench": "answer_pairs", **figures})


if __name__ == "__main__":
    main()
