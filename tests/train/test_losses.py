"""SUA-TR loss terms on hand-computed distributions, and their gradients."""

from __future__ import annotations

import math

import pytest

from sua_audit.scoring import distributions as np_dist
from sua_audit.train import losses

torch = pytest.importorskip("torch")


def logt(*ps: float) -> torch.Tensor:
    return torch.log(torch.tensor(ps, dtype=torch.float64))


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        ((0.5, 0.5), math.log(2)),
        ((1.0, 0.0), 0.0),
        ((0.25, 0.25, 0.5), 1.5 * math.log(2)),
        ((0.9, 0.1), -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))),
    ],
)
def test_entropy_hand_computed(p: tuple[float, ...], expected: float) -> None:
    assert float(losses.entropy(logt(*p))) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("name", "p", "q", "expected"),
    [
        ("js", (1.0, 0.0), (0.0, 1.0), math.log(2)),  # disjoint supports: the maximum
        ("js", (0.3, 0.7), (0.3, 0.7), 0.0),
        # JS((1,0),(½,½)): m = (¾,¼); ½·log(4/3) + ½·(½log(2/3) + ½log 2)
        (
            "js",
            (1.0, 0.0),
            (0.5, 0.5),
            0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3) + 0.25 * math.log(2),
        ),
        ("tv", (0.8, 0.2), (0.5, 0.5), 0.3),
        ("tv", (1.0, 0.0, 0.0), (0.0, 0.5, 0.5), 1.0),
        # KL with ε = 0.1 on two labels: p' = (1.1, 0.1)/1.2, q' = (0.6, 0.6)/1.2
        (
            "kl",
            (1.0, 0.0),
            (0.5, 0.5),
            (1.1 * math.log(1.1 / 0.6) + 0.1 * math.log(0.1 / 0.6)) / 1.2,
        ),
    ],
)
def test_divergence_hand_computed(
    name: str, p: tuple[float, ...], q: tuple[float, ...], expected: float
) -> None:
    got = float(losses.divergence(name, logt(*p), logt(*q), smoothing=0.1))
    assert got == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("name", ["js", "kl", "tv"])
def test_divergence_agrees_with_the_audit(name: str) -> None:
    """The torch terms equal the audit's numpy scores (sua_audit.scoring.distributions)."""
    pairs = [
        ((0.2, 0.5, 0.3), (0.6, 0.1, 0.3)),
        ((0.99, 0.01), (0.4, 0.6)),
        ((1.0, 0.0), (0.7, 0.3)),
    ]
    for p, q in pairs:
        audit = np_dist.divergence(name, p, q, smoothing=1e-3)
        assert float(losses.divergence(name, logt(*p), logt(*q))) == pytest.approx(audit, abs=1e-9)
        assert float(losses.entropy(logt(*p))) == pytest.approx(np_dist.entropy(p), abs=1e-9)


def test_cross_entropy_with_one_and_two_gold_labels() -> None:
    lp = logt(0.6, 0.3, 0.1).unsqueeze(0)
    one = losses.cross_entropy(lp, torch.tensor([[False, True, False]]))
    two = losses.cross_entropy(lp, torch.tensor([[False, True, True]]))
    assert float(one) == pytest.approx(-math.log(0.3))
    assert float(two) == pytest.approx(-math.log(0.4))


def test_sua_terms_hand_computed() -> None:
    # p = (0.9, 0.1); q1 = (0.5, 0.5), q2 = p; TV: S = (0.4 + 0)/2 = 0.2.
    clean = logt(0.9, 0.1).unsqueeze(0)
    pert = torch.stack([logt(0.5, 0.5), logt(0.9, 0.1)]).unsqueeze(0)
    gold = torch.tensor([[True, False]])
    h = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1))  # 0.3251
    t = losses.sua_terms(clean, pert, gold, alpha=2.0, beta=3.0, lam=0.5, divergence_name="tv")
    hinge = 0.2 - 0.5 * h  # 0.0375 > 0: the hinge is active
    assert float(t.sensitivity) == pytest.approx(0.2)
    assert float(t.entropy) == pytest.approx(h)
    assert float(t.sua_pos) == pytest.approx(hinge)
    assert float(t.ce) == pytest.approx(-math.log(0.9))
    assert float(t.total) == pytest.approx(-math.log(0.9) + 2.0 * 0.2 + 3.0 * hinge)
    # With λ = 1 the hinge is inactive: S − H < 0.
    t1 = losses.sua_terms(clean, pert, gold, alpha=0.0, beta=1.0, lam=1.0, divergence_name="tv")
    assert float(t1.sua_pos) == 0.0


def _leaves() -> tuple[torch.Tensor, torch.Tensor]:
    clean = torch.tensor([[2.0, -1.0], [0.3, 0.1]], dtype=torch.float64, requires_grad=True)
    pert = torch.tensor(
        [[[0.0, 0.0], [1.0, 0.5]], [[-1.0, 1.0], [0.2, 0.2]]],
        dtype=torch.float64,
        requires_grad=True,
    )
    return clean, pert


def _grads(term: str, *, clean_grad: bool = False, lam: float = 0.1) -> tuple[float, float]:
    """Gradient norms reaching the clean and the perturbed logits from one term."""
    clean, pert = _leaves()
    gold = torch.tensor([[True, False], [False, True]])
    t = losses.sua_terms(
        torch.log_softmax(clean, -1),
        torch.log_softmax(pert, -1),
        gold,
        alpha=1.0,
        beta=1.0,
        lam=lam,
        clean_grad=clean_grad,
    )
    getattr(t, term).backward()
    norm = lambda g: 0.0 if g is None else float(g.norm())  # noqa: E731
    return norm(clean.grad), norm(pert.grad)


def test_gradients_flow_through_each_term() -> None:
    ce_clean, ce_pert = _grads("ce")
    assert ce_clean > 0 and ce_pert == 0
    s_clean, s_pert = _grads("sensitivity")
    assert s_pert > 0
    assert s_clean == 0  # the clean distribution is stop-gradiented inside D by default
    s_clean_open, _ = _grads("sensitivity", clean_grad=True)
    assert s_clean_open > 0
    h_clean, _ = _grads("sua_pos")  # active hinge: through S (perturbed) and H (clean)
    assert h_clean > 0
    _, h_pert = _grads("sua_pos")
    assert h_pert > 0
    assert _grads("sua_pos", lam=100.0) == (0.0, 0.0)  # inactive hinge: no gradient
    total_clean, total_pert = _grads("total")
    assert total_clean > 0 and total_pert > 0


def test_gradients_are_finite_at_one_hot_distributions() -> None:
    clean = torch.tensor([[0.0, -math.inf]], dtype=torch.float64, requires_grad=True)
    lp = torch.log_softmax(clean, -1)
    h = losses.entropy(lp).sum()
    h.backward()
    assert torch.isfinite(clean.grad).all()


def test_baseline_needs_no_perturbations_and_refuses_weights_without_them() -> None:
    clean = logt(0.7, 0.3).unsqueeze(0)
    gold = torch.tensor([[True, False]])
    t = losses.sua_terms(clean, None, gold, alpha=0.0, beta=0.0, lam=1.0)
    assert float(t.total) == pytest.approx(-math.log(0.7))
    with pytest.raises(ValueError, match="perturbed"):
        losses.sua_terms(clean, None, gold, alpha=1.0, beta=0.0, lam=1.0)


def test_unknown_divergence_is_refused() -> None:
    with pytest.raises(ValueError, match="js, kl, tv"):
        losses.divergence("hellinger", logt(0.5, 0.5), logt(0.5, 0.5))
