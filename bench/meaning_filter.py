"""Meaning checks on labelled pairs: how often each one keeps paraphrases and drops the rest.

What it measures: on one or more pair files (``--pairs``, repeatable; pairs ``a``, ``b`` with
``same`` true for a real paraphrase), each meaning-check method in ``--methods``:

* ``lexical`` — ``LexicalGuard`` (no model);
* ``judge`` — ``JudgeFilter`` on a model (default: the embedded SmolLM2-135M), both orders;
* ``guard+judge`` — the guard, then the judge on what the guard accepted;
* ``embedding`` — cosine similarity of sentence embeddings from ``sua_audit.equivalence``,
  skipped with a message where that module does not exist yet.

The pair files: ``tests/perturb/data/meaning_pairs.jsonl`` (default; 132 hand-written pairs,
hard near-misses: negation flip, number change, entity swap, antonym, scope change, dropped
qualifier, topic drift) and ``bench/data/meaning_pairs_public.jsonl`` (400 PAWS-Wiki pairs,
high word overlap either way; provenance in bench/data/README.md).

"Positive" means "same meaning" and "predicted positive" means "accepted". For each method and
file: accuracy, balanced accuracy, precision and recall of "same" at the method's own
threshold; AUROC of its continuous score with a bootstrap 95% interval; and the threshold on
that score which maximises accuracy, with that accuracy — chosen on the same pairs, so an
optimistic (in-sample) figure. Scores: the judge's min(P(yes | a, b), P(yes | b, a)); the
guard's content-word recall where no hard rule (numbers, negation, names, quantifiers,
question form) fired and 0 where one did; guard + judge: the judge's score where the guard
accepted, -1 elsewhere; embedding: the cosine.

Each pair has a ``split``. Hand-written: ``dev`` pairs were written first and used to develop
the guard's rules (its figures there are in-sample), ``heldout`` pairs were written after the
rules were frozen. Public: ``dev`` is for choosing thresholds, ``heldout`` for reporting. The
judge's prompt was written once and not tuned. ``--model``/``--base-url`` evaluate a different
judge (any spec ``--model`` takes, e.g. a hosted model), which is how to check whether
``--meaning-filter both`` is worth it for a given rewriter.

A method is a callable from the pairs to one ``(accepted, score)`` per pair; adding one is an
entry in :func:`build_methods`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from _common import ROOT, emit, quiet_hf, table

PAIRS = ROOT / "tests" / "perturb" / "data" / "meaning_pairs.jsonl"
PUBLIC_PAIRS = ROOT / "bench" / "data" / "meaning_pairs_public.jsonl"
METHOD_NAMES = ("lexical", "judge", "guard+judge", "embedding")
DEFAULT_METHODS = "lexical,judge,guard+judge,embedding"

#: A meaning check: all pairs in, one ``(accepted, score)`` per pair out.
Method = Callable[[list[tuple[str, str]]], Awaitable[list[tuple[bool, float]]]]

#: Guard rejections that do not depend on the content-word recall (its score is 0 for these).
_HARD_RULES = frozenset(
    {
        "number_changed",
        "negation_changed",
        "entity_dropped",
        "entity_added",
        "quantifier_changed",
        "question_changed",
        "empty",
    }
)


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


def best_threshold(
    scores: Sequence[float], labels: Sequence[bool], *, key: str = "accuracy"
) -> tuple[float, float]:
    """The threshold t (accept iff score >= t) with the highest ``key`` metric, and that value.

    Candidates are the observed scores and one above the highest (reject all). Ties go to the
    lowest threshold. Chosen on the same pairs it is measured on: an in-sample figure.
    """
    best = (0.0, -1.0)
    for t in sorted(set(scores)) + [max(scores) + 1.0]:
        value = confusion([s >= t for s in scores], labels)[key]
        if value > best[1] + 1e-12:
            best = (t, value)
    return best


def guard_score(verdict: Any) -> float:
    """The guard's continuous score: content-word recall, or 0 where a hard rule fired."""
    if verdict.reason in _HARD_RULES:
        return 0.0
    return float(verdict.score or 0.0)


