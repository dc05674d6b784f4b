"""Tests for sua_audit.scoring.qa: extraction, normalisation, joint clustering, matching."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sua_audit.scoring import (
    answer_matches,
    cluster_answers,
    cluster_distribution,
    extract_answer,
    normalize_answer,
)

# --- extract_answer ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Answer: Paris.\nMore text", "Paris."),
        ("  'Paris' ", "Paris"),
        ("", ""),
        ("\n\nThe Eiffel Tower\n", "The Eiffel Tower"),
        ("answer:   Berlin", "Berlin"),
        ('ANSWER: "Rome"\nExplanation: ...', "Rome"),
        ("A: 42", "42"),
        ("a:  “Madrid”  ", "Madrid"),
        ("Answer:\nLisbon", "Lisbon"),
        ("   \n \t\n", ""),
        ("A dog barked", "A dog barked"),
        ("Answering machines", "Answering machines"),
        ("'\"Oslo\"'", "Oslo"),
        ("\r\nVienna\r\nAustria", "Vienna"),
    ],
)
def test_extract_answer(raw: str, expected: str) -> None:
    assert extract_answer(raw) == expected


@given(st.text())
def test_extract_answer_never_raises_and_is_single_line(raw: str) -> None:
    out = extract_answer(raw)
    assert isinstance(out, str)
    assert "\n" not in out
    assert out == out.strip()


# --- normalize_answer --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("The Eiffel Tower", "eiffel tower"),
        ("an apple a day", "apple day"),
        ("Paris.", "paris"),
        ("  PARIS  ", "paris"),
        ("Theodore the Great", "theodore great"),  # "the" only as a whole word
        ("Hello, world!", "hello world"),
        ("rock-n-roll", "rocknroll"),  # punctuation is deleted, as in SQuAD
        ("ＰＡＲＩＳ", "paris"),  # full-width letters → NFKC
        ("«Café»", "café"),  # Unicode punctuation removed, accents kept
        ("ﬁsh", "fish"),  # ligature → NFKC
        ("the", ""),
        ("", ""),
        ("a  \t b\n c", "b c"),
    ],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


@given(st.text())
def test_normalize_answer_idempotent(raw: str) -> None:
    once = normalize_answer(raw)
    assert normalize_answer(once) == once


# --- cluster_answers ---------------------------------------------------------------------------


def test_cluster_answers_joint_ids_and_representatives() -> None:
    groups = [
        ["Paris", "paris.", "Lyon"],  # clean
        ["Lyon", "The Paris", "Nice"],  # variant 1
        [],  # variant 2 (no samples)
        ["nice!", "", "Paris"],  # variant 3
    ]
    ids, reps = cluster_answers(groups)
    # First-seen order across groups: Paris=0, Lyon=1, Nice=2, ""=3.
    assert ids == [[0, 0, 1], [1, 0, 2], [], [2, 3, 0]]
    assert reps == ["Paris", "Lyon", "Nice", ""]


def test_cluster_answers_empty_answers_share_a_cluster() -> None:
    ids, reps = cluster_answers([["", "..."], ["the", "x"]])
    # "", "..." and "the" all normalise to "".
    assert ids == [[0, 0], [0, 1]]
    assert reps == ["", "x"]


def test_cluster_answers_no_groups() -> None:
    assert cluster_answers([]) == ([], [])


@given(st.lists(st.lists(st.sampled_from(["Paris", "paris", "Lyon", "the Lyon", "", "x."]))))
def test_cluster_answers_properties(groups: list[list[str]]) -> None:
    ids, reps = cluster_answers(groups)
    assert [len(g) for g in ids] == [len(g) for g in groups]
    flat = [c for g in ids for c in g]
    # Ids are 0..C-1 and appear in first-seen order.
    seen: list[int] = []
    for c in flat:
        if c not in seen:
            seen.append(c)
    assert seen == list(range(len(reps)))
    # Same id iff same normalised answer; representative normalises like its members.
    answers = [a for g in groups for a in g]
    for a, c in zip(answers, flat, strict=True):
        assert normalize_answer(reps[c]) == normalize_answer(a)
    assert len({normalize_answer(r) for r in reps}) == len(reps)


# --- cluster_distribution ----------------------------------------------------------------------


def test_cluster_distribution() -> None:
    np.testing.assert_allclose(cluster_distribution([0, 0, 2, 0], 4), [0.75, 0.0, 0.25, 0.0])
    np.testing.assert_allclose(cluster_distribution([], 4), [0.25] * 4)
    np.testing.assert_allclose(cluster_distribution([0], 1), [1.0])


@pytest.mark.parametrize(("ids", "n"), [([0], 0), ([2], 2), ([-1], 2)])
def test_cluster_distribution_rejects(ids: list[int], n: int) -> None:
    with pytest.raises(ValueError):
        cluster_distribution(ids, n)


# --- answer_matches ----------------------------------------------------------------------------


def test_answer_matches() -> None:
    assert answer_matches("The Eiffel Tower.", ["eiffel tower"])
    assert answer_matches("Paris", ["Lyon", "PARIS!"])
    assert not answer_matches("Paris", ["Lyon"])
    assert not answer_matches("Paris", [])
    assert not answer_matches("Paris, France", ["Paris"])  # exact match, not containment
    # An empty normalised prediction never matches, even an empty gold.
    assert not answer_matches("", [""])
    assert not answer_matches("The", ["a"])
