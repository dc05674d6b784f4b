"""Free-text (QA) answers: extraction, normalisation, joint clustering and matching.

This module owns the path from a model's raw generation to a distribution over semantic
answer clusters:

* :func:`extract_answer` — raw generation → the answer span;
* :func:`normalize_answer` — SQuAD-style normalisation used for clustering and matching;
* :func:`cluster_answers` — exact-match clustering (after normalisation) *jointly* across all
  variants of one item, so every variant's distribution lives on the same support;
* :func:`cluster_distribution` — empirical cluster frequencies on that joint support;
* :func:`answer_matches` — normalised exact match against gold answers;
* :func:`answer_contains` — a gold answer given inside a longer answer (token-sequence
  containment after normalisation, with guards against negation, echoes of the question,
  candidate lists and hedges), the default QA grading rule.

All functions are pure.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from sua_audit.textfacts import NEGATION_WORDS

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


# --- containment ------------------------------------------------------------------------------

NEGATION_WINDOW = 3
"""A negation word this many tokens (or fewer) before a gold occurrence, in the same clause,
cancels it (``"not Paris"``, ``"it is not in Paris"``)."""

MAX_LIST_ITEM_TOKENS = 4
"""Parts of at most this many tokens count as candidates when an answer is split at list
separators (``"Paris, Lyon, Nice"``); longer parts are prose, not an enumeration."""

#: Negation words among normalised tokens (apostrophes dropped: "isn't" is "isnt"). Not
#: "without", "nowhere", "noone": as QA answers have always been scored ("without doubt
#: Paris" still names Paris).
_NEGATIONS = (NEGATION_WORDS - {"without", "nowhere", "noone"}) | frozenset(
    "cant isnt arent wasnt werent dont doesnt didnt wont wouldnt hasnt havent hadnt aint".split()
)
# A clause ends at , ; : . ! ? ( ) or a dash when whitespace (or the end) follows, so "1,000",
# "3.5" and "U.S" stay inside one clause.
_CLAUSE_END = re.compile(r"(?<=[,;:.!?()\]\u2013\u2014])(?=\s|$)|\s[-\u2013\u2014]+\s|\s(?=\()")
# A sentence ends at . ! ? followed by whitespace — unless the word before the stop is an
# initial or abbreviation ("J. K. Rowling", "Dr. Who", "St. Louis", "U.S. Army", "No. 1").
_SENTENCE_STOP = re.compile(r"([.!?]+)[\"'\u2019\u201d)\]]*(?=\s|$)")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr st mt ft jr sr vs etc inc ltd co corp no nos vol gen col capt lt sgt gov "
    "sen rep rev prof fr ave blvd approx est ca c b d op ed eds al fig".split()
)
_LIST_SPLIT = re.compile(r"\s*[,;/]\s*|\s+(?:and|or|and/or)\s+", re.IGNORECASE)
_OR_SPLIT = re.compile(r"\s*,?\s+or\s+|\s*/\s*", re.IGNORECASE)


def first_sentence(text: str) -> str:
    """The first sentence of ``text`` (the whole text when it has one sentence).

    A sentence ends at ``.``, ``!`` or ``?`` followed by whitespace or the end, except after
    an initial (one letter), a dotted abbreviation (``U.S.``) or a common abbreviation
    (``Dr.``, ``St.``, ``No.``...).
    """
    for m in _SENTENCE_STOP.finditer(text):
        head = text[: m.start()]
        word = head.split()[-1] if head.split() else ""
        bare = word.lstrip("(\"'").lower()
        initial = len(bare) == 1 and bare.isalpha()
        if m.group(1) == "." and (initial or "." in bare or bare in _ABBREVIATIONS):
            continue
        return text[: m.end()]
    return text


def _clause_tokens(text: str) -> tuple[list[str], list[int]]:
    """Normalised tokens of ``text`` and, per token, the index of the clause holding it."""
    tokens: list[str] = []
    clause: list[int] = []
    for i, part in enumerate(_CLAUSE_END.split(text)):
        words = normalize_answer(part).split()
        tokens.extend(words)
        clause.extend([i] * len(words))
    return tokens, clause


def _find(seq: Sequence[str], sub: Sequence[str]) -> list[int]:
    n = len(sub)
    return [i for i in range(len(seq) - n + 1) if list(seq[i : i + n]) == list(sub)]


def _negated(tokens: list[str], clause: list[int], start: int) -> bool:
    lo = max(0, start - NEGATION_WINDOW)
    return any(tokens[j] in _NEGATIONS and clause[j] == clause[start] for j in range(lo, start))


def _short_parts(text: str, separators: re.Pattern[str]) -> list[str]:
    """Normalised parts of ``text`` split at ``separators``; empty when one part is long."""
    parts = [p for p in (normalize_answer(x) for x in separators.split(text)) if p]
    if any(len(p.split()) > MAX_LIST_ITEM_TOKENS for p in parts):
        return []
    return parts


def _enumeration(text: str) -> list[str]:
    """The candidates ``text`` offers: 3+ short list items, or 2+ short "or" alternatives.

    Empty when ``text`` is neither a list nor a hedge.
    """
    items = _short_parts(text, _LIST_SPLIT)
    if len(items) >= 3:
        return items
    alternatives = _short_parts(text, _OR_SPLIT)
    return alternatives if len(alternatives) >= 2 else []


def answer_contains(prediction: str, golds: Sequence[str], *, question: str | None = None) -> bool:
    """Whether ``prediction`` gives some gold answer, possibly inside a longer answer.

    A gold answer counts as given when its normalised tokens (:func:`normalize_answer`)
    appear as a contiguous run of whole tokens in the normalised answer — so "The capital of
    France is Paris." gives "Paris", and "1990" is not given by "19901" or "1990s". Exact
    match (:func:`answer_matches`) always counts. Otherwise these guards apply, in order:

    1. *Scope*: only the answer's :func:`first_sentence` is read; later sentences are
       usually the model rambling on and may name other candidates.
    2. *Question echo*: a gold that ``question`` already names must occur in the answer
       more often than in the question (repeating the question is not answering it:
       "Columbo's dog was ..." does not give the gold "dog"). A choice question (one
       holding the word "or") is exempt: it names its options on purpose, and the hedge
       guard below rejects an answer that repeats them all.
    3. *Lists and hedges*: a first sentence that is an enumeration of 3 or more short parts
       (``"Paris, Lyon, Nice and Lille"``), or that offers alternatives with "or"
       (``"Paris or Lyon"``), gives no gold unless every part is a gold answer.
    4. *Negation*: an occurrence preceded, within :data:`NEGATION_WINDOW` tokens of the
       same clause, by a negation word (not, no, never, isn't...) does not count
       ("not Paris"), unless the gold itself holds a negation word. A later clause counts
       again ("Not Lyon, but Paris").

    Args:
        prediction: The model's (extracted) answer.
        golds: Acceptable gold answers.
        question: The question, for the echo guard (skipped when ``None``).

    Returns:
        ``True`` iff some gold is given; ``False`` for an empty answer or no golds.
    """
    if answer_matches(prediction, golds):
        return True
    scope = first_sentence(prediction)
    tokens, clause = _clause_tokens(scope)
    if not tokens:
        return False
    gold_norms = [g for g in (normalize_answer(x) for x in golds) if g]
    candidates = _enumeration(scope)
    if candidates and not all(c in gold_norms for c in candidates):
        return False
    asked = normalize_answer(question).split() if question else []
    if "or" in asked:  # a choice question names its options: naming one is answering
        asked = []
    for gold in gold_norms:
        sub = gold.split()
        negation_in_gold = any(t in _NEGATIONS for t in sub)
        given = [
            s for s in _find(tokens, sub) if negation_in_gold or not _negated(tokens, clause, s)
        ]
        if len(given) > len(_find(asked, sub)):
            return True
    return False
