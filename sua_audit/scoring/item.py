"""Per-item scores: entropy, sensitivity, SUA and the baselines, for one item and its variants.

This module owns :class:`ItemScores` and the two ways of computing it:

* :func:`score_distributions` — classification / NLI, where the model's distribution over the
  item's label set is known exactly (renormalised label log-probabilities);
* :func:`score_samples` — free-text QA, where distributions are empirical frequencies of
  answer clusters, clustered jointly across all variants so they share one support.

Definitions (x the clean input, x'_1..x'_K its meaning-preserving variants, D a divergence):

* H = entropy of p(·|x) in nats; ``entropy_norm`` = H / log|Y| (0 when |Y| ≤ 1);
* S = (1/K) Σ_k D(p(·|x), p(·|x'_k)); S_max = max_k D(...). With K = 0 variants there is no
  evidence of sensitivity and S = S_max = 0 (and ``flip_rate`` = 0);
* SUA = S − λH, ``sua_pos`` = max(0, SUA). λ ≥ 0 is the paper's reading ("unstable but
  confident"); a negative λ is accepted (then SUA = S + |λ|H: "unstable and uncertain").

S and H are on different scales: on our label sets S is about 0.003 nats and H about 0.6, so at
λ = 1 SUA ranks items almost exactly like −H. λ = 1 is the paper's default, not a balanced
weight; :mod:`sua_audit.scoring.table` has the scale-free ``sua_norm`` and the diagnostics.

Divergences: KL uses additive smoothing ε (``smoothing``) of both arguments — needed because
empirical QA supports can be disjoint, where unsmoothed KL is infinite. JS and TV are finite on
any pair of distributions and use no smoothing. The mean over variants is computed with
``math.fsum``, so S does not depend on the order of the variants.

Every score is oriented as an *uncertainty*: higher means more uncertain / more suspicious.
All functions are pure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sua_audit.scoring import distributions as dist
from sua_audit.scoring.distributions import FloatVector
from sua_audit.scoring.qa import cluster_distribution


@dataclass(frozen=True, slots=True)
class ItemScores:
    """All scores of one item. Higher always means more uncertain / more suspicious.

    Attributes:
        entropy: H, predictive entropy at the clean input, in nats.
        entropy_norm: H / log|Y| with |Y| the support size; 0 when |Y| ≤ 1.
        sensitivity: S, mean over variants of D(p_clean, p_k); 0 without variants.
        sensitivity_max: S_max, max over variants of D(p_clean, p_k); 0 without variants.
        sua: S − λH.
        sua_pos: max(0, S − λH).
        self_consistency: 1 − share of clean samples agreeing with the majority (for exact
            distributions: the expected disagreement of one sample with the mode, 1 − max p).
        max_prob: 1 − the clean answer's probability: 1 − max p_clean for label tasks; for QA
            1 − the share of clean samples in the *greedy* answer's cluster (the answer that
            is graded), when the prediction clusters are given.
        semantic_entropy: Entropy over semantic classes at the clean input.
        flip_rate: Share of variants whose prediction differs from the clean prediction.
        sensitivity_by_kind: Mean D per perturbation kind (kinds in first-seen order).
        divergences: D(p_clean, p_k) per variant, in variant order.
    """

    entropy: float
    entropy_norm: float
    sensitivity: float
    sensitivity_max: float
    sua: float
    sua_pos: float
    self_consistency: float
    max_prob: float
    semantic_entropy: float
    flip_rate: float
    sensitivity_by_kind: dict[str, float] = field(default_factory=dict)
    divergences: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the scores as a plain, JSON-ready dict (containers are copied).

        Returns:
            A dict with one key per field.
        """
        return {
            "entropy": self.entropy,
            "entropy_norm": self.entropy_norm,
            "sensitivity": self.sensitivity,
            "sensitivity_max": self.sensitivity_max,
            "sua": self.sua,
            "sua_pos": self.sua_pos,
            "self_consistency": self.self_consistency,
            "max_prob": self.max_prob,
            "semantic_entropy": self.semantic_entropy,
            "flip_rate": self.flip_rate,
            "sensitivity_by_kind": dict(self.sensitivity_by_kind),
            "divergences": list(self.divergences),
        }


def sua_score(sensitivity: Any, entropy: Any, lam: float) -> Any:
    """SUA = S − λH: the one place the formula is written. Works on floats, numpy arrays and
    torch tensors alike (the trainer's loss uses it on tensors)."""
    return sensitivity - lam * entropy


