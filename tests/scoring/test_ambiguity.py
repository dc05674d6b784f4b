"""Tests for sua_audit.scoring.ambiguity (κ, coverage, collapse), with hand-computed values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sua_audit.dataset import Item, iter_items
from sua_audit.scoring.ambiguity import (
    DEFAULT_LABEL_FLOOR,
    collapse_rate,
    collapse_summary,
    distinct_interpretations,
    item_collapse,
    kappa,
    label_collapse,
    qa_collapse,
)

LN2 = 0.6931471805599453
LN3 = 1.0986122886681098
NLI = ("entailment", "neutral", "contradiction")

BIG_BROTHER = [
    {
        "question": "Who won the Final HoH in the American Big Brother 20?",
        "answers": ["Kaycee Clark"],
    },
    {"question": "Who won the British Celebrity Big Brother 20?", "answers": ["Sarah Harding"]},
]


# ---------------------------------------------------------------------------------------------
# kappa
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("m", "h", "expected"),
    [
        (2, 0.0, LN2),  # certain of one answer: the most collapse for m = 2
        (2, LN2, 0.0),  # even over two readings
        (2, 1.0, 0.0),  # more spread than log m (several outputs): clipped at 0
        (3, 0.5, LN3 - 0.5),  # 0.598612...
        (4, 0.25, 2 * LN2 - 0.25),  # log 4 = 1.386294...
        (1, 0.0, 0.0),  # one reading: nothing to collapse
    ],
)
def test_kappa_hand_computed(m: int, h: float, expected: float) -> None:
    assert kappa(m, h) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("m", "h"), [(0, 0.0), (-1, 0.1), (2.5, 0.0), (True, 0.0)])
def test_kappa_rejects_bad_m(m: object, h: float) -> None:
    with pytest.raises(ValueError, match="m must be"):
        kappa(m, h)  # type: ignore[arg-type]


@pytest.mark.parametrize("h", [-0.1, math.nan, math.inf])
def test_kappa_rejects_bad_entropy(h: float) -> None:
    with pytest.raises(ValueError, match="entropy"):
        kappa(2, h)


# ---------------------------------------------------------------------------------------------
# QA
# ---------------------------------------------------------------------------------------------


def test_qa_one_reading_covered_is_collapsed() -> None:
    # "kaycee clark" after normalisation, three times: one cluster, H = 0, κ = ln 2
    row = qa_collapse(BIG_BROTHER, ["Kaycee Clark", "kaycee clark.", "The Kaycee Clark"])
    assert row == {
        "applicable": True,
        "m": 2,
        "entropy": 0.0,
        "kappa": pytest.approx(LN2),
        "covered": [0],
        "n_covered": 1,
        "collapsed": True,
        "uncovered": False,
    }


def test_qa_both_readings_covered_is_not_collapsed() -> None:
    # clusters 3/4 and 1/4: H = -(.75 ln .75 + .25 ln .25) = 0.562335; κ = 0.693147 - 0.562335
    row = qa_collapse(
        BIG_BROTHER, ["Kaycee Clark", "Sarah Harding", "Kaycee Clark", "Kaycee Clark"]
    )
    assert row["entropy"] == pytest.approx(0.5623351446188083)
    assert row["kappa"] == pytest.approx(0.1308120359411370)
    assert row["covered"] == [0, 1]
    assert row["collapsed"] is False and row["uncovered"] is False


def test_qa_no_reading_covered_is_uncovered_not_collapsed() -> None:
    row = qa_collapse(BIG_BROTHER, ["Ross Mathews", "Ross Mathews"])
    assert row["covered"] == [] and row["n_covered"] == 0
    assert row["uncovered"] is True and row["collapsed"] is False
    assert row["kappa"] == pytest.approx(LN2)


def test_qa_min_share_ignores_a_stray_sample() -> None:
    answers = ["Kaycee Clark"] * 9 + ["Sarah Harding"]
    assert qa_collapse(BIG_BROTHER, answers)["covered"] == [0, 1]
    row = qa_collapse(BIG_BROTHER, answers, min_share=0.2)  # 1/10 < 0.2
    assert row["covered"] == [0] and row["collapsed"] is True
    # H = -(.9 ln .9 + .1 ln .1) = 0.325083
    assert row["entropy"] == pytest.approx(0.3250829733914482)
    assert qa_collapse(BIG_BROTHER, answers, min_share=0.1)["covered"] == [0, 1]  # 1/10 ≥ 0.1


def test_qa_given_entropy_is_used() -> None:
    row = qa_collapse(BIG_BROTHER, ["Kaycee Clark"], entropy=0.5)
    assert row["entropy"] == 0.5
    assert row["kappa"] == pytest.approx(LN2 - 0.5)


def test_qa_identical_readings_are_merged_and_shared_answers_cover_both() -> None:
    interpretations = [
        {"question": "When was it first released?", "answers": ["1997"]},
        {"question": "When was it first shown?", "answers": ["1997."]},  # same reading
        {"question": "When was the 3D version released?", "answers": ["1997", "2012"]},
        {"question": "Who directed it?", "answers": ["James Cameron"]},
    ]
    assert distinct_interpretations(interpretations) == [
        (0, ("1997",)),
        (2, ("1997", "2012")),
        (3, ("James Cameron",)),
    ]
    row = qa_collapse(interpretations, ["1997"])
    assert row["m"] == 3
    assert row["kappa"] == pytest.approx(LN3)  # one cluster: H = 0
    assert row["covered"] == [0, 2]  # "1997" is valid under two readings
    assert row["collapsed"] is False


def test_qa_fewer_than_two_readings_is_not_applicable() -> None:
    same = [{"question": "a?", "answers": ["X"]}, {"question": "b?", "answers": ["x"]}]
    for interpretations in ([], BIG_BROTHER[:1], same):
        row = qa_collapse(interpretations, [])
        assert row["applicable"] is False
        assert row["kappa"] is None and row["collapsed"] is None and row["uncovered"] is None
    assert qa_collapse(same, ["X"])["m"] == 1


def test_qa_bad_arguments() -> None:
    with pytest.raises(ValueError, match="answers"):
        qa_collapse(BIG_BROTHER, [])
    with pytest.raises(ValueError, match="min_share"):
        qa_collapse(BIG_BROTHER, ["x"], min_share=1.5)


# ---------------------------------------------------------------------------------------------
# Labels (AmbiEnt-style NLI)
# ---------------------------------------------------------------------------------------------


def test_labels_mass_on_one_gold_label_is_collapsed() -> None:
    # 0.08 < floor 0.1: only entailment covered.
    # H = -(.9 ln .9 + .08 ln .08 + .02 ln .02) = 0.0948245 + 0.2020583 + 0.0782405 = 0.3751232
    row = label_collapse(["entailment", "neutral"], NLI, [0.9, 0.08, 0.02])
    assert row["m"] == 2
    assert row["covered"] == ["entailment"]
    assert row["collapsed"] is True and row["uncovered"] is False
    assert row["entropy"] == pytest.approx(0.3751232157, abs=1e-9)
    assert row["kappa"] == pytest.approx(LN2 - 0.3751232157, abs=1e-9)  # 0.318024


def test_labels_two_gold_labels_kept_open_is_not_collapsed() -> None:
    # H = -(.5 ln .5 + .4 ln .4 + .1 ln .1) = 0.346574 + 0.366516 + 0.230259 = 0.943348 > ln 2
    row = label_collapse(["entailment", "neutral"], NLI, [0.5, 0.4, 0.1])
    assert row["covered"] == ["entailment", "neutral"]
    assert row["collapsed"] is False
    assert row["entropy"] == pytest.approx(0.9433483923, abs=1e-9)
    assert row["kappa"] == 0.0


def test_labels_mass_on_a_wrong_label_is_uncovered() -> None:
    row = label_collapse(["entailment", "neutral"], NLI, [0.05, 0.05, 0.9])
    assert row["covered"] == [] and row["uncovered"] is True and row["collapsed"] is False


def test_labels_floor_is_inclusive_and_probs_are_renormalised() -> None:
    assert label_collapse(["entailment", "neutral"], NLI, [0.9, 0.1, 0.0])["covered"] == [
        "entailment",
        "neutral",
    ]
    # [9, 1, 0] renormalises to [0.9, 0.1, 0]: same row
    assert label_collapse(["entailment", "neutral"], NLI, [9, 1, 0]) == label_collapse(
        ["entailment", "neutral"], NLI, [0.9, 0.1, 0.0]
    )
    row = label_collapse(["entailment", "neutral"], NLI, [0.9, 0.1, 0.0], floor=0.2)
    assert row["covered"] == ["entailment"] and row["collapsed"] is True
    assert DEFAULT_LABEL_FLOOR == 0.1


def test_labels_three_gold_labels_and_case_insensitive_gold() -> None:
    # uniform over three: H = ln 3, κ = 0, all covered
    row = label_collapse(["Entailment", "NEUTRAL", "contradiction"], NLI, [1 / 3] * 3)
    assert row["m"] == 3 and row["kappa"] == pytest.approx(0.0, abs=1e-12)
    assert row["covered"] == list(NLI)


def test_labels_single_gold_label_is_not_applicable() -> None:
    row = label_collapse(["entailment", "entailment"], NLI, [1.0, 0.0, 0.0])
    assert row["applicable"] is False and row["m"] == 1 and row["kappa"] is None


@pytest.mark.parametrize(
    ("golds", "probs", "floor", "match"),
    [
        (["entailment", "other"], [0.5, 0.5, 0.0], 0.1, "not one of the labels"),
        (["entailment", "neutral"], [0.5, 0.5], 0.1, "entries"),
        (["entailment", "neutral"], [0.5, -0.5, 1.0], 0.1, "non-negative"),
        (["entailment", "neutral"], [0.0, 0.0, 0.0], 0.1, "positive sum"),
        (["entailment", "neutral"], [0.5, 0.5, 0.0], 0.0, "floor"),
    ],
)
def test_labels_bad_arguments(
    golds: list[str], probs: list[float], floor: float, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        label_collapse(golds, NLI, probs, floor=floor)


# ---------------------------------------------------------------------------------------------
# Items and aggregates
# ---------------------------------------------------------------------------------------------


def test_item_collapse_dispatches_by_task() -> None:
    ambignq = Item(
        id="q",
        task="qa",
        input="Who won big brother 20?",
        answers=("Kaycee Clark", "Sarah Harding"),
        ambiguous=True,
        interpretations=tuple(BIG_BROTHER),
        line=1,
    )
    assert item_collapse(ambignq, answers=["Sarah Harding"])["covered"] == [1]
    with pytest.raises(ValueError, match="needs answers"):
        item_collapse(ambignq)

    ambient = Item(
        id="n",
        task="nli",
        input="Premise: p\nHypothesis: h",
        premise="p",
        hypothesis="h",
        labels=NLI,
        gold_labels=("entailment", "neutral"),
        ambiguous=True,
        interpretations=(
            {"premise": "p1", "hypothesis": "h", "label": "entailment"},
            {"premise": "p2", "hypothesis": "h", "label": "neutral"},
        ),
        line=1,
    )
    assert item_collapse(ambient, probs=[0.9, 0.08, 0.02])["collapsed"] is True
    with pytest.raises(ValueError, match="needs probs"):
        item_collapse(ambient)

    plain_qa = Item(id="p", task="qa", input="Capital of France?", answers=("Paris",), line=1)
    assert item_collapse(plain_qa)["applicable"] is False
    sst = Item(
        id="s",
        task="classification",
        input="fine .",
        labels=("negative", "positive"),
        gold_labels=("positive",),
        line=1,
    )
    assert item_collapse(sst, probs=[0.5, 0.5]) == item_collapse(sst)
    assert item_collapse(sst)["applicable"] is False and item_collapse(sst)["m"] == 1


def test_collapse_rate_and_summary_hand_computed() -> None:
    rows = [
        qa_collapse(BIG_BROTHER, ["Kaycee Clark"]),  # collapsed, κ = ln 2
        label_collapse(["entailment", "neutral"], NLI, [0.9, 0.08, 0.02]),  # collapsed, κ 0.318
        label_collapse(["entailment", "neutral"], NLI, [0.5, 0.4, 0.1]),  # both covered, κ = 0
        label_collapse(["entailment", "neutral"], NLI, [0.05, 0.05, 0.9]),  # uncovered
        qa_collapse(BIG_BROTHER[:1], ["x"]),  # not applicable
    ]
    assert collapse_rate(rows) == 0.5  # 2 collapsed of 4 applicable
    summary = collapse_summary(rows)
    h_uncovered = -(2 * 0.05 * math.log(0.05) + 0.9 * math.log(0.9))  # 0.394398 → κ 0.298749
    assert summary == {
        "n_items": 5,
        "n_applicable": 4,
        "n_collapsed": 2,
        "n_uncovered": 1,
        "n_multi": 1,
        "collapse_rate": 0.5,
        "collapse_rate_covered": pytest.approx(2 / 3),
        "mean_kappa": pytest.approx(
            (LN2 + (LN2 - 0.3751232157) + 0.0 + (LN2 - h_uncovered)) / 4, abs=1e-9
        ),
    }
    assert collapse_rate([]) is None
    assert collapse_rate([rows[-1]]) is None
    assert collapse_summary([])["collapse_rate"] is None


def test_ambiguous_dev_sets_give_applicable_rows(shared_data: Path) -> None:
    base = shared_data
    items = list(iter_items(base / "ambient_dev.jsonl"))
    rows = [item_collapse(i, probs=[0.98, 0.01, 0.01]) for i in items]
    applicable = [r for r in rows if r["applicable"]]
    assert len(applicable) == sum(len(i.gold_labels or ()) >= 2 for i in items) > 0
    assert all(r["n_covered"] <= 1 for r in applicable)  # all mass on entailment
    qa_items = list(iter_items(base / "ambignq_dev.jsonl", limit=60))
    qa_rows = [item_collapse(i, answers=[(i.answers or ("",))[0]]) for i in qa_items]
    assert any(r["applicable"] for r in qa_rows)
    for row in qa_rows:
        if row["applicable"]:
            assert row["m"] >= 2 and row["kappa"] == pytest.approx(math.log(row["m"]))
            assert json.dumps(row)  # JSON-ready
