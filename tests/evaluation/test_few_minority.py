"""AUROCs that rest on a handful of right (or wrong) answers are marked, not concluded from."""

from __future__ import annotations

import numpy as np

from sua_audit.evaluation.core import MIN_MINORITY, label_counts
from sua_audit.evaluation.text import evaluation_lines


def test_two_right_answers_of_seventy_get_a_note() -> None:
    fail = np.array([True] * 68 + [False] * 2)
    counts = label_counts(fail)
    assert counts == {
        "n": 70,
        "failures": 68,
        "minority": 2,
        "note": counts["note"],
    }
    assert counts["note"].startswith("only 2 of 70 test items are right")


def test_few_failures_are_named_as_wrong_answers() -> None:
    counts = label_counts(np.array([True] * 3 + [False] * 40))
    assert counts["minority"] == 3 and "are wrong" in counts["note"]


def test_enough_of_both_classes_and_one_class_get_no_note() -> None:
    enough = label_counts(np.array([True] * MIN_MINORITY + [False] * 50))
    assert enough["minority"] == MIN_MINORITY and "note" not in enough
    one_class = label_counts(np.array([True] * 20))  # undefined, said elsewhere
    assert one_class["minority"] == 0 and "note" not in one_class


def test_the_console_block_prints_the_note() -> None:
    from sua_audit.evaluation.core import evaluate_items
    from tests.evaluation.test_evaluate import make_items

    ev = evaluate_items(
        make_items(60, 0, sua_informative=True), run_id="r", run_lambda=1.0, bootstrap=50
    )
    assert "note: only" not in "\n".join(evaluation_lines(ev))
    ev["failure_labels"]["clean"] = label_counts(np.array([True] * 68 + [False] * 2))
    text = "\n".join(evaluation_lines(ev))
    assert "note: only 2 of 70 test items are right" in text
