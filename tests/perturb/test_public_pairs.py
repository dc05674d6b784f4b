"""The public meaning pairs (bench/data/meaning_pairs_public.jsonl): schema, size, balance, provenance."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
PUBLIC = REPO / "bench" / "data" / "meaning_pairs_public.jsonl"
HANDWRITTEN = Path(__file__).parent / "data" / "meaning_pairs.jsonl"
FIELDS = {"a", "b", "same", "category", "split", "source"}
SOURCE = re.compile(r"^paws-wiki/labeled_final/(train|dev|test):\d+$")


def _load(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def pairs() -> list[dict[str, Any]]:
    # Made from a fetched copy of PAWS and kept out of the repository (see bench/data/README.md):
    # a clone without it skips, a checkout that made it checks it.
    if not PUBLIC.is_file():
        pytest.skip(
            f"{PUBLIC} absent: make it with bench/make_meaning_pairs.py (bench/data/README.md)"
        )
    return _load(PUBLIC)


def _key(pair: dict[str, Any]) -> frozenset[str]:
    return frozenset(" ".join(pair[k].split()).lower() for k in ("a", "b"))


def test_every_pair_has_the_schema_and_a_source(pairs: list[dict[str, Any]]) -> None:
    for i, pair in enumerate(pairs, 1):
        assert set(pair) == FIELDS, f"line {i}: fields {sorted(pair)}"
        assert isinstance(pair["a"], str) and pair["a"].strip(), f"line {i}: empty a"
        assert isinstance(pair["b"], str) and pair["b"].strip(), f"line {i}: empty b"
        assert isinstance(pair["same"], bool), f"line {i}: same is not a bool"
        assert pair["category"] == ("paws_paraphrase" if pair["same"] else "paws_non_paraphrase")
        assert pair["split"] in ("dev", "heldout"), f"line {i}: split {pair['split']!r}"
        assert SOURCE.match(pair["source"]), f"line {i}: source {pair['source']!r}"


def test_the_hand_written_fields_are_a_subset(pairs: list[dict[str, Any]]) -> None:
    # The bench reads both files the same way: every field the hand-written pairs have is here.
    handwritten = set().union(*(set(p) for p in _load(HANDWRITTEN)))
    assert handwritten <= FIELDS


def test_at_least_300_pairs_with_both_labels_balanced(pairs: list[dict[str, Any]]) -> None:
    assert len(pairs) >= 300
    share = sum(p["same"] for p in pairs) / len(pairs)
    assert 0.4 <= share <= 0.6, f"share of paraphrases {share:.2f}"
    for split in ("dev", "heldout"):
        labels = Counter(p["same"] for p in pairs if p["split"] == split)
        assert labels[True] and labels[False], f"{split} lacks a label: {labels}"


def test_no_pair_repeats_and_no_source_row_is_used_twice(pairs: list[dict[str, Any]]) -> None:
    keys = Counter(_key(p) for p in pairs)
    assert max(keys.values()) == 1, [sorted(k) for k, n in keys.items() if n > 1][:3]
    sources = Counter(p["source"] for p in pairs)
    assert max(sources.values()) == 1
    assert all(len(k) == 2 for k in keys), "a pair whose two sentences are the same text"


def test_no_public_pair_is_also_a_hand_written_pair(pairs: list[dict[str, Any]]) -> None:
    assert not {_key(p) for p in pairs} & {_key(p) for p in _load(HANDWRITTEN)}
