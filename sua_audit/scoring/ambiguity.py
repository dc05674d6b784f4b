"""Ambiguity collapse: does the model keep several valid readings open, or pick one?

On an item known to have m ≥ 2 valid interpretations, a model that puts nearly all of its
mass on one answer has *collapsed* the ambiguity. This module owns two proxies for that, as
pure functions (stdlib + the scoring helpers, no I/O):

* κ(x) = max(0, log m − H(x)) (:func:`kappa`), with H the model's predictive entropy at the
  clean input in nats. A model spreading its mass evenly over the m readings has H ≥ log m
  and κ = 0; a model certain of one answer has H = 0 and κ = log m, the most collapse
  possible. κ ignores *which* answers carry the mass; the coverage flag below looks at that.
* Coverage: which valid readings the model's output reaches, and ``collapsed`` = exactly one
  is reached.

Two kinds of ambiguous items (:func:`item_collapse` picks by task):

QA with ``interpretations`` = ``[{question, answers}, ...]`` (AmbigNQ) — :func:`qa_collapse`.
  The model's answers at the clean input (greedy and samples, already extracted strings)
  are matched against each interpretation's answers with
  :func:`sua_audit.scoring.qa.answer_contains` (the default grading rule: a reading's answer
  stated in the answer's first sentence; exact match always counts). An
  interpretation is *covered* when the share of the model's answers that match it is at
  least ``min_share`` (default 0: one matching answer is enough). Interpretations whose
  normalised answer sets are identical are one reading (AmbigNQ lists each annotator's
  disambiguations, so the same reading can appear twice in other words) and are merged
  first; m = the number of distinct readings. One answer may cover two readings when it is
  valid under both (then it is no evidence of collapse). H, when not given, is the entropy
  of the model's answers clustered by exact match after normalisation.

Classification / NLI with several ``gold_labels`` (AmbiEnt) — :func:`label_collapse`.
  m = the number of distinct gold labels; a gold label is *covered* when the model's
  probability for it is at least ``floor`` (:data:`DEFAULT_LABEL_FLOOR` = 0.1: a tenth of the
  mass is a reading the model seriously keeps open; choose ``floor`` ≤ 1/m so that covering
  every reading stays possible). H, when not given, is the entropy of the model's
  distribution over the item's whole label set (not only the gold labels), as in the audit.

Outcomes of an applicable item (exactly one is true):

* ``collapsed``: exactly one reading is covered — the mass sits on one valid reading;
* ``uncovered``: no reading is covered — the model's answer fits none of the valid
  readings. This is a plain error, not a collapse, and is counted apart;
* neither: two or more readings are covered.

Items with fewer than two readings are *not applicable* (``applicable`` false, the other
fields ``None`` / empty). :func:`collapse_rate` is the share of collapsed items among the
applicable ones (uncovered items count in the denominator, as not collapsed);
:func:`collapse_summary` gives the counts behind it, the rate among covered items and the
mean κ.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sua_audit.scoring import distributions as dist
from sua_audit.scoring.qa import (
    answer_contains,
    cluster_answers,
    cluster_distribution,
    normalize_answer,
)

if TYPE_CHECKING:
    from sua_audit.dataset import Item

__all__ = [
    "DEFAULT_LABEL_FLOOR",
    "collapse_rate",
    "collapse_summary",
    "distinct_interpretations",
    "item_collapse",
    "kappa",
    "label_collapse",
    "not_applicable",
    "qa_collapse",
]

#: A gold label with at least this probability counts as a reading the model keeps open.
DEFAULT_LABEL_FLOOR = 0.1


def kappa(m: int, entropy: float) -> float:
    """The collapse proxy κ = max(0, log m − H), in nats.

    Args:
        m: Number of valid interpretations (≥ 1).
        entropy: The model's predictive entropy H at the clean input, in nats (≥ 0).

    Returns:
        κ ≥ 0; 0 when ``m == 1``.

    Raises:
        ValueError: If ``m < 1`` or ``entropy`` is negative or not finite.
    """
    if isinstance(m, bool) or int(m) != m or m < 1:
        raise ValueError(f"m must be a positive whole number of interpretations, got {m!r}")
    if not math.isfinite(entropy) or entropy < 0:
        raise ValueError(f"entropy must be a finite number >= 0 (nats), got {entropy!r}")
    return max(0.0, math.log(m) - entropy)


def not_applicable(m: int = 0, entropy: float | None = None) -> dict[str, Any]:
    """The row of an item with fewer than two valid readings."""
    return {
        "applicable": False,
        "m": m,
        "entropy": entropy,
        "kappa": None,
        "covered": [],
        "n_covered": 0,
        "collapsed": None,
        "uncovered": None,
    }


def _row(m: int, entropy: float, covered: list[Any]) -> dict[str, Any]:
    return {
        "applicable": True,
        "m": m,
        "entropy": entropy,
        "kappa": kappa(m, entropy),
        "covered": covered,
        "n_covered": len(covered),
        "collapsed": len(covered) == 1,
        "uncovered": not covered,
    }


def distinct_interpretations(
    interpretations: Sequence[Mapping[str, Any]],
) -> list[tuple[int, tuple[str, ...]]]:
    """Merge QA interpretations whose normalised answer sets are identical.

    Args:
        interpretations: ``[{"question": ..., "answers": [...]}, ...]``; a missing or
            non-list ``answers`` counts as no answers.

    Returns:
        ``(index of the first interpretation of the reading, its answers)`` per distinct
        reading, in first-seen order.
    """
    seen: dict[frozenset[str], int] = {}
    out: list[tuple[int, tuple[str, ...]]] = []
    for i, interpretation in enumerate(interpretations):
        raw = interpretation.get("answers") if isinstance(interpretation, Mapping) else None
        answers = tuple(a for a in raw if isinstance(a, str)) if isinstance(raw, list) else ()
        key = frozenset(normalize_answer(a) for a in answers)
        if key not in seen:
            seen[key] = i
            out.append((i, answers))
    return out


def _answer_entropy(answers: Sequence[str]) -> float:
    ids, reps = cluster_answers([answers])
    return dist.entropy(cluster_distribution(ids[0], len(reps)))


def qa_collapse(
    interpretations: Sequence[Mapping[str, Any]],
    answers: Sequence[str],
    *,
    entropy: float | None = None,
    min_share: float = 0.0,
) -> dict[str, Any]:
    """Ambiguity collapse of a QA item with ``interpretations``.

    Args:
        interpretations: The item's ``[{"question", "answers"}, ...]``.
        answers: The model's extracted answers at the clean input (greedy and samples).
        entropy: H at the clean input in nats; ``None`` computes it from ``answers``
            (exact-match clusters after normalisation).
        min_share: Least share of ``answers`` matching a reading for it to be covered;
            0 (default) means one matching answer is enough.

    Returns:
        ``{"applicable", "m", "entropy", "kappa", "covered", "n_covered", "collapsed",
        "uncovered"}``; ``covered`` lists, for each covered reading, the index in
        ``interpretations`` of its first interpretation.

    Raises:
        ValueError: If the item is applicable, ``answers`` is empty and no ``entropy`` is
            given, or ``min_share`` is outside [0, 1].
    """
    if not 0.0 <= min_share <= 1.0:
        raise ValueError(f"min_share must lie in [0, 1], got {min_share!r}")
    readings = distinct_interpretations(interpretations)
    if len(readings) < 2:
        return not_applicable(len(readings), entropy)
    if entropy is None:
        if not answers:
            raise ValueError("qa_collapse needs the model's answers (or an entropy)")
        entropy = _answer_entropy(answers)
    covered = []
    for index, golds in readings:
        hits = sum(answer_contains(a, golds) for a in answers)
        if hits and hits >= min_share * len(answers):
            covered.append(index)
    return _row(len(readings), entropy, covered)


def label_collapse(
    gold_labels: Sequence[str],
    labels: Sequence[str],
    probs: Sequence[float],
    *,
    entropy: float | None = None,
    floor: float = DEFAULT_LABEL_FLOOR,
) -> dict[str, Any]:
    """Ambiguity collapse of a classification / NLI item with several gold labels.

    Args:
        gold_labels: The valid labels (m = the number of distinct ones).
        labels: The item's label set, in the order of ``probs``.
        probs: The model's probabilities over ``labels`` at the clean input (renormalised
            here if they do not sum to 1).
        entropy: H in nats; ``None`` computes it from ``probs`` (over the whole label set).
        floor: Least probability for a gold label to count as covered, in (0, 1].

    Returns:
        The row (see :func:`qa_collapse`); ``covered`` lists the covered gold labels in the
        order of ``labels``.

    Raises:
        ValueError: On mismatched lengths, negative or all-zero probabilities, a gold label
            that is not in ``labels``, or ``floor`` outside (0, 1].
    """
    if not 0.0 < floor <= 1.0:
        raise ValueError(f"floor must lie in (0, 1], got {floor!r}")
    if len(probs) != len(labels):
        raise ValueError(f"probs has {len(probs)} entries for {len(labels)} labels")
    values = [float(p) for p in probs]
    if any(not math.isfinite(p) or p < 0 for p in values) or math.fsum(values) <= 0:
        raise ValueError(f"probs must be non-negative with a positive sum, got {list(probs)}")
    total = math.fsum(values)
    p = [v / total for v in values]
    if entropy is None:
        entropy = dist.entropy(p)
    position: dict[str, int] = {}
    for gold in gold_labels:
        if gold in labels:
            position[gold] = list(labels).index(gold)
            continue
        lowered = [label.lower() for label in labels]
        if gold.lower() not in lowered:
            raise ValueError(f"gold label {gold!r} is not one of the labels {list(labels)}")
        position[gold] = lowered.index(gold.lower())
    indices = sorted(set(position.values()))
    if len(indices) < 2:
        return not_applicable(len(indices), entropy)
    covered = [labels[i] for i in indices if p[i] >= floor]
    return _row(len(indices), entropy, covered)


def item_collapse(
    item: Item,
    *,
    answers: Sequence[str] | None = None,
    probs: Sequence[float] | None = None,
    entropy: float | None = None,
    floor: float = DEFAULT_LABEL_FLOOR,
    min_share: float = 0.0,
) -> dict[str, Any]:
    """Ambiguity collapse of one dataset item, by its task.

    QA items use their ``interpretations`` (:func:`qa_collapse`, needs ``answers``);
    classification / NLI items use their ``gold_labels`` (:func:`label_collapse`, needs
    ``probs`` over ``item.labels``). Items with fewer than two readings are not applicable
    and need no model output.

    Raises:
        ValueError: When the item is applicable and the model output it needs is missing
            (or is invalid, see the two functions).
    """
    if item.task == "qa":
        interpretations = [
            i for i in item.interpretations or () if isinstance(i, Mapping) and "answers" in i
        ]
        m = len(distinct_interpretations(interpretations))
        if m < 2:
            return not_applicable(m, entropy)
        if answers is None:
            raise ValueError(f"item {item.id}: ambiguity collapse of a QA item needs answers")
        return qa_collapse(interpretations, answers, entropy=entropy, min_share=min_share)
    golds = list(dict.fromkeys(item.gold_labels or ()))
    if len(golds) < 2 or not item.labels:
        return not_applicable(len(golds), entropy)
    if probs is None:
        raise ValueError(f"item {item.id}: ambiguity collapse of a labelled item needs probs")
    return label_collapse(golds, item.labels, probs, entropy=entropy, floor=floor)


def collapse_rate(rows: Iterable[Mapping[str, Any]]) -> float | None:
    """Share of collapsed items among the applicable ones (``None`` when there are none)."""
    applicable = [row for row in rows if row.get("applicable")]
    if not applicable:
        return None
    return sum(bool(row.get("collapsed")) for row in applicable) / len(applicable)


def collapse_summary(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts and rates over per-item rows.

    Returns:
        ``n_items``, ``n_applicable``, ``n_collapsed``, ``n_uncovered``, ``n_multi`` (two or
        more readings covered), ``collapse_rate`` (collapsed / applicable),
        ``collapse_rate_covered`` (collapsed / applicable items with a covered reading) and
        ``mean_kappa`` over the applicable items; rates and means are ``None`` when their
        denominator is 0.
    """
    rows = list(rows)
    applicable = [row for row in rows if row.get("applicable")]
    n_collapsed = sum(bool(row.get("collapsed")) for row in applicable)
    n_uncovered = sum(bool(row.get("uncovered")) for row in applicable)
    n_covered_any = len(applicable) - n_uncovered
    kappas = [float(row["kappa"]) for row in applicable if row.get("kappa") is not None]
    return {
        "n_items": len(rows),
        "n_applicable": len(applicable),
        "n_collapsed": n_collapsed,
        "n_uncovered": n_uncovered,
        "n_multi": n_covered_any - n_collapsed,
        "collapse_rate": n_collapsed / len(applicable) if applicable else None,
        "collapse_rate_covered": n_collapsed / n_covered_any if n_covered_any else None,
        "mean_kappa": math.fsum(kappas) / len(kappas) if kappas else None,
    }
