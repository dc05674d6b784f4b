"""Meaning filters on hand-written pairs: how often each one keeps paraphrases and drops the rest.

What it measures: on ``tests/perturb/data/meaning_pairs.jsonl`` (pairs ``a``, ``b`` with
``same`` true for a real paraphrase, false for a hard near-miss: negation flip, number change,
entity swap, antonym, scope change, dropped qualifier, topic drift), three filters from
``sua_audit.perturb.meaning``:

* guard — ``LexicalGuard`` (no model);
* judge — ``JudgeFilter`` on a model (default: the embedded SmolLM2-135M), both orders;
* combined — the guard, then the judge on what the guard accepted.

"Positive" means "same meaning" and "predicted positive" means "accepted". For each filter:
accuracy, balanced accuracy, precision and recall of "same" at the default thresholds; for the
judge, AUROC of its score min(P(yes | a, b), P(yes | b, a)) with a bootstrap 95% interval, the
AUROC of each order alone, and the threshold that maximises balanced accuracy (in-sample: an
optimistic figure on 90-odd pairs). A per-category table shows what each filter accepts.

Each pair has a ``split``: ``dev`` pairs were written first and used to develop the guard's
rules (its figures there are in-sample); ``heldout`` pairs were written after the rules were
frozen and never used to change them. The judge's prompt was written once and not tuned. ``--model``/``--base-url`` evaluate a
different judge (any spec ``--model`` takes, e.g. a hosted model), which is how to check whether
``--meaning-filter both`` is worth it for a given rewriter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import ROOT, emit, quiet_hf, table

PAIRS = ROOT / "tests" / "perturb" / "data" / "meaning_pairs.jsonl"


def load_pairs(path: Path) -> list[dict[str, Any]]:
    """The evaluation pairs: ``a``, ``b``, ``same``, ``category``."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve (Mann–Whitney; ties count one half). NaN without both classes."""
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def bootstrap_auroc(
    scores: Sequence[float], labels: Sequence[bool], *, reps: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """A percentile bootstrap 95% interval for :func:`auroc` (pairs resampled together)."""
    rng = random.Random(seed)
    n = len(scores)
    values = []
    for _ in range(reps):
        idx = [rng.randrange(n) for _ in range(n)]
        value = auroc([scores[i] for i in idx], [labels[i] for i in idx])
        if value == value:  # not NaN
            values.append(value)
    values.sort()
    return values[int(0.025 * len(values))], values[int(0.975 * len(values)) - 1]


def confusion(accepted: Sequence[bool], labels: Sequence[bool]) -> dict[str, float]:
    """Accuracy, balanced accuracy, precision / recall of "same", acceptance rate."""
    tp = sum(a and y for a, y in zip(accepted, labels, strict=True))
    fp = sum(a and not y for a, y in zip(accepted, labels, strict=True))
    fn = sum(not a and y for a, y in zip(accepted, labels, strict=True))
    tn = sum(not a and not y for a, y in zip(accepted, labels, strict=True))
    recall = tp / (tp + fn) if tp + fn else float("nan")
    specificity = tn / (tn + fp) if tn + fp else float("nan")
    return {
        "accuracy": (tp + tn) / len(labels),
        "balanced_accuracy": (recall + specificity) / 2,
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "recall": recall,
        "specificity": specificity,
        "accept_rate": (tp + fp) / len(labels),
    }


def best_threshold(scores: Sequence[float], labels: Sequence[bool]) -> tuple[float, float]:
    """The threshold t (accept iff score >= t) with the highest balanced accuracy, and that value.

    Candidates are the observed scores (and 1.01: reject all). Ties go to the lowest threshold.
    """
    best = (0.0, -1.0)
    for t in sorted(set(scores)) + [1.01]:
        bal = confusion([s >= t for s in scores], labels)["balanced_accuracy"]
        if bal > best[1] + 1e-12:
            best = (t, bal)
    return best


def row(name: str, m: dict[str, float], extra: str = "") -> list[object]:
    """One line of the summary table."""
    return [
        name,
        m["accuracy"],
        m["balanced_accuracy"],
        m["precision"],
        m["recall"],
        m["specificity"],
        m["accept_rate"],
        extra,
    ]


async def judge_scores(args: argparse.Namespace, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Both orders' P(yes) for every pair, from the judge model (no cache)."""
    from sua_audit.backends import get_backend
    from sua_audit.engine import Generator
    from sua_audit.perturb.meaning import JudgeFilter
    from sua_audit.prompting import PromptLibrary

    backend = get_backend(
        args.model, dtype=args.dtype, batch_size=args.batch_size, base_url=args.base_url
    )
    try:
        generator = Generator(backend, None, cache_mode="off")
        judge = JudgeFilter(generator, PromptLibrary(args.prompts_dir), args.threshold)
        await judge.scores(pairs[:2])  # load the weights before timing
        t0 = time.perf_counter()
        both = await judge.scores(pairs)
        seconds = time.perf_counter() - t0
        describe = judge.describe()
        identity = backend.describe()
    finally:
        await backend.aclose()
    errors = [x for pair in both for x in pair if isinstance(x, str)]
    if errors:
        raise SystemExit(f"error: {len(errors)} judge requests failed, first: {errors[0]}")
    return {
        "forward": [float(f) for f, _ in both],
        "backward": [float(b) for _, b in both],
        "seconds": seconds,
        "describe": describe,
        "backend": identity,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from sua_audit.perturb.meaning import LexicalGuard

    rows = load_pairs(args.pairs)
    pairs = [(r["a"], r["b"]) for r in rows]
    labels = [bool(r["same"]) for r in rows]
    categories = [r["category"] for r in rows]
    n_same = sum(labels)
    print(
        f"meaning filters: {len(rows)} pairs from {args.pairs.relative_to(ROOT)} "
        f"({n_same} paraphrases, {len(rows) - n_same} non-paraphrases)"
    )

    guard = LexicalGuard(args.min_recall)
    t0 = time.perf_counter()
    guard_verdicts = await guard.check_many(pairs)
    guard_s = time.perf_counter() - t0
    guard_ok = [v.accepted for v in guard_verdicts]
    guard_m = confusion(guard_ok, labels)
    splits = [r.get("split", "all") for r in rows]
    guard_splits = {}
    for split in sorted(set(splits)):
        idx = [i for i, sp in enumerate(splits) if sp == split]
        guard_splits[split] = (
            confusion([guard_ok[i] for i in idx], [labels[i] for i in idx]),
            len(idx),
        )
    recall_sweep = []
    for min_recall in (0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5):
        swept = await LexicalGuard(min_recall).check_many(pairs)
        m = confusion([v.accepted for v in swept], labels)
        recall_sweep.append((min_recall, m["balanced_accuracy"], m["recall"], m["specificity"]))

    judged = await judge_scores(args, pairs)
    fwd, bwd = judged["forward"], judged["backward"]
    score = [min(f, b) for f, b in zip(fwd, bwd, strict=True)]
    judge_ok = [s >= args.threshold for s in score]
    judge_m = confusion(judge_ok, labels)
    both_ok = [g and j for g, j in zip(guard_ok, judge_ok, strict=True)]
    both_m = confusion(both_ok, labels)
    judge_auc = auroc(score, labels)
    judge_ci = bootstrap_auroc(score, labels)
    best_t, best_bal = best_threshold(score, labels)
    # Combined: the judge's score where the guard accepted, below every threshold elsewhere.
    both_score = [s if g else -1.0 for s, g in zip(score, guard_ok, strict=True)]
    both_auc = auroc(both_score, labels)
    both_best_t, both_best_bal = best_threshold(both_score, labels)
    guard_auc = auroc([v.score or 0.0 for v in guard_verdicts], labels)

    print(
        table(
            [
                "filter",
                "accuracy",
                "bal. acc",
                "precision",
                "recall",
                "specificity",
                "accepted",
                "",
            ],
            [
                row("guard", guard_m, f"min_recall {args.min_recall:g}"),
                *(
                    row(f"  guard, {split}", m, f"{count} pairs")
                    for split, (m, count) in guard_splits.items()
                ),
                row("judge", judge_m, f"threshold {args.threshold:g}"),
                row("guard + judge", both_m, f"threshold {args.threshold:g}"),
            ],
        )
    )
    print(
        f"judge ({judged['backend'].get('model')}): AUROC of min P(yes) {judge_auc:.3f} "
        f"(bootstrap 95% CI {judge_ci[0]:.3f}-{judge_ci[1]:.3f}); "
        f"P(yes | a, b) alone {auroc(fwd, labels):.3f}, P(yes | b, a) alone "
        f"{auroc(bwd, labels):.3f}"
    )
    mean = {
        y: (
            sum(s for s, lab in zip(score, labels, strict=True) if lab == y)
            / max(1, labels.count(y))
        )
        for y in (True, False)
    }
    print(
        f"judge: mean min P(yes) {mean[True]:.3f} on paraphrases, {mean[False]:.3f} on "
        f"non-paraphrases; range {min(score):.3f}-{max(score):.3f}"
    )
    print(
        f"judge: best threshold (in-sample) {best_t:.3f} -> balanced accuracy {best_bal:.3f}; "
        f"guard + judge: AUROC {both_auc:.3f}, best threshold {both_best_t:.3f} -> balanced "
        f"accuracy {both_best_bal:.3f}"
    )
    print(
        "guard min_recall sweep (bal. acc / recall / specificity): "
        + ", ".join(f"{r:g}: {b:.3f}/{rc:.2f}/{sp:.2f}" for r, b, rc, sp in recall_sweep)
        + f"; AUROC of its content recall alone {guard_auc:.3f}"
    )
    rejected: dict[str, int] = defaultdict(int)
    for v in guard_verdicts:
        if not v.accepted:
            rejected[v.reason] += 1
    print(
        "guard rejections by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(rejected.items()))
    )

    cats = sorted(set(categories), key=lambda c: (not labels[categories.index(c)], c))
    per_cat = []
    for cat in cats:
        idx = [i for i, c in enumerate(categories) if c == cat]
        per_cat.append(
            [
                cat,
                "same" if labels[idx[0]] else "different",
                len(idx),
                f"{sum(guard_ok[i] for i in idx)}/{len(idx)}",
                f"{sum(judge_ok[i] for i in idx)}/{len(idx)}",
                f"{sum(both_ok[i] for i in idx)}/{len(idx)}",
                sum(score[i] for i in idx) / len(idx),
            ]
        )
    print("accepted per category:")
    print(
        table(
            ["category", "truth", "pairs", "guard", "judge", "guard + judge", "mean score"], per_cat
        )
    )
    n = len(rows)
    print(
        f"time: guard {1e6 * guard_s / n:.0f} us/pair; judge {judged['seconds']:.1f} s for "
        f"{2 * n} requests ({1000 * judged['seconds'] / n:.0f} ms/pair)"
    )
    useful = judge_ci[0] > 0.5 and both_m["balanced_accuracy"] > guard_m["balanced_accuracy"]
    verdict = (
        "the judge adds to the guard here: consider --meaning-filter both with this model"
        if useful
        else "the judge is not reliably better than chance or than the guard alone: keep "
        "--meaning-filter lexical for this judge model"
    )
    print(f"recommendation: {verdict}")

    def rounded(m: dict[str, float]) -> dict[str, float]:
        return {k: round(v, 4) for k, v in m.items()}

    return {
        "bench": "meaning_filter",
        "pairs": n,
        "paraphrases": n_same,
        "judge_model": judged["backend"].get("model"),
        "judge_template": judged["describe"]["template"],
        "min_recall": args.min_recall,
        "threshold": args.threshold,
        "guard": rounded(guard_m),
        "guard_by_split": {k: rounded(m) for k, (m, _) in guard_splits.items()},
        "judge": rounded(judge_m),
        "combined": rounded(both_m),
        "judge_auroc": round(judge_auc, 4),
        "judge_auroc_ci95": [round(x, 4) for x in judge_ci],
        "judge_auroc_forward": round(auroc(fwd, labels), 4),
        "judge_auroc_backward": round(auroc(bwd, labels), 4),
        "judge_best_threshold": round(best_t, 4),
        "judge_best_balanced_accuracy": round(best_bal, 4),
        "combined_auroc": round(both_auc, 4),
        "combined_best_threshold": round(both_best_t, 4),
        "combined_best_balanced_accuracy": round(both_best_bal, 4),
        "guard_recall_auroc": round(guard_auc, 4),
        "guard_rejections": dict(rejected),
        "judge_seconds": round(judged["seconds"], 2),
        "judge_useful": useful,
    }


def main() -> None:
    from sua_audit.perturb.meaning import DEFAULT_JUDGE_THRESHOLD, DEFAULT_MIN_RECALL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=lambda p: Path(p).resolve(), default=PAIRS)
    parser.add_argument("--model", default=None, help="judge model spec (default: embedded)")
    parser.add_argument("--base-url", default=None, help="OpenAI-compatible server for --model")
    parser.add_argument(
        "--prompts-dir", type=Path, default=None, help="override judge/equivalence.j2 from here"
    )
    parser.add_argument("--threshold", type=float, default=DEFAULT_JUDGE_THRESHOLD)
    parser.add_argument("--min-recall", type=float, default=DEFAULT_MIN_RECALL)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()
    quiet_hf()
    emit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
