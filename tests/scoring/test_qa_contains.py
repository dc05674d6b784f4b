"""Tests for the ``contains`` QA rule: sua_audit.scoring.qa.answer_contains and its guards."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sua_audit.errors import ConfigError
from sua_audit.evaluation.correctness import DEFAULT_RULE, RULES, Grader, grade_answer
from sua_audit.scoring.qa import answer_contains, answer_matches, first_sentence

CAPITAL = "What is the capital of France?"


def test_qa01_sentence_answer_is_right_by_contains_and_wrong_by_exact() -> None:
    # examples/mixed.jsonl qa-01: the case that motivated the rule.
    answer = "The capital of France is Paris."
    assert not answer_matches(answer, ["Paris"])
    assert answer_contains(answer, ["Paris"], question=CAPITAL)
    assert Grader().qa_correct(CAPITAL, answer, ["Paris"])
    assert not Grader("exact").qa_correct(CAPITAL, answer, ["Paris"])


@pytest.mark.parametrize(
    ("answer", "golds", "expected"),
    [
        # exact match still counts, including after normalisation
        ("Paris", ["Paris"], True),
        ("the Paris.", ["Paris"], True),
        # whole-token containment
        ("It was written by Jane Austen in 1813.", ["Jane Austen"], True),
        ("Jane Eyre", ["Jane Austen"], False),
        ("Austen", ["Jane Austen"], False),  # a partial name is not the gold
        ("Parisian food", ["Paris"], False),
        # numbers are whole tokens
        ("It fell in 1990.", ["1990"], True),
        ("19901", ["1990"], False),
        ("In the 1990s.", ["1990"], False),
        ("Spiders have 8 legs.", ["8"], True),
        ("18 legs", ["8"], False),
        ("About 1,000 people.", ["1000"], True),  # "1,000" normalises to "1000"
        # nothing to match
        ("", ["Paris"], False),
        ("Paris", [], False),
        ("Paris", [""], False),
        ("...", ["Paris"], False),
    ],
)
def test_containment(answer: str, golds: list[str], expected: bool) -> None:
    assert answer_contains(answer, golds) is expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("It is not Paris.", False),
        ("Not Paris", False),
        ("It isn't Paris.", False),  # "isn't" normalises to "isnt"
        ("It is not in Paris.", False),  # negation 2 tokens before the gold
        ("No, it is Paris.", True),  # the negation is in an earlier clause
        ("Not Lyon, but Paris.", True),
        ("Never Lyon: always Paris", True),
        ("Not the one you think of but Paris", True),  # "not" 6 tokens before: outside the window
        ("Paris is not the capital.", True),  # documented limit: negation after the gold
    ],
)
def test_negation_guard(answer: str, expected: bool) -> None:
    assert answer_contains(answer, ["Paris"], question=CAPITAL) is expected


def test_negated_gold_counts_when_the_gold_holds_a_negation() -> None:
    golds = ["No, 91 is not a prime number"]
    assert answer_contains("No, 91 is not a prime number; it is 7 times 13.", golds)
    assert answer_contains("Well, no, 91 is not a prime number.", golds)
    # The gold "not prime" itself holds "not", so the guard is off for it.
    assert answer_contains("It is not prime.", ["not prime"])


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("Lyon. Paris is the largest city.", False),  # gold only in the second sentence
        ("Paris. Lyon is the second city.", True),
        ("Paris! Lyon is nice.", True),
        ("Dr. Paris Smith", True),  # "Dr." does not end the sentence
        ("St. Paris", True),
        ("U.S. troops reached Paris.", True),  # nor does a dotted abbreviation
        ('He said "Lyon." Then Paris.', False),  # a stop inside closing quotes ends it
    ],
)
def test_first_sentence_scope(answer: str, expected: bool) -> None:
    assert answer_contains(answer, ["Paris"]) is expected


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("One. Two.", "One."),
        ("J. K. Rowling wrote it. Yes.", "J. K. Rowling wrote it."),
        ("It is 3. Then more.", "It is 3."),
        ("No stop at all", "No stop at all"),
        ("Is it? Yes.", "Is it?"),
        ("", ""),
    ],
)
def test_first_sentence(text: str, first: str) -> None:
    assert first_sentence(text) == first


@pytest.mark.parametrize(
    ("answer", "golds", "expected"),
    [
        ("Paris, Lyon, Marseille or Nice.", ["Paris"], False),  # 4 short candidates
        ("Mars, Venus, Jupiter and Saturn.", ["Mars"], False),
        ("Paris or Lyon.", ["Paris"], False),  # an "or" hedge between two
        ("Paris/Lyon", ["Paris"], False),
        ("1912 or 1913", ["1912"], False),
        ("Paris or Lyon", ["Paris", "Lyon"], True),  # every alternative is a gold
        ("Bobby Scott and Bob Russell", ["Bobby Scott"], True),  # 2 parts joined by "and"
        ("Mars, the fourth planet from the Sun.", ["Mars"], True),  # apposition
        ("Stevie Wonder wrote it for Rufus and Chaka Khan.", ["Stevie Wonder"], True),
        # a long part is prose, not a list item
        ("Paris, which is large, old and famous in the world for art", ["Paris"], True),
    ],
)
def test_list_and_hedge_guard(answer: str, golds: list[str], expected: bool) -> None:
    assert answer_contains(answer, golds) is expected


def test_question_echo_guard() -> None:
    q = "What was the name of Columbo's dog?"
    assert not answer_contains("Columbo's dog was a basset hound.", ["Dog"], question=q)
    assert answer_contains("Columbo's dog was simply called Dog.", ["Dog"], question=q)
    assert answer_contains("Dog", ["Dog"], question=q)  # exact still counts
    # Without the question the echo cannot be seen.
    assert answer_contains("Columbo's dog was a basset hound.", ["Dog"])
    # A choice question names its options on purpose: naming one answers it...
    choice = "Is Jaffa Cakes a biscuit or a cake?"
    assert answer_contains("Jaffa Cakes are legally a cake.", ["cake"], question=choice)
    # ...but repeating both is a hedge.
    assert not answer_contains("A biscuit or a cake.", ["cake"], question=choice)


@given(st.text(max_size=60), st.lists(st.text(max_size=15), max_size=3))
def test_exact_implies_contains_and_never_raises(answer: str, golds: list[str]) -> None:
    got = answer_contains(answer, golds, question=answer)
    assert isinstance(got, bool)
    if answer_matches(answer, golds):
        assert got


def test_default_rule_and_grade_answer() -> None:
    assert DEFAULT_RULE == "contains" and DEFAULT_RULE in RULES
    grader = Grader()
    assert grader.rule == "contains" and grader.name == "contains"
    assert grader.qa_correct("q", "A spider has eight legs.", ["eight"])
    assert grader.qa_correct("q", None, ["eight"]) is False
    assert grade_answer("A spider has eight legs.", ["eight"]) is True
    assert grade_answer("A spider has eight legs.", ["eight"], "exact") is False
    # F1 of "spider has eight legs" vs "eight": P = 1/4, R = 1, F1 = 0.4.
    assert grade_answer("A spider has eight legs.", ["eight"], "f1") is False
    assert grade_answer("A spider has eight legs.", ["eight"], "f1", f1_threshold=0.4) is True
    with pytest.raises(ConfigError, match="contains, exact or f1"):
        grade_answer("x", ["x"], "judge")