class Methods:
    """The meaning checks by name; the judge runs once per pair list and is shared."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.notes: dict[str, Any] = {}
        self._judged: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}

    async def lexical(self, pairs: list[tuple[str, str]]) -> list[tuple[bool, float]]:
        from sua_audit.perturbation.meaning import LexicalGuard

        t0 = time.perf_counter()
        verdicts = await LexicalGuard(self.args.min_recall).check_many(pairs)
        self.notes["lexical_seconds"] = time.perf_counter() - t0
        self.notes["lexical_verdicts"] = verdicts
        return [(v.accepted, guard_score(v)) for v in verdicts]

    async def judge_raw(self, pairs: list[tuple[str, str]]) -> dict[str, Any]:
        key = tuple(pairs)
        if key not in self._judged:
            self._judged[key] = await judge_scores(self.args, pairs)
        return self._judged[key]

    async def judge(self, pairs: list[tuple[str, str]]) -> list[tuple[bool, float]]:
        judged = await self.judge_raw(pairs)
        self.notes["judge"] = judged
        scores = [min(f, b) for f, b in zip(judged["forward"], judged["backward"], strict=True)]
        return [(s >= self.args.threshold, s) for s in scores]

    async def guard_judge(self, pairs: list[tuple[str, str]]) -> list[tuple[bool, float]]:
        from sua_audit.perturbation.meaning import LexicalGuard

        guard = await LexicalGuard(self.args.min_recall).check_many(pairs)
        judged = await self.judge(pairs)
        return [
            (g.accepted and ok, s if g.accepted else -1.0)
            for g, (ok, s) in zip(guard, judged, strict=True)
        ]


def embedding_method() -> tuple[Method | None, str]:
    """The embedding check of ``sua_audit.equivalence`` as ``--meaning-filter embedding`` runs it.

    Score: the cosine of the two MiniLM vectors, or 0 when the number guard vetoes the pair (two
    texts stating different numbers), as the lexical score is 0 when a hard rule fires.
    """
    try:
        from sua_audit.equivalence import EmbeddingEquivalence, MiniLMEncoder
    except ImportError as exc:
        return None, f"skipped: no embedding equivalence in this checkout ({exc})"
    try:
        from sua_audit.equivalence import check_embedding_available

        check_embedding_available("bench/meaning_filter.py --methods embedding")
    except Exception as exc:  # the extra is not installed
        return None, f"skipped: {exc}"

    async def run(pairs: list[tuple[str, str]]) -> list[tuple[bool, float]]:
        model = EmbeddingEquivalence(MiniLMEncoder())
        matches = await model.compare(pairs)
        return [(m.equivalent, 0.0 if m.detail else float(m.score or 0.0)) for m in matches]

    return run, "ok"


def build_methods(
    args: argparse.Namespace, names: Sequence[str]
) -> tuple[Methods, dict[str, Method]]:
    """The methods asked for, by name (an unavailable one is left out with a printed reason)."""
    state = Methods(args)
    known: dict[str, Method] = {
        "lexical": state.lexical,
        "judge": state.judge,
        "guard+judge": state.guard_judge,
    }
    chosen: dict[str, Method] = {}
    for name in names:
        if name == "embedding":
            method, why = embedding_method()
            if method is None:
                print(f"embedding: {why}")
                continue
            chosen[name] = method
        else:
            chosen[name] = known[name]
    return state, chosen


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
    from sua_audit.perturbation.meaning import JudgeFilter
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


def _rounded(m: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in m.items()}


def _threshold_text(name: str, args: argparse.Namespace) -> str:
    if name == "lexical":
        return f"min_recall {args.min_recall:g}"
    if name in ("judge", "guard+judge"):
        return f"threshold {args.threshold:g}"
    return ""


async def evaluate_file(
    path: Path, args: argparse.Namespace, names: Sequence[str]
) -> dict[str, Any]:
    """Every method on one pair file: printed tables, and the figures as a dict."""
    rows = load_pairs(path)
    pairs = [(r["a"], r["b"]) for r in rows]
    labels = [bool(r["same"]) for r in rows]
    categories = [r["category"] for r in rows]
    splits = [r.get("split", "all") for r in rows]
    n, n_same = len(rows), sum(labels)
    try:
        shown = path.relative_to(ROOT)
    except ValueError:
        shown = path
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"\n== {shown}: {n} pairs ({n_same} paraphrases, {n - n_same} non-paraphrases)")
    print(f"sha256 {digest}")

    state, methods = build_methods(args, names)
    results: dict[str, dict[str, Any]] = {}
    accepted: dict[str, list[bool]] = {}
    scores: dict[str, list[float]] = {}
    table_rows = []
    for name, method in methods.items():
        out = await method(pairs)
        ok = [a for a, _ in out]
        sc = [s for _, s in out]
        accepted[name], scores[name] = ok, sc
        m = confusion(ok, labels)
        auc = auroc(sc, labels)
        ci = bootstrap_auroc(sc, labels)
        best_t, best_acc = best_threshold(sc, labels)
        by_split = {}
        for split in sorted(set(splits)):
            idx = [i for i, sp in enumerate(splits) if sp == split]
            by_split[split] = confusion([ok[i] for i in idx], [labels[i] for i in idx])
            by_split[split]["auroc"] = auroc([sc[i] for i in idx], [labels[i] for i in idx])
            by_split[split]["pairs"] = len(idx)
        results[name] = {
            **_rounded(m),
            "auroc": round(auc, 4),
            "auroc_ci95": [round(x, 4) for x in ci],
            "best_threshold_in_sample": round(best_t, 4),
            "best_threshold_accuracy_in_sample": round(best_acc, 4),
            "by_split": {k: _rounded(v) for k, v in by_split.items()},
        }
        table_rows.append(
            [
                *row(name, m, _threshold_text(name, args))[:-1],
                auc,
                f"{ci[0]:.3f}-{ci[1]:.3f}",
                f"{best_t:.3g} -> {best_acc:.3f}",
            ]
        )
        for split, sm in by_split.items():
            table_rows.append(
                [*row(f"  {name}, {split}", sm)[:-1], sm["auroc"], f"{int(sm['pairs'])} pairs", ""]
            )
    if not methods:
        print("no method to run")
        return {"pairs": n, "paraphrases": n_same, "methods": {}}
    print(
        table(
            [
                "method",
                "accuracy",
                "bal. acc",
                "precision",
                "recall",
                "specificity",
                "accepted",
                "AUROC",
                "AUROC 95% CI",
                "best t -> acc (in-sample)",
            ],
            table_rows,
        )
    )
    extra: dict[str, Any] = {}

    if "lexical" in methods:
        verdicts = state.notes["lexical_verdicts"]
        from sua_audit.perturbation.meaning import LexicalGuard

        sweep = []
        for min_recall in (0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5):
            swept = await LexicalGuard(min_recall).check_many(pairs)
            m = confusion([v.accepted for v in swept], labels)
            sweep.append((min_recall, m["accuracy"], m["recall"], m["specificity"]))
        recall_auc = auroc([v.score or 0.0 for v in verdicts], labels)
        print(
            "lexical min_recall sweep (accuracy / recall / specificity): "
            + ", ".join(f"{r:g}: {a:.3f}/{rc:.2f}/{sp:.2f}" for r, a, rc, sp in sweep)
            + f"; AUROC of content-word recall alone (hard rules ignored) {recall_auc:.3f}"
        )
        rejected: dict[str, int] = defaultdict(int)
        for v in verdicts:
            if not v.accepted:
                rejected[v.reason] += 1
        print(
            "lexical rejections by reason: "
            + (", ".join(f"{k} {v}" for k, v in sorted(rejected.items())) or "none")
        )
        extra["lexical_recall_auroc"] = round(recall_auc, 4)
        extra["lexical_rejections"] = dict(rejected)
        extra["lexical_us_per_pair"] = round(1e6 * state.notes["lexical_seconds"] / n, 1)

    judged = state.notes.get("judge")
    if judged is not None:
        fwd, bwd = judged["forward"], judged["backward"]
        score = [min(f, b) for f, b in zip(fwd, bwd, strict=True)]
        mean = {
            y: sum(s for s, lab in zip(score, labels, strict=True) if lab == y)
            / max(1, labels.count(y))
            for y in (True, False)
        }
        print(
            f"judge ({judged['backend'].get('model')}): P(yes | a, b) alone AUROC "
            f"{auroc(fwd, labels):.3f}, P(yes | b, a) alone {auroc(bwd, labels):.3f}; mean min "
            f"P(yes) {mean[True]:.3f} on paraphrases, {mean[False]:.3f} on non-paraphrases; "
            f"{judged['seconds']:.1f} s for {2 * n} requests"
        )
        extra.update(
            judge_model=judged["backend"].get("model"),
            judge_template=judged["describe"]["template"],
            judge_auroc_forward=round(auroc(fwd, labels), 4),
            judge_auroc_backward=round(auroc(bwd, labels), 4),
            judge_seconds=round(judged["seconds"], 2),
        )

    cats = sorted(set(categories), key=lambda c: (not labels[categories.index(c)], c))
    per_cat = []
    for cat in cats:
        idx = [i for i, c in enumerate(categories) if c == cat]
        per_cat.append(
            [cat, "same" if labels[idx[0]] else "different", len(idx)]
            + [f"{sum(accepted[name][i] for i in idx)}/{len(idx)}" for name in methods]
        )
    print("accepted per category:")
    print(table(["category", "truth", "pairs", *methods], per_cat))

    if "lexical" in results and "guard+judge" in results and "judge" in results:
        useful = (
            results["judge"]["auroc_ci95"][0] > 0.5
            and results["guard+judge"]["balanced_accuracy"]
            > results["lexical"]["balanced_accuracy"]
        )
        print(
            "recommendation: "
            + (
                "the judge adds to the guard here: consider --meaning-filter both with this model"
                if useful
                else "the judge is not reliably better than chance or than the guard alone: keep "
                "--meaning-filter lexical for this judge model"
            )
        )
        extra["judge_useful"] = useful
    return {"pairs": n, "paraphrases": n_same, "methods": results, **extra}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    names = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHOD_NAMES]
    if unknown:
        raise SystemExit(f"error: unknown method(s) {unknown}; use {', '.join(METHOD_NAMES)}")
    files = args.pairs or [PAIRS]
    report: dict[str, Any] = {
        "bench": "meaning_filter",
        "methods": names,
        "min_recall": args.min_recall,
        "threshold": args.threshold,
        "files": {},
    }
    print(f"meaning checks: {', '.join(names)} on {len(files)} pair file(s)")
    for path in files:
        try:
            key = str(path.relative_to(ROOT))
        except ValueError:
            key = str(path)
        report["files"][key] = await evaluate_file(path, args, names)
    return report


def main() -> None:
    from sua_audit.perturbation.meaning import DEFAULT_JUDGE_THRESHOLD, DEFAULT_MIN_RECALL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs",
        type=lambda p: Path(p).resolve(),
        action="append",
        help=f"a pair file; repeat for several (default: {PAIRS.relative_to(ROOT)}; the public "
        f"pairs are {PUBLIC_PAIRS.relative_to(ROOT)})",
    )
    parser.add_argument(
        "--methods",
        default=DEFAULT_METHODS,
        help=f"comma-separated, from {', '.join(METHOD_NAMES)} (default: all; 'lexical' alone "
        "needs no model)",
    )
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
