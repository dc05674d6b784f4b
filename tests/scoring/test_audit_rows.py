"""How the audit turns one item's completions into its result row (multi-answer variants)."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from sua_audit.auditing import _score_item
from sua_audit.backends.base import Completion
from sua_audit.config import AuditConfig
from sua_audit.dataset import Item
from sua_audit.perturbation import Variant
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


def _variants(n: int) -> list[Variant]:
    out = [Variant("clean", 0, {"input": "good film"}, "original")]
    out += [Variant("typo", i, {"input": f"good flim {i}"}, "typo") for i in range(1, n + 1)]
    return out


@pytest.mark.parametrize(
    ("probs", "threshold", "flipped", "confident_flip"),
    [
        ([0.9, 0.8, 0.3], 0.7, [2], True),  # confident (0.9 ≥ 0.7), variant 2 flips
        ([0.6, 0.8, 0.3], 0.7, [2], False),  # flips, but 0.6 < 0.7: not confident
        ([0.9, 0.8, 0.7], 0.7, [], False),  # confident, never flips
        ([0.7, 0.2, 0.3], 0.7, [1, 2], True),  # at the threshold counts as confident
    ],
)
def test_confident_flip_rule_by_hand(
    probs: list[float], threshold: float, flipped: list[int], confident_flip: bool
) -> None:
    config = AuditConfig(dataset="d", confident_threshold=threshold)
    row = _score_item(_item(), _variants(2), [_completion(p) for p in probs], config)
    assert row["flipped_variants"] == flipped
    assert row["confidence"] == pytest.approx(probs[0])
    assert row["confident_flip"] is confident_flip
    assert row["flip_rate"] == pytest.approx(len(flipped) / 2)


@pytest.fixture(autouse=True)
def _close_outcomes() -> Iterator[None]:
    yield
    for outcome in _OPEN:
        outcome.close()
    _OPEN.clear()


_OPEN: list = []


def _outcome(rows: list[dict], config: AuditConfig):  # noqa: ANN202
    from sua_audit.auditing import AuditOutcome, decide

    outcome = AuditOutcome(
        abstain_on=config.abstain_on,
        normalize=config.normalize,
        lam=config.lam,
        confident_threshold=config.confident_threshold,
    )
    _OPEN.append(outcome)
    for row in rows:
        outcome.add(row)
    decide(outcome, config)
    return outcome


def _rows(prob_sets: list[list[float]], config: AuditConfig) -> list[dict]:
    return [
        {**_score_item(_item(), _variants(2), [_completion(p) for p in ps], config), "id": f"x{i}"}
        for i, ps in enumerate(prob_sets)
    ]


SETS = [[0.9, 0.8, 0.3], [0.6, 0.55, 0.58], [0.95, 0.9, 0.96], [0.7, 0.2, 0.3], [0.55, 0.5, 0.6]]


def test_default_rule_that_abstains_on_nothing_says_so() -> None:
    from sua_audit.auditing import summarize

    config = AuditConfig(dataset="d")
    outcome = _outcome(_rows(SETS, config), config)
    res = summarize(outcome)
    # S ≤ H on every item here, so SUA = S − H ≤ 0 = τ: nothing abstains, and it is said.
    assert res["abstained"] == 0
    assert "abstained on none of the 5 items" in res["abstention"]["note"]
    assert "--abstain-on sua_norm" in res["abstention"]["note"]
    flips = res["confident_flips"]
    assert flips["n_confident_flips"] == 2 and res["confident_flip_rate"] == pytest.approx(0.4)
    assert flips["n_confident"] == 3 and flips["n_flipped"] == 2
    diag = res["diagnostics"]
    assert diag["mean_sensitivity"] == pytest.approx(res["mean_scores"]["sensitivity"])
    assert diag["ratio_s_to_h"] == pytest.approx(diag["mean_sensitivity"] / diag["mean_entropy"])


def test_abstain_on_any_label_free_score_with_coverage() -> None:
    from sua_audit.auditing import summarize

    config = AuditConfig(dataset="d", abstain_on="flip_rate", coverage=0.6)
    outcome = _outcome(_rows(SETS, config), config)
    flip = [r["flip_rate"] for r in outcome.items]
    # flip rates 0.5, 0, 0, 1, 0 (sets 2 and 5 keep their argmax): τ = the 3rd smallest = 0.
    assert flip == pytest.approx([0.5, 0.0, 0.0, 1.0, 0.0])
    res = summarize(outcome)
    assert res["abstention"]["score"] == "flip_rate" and res["tau"] == 0.0
    assert [r["abstain"] for r in outcome.items] == [True, False, False, True, False]
    assert res["abstention"]["note"] is None


def test_sua_norm_is_rank_normalised_across_the_run() -> None:
    config = AuditConfig(dataset="d", abstain_on="sua_norm")
    outcome = _outcome(_rows(SETS, config), config)
    rows = outcome.items
    from sua_audit.scoring.table import sua_normalized

    expect = sua_normalized(
        [r["sensitivity"] for r in rows], [r["entropy"] for r in rows], 1.0, "rank"
    )
    assert [r["sua_norm"] for r in rows] == pytest.approx(list(expect))
    assert [r["abstain"] for r in rows] == [bool(v > 0) for v in expect]
    assert any(r["abstain"] for r in rows) and not all(r["abstain"] for r in rows)


def test_scores_without_a_natural_threshold_need_one() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="no natural threshold"):
        AuditConfig(dataset="d", abstain_on="entropy")
    with pytest.raises(ValidationError, match="unknown score"):
        AuditConfig(dataset="d", abstain_on="nope", tau=0.1)
    assert AuditConfig(dataset="d", abstain_on="s_typo", tau=0.01).abstain_on == "s_typo"
    assert AuditConfig(dataset="d", lam=-0.5).lam == -0.5
