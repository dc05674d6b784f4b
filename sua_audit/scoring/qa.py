"""Free-text (QA) answers: extraction, normalisation, joint clustering and matching.

This module owns the path from a model's raw generation to a distribution over semantic
answer clusters:

* :func:`extract_answer` — raw generation → the answer span;
* :func:`normalize_answer` — SQuAD-style normalisation used for clustering and matching;
* :func:`cluster_answers` — exact-match clustering (after normalisation) *jointly* across all
  variants of one item, so every variant's distribution lives on the same support;
* :func:`cluster_distribution` — empirical cluster frequencies on that joint support;
* :func:`answer_matches` — normalised exact match against gold answers.

All functions are pure.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

# "Answer:" / "A:" at the start of the answer line, any case, optional spaces around the colon.
_PREFIX = re.compile(r"^\s*(?:answer|a)\s*:\s*", re.IGNORECASE)
_QUOTES = "\"'`\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a"
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_ASCII_PUNCT = frozenset(string.punctuation)


def _strip_quotes(text: str) -> str:
    prev = None
    while prev != text:
        prev = text
        text = text.strip().strip(_QUOTES)
    return text


def extract_answer(text: str) -> str:
    """Extract the answer span from a model's raw generation.

    Rules, in order: take the first line that is non-empty after stripping; remove a leading
    ``Answer:`` or ``A:`` prefix (case-insensitive); strip surrounding whitespace and quotes
    (ASCII and typographic, repeatedly). If a line holds only the prefix (e.g. ``"Answer:"``
    followed by the answer on the next line), the next non-empty line is used instead.
    Trailing punctuation such as a final period is kept; :func:`normalize_answer` removes it.

    Args:
        text: The raw generation (may be empty).

    Returns:
        The answer span, or ``""`` when there is none. Never raises.
    """
    if not isinstance(text, str):
        return ""
    for line in text.splitlines():
        if not line.strip():
            continue
        answer = _strip_quotes(_PREFIX.sub("", _strip_quotes(line), count=1))
        if answer:
            return answer
    return ""


def _is_punctuation(ch: str) -> bool:
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def normalize_answer(text: str) -> str:
    """Normalise an answer SQuAD-style for comparison.

    Steps: Unicode NFKC, lower-case, delete punctuation (ASCII punctuation and every Unicode
    punctuation character; deleted, not replaced by a space, as in SQuAD), remove the articles
    ``a``/``an``/``the`` as whole words, collapse whitespace and strip.

    Args:
        text: An answer string.

    Returns:
        The normalised string (possibly ``""``).
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if not _is_punctuation(ch))
    text = _ARTICLES.sub(" ", text)
    # Deleting a character can bring a base letter and a combining mark together
    # ("c.\u0327" → "c\u0327"): compose again so normalising twice changes nothing.
    return unicodedata.normalize("NFKC", " ".join(text.split()))


def cluster_answers(groups: Sequence[Sequence[str]]) -> tuple[list[list[int]], list[str]]:
    """Cluster answers jointly across all variants of one item (exact match after normalising).

    Args:
        groups: ``groups[v]`` are the (already extracted) answers sampled at variant ``v``;
            ``v = 0`` is the clean input.

    Returns:
        ``(ids, representatives)``: ``ids[v][i]`` is the cluster id of ``groups[v][i]``;
        cluster ids are ``0..C-1`` in first-seen order, scanning the groups in order and each
        group left to right. ``representatives[c]`` is the first raw answer seen in cluster
        ``c``. Answers whose normalised form is empty share one cluster like any other string.
    """
    index: dict[str, int] = {}
    representatives: list[str] = []
    ids: list[list[int]] = []
    for group in groups:
        row: list[int] = []
        for answer in group:
            key = normalize_answer(answer)
            cid = index.get(key)
            if cid is None:
                cid = len(representatives)
                index[key] = cid
                representatives.append(answer)
            row.append(cid)
        ids.append(row)
    return ids, representatives


def cluster_distribution(ids: Sequence[int], n_clusters: int) -> npt.NDArray[np.float64]:
    """Empirical cluster frequencies of one group, on the item's joint support.

    Args:
        ids: Cluster ids of the group's answers, each in ``0..n_clusters-1``.
        n_clusters: Size of the joint support (all clusters of the item).

    Returns:
        A length-``n_clusters`` probability vector; uniform when ``ids`` is empty (no answers
        means no information).

    Raises:
        ValueError: If ``n_clusters < 1`` or an id is out of range.
    """
    if n_clusters < 1:
        raise ValueError(f"n_clusters must be >= 1, got {n_clusters}")
    if len(ids) == 0:
        return np.full(n_clusters, 1.0 / n_clusters)
    arr = np.asarray(ids, dtype=np.int64)
    if arr.min() < 0 or arr.max() >= n_clusters:
        raise ValueError(f"cluster ids must lie in 0..{n_clusters - 1}, got {list(ids)}")
    counts = np.bincount(arr, minlength=n_clusters).astype(np.float64)
    out: npt.NDArray[np.float64] = counts / counts.sum()
    return out


def answer_matches(prediction: str, golds: Sequence[str]) -> bool:
    """Whether ``prediction`` matches any gold answer after :func:`normalize_answer`.

    Args:
        prediction: The model's (extracted) answer.
        golds: Acceptable gold answers.

    Returns:
        ``True`` iff the normalised prediction is non-empty and equals some normalised gold.
        An empty gold list gives ``False``.
    """
    pred = normalize_answer(prediction)
    if not pred:
        return False
    return any(pred == normalize_answer(g) for g in golds)
