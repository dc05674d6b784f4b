"""The default QA rule against hand labels (tests/evaluation/data/qa_hand_labels.jsonl).

The file holds 126 greedy answers of the embedded SmolLM2-135M (42 questions each from
truthfulqa_dev, nq_open_dev and ambignq_dev, seeded sample) and 40 hand-written hard cases,
each labelled by reading the answer against the question and the gold answers. Measured with
bench/qa_grading.py (docs/benchmarks.md): ``contains`` agrees with the labels on 149 of 166
answers (0.898, kappa 0.64), ``exact`` on 135 (0.813, kappa 0.09); on the 126 real answers
alone 115 (0.913) against 114 (0.905).

The floors below are the measured figures minus a margin of about three answers overall and
two on the real answers, so a change to the rule that costs more than that fails here.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sua_audit.evaluation.correctness import grade_answer

LABELS = Path(__file__).parent / "data" / "qa_hand_labels.jsonl"
FLOOR_ALL = 0.88  # measured 149/166 = 0.898; margin 3 answers
FLOOR_REAL = 0.895  # measured 115/126 = 0.913; margin 2 answers
FLOOR_KAPPA = 0.55  # measured 0.642


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    with LABELS.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _accuracy(rows: list[dict[str, Any]], rule: str) -> float:
    hits = sum(
        grade_answer(r["answer"], r["golds"], rule, question=r["question"]) == r["label"]
        for r in rows
    )
    return hits / len(rows)


def _kappa(rows: list[dict[str, Any]], rule: str) -> float:
    pred = [grade_answer(r["answer"], r["golds"], rule, question=r["question"]) for r in rows]
    gold = [r["label"] for r in rows]
    n = len(rows)
    po = sum(p == g for p, g in zip(pred, gold, strict=True)) / n
    pe = (sum(pred) / n) * (sum(gold) / n) + (1 - sum(pred) / n) * (1 - sum(gold) / n)
    return (po - pe) / (1 - pe)


def test_label_file_is_well_formed(rows: list[dict[str, Any]]) -> None:
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert {"id", "source", "question", "answer", "golds", "label"} <= r.keys()
        assert isinstance(r["label"], bool) and r["golds"] and isinstance(r["answer"], str)
    counts = Counter(r["source"] for r in rows)
    assert set(counts) == {"truthfulqa", "nq_open", "ambignq", "hand"}
    assert counts["truthfulqa"] + counts["nq_open"] + counts["ambignq"] >= 120
    assert min(counts["truthfulqa"], counts["nq_open"], counts["ambignq"]) >= 40
    assert counts["hand"] >= 20
    # Both labels occur, or agreement figures mean little.
    assert 20 <= sum(r["label"] for r in rows) <= len(rows) - 20


def test_contains_agrees_with_hand_labels_at_least_as_well_as_exact(
    rows: list[dict[str, Any]],
) -> None:
    real = [r for r in rows if r["source"] != "hand"]
    assert _accuracy(rows, "contains") >= _accuracy(rows, "exact")
    assert _accuracy(real, "contains") >= _accuracy(real, "exact")
    for source in ("truthfulqa", "nq_open", "ambignq", "hand"):
        part = [r for r in rows if r["source"] == source]
        assert _accuracy(part, "contains") >= _accuracy(part, "exact"), source


def test_contains_agreement_floor(rows: list[dict[str, Any]]) -> None:
    real = [r for r in rows if r["source"] != "hand"]
    assert _accuracy(rows, "contains") >= FLOOR_ALL
    assert _accuracy(real, "contains") >= FLOOR_REAL
    assert _kappa(rows, "contains") >= FLOOR_KAPPA
    # contains is also ahead of the token-F1 rule on these answers (measured 0.753).
    assert _accuracy(rows, "contains") > _accuracy(rows, "f1")
