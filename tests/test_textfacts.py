"""The shared text facts: each reading keeps what its callers relied on."""

from __future__ import annotations

import pytest

from sua_audit.textfacts import (
    digit_numbers,
    has_negation,
    is_question,
    is_question_sentence,
    looks_like_question,
    negation_count,
    stated_numbers,
    tokenize,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("No one came.", True),
        ("Noone came.", True),
        ("It isn't here.", True),
        ("It is not only good but cheap.", True),
        ("It is here.", False),
    ],
)
def test_has_negation_sees_any_marker(text: str, expected: bool) -> None:
    assert has_negation(text) is expected


def test_negation_count_skips_nor_and_idioms() -> None:
    assert negation_count(tokenize("neither A nor B")) == 1
    assert negation_count(tokenize("not only A but B")) == 0
    assert negation_count(tokenize("isn't it? It is not.")) == 2


def test_two_readings_of_numbers() -> None:
    assert stated_numbers(tokenize("fifty people, 1,000 dollars")) == {"50", "1000"}
    assert digit_numbers("fifty people, 1,000 dollars, 3.50") == {"1000", "3.50"}


def test_three_readings_of_questions() -> None:
    assert is_question("who wrote the iliad")
    assert not is_question("is it raining")
    assert is_question_sentence("is it raining")
    assert not is_question_sentence("Who knows.")
    assert looks_like_question("So, who wrote it")
