"""Tests for sua_audit.scoring.item: ItemScores, score_distributions and score_samples."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sua_audit.scoring import (
    ItemScores,
    cluster_answers,
    score_distributions,
    score_samples,
)
from tests.scoring.test_distributions import dist_of

LN2 = math.log(2.0)
J = 0.75 * math.log(4 / 3)  # JS((½,½), (1,0)) = ¾·ln(4/3) = 0.215762, see test_distributions

SCALAR_FIELDS = (
    "entropy",
    "entropy_norm",
    "sensitivity",
    "sensitivity_max",
    "sua",
    "sua_pos",
    "self_consistency",
    "max_prob",
    "semantic_entropy",
    "flip_rate",
)

KINDS = st.sampled_from(["paraphrase", "typo", "reorder"])


# --- score_distributions: hand-computed ------------------------------------------------------


def test_uncertain_item_js_by_hand() -> None:
    # p_clean = (½,½): H = ln 2 = 0.693147; |Y| = 2 so H/log|Y| = 1.
    # Variants: (1,0) paraphrase, (½,½) typo, (0,1) paraphrase.
    # JS to each: ¾ln(4/3) = 0.215762, 0, ¾ln(4/3) = 0.215762.
    # S = (0.215762 + 0 + 0.215762)/3 = ½ln(4/3) = 0.143841; S_max = 0.215762.
    # λ = 1:   SUA = 0.143841 − 0.693147 = −0.549306, [SUA]+ = 0.
    # λ = 0.5: SUA = 0.143841 − 0.346574 = −0.202733, [SUA]+ = 0.
    p = [0.5, 0.5]
    variants = [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]
    kinds = ["paraphrase", "typo", "paraphrase"]
    r = score_distributions(p, variants, kinds)
    assert r.entropy == pytest.approx(LN2)
    assert r.entropy_norm == pytest.approx(1.0)
    assert r.divergences == pytest.approx([J, 0.0, J])
    assert r.sensitivity == pytest.approx(0.5 * math.log(4 / 3))
    assert r.sensitivity == pytest.approx(0.143841, abs=1e-6)
    assert r.sensitivity_max == pytest.approx(0.215762, abs=1e-6)
    assert r.sua == pytest.approx(-0.549306, abs=1e-6)
    assert r.sua_pos == 0.0
    assert r.sensitivity_by_kind == pytest.approx({"paraphrase": J, "typo": 0.0})
    # 1 − max p = ½ for both baselines; semantic entropy = H.
    assert r.max_prob == pytest.approx(0.5)
    assert r.self_consistency == pytest.approx(0.5)
    assert r.semantic_entropy == pytest.approx(LN2)
    # argmax(½,½) = 0 (tie → lowest index); variants' argmaxes 0, 0, 1 → one flip in three.
    assert r.flip_rate == pytest.approx(1 / 3)

    r_half = score_distributions(p, variants, kinds, lam=0.5)
    assert r_half.sua == pytest.approx(-0.202733, abs=1e-6)
    assert r_half.sua_pos == 0.0
    assert r_half.sensitivity == r.sensitivity


def test_uncertain_item_tv_by_hand() -> None:
    # TV((½,½),(1,0)) = ½(½+½) = ½; TV to (½,½) = 0; TV to (0,1) = ½.
    # S = (½ + 0 + ½)/3 = ⅓; S_max = ½.
    # λ = 1:   SUA = 0.333333 − 0.693147 = −0.359814.
    # λ = 0.5: SUA = 0.333333 − 0.346574 = −0.013240.
    p = [0.5, 0.5]
    variants = [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]
    kinds = ["paraphrase", "typo", "paraphrase"]
    r = score_distributions(p, variants, kinds, divergence="tv")
    assert r.divergences == pytest.approx([0.5, 0.0, 0.5])
    assert r.sensitivity == pytest.approx(1 / 3)
    assert r.sensitivity_max == pytest.approx(0.5)
    assert r.sua == pytest.approx(-0.359814, abs=1e-6)
    assert r.sensitivity_by_kind == pytest.approx({"paraphrase": 0.5, "typo": 0.0})
    r_half = score_distributions(p, variants, kinds, divergence="tv", lam=0.5)
    assert r_half.sua == pytest.approx(-0.013240, abs=1e-6)


def test_confident_but_sensitive_item_by_hand() -> None:
    # p_clean = (1,0): H = 0, max_prob = 0. Variants (0,1) and (1,0).
    # JS: ln 2 and 0 → S = ½ln2 = 0.346574, S_max = ln 2; SUA = S − λ·0 = 0.346574 for any λ.
    # TV: 1 and 0 → S = ½, S_max = 1, SUA = ½.
    # Predictions: clean 0, variants 1 and 0 → flip rate ½.
    p = [1.0, 0.0]
    variants = [[0.0, 1.0], [1.0, 0.0]]
    kinds = ["paraphrase", "typo"]
    for lam in (1.0, 0.5):
        r = score_distributions(p, variants, kinds, lam=lam)
        assert r.entropy == 0.0
        assert r.entropy_norm == 0.0
        assert r.sensitivity == pytest.approx(0.5 * LN2)
        assert r.sensitivity_max == pytest.approx(LN2)
        assert r.sua == pytest.approx(0.346574, abs=1e-6)
        assert r.sua_pos == r.sua
        assert r.max_prob == 0.0
        assert r.flip_rate == 0.5
    r_tv = score_distributions(p, variants, kinds, divergence="tv")
    assert (r_tv.sensitivity, r_tv.sensitivity_max, r_tv.sua) == pytest.approx((0.5, 1.0, 0.5))


def test_kl_item_uses_smoothing() -> None:
    # KL((1,0)‖(0,1)) with ε = ½ is ½ln3 (see test_distributions); the other variant gives 0.
    # S = ½·½ln3 = ¼ln3 = 0.274653.
    r = score_distributions(
        [1.0, 0.0], [[0.0, 1.0], [1.0, 0.0]], ["a", "b"], divergence="kl", smoothing=0.5
    )
    assert r.divergences == pytest.approx([0.5 * math.log(3.0), 0.0])
    assert r.sensitivity == pytest.approx(0.25 * math.log(3.0))


def test_three_label_item_by_hand() -> None:
    # p_clean = (0.5, 0.25, 0.25): H = 0.5ln2 + 2·0.25·ln4 = 0.5ln2 + ln2 = 1.5ln2 = 1.039721.
    # H/log 3 = 1.039721/1.098612 = 0.946395.
    # One variant (0.25, 0.5, 0.25): TV = ½(0.25 + 0.25 + 0) = 0.25; argmax 1 ≠ 0 → flip.
    # λ = 0.5: SUA = 0.25 − 0.519860 = −0.269860.
    r = score_distributions(
        [0.5, 0.25, 0.25], [[0.25, 0.5, 0.25]], ["typo"], divergence="tv", lam=0.5
    )
    assert r.entropy == pytest.approx(1.5 * LN2)
    assert r.entropy_norm == pytest.approx(0.946395, abs=1e-6)
    assert r.sensitivity == pytest.approx(0.25)
    assert r.sua == pytest.approx(-0.269860, abs=1e-6)
    assert r.flip_rate == 1.0


def test_zero_variants() -> None:
    r = score_distributions([0.25, 0.75], [], [])
    assert r.sensitivity == 0.0
    assert r.sensitivity_max == 0.0
    assert r.flip_rate == 0.0
    assert r.divergences == []
    assert r.sensitivity_by_kind == {}
    assert r.sua == pytest.approx(-r.entropy)


def test_single_label_support() -> None:
    r = score_distributions([1.0], [[1.0]], ["typo"])
    assert r.entropy == 0.0
    assert r.entropy_norm == 0.0
    assert r.sensitivity == 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"lam": math.inf}, "lam"),
        ({"lam": math.nan}, "lam"),
        ({"divergence": "hellinger"}, "js"),
        ({"divergence": "kl", "smoothing": 0.0}, "smoothing"),
    ],
)
def test_score_distributions_rejects_bad_options(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        score_distributions([0.5, 0.5], [[1.0, 0.0]], ["typo"], **kwargs)  # type: ignore[arg-type]


def test_negative_lambda_is_accepted_and_adds_entropy() -> None:
    # λ < 0: SUA = S + |λ|H ("unstable and uncertain"), computed as written.
    r = score_distributions([0.5, 0.5], [[1.0, 0.0]], ["typo"], lam=-0.5)
    assert r.sua == pytest.approx(r.sensitivity + 0.5 * r.entropy)
    assert r.sua_pos == r.sua


def test_qa_max_prob_refers_to_the_greedy_answer() -> None:
    # Clean samples: clusters 0,0,0,1 (majority 0); the greedy answer is in cluster 1.
    r = score_samples([[0, 0, 0, 1], [0, 0, 0, 0]], 2, ["typo"], prediction_clusters=[1, 1])
    assert r.max_prob == pytest.approx(1 - 0.25)  # confidence of the graded answer
    assert r.self_consistency == pytest.approx(1 - 0.75)  # majority share, a baseline
    # Without prediction clusters the mode stands for the answer.
    r2 = score_samples([[0, 0, 0, 1], [0, 0, 0, 0]], 2, ["typo"])
    assert r2.max_prob == pytest.approx(0.25)


def test_score_distributions_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="kind"):
        score_distributions([0.5, 0.5], [[1.0, 0.0]], [])
    with pytest.raises(ValueError, match="labels"):
        score_distributions([0.5, 0.5], [[0.2, 0.3, 0.5]], ["typo"])
    with pytest.raises(ValueError):
        score_distributions([0.5, 0.6], [[1.0, 0.0]], ["typo"])


def test_item_scores_frozen_and_to_dict() -> None:
    r = score_distributions([0.5, 0.5], [[1.0, 0.0]], ["typo"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.sua = 1.0  # type: ignore[misc]
    d = r.to_dict()
    assert set(d) == {*SCALAR_FIELDS, "sensitivity_by_kind", "divergences"}
    assert all(isinstance(d[k], float) for k in SCALAR_FIELDS)
    assert d["sua"] == r.sua
    assert d["divergences"] == r.divergences
    d["divergences"].append(9.0)
    d["sensitivity_by_kind"]["x"] = 1.0
    assert r.divergences == [pytest.approx(J)]
    assert "x" not in r.sensitivity_by_kind
    assert isinstance(r, ItemScores)


# --- score_samples: hand-computed --------------------------------------------------------------


def test_score_samples_three_groups_of_four() -> None:
    # Clusters 0, 1, 2 on the joint support (n_clusters = 3).
    # clean [0,0,0,1] → p0 = (¾, ¼, 0); v1 [0,0,1,1] → p1 = (½, ½, 0); v2 [2,2,2,0] → (¼, 0, ¾).
    # H = −¾ln¾ − ¼ln¼ = 0.215762 + 0.346574 = 0.562335; H/ln3 = 0.562335/1.098612 = 0.511860.
    # JS(p0,p1): m = (0.625, 0.375, 0).
    #   KL(p0‖m) = ¾ln(0.75/0.625) + ¼ln(0.25/0.375) = 0.136741 − 0.101366 = 0.035375
    #   KL(p1‖m) = ½ln(0.5/0.625) + ½ln(0.5/0.375) = −0.111572 + 0.143841 = 0.032269
    #   JS = ½(0.035375 + 0.032269) = 0.033822
    # JS(p0,p2): m = (0.5, 0.125, 0.375).
    #   KL(p0‖m) = ¾ln1.5 + ¼ln2 = 0.304099 + 0.173287 = 0.477386
    #   KL(p2‖m) = ¼ln0.5 + ¾ln2 = ½ln2 = 0.346574
    #   JS = ½(0.477386 + 0.346574) = 0.411980
    # S = (0.033822 + 0.411980)/2 = 0.222901; S_max = 0.411980.
    # SUA (λ=1) = 0.222901 − 0.562335 = −0.339434.
    # TV: ½(¼+¼+0) = 0.25 and ½(½+¼+¾) = 0.75 → S = 0.5, S_max = 0.75, SUA = −0.062335.
    ids = [[0, 0, 0, 1], [0, 0, 1, 1], [2, 2, 2, 0]]
    kinds = ["paraphrase", "typo"]
    r = score_samples(ids, 3, kinds)
    assert r.entropy == pytest.approx(0.562335, abs=1e-6)
    assert r.semantic_entropy == r.entropy
    assert r.entropy_norm == pytest.approx(0.511860, abs=1e-6)
    assert r.divergences == pytest.approx([0.033822, 0.411980], abs=1e-6)
    assert r.sensitivity == pytest.approx(0.222901, abs=1e-6)
    assert r.sensitivity_max == pytest.approx(0.411980, abs=1e-6)
    assert r.sua == pytest.approx(-0.339434, abs=1e-6)
    assert r.sua_pos == 0.0
    assert r.sensitivity_by_kind == pytest.approx(
        {"paraphrase": 0.033822, "typo": 0.411980}, abs=1e-6
    )
    # Majority cluster holds 3 of 4 clean samples: 1 − ¾ = ¼; 1 − max p0 = ¼.
    assert r.self_consistency == pytest.approx(0.25)
    assert r.max_prob == pytest.approx(0.25)
    # Modes: clean 0; v1 tie (½,½) → 0 (lowest id); v2 → 2. One flip of two.
    assert r.flip_rate == 0.5

    r_tv = score_samples(ids, 3, kinds, divergence="tv", lam=1.0)
    assert (r_tv.sensitivity, r_tv.sensitivity_max) == pytest.approx((0.5, 0.75))
    assert r_tv.sua == pytest.approx(-0.062335, abs=1e-6)
    # λ = 0.5 with TV: 0.5 − 0.281168 = 0.218832 > 0.
    r_half = score_samples(ids, 3, kinds, divergence="tv", lam=0.5)
    assert r_half.sua == pytest.approx(0.218832, abs=1e-6)
    assert r_half.sua_pos == r_half.sua


def test_score_samples_prediction_clusters_drive_flip_rate() -> None:
    ids = [[0, 0, 0, 1], [0, 0, 1, 1], [2, 2, 2, 0]]
    # Greedy answers in clusters 0 (clean), 1, 0: v1 flips, v2 does not.
    assert score_samples(ids, 3, ["a", "b"], prediction_clusters=[0, 1, 0]).flip_rate == 0.5
    assert score_samples(ids, 3, ["a", "b"], prediction_clusters=[0, 1, 2]).flip_rate == 1.0
    assert score_samples(ids, 3, ["a", "b"], prediction_clusters=[2, 2, 2]).flip_rate == 0.0


def test_score_samples_from_raw_answers() -> None:
    groups = [
        ["Paris", "paris.", "The Paris", "Lyon"],
        ["Lyon", "lyon!", "Paris", "Paris"],
        ["Marseille", "Marseille", "Marseille", "Marseille"],
    ]
    ids, reps = cluster_answers(groups)
    assert reps == ["Paris", "Lyon", "Marseille"]
    r = score_samples(ids, len(reps), ["typo", "typo"], divergence="tv")
    # p0 = (¾,¼,0), p1 = (½,½,0), p2 = (0,0,1): TV 0.25 and 1 → S = 0.625 and by kind too.
    assert r.sensitivity == pytest.approx(0.625)
    assert r.sensitivity_by_kind == pytest.approx({"typo": 0.625})


def test_score_samples_empty_groups_and_no_variants() -> None:
    # No clean samples → uniform over 2 clusters: H = ln 2, self-consistency 1 − ½.
    r = score_samples([[], [1, 1]], 2, ["typo"], divergence="tv")
    assert r.entropy == pytest.approx(LN2)
    assert r.self_consistency == pytest.approx(0.5)
    assert r.sensitivity == pytest.approx(0.5)
    r0 = score_samples([[0, 1]], 2, [])
    assert (r0.sensitivity, r0.sensitivity_max, r0.flip_rate) == (0.0, 0.0, 0.0)


def test_score_samples_rejects() -> None:
    with pytest.raises(ValueError):
        score_samples([], 1, [])
    with pytest.raises(ValueError, match="kind"):
        score_samples([[0], [0]], 1, [])
    with pytest.raises(ValueError):
        score_samples([[0], [3]], 2, ["a"])
    with pytest.raises(ValueError, match="prediction_clusters"):
        score_samples([[0], [1]], 2, ["a"], prediction_clusters=[0])
    with pytest.raises(ValueError, match="prediction_clusters"):
        score_samples([[0], [1]], 2, ["a"], prediction_clusters=[0, 5])
    with pytest.raises(ValueError, match="lam"):
        score_samples([[0], [1]], 2, ["a"], lam=math.inf)


# --- properties --------------------------------------------------------------------------------


@st.composite
def items(draw: st.DrawFn, max_variants: int = 5) -> tuple[np.ndarray, list[np.ndarray], list[str]]:
    n = draw(st.integers(min_value=1, max_value=6))
    p = draw(dist_of(n))
    k = draw(st.integers(min_value=0, max_value=max_variants))
    variants = [draw(dist_of(n)) for _ in range(k)]
    kinds = [draw(KINDS) for _ in range(k)]
    return p, variants, kinds


DIVERGENCE_NAMES = st.sampled_from(["js", "kl", "tv"])
LAMBDAS = st.floats(min_value=0.0, max_value=5.0)


@given(items(), DIVERGENCE_NAMES, LAMBDAS, st.data())
def test_variant_order_does_not_matter(
    item: tuple[np.ndarray, list[np.ndarray], list[str]],
    name: str,
    lam: float,
    data: st.DataObject,
) -> None:
    p, variants, kinds = item
    perm = data.draw(st.permutations(range(len(variants))))
    a = score_distributions(p, variants, kinds, divergence=name, lam=lam)
    b = score_distributions(
        p, [variants[i] for i in perm], [kinds[i] for i in perm], divergence=name, lam=lam
    )
    assert b.sensitivity == a.sensitivity
    assert b.sensitivity_max == a.sensitivity_max
    assert b.entropy == a.entropy
    assert b.sua == a.sua
    assert b.flip_rate == a.flip_rate
    assert b.sensitivity_by_kind == a.sensitivity_by_kind
    assert b.divergences == [a.divergences[i] for i in perm]


def _unique_argmax(p: np.ndarray) -> bool:
    top = np.sort(p)[::-1]
    return p.size == 1 or top[0] - top[1] > 1e-9


@given(items(), DIVERGENCE_NAMES, LAMBDAS, st.data())
def test_label_order_does_not_matter(
    item: tuple[np.ndarray, list[np.ndarray], list[str]],
    name: str,
    lam: float,
    data: st.DataObject,
) -> None:
    p, variants, kinds = item
    perm = list(data.draw(st.permutations(range(p.size))))
    a = score_distributions(p, variants, kinds, divergence=name, lam=lam)
    b = score_distributions(p[perm], [q[perm] for q in variants], kinds, divergence=name, lam=lam)
    fields = [f for f in SCALAR_FIELDS if f != "flip_rate"]
    # Argmax ties are broken by label index, so flip_rate is invariant only without ties.
    if all(_unique_argmax(q) for q in [p, *variants]):
        fields.append("flip_rate")
    for f in fields:
        assert getattr(b, f) == pytest.approx(getattr(a, f), rel=1e-9, abs=1e-12), f
    assert b.divergences == pytest.approx(a.divergences, rel=1e-9, abs=1e-12)
    assert b.sensitivity_by_kind == pytest.approx(a.sensitivity_by_kind, rel=1e-9, abs=1e-12)


@given(items(), st.integers(min_value=0, max_value=5), DIVERGENCE_NAMES)
def test_no_sensitivity_when_variants_equal_clean(
    item: tuple[np.ndarray, list[np.ndarray], list[str]], k: int, name: str
) -> None:
    p = item[0]
    r = score_distributions(p, [p.copy() for _ in range(k)], ["typo"] * k, divergence=name)
    assert r.sensitivity == 0.0
    assert r.sensitivity_max == 0.0
    assert r.flip_rate == 0.0
    assert r.sua == pytest.approx(-r.entropy)


@given(items(), DIVERGENCE_NAMES, LAMBDAS)
def test_score_invariants(
    item: tuple[np.ndarray, list[np.ndarray], list[str]], name: str, lam: float
) -> None:
    p, variants, kinds = item
    r = score_distributions(p, variants, kinds, divergence=name, lam=lam)
    assert r.sua_pos >= 0.0
    assert r.sua_pos >= r.sua
    assert r.sua == pytest.approx(r.sensitivity - lam * r.entropy)
    assert 0.0 <= r.sensitivity <= r.sensitivity_max + 1e-12
    assert 0.0 <= r.entropy <= math.log(p.size) + 1e-12
    assert 0.0 <= r.entropy_norm <= 1.0 + 1e-12
    assert 0.0 <= r.flip_rate <= 1.0
    assert 0.0 <= r.max_prob < 1.0
    assert all(math.isfinite(getattr(r, f)) for f in SCALAR_FIELDS)
    if name == "js":
        assert r.sensitivity_max <= LN2
    if name == "tv":
        assert r.sensitivity_max <= 1.0


@st.composite
def sample_items(draw: st.DrawFn) -> tuple[list[list[int]], int, list[str]]:
    c = draw(st.integers(min_value=1, max_value=5))
    g = draw(st.integers(min_value=1, max_value=5))
    ids = [draw(st.lists(st.integers(0, c - 1), min_size=0, max_size=6)) for _ in range(g)]
    kinds = [draw(KINDS) for _ in range(g - 1)]
    return ids, c, kinds


@given(sample_items(), DIVERGENCE_NAMES, LAMBDAS, st.data())
def test_score_samples_properties(
    item: tuple[list[list[int]], int, list[str]],
    name: str,
    lam: float,
    data: st.DataObject,
) -> None:
    ids, c, kinds = item
    r = score_samples(ids, c, kinds, divergence=name, lam=lam)
    assert r.sua_pos >= 0.0 and r.sua_pos >= r.sua
    assert math.isfinite(r.sensitivity) and r.sensitivity >= 0.0
    assert r.semantic_entropy == r.entropy
    assert r.self_consistency == pytest.approx(r.max_prob)
    assert 0.0 <= r.flip_rate <= 1.0
    # Permuting the variant groups (kinds alongside) leaves the aggregates unchanged.
    perm = data.draw(st.permutations(range(len(kinds))))
    r2 = score_samples(
        [ids[0], *(ids[1 + i] for i in perm)], c, [kinds[i] for i in perm], divergence=name, lam=lam
    )
    assert (r2.sensitivity, r2.sensitivity_max, r2.entropy, r2.sua, r2.flip_rate) == (
        r.sensitivity,
        r.sensitivity_max,
        r.entropy,
        r.sua,
        r.flip_rate,
    )
