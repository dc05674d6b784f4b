"""QA grading rules against hand labels: how often each rule agrees with a careful reader.

What it measures: on ``tests/evaluation/data/qa_hand_labels.jsonl`` (real greedy answers of
the embedded SmolLM2-135M to questions sampled from truthfulqa_dev, nq_open_dev and
ambignq_dev, plus hand-written hard cases; every answer labelled by reading it against the
question and the gold answers), the rules of ``sua_audit.evaluation.correctness``:

* ``exact`` — normalised exact match;
* ``contains`` — the default: a gold answer inside the answer's first sentence, with the
  negation, echo and list/hedge guards (``sua_audit.scoring.qa.answer_contains``);
* ``f1>=0.5`` — best token F1 against a gold answer at least 0.5;
* ``substring`` — an ablation, not a rule of the tool: the normalised gold as a whole-token
  run anywhere in the normalised answer, with no guard.

"Positive" means "the answer is right". Per rule, overall and per source: accuracy (share of
answers where rule and hand label agree), Cohen's kappa, false accepts (rule says right,
label says wrong) and false rejects (the reverse). The last line is ``BENCH_JSON {...}``.
No model calls; it runs in well under a second.

Usage: ``.venv/bin/python bench/qa_grading.py [--labels PATH] [--show-disagreements]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import ROOT, emit, table

from sua_audit.evaluation.correctness import grade_answer
from sua_audit.scoring.qa import normalize_answer

LABELS = ROOT / "tests" / "evaluation" / "data" / "qa_hand_labels.jsonl"
SOURCES = ("truthfulqa", "nq_open", "ambignq", "hand")


def load_labels(path: Path) -> list[dict[str, Any]]:
    """The labelled answers; exit (status 1) with a clear message on a bad file."""
    if not path.is_file():
        sys.exit(f"error: label file {path} not found.")
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            missing = [
                k for k in ("id", "source", "question", "answer", "golds", "label") if k not in row
            ]
            if missing:
                sys.exit(f"error: {path}:{n}: missing field(s) {', '.join(missing)}.")
            rows.append(row)
    return rows


def substring(row: dict[str, Any]) -> bool:
    """Ablation: some normalised gold is a whole-token run of the normalised answer."""
    answer = f" {normalize_answer(row['answer'])} "
    return any(g and f" {g} " in answer for g in map(normalize_answer, row["golds"]))


RULES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "exact": lambda r: grade_answer(r["answer"], r["golds"], "exact"),
    "contains": lambda r: grade_answer(r["answer"], r["golds"], "contains", question=r["question"]),
    "f1>=0.5": lambda r: grade_answer(r["answer"], r["golds"], "f1", f1_threshold=0.5),
    "substring": substring,
}


def cohen_kappa(pred: Sequence[bool], gold: Sequence[bool]) -> float:
    """Cohen's kappa of two binary raters; NaN when chance agreement is 1 (one class only)."""
    n = len(pred)
    if n == 0:
        return math.nan
    po = sum(p == g for p, g in zip(pred, gold, strict=True)) / n
    yes_p, yes_g = sum(pred) / n, sum(gold) / n
    pe = yes_p * yes_g + (1 - yes_p) * (1 - yes_g)
    return math.nan if pe >= 1.0 else (po - pe) / (1 - pe)


def agreement(pred: Sequence[bool], gold: Sequence[bool]) -> dict[str, Any]:
    """Accuracy, kappa, false accepts and false rejects of ``pred`` against ``gold``."""
    n = len(pred)
    return {
        "n": n,
        "positives": sum(gold),
        "accuracy": sum(p == g for p, g in zip(pred, gold, strict=True)) / n if n else math.nan,
        "kappa": cohen_kappa(pred, gold),
        "false_accepts": sum(p and not g for p, g in zip(pred, gold, strict=True)),
        "false_rejects": sum(g and not p for p, g in zip(pred, gold, strict=True)),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=LABELS, help="hand-labelled JSONL")
    parser.add_argument(
        "--show-disagreements", action="store_true", help="list the answers contains gets wrong"
    )
    args = parser.parse_args()
    rows = load_labels(args.labels)
    labels = [bool(r["label"]) for r in rows]
    preds = {name: [rule(r) for r in rows] for name, rule in RULES.items()}

    groups: dict[str, list[int]] = {"all": list(range(len(rows)))}
    groups["real"] = [i for i, r in enumerate(rows) if r["source"] != "hand"]
    for src in SOURCES:
        groups[src] = [i for i, r in enumerate(rows) if r["source"] == src]

    label_name = args.labels.relative_to(ROOT) if args.labels.is_relative_to(ROOT) else args.labels
    result: dict[str, Any] = {"bench": "qa_grading", "labels": str(label_name), "groups": {}}
    out_rows = []
    for group, idx in groups.items():
        gold = [labels[i] for i in idx]
        result["groups"][group] = {}
        for name, pred in preds.items():
            a = agreement([pred[i] for i in idx], gold)
            result["groups"][group][name] = a
            out_rows.append(
                [group, a["n"], a["positives"], name, a["accuracy"], a["kappa"],
                 a["false_accepts"], a["false_rejects"]]
            )  # fmt: skip
    print(f"hand labels: {args.labels} ({len(rows)} answers, {sum(labels)} labelled right)\n")
    header = ["group", "n", "right", "rule", "accuracy", "kappa", "false acc.", "false rej."]
    print(table(header, out_rows))
    if args.show_disagreements:
        print("\ncontains disagrees with the hand label on:")
        for i, r in enumerate(rows):
            if preds["contains"][i] != labels[i]:
                verdict = "false accept" if preds["contains"][i] else "false reject"
                print(f"  {r['id']} ({verdict}): {r['answer'][:90]!r} vs {r['golds'][:3]}")
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
