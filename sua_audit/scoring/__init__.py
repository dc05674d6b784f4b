"""Scoring: distributions, divergences, QA answer clustering, per-item SUA scores, abstention.

This package owns every number the audit computes per item, as pure functions (numpy + stdlib,
no I/O): entropy and the divergences (:mod:`.distributions`), free-text answer extraction and
joint clustering (:mod:`.qa`), the per-item scores :class:`ItemScores` (:mod:`.item`) and the
abstention rule (:mod:`.abstention`).
"""

from sua_audit.scoring.abstention import DEFAULT_TAU, abstain, coverage_threshold
from sua_audit.scoring.distributions import (
    DEFAULT_DIVERGENCE,
    DIVERGENCES,
    divergence,
    entropy,
    js,
    kl,
    normalize_logprobs,
    tv,
)
from sua_audit.scoring.item import ItemScores, score_distributions, score_samples
from sua_audit.scoring.qa import (
    answer_matches,
    cluster_answers,
    cluster_distribution,
    extract_answer,
    normalize_answer,
)

__all__ = [
    "DEFAULT_DIVERGENCE",
    "DEFAULT_TAU",
    "DIVERGENCES",
    "ItemScores",
    "abstain",
    "answer_matches",
    "cluster_answers",
    "cluster_distribution",
    "coverage_threshold",
    "divergence",
    "entropy",
    "extract_answer",
    "js",
    "kl",
    "normalize_answer",
    "normalize_logprobs",
    "score_distributions",
    "score_samples",
    "tv",
]