def check_lambda(value: Any, *, auto: bool = True) -> float | str | None:
    """λ as every entry point accepts it: ``None`` (the run's), ``"auto"`` (when ``auto``) or a
    finite number, given as a number or as text (``"0.5"``); anything else is a one-line
    ConfigError naming ``--lambda``. A negative λ is accepted (SUA = S + |λ|H: "unstable and
    uncertain"; :func:`sua_audit.scoring.table.lambda_meaning` says so)."""
    from sua_audit.errors import ConfigError

    if value is None or (auto and value == "auto"):
        return value
    try:
        lam = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        lam = math.nan
    if not math.isfinite(lam):
        allowed = "a finite number or auto" if auto else "a finite number"
        raise ConfigError(f"--lambda must be {allowed}, got {value!r}.")
    return lam


def _check_common(
    n_variants: int, kinds: Sequence[str], name: str, lam: float, smoothing: float
) -> None:
    dist.check_divergence(name)
    if len(kinds) != n_variants:
        raise ValueError(f"need one kind per variant: {n_variants} variants, {len(kinds)} kinds")
    if not math.isfinite(lam):
        raise ValueError(f"lam must be a finite number, got {lam!r}")
    if name == "kl" and not (math.isfinite(smoothing) and smoothing > 0):
        raise ValueError(f"smoothing must be a finite number > 0, got {smoothing!r}")


def _assemble(
    p_clean: npt.NDArray[np.float64],
    p_variants: Sequence[npt.NDArray[np.float64]],
    kinds: Sequence[str],
    *,
    clean_prediction: int,
    variant_predictions: Sequence[int],
    self_consistency: float,
    name: str,
    lam: float,
    smoothing: float,
    max_prob: float | None = None,
) -> ItemScores:
    h = dist.entropy(p_clean)
    size = p_clean.size
    h_norm = h / math.log(size) if size > 1 else 0.0
    divs = [dist.divergence(name, p_clean, q, smoothing=smoothing) for q in p_variants]
    k = len(divs)
    s = math.fsum(divs) / k if k else 0.0
    s_max = max(divs) if k else 0.0
    by_kind_values: dict[str, list[float]] = {}
    for kind, d in zip(kinds, divs, strict=True):
        by_kind_values.setdefault(kind, []).append(d)
    by_kind = {kind: math.fsum(v) / len(v) for kind, v in by_kind_values.items()}
    flips = sum(1 for pred in variant_predictions if pred != clean_prediction)
    sua = sua_score(s, h, lam)
    return ItemScores(
        entropy=h,
        entropy_norm=h_norm,
        sensitivity=s,
        sensitivity_max=s_max,
        sua=sua,
        sua_pos=max(0.0, sua),
        self_consistency=self_consistency,
        max_prob=1.0 - float(p_clean.max()) if max_prob is None else max_prob,
        semantic_entropy=h,
        flip_rate=flips / k if k else 0.0,
        sensitivity_by_kind=by_kind,
        divergences=divs,
    )


def score_distributions(
    p_clean: FloatVector,
    p_variants: Sequence[FloatVector],
    kinds: Sequence[str],
    *,
    divergence: str = "js",
    lam: float = 1.0,
    smoothing: float = 1e-3,
) -> ItemScores:
    """Score an item whose label distributions are known exactly (classification / NLI).

    ``self_consistency`` is 1 − max p_clean: the probability that one sample from p_clean
    disagrees with the mode. With an exact distribution this coincides with ``max_prob``.
    ``semantic_entropy`` equals ``entropy``: the label set is itself the semantic partition.
    Predictions are argmaxes (ties go to the lowest label index), so ``flip_rate`` is the share
    of variants whose argmax differs from the clean argmax. With zero variants S = S_max = 0
    and ``flip_rate`` = 0.

    Args:
        p_clean: The distribution over the label set at the clean input.
        p_variants: One distribution per variant, each over the same labels in the same order.
        kinds: The perturbation kind of each variant (``len(kinds) == len(p_variants)``).
        divergence: ``"js"`` (default), ``"kl"`` or ``"tv"``.
        lam: λ in SUA = S − λH (≥ 0 in the paper; negative accepted).
        smoothing: Additive smoothing ε for KL (ignored by JS and TV).

    Returns:
        The item's :class:`ItemScores`.

    Raises:
        ValueError: On an invalid distribution, mismatched lengths, an unknown divergence,
            or a non-finite λ.
    """
    _check_common(len(p_variants), kinds, divergence, lam, smoothing)
    clean = dist.as_distribution(p_clean, "p_clean")
    variants = [dist.as_distribution(q, f"p_variants[{i}]") for i, q in enumerate(p_variants)]
    for i, q in enumerate(variants):
        if q.size != clean.size:
            raise ValueError(f"p_variants[{i}] has {q.size} labels but p_clean has {clean.size}")
    return _assemble(
        clean,
        variants,
        kinds,
        clean_prediction=int(np.argmax(clean)),
        variant_predictions=[int(np.argmax(q)) for q in variants],
        self_consistency=1.0 - float(clean.max()),
        name=divergence,
        lam=lam,
        smoothing=smoothing,
    )


