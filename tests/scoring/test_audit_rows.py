"""How the audit turns one item's completions into its result row (multi-answer variants)."""

from __future__ import annotations

import math

import pytest

from sua_audit.audit import _score_item
from sua_audit.backends.base import Completion
from sua_audit.config import AuditConfig
from sua_audit.dataset import Item
from sua_audit.perturb import Variant
from sua_audit.scoring import divergence, entropy


def _item() -> Item:
    return Item(
        id="x", task="classification", input="good film", labels=("positive", "negative"),
        gold_labels=("positive",), line=1,
    )  # fmt: skip


def _completion(p_pos: float) -> Completion:
    # choice_table order for (positive, negative): positive, Positive, negative, Negative
    return Completion(
        choice_logprobs=[math.log(p_pos), -math.inf, math.log(1 - p_pos), -math.inf],
        path="exact",
    )


def test_multi_answer_variants_stay_out_of_sensitivity() -> None:
    variants = [
        Variant("clean", 0, {"input": "good film"}, "original"),
        Variant("typo", 1, {"input": "good flim"}, "typo"),
        Variant("ambiguity", 2, {"input": "film"}, "vaguer", flags=("multi_answer",)),
    ]
    probs = [0.9, 0.8, 0.5]
    row = _score_item(_item(), variants, [_completion(p) for p in probs], AuditConfig(dataset="d"))
    clean, typo, amb = ([p, 1 - p] for p in probs)
    assert row["sensitivity"] == pytest.approx(divergence("js", clean, typo))
    assert row["variants"][2]["divergence"] == pytest.approx(divergence("js", clean, amb))
    assert row["variants"][2]["entropy"] == pytest.approx(entropy(amb))
    assert row["ambiguity_entropy_gain"] == pytest.approx(entropy(amb) - entropy(clean))
    assert "ambiguity" not in row["sensitivity_by_kind"]
    assert row["variants"][2]["flags"] == ["multi_answer"]
