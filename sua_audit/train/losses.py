"""The SUA-TR loss terms, in torch, matching :mod:`sua_audit.scoring.distributions`.

Every function takes label *log*-probabilities (the log-softmax over an item's label set, as
the audit computes them) with the label axis last, so a batch is a ``(B, |Y|)`` tensor and the
perturbed variants a ``(B, K, |Y|)`` tensor. All terms are differentiable:

* :func:`entropy` — H(p) = −Σ p log p in nats, from log-probabilities (exact, no clamping);
* :func:`divergence` — ``js`` (default, as in the audit), ``kl`` (additive smoothing ε then
  renormalisation, exactly as ``distributions.kl``) or ``tv``;
* :func:`sua_terms` — the per-example cross-entropy, sensitivity S = mean_k D(p, q_k), entropy
  H and [S − λH]_+, and the total ``CE + α·S + β·[S − λH]_+`` averaged over the batch.

Stop-gradient: by default the clean distribution p is detached *inside D* (``clean_grad=False``),
so the divergence pulls each perturbed prediction towards the clean one and never the clean
prediction towards the perturbed ones; the clean prediction is steered by the cross-entropy and,
through H, by the hinge. docs/method.md ("SUA-TR") gives the reasons.

torch is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

DIVERGENCES = ("js", "kl", "tv")


def entropy(logp: Any) -> Any:
    """H(p) = −Σ p log p over the last axis, in nats, from log-probabilities."""
    import torch

    p = logp.exp()
    # 0·log 0 = 0. log p is replaced by 0 where p is 0 *before* the product, so neither the
    # value nor the gradient meets 0·(−inf).
    safe = torch.where(p > 0, logp, torch.zeros_like(logp))
    return -(p * safe).sum(-1)


def _xlogx_over(p: Any, q: Any) -> Any:
    """Σ p (log p − log q) over the last axis, with 0·log 0 = 0 (q > 0 wherever p > 0)."""
    import torch

    tiny = torch.finfo(p.dtype).tiny
    ratio = torch.log(p.clamp_min(tiny)) - torch.log(q.clamp_min(tiny))
    return torch.where(p > 0, p * ratio, torch.zeros_like(p)).sum(-1)


def divergence(name: str, logp: Any, logq: Any, *, smoothing: float = 1e-3) -> Any:
    """D(p, q) over the last axis (broadcasting), differentiable in both arguments.

    Args:
        name: ``"js"`` (Jensen–Shannon, nats, ≤ ln 2), ``"kl"`` (KL(p'‖q') after additive
            smoothing p' = (p + ε)/(1 + |Y|ε), as the audit computes it) or ``"tv"`` (½Σ|p − q|).
        logp: Log-probabilities of p (the clean distribution for sensitivity).
        logq: Log-probabilities of q, broadcastable against ``logp``.
        smoothing: ε for ``kl``.

    Raises:
        ValueError: On an unknown name or a non-positive smoothing.
    """
    p, q = logp.exp(), logq.exp()
    if name == "js":
        m = 0.5 * (p + q)
        return (0.5 * _xlogx_over(p, m) + 0.5 * _xlogx_over(q, m)).clamp(0.0, math.log(2.0))
    if name == "kl":
        if not (math.isfinite(smoothing) and smoothing > 0):
            raise ValueError(f"smoothing must be a finite number > 0, got {smoothing!r}")
        denom = 1.0 + p.shape[-1] * smoothing
        return _xlogx_over((p + smoothing) / denom, (q + smoothing) / denom).clamp_min(0.0)
    if name == "tv":
        return (0.5 * (p - q).abs().sum(-1)).clamp(0.0, 1.0)
    raise ValueError(f"unknown divergence {name!r}; choose one of: {', '.join(DIVERGENCES)}")


def cross_entropy(logp: Any, gold_mask: Any) -> Any:
    """−log Σ_{y ∈ gold} p(y) per example (several gold labels share the credit)."""
    import torch

    masked = logp.masked_fill(~gold_mask, float("-inf"))
    return -torch.logsumexp(masked, dim=-1)


@dataclass
class LossTerms:
    """Per-batch means of each term (tensors; ``total`` carries the gradient)."""

    total: Any
    ce: Any
    sensitivity: Any
    entropy: Any
    sua_pos: Any

    def floats(self) -> dict[str, float]:
        """The terms as plain floats, for logs and the loss curve."""
        return {
            "total": float(self.total.detach()),
            "ce": float(self.ce.detach()),
            "sensitivity": float(self.sensitivity.detach()),
            "entropy": float(self.entropy.detach()),
            "sua_pos": float(self.sua_pos.detach()),
        }


def sua_terms(
    clean_logp: Any,
    pert_logp: Any | None,
    gold_mask: Any,
    *,
    alpha: float,
    beta: float,
    lam: float,
    divergence_name: str = "js",
    smoothing: float = 1e-3,
    clean_grad: bool = False,
) -> LossTerms:
    """CE + α·S + β·[S − λH]_+, each averaged over the batch.

    Args:
        clean_logp: ``(B, |Y|)`` label log-probabilities at the clean inputs.
        pert_logp: ``(B, K, |Y|)`` at the K perturbed inputs, or ``None`` (then S = 0; only
            allowed when α = β = 0, the plain fine-tuning baseline).
        gold_mask: ``(B, |Y|)`` booleans, True on the gold labels.
        alpha: Weight of the mean divergence S.
        beta: Weight of the hinge [S − λH]_+.
        lam: λ in SUA = S − λH.
        divergence_name: ``js``, ``kl`` or ``tv``.
        smoothing: ε for ``kl``.
        clean_grad: Let gradients flow into p inside D (default: p is detached there).

    Returns:
        The batch means; ``total`` is the loss to minimise.
    """
    import torch

    ce = cross_entropy(clean_logp, gold_mask)
    h = entropy(clean_logp)
    if pert_logp is None:
        if alpha or beta:
            raise ValueError("perturbed distributions are needed when alpha or beta is not 0")
        s = torch.zeros_like(ce)
    else:
        ref = clean_logp if clean_grad else clean_logp.detach()
        s = divergence(divergence_name, ref.unsqueeze(1), pert_logp, smoothing=smoothing).mean(1)
    sua_pos = torch.relu(s - lam * h)
    total = ce + alpha * s + beta * sua_pos
    return LossTerms(total.mean(), ce.mean(), s.mean(), h.mean(), sua_pos.mean())