def score_samples(
    cluster_ids: Sequence[Sequence[int]],
    n_clusters: int,
    kinds: Sequence[str],
    *,
    prediction_clusters: Sequence[int] | None = None,
    divergence: str = "js",
    lam: float = 1.0,
    smoothing: float = 1e-3,
) -> ItemScores:
    """Score a free-text (QA) item from sampled answers clustered jointly across variants.

    Each group's distribution is :func:`~sua_audit.scoring.qa.cluster_distribution` on the
    joint support of ``n_clusters`` clusters (uniform for a group without samples). H is the
    entropy of the clean distribution; it is also ``semantic_entropy``, since clusters are
    semantic classes (exact match after normalisation today). ``self_consistency`` is
    1 − (share of clean samples in the majority cluster). ``max_prob`` is 1 − the share of
    clean samples in the clean *prediction's* cluster when ``prediction_clusters`` is given (the
    greedy answer: the one that is graded, so confidence, grading and ECE refer to the same
    answer), else 1 − max p_clean like ``self_consistency``. ``flip_rate`` compares each variant's
    prediction cluster with the clean one: the given ``prediction_clusters`` (e.g. the greedy
    answers' clusters), or else the mode of each group's distribution (ties → lowest cluster
    id, i.e. first seen). With zero variants S = S_max = 0 and ``flip_rate`` = 0.

    Args:
        cluster_ids: ``cluster_ids[0]`` are the clean samples' cluster ids, ``cluster_ids[v]``
            (v ≥ 1) those of variant v.
        n_clusters: Number of clusters across all groups (the joint support size).
        kinds: Perturbation kind of each variant (``len(kinds) == len(cluster_ids) - 1``).
        prediction_clusters: Optional cluster of the predicted (greedy) answer per group,
            same length as ``cluster_ids``.
        divergence: ``"js"`` (default), ``"kl"`` or ``"tv"``.
        lam: λ in SUA = S − λH (≥ 0 in the paper; negative accepted).
        smoothing: Additive smoothing ε for KL (ignored by JS and TV).

    Returns:
        The item's :class:`ItemScores`.

    Raises:
        ValueError: If ``cluster_ids`` is empty, a cluster id is out of range, lengths do not
            match, the divergence is unknown, or λ is not finite.
    """
    if len(cluster_ids) == 0:
        raise ValueError("cluster_ids must contain at least the clean group")
    _check_common(len(cluster_ids) - 1, kinds, divergence, lam, smoothing)
    dists = [cluster_distribution(ids, n_clusters) for ids in cluster_ids]
    if prediction_clusters is None:
        predictions = [int(np.argmax(p)) for p in dists]
    else:
        if len(prediction_clusters) != len(cluster_ids):
            raise ValueError(
                f"prediction_clusters has {len(prediction_clusters)} entries, "
                f"expected one per group ({len(cluster_ids)})"
            )
        predictions = [int(c) for c in prediction_clusters]
        if any(c < 0 or c >= n_clusters for c in predictions):
            raise ValueError(
                f"prediction_clusters must lie in 0..{n_clusters - 1}, got {predictions}"
            )
    clean = dists[0]
    # Share of clean samples in the majority cluster is exactly max p_clean.
    self_consistency = 1.0 - float(clean.max())
    confidence = float(clean[predictions[0]]) if prediction_clusters is not None else None
    return _assemble(
        clean,
        dists[1:],
        kinds,
        clean_prediction=predictions[0],
        variant_predictions=predictions[1:],
        self_consistency=self_consistency,
        name=divergence,
        lam=lam,
        smoothing=smoothing,
        max_prob=None if confidence is None else 1.0 - confidence,
    )
