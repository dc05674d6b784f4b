"""Meaning-preservation filters: does a model-written rewrite still mean what the original meant?

A paraphrase perturber asks a rewriter model for rewrites and keeps only those a filter
accepts. A filter answers many ``(original, rewrite)`` pairs at once with one
:class:`Verdict` each; ``Verdict.reason`` says why a rewrite was rejected and is counted per
reason in the run's perturbation statistics.

Filters (``--meaning-filter``):

* ``lexical`` — :class:`LexicalGuard`, no model, deterministic, microseconds per pair. It
  rejects a rewrite that changes the numbers, flips the negation parity, drops or adds a
  capitalised name, swaps a quantifier for one of another kind ("usually" → "always"), turns
  a question into a statement (or back), or keeps too little of the original's content
  words. It cannot tell synonyms from antonyms, nor see role swaps or dropped qualifiers;
* ``judge`` — :class:`JudgeFilter`, a model asked in both orders whether the two texts mean
  the same thing, scored by the probability of "yes" (label scoring, no parsing), accepted
  when the smaller of the two probabilities reaches the threshold;
* ``embedding`` — :class:`EmbeddingFilter`: cosine similarity of all-MiniLM-L6-v2 sentence
  vectors (offline, the ``embed`` extra), accepted at or above the threshold, and never when
  the two texts state different numbers;
* ``both`` — :class:`CombinedFilter`: the guard first, the judge only on what it accepted;
* ``off`` — :class:`AcceptAll`: every rewrite is accepted (recorded as such in the summary).

How well each does on the hand-written pairs in ``tests/perturb/data/meaning_pairs.jsonl``:
``python bench/meaning_filter.py`` (figures in docs/benchmarks.md). The default is the
lexical guard: the embedded SmolLM2-135M is no better than chance as a judge, so the judge
is for strong hosted rewriter models (``--meaning-filter both``).

The judge and the embedding filter are the meaning check's face of the one semantic-
equivalence component (:mod:`sua_audit.equivalence`) that also clusters QA answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sua_audit.equivalence import (
    DEFAULT_EMBEDDING_THRESHOLD,
    DEFAULT_JUDGE_THRESHOLD,
    JUDGE_CHOICES,
    EmbeddingEquivalence,
    JudgeEquivalence,
)
from sua_audit.errors import ConfigError
from sua_audit.textfacts import (
    COUNTED_NEGATIONS,
    NUMBER_WORDS,
    ORDINAL_WORDS,
    Token,
    is_question_sentence,
    negation_count,
    stated_numbers,
    tokenize,
)

if TYPE_CHECKING:
    from sua_audit.backends.base import CompletionRequest
    from sua_audit.engine import Generator
    from sua_audit.prompting import PromptLibrary
    from sua_audit.store import Store

__all__ = [
    "DEFAULT_EMBEDDING_THRESHOLD",
    "DEFAULT_FILTER",
    "DEFAULT_JUDGE_THRESHOLD",
    "DEFAULT_MIN_RECALL",
    "FILTER_NAMES",
    "JUDGE_CHOICES",
    "AcceptAll",
    "CombinedFilter",
    "EmbeddingFilter",
    "JudgeFilter",
    "LexicalGuard",
    "MeaningFilter",
    "Verdict",
    "build_filter",
]

#: ``--meaning-filter`` values.
FILTER_NAMES: tuple[str, ...] = ("lexical", "judge", "both", "embedding", "off")

#: The filter used when none is named (see the module docstring and docs/benchmarks.md).
DEFAULT_FILTER = "lexical"

#: The guard rejects a rewrite that keeps less than this share of the original's content
#: words (after crude stemming). Low on purpose: a good paraphrase may swap most words for
#: synonyms, which a lexical check cannot tell from a change of topic; this only catches
#: rewrites that kept almost nothing (an answer instead of a rewrite, a new topic).
DEFAULT_MIN_RECALL = 0.25

#: Bumped whenever the guard's rules change what it accepts (recorded in the run summary).
GUARD_VERSION = "1"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A filter's decision on one (original, rewrite) pair."""

    accepted: bool
    score: float | None
    """The filter's score: content-word recall (guard), min P(yes) (judge); ``None``: none."""
    reason: str
    """``"ok"`` when accepted, else why not: ``number_changed``, ``negation_changed``,
    ``entity_dropped``, ``entity_added``, ``quantifier_changed``, ``question_changed``,
    ``content_dropped``, ``empty``,
    ``not_equivalent`` (judge) or ``judge_error`` (the judge's request failed)."""
    detail: str = ""
    """A short human explanation (``numbers {'50'} → {'15'}``), for logs and results."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return asdict(self)


@runtime_checkable
class MeaningFilter(Protocol):
    """What a model-backed perturber calls to keep only meaning-preserving rewrites."""

    name: str

    @property
    def threshold(self) -> float | None:
        """The acceptance threshold on the filter's score (``None``: the filter has none)."""
        ...

    async def check_many(self, pairs: list[tuple[str, str]]) -> list[Verdict]:
        """One verdict per ``(original, rewrite)`` pair, in order."""
        ...

    def describe(self) -> dict[str, Any]:
        """Name, threshold and versions, for the run summary."""
        ...


# ---------------------------------------------------------------------------------------------
# Lexical guard
# ---------------------------------------------------------------------------------------------

#: Words that carry no content of their own for the recall check: articles, pronouns,
#: prepositions, auxiliaries, conjunctions, question words, common intensifiers, fillers and
#: contraction remnants. Negations and number words are checked separately and left out too.
_STOPWORDS = frozenset(
    """
    a an the this that these those there here it its itself i me my mine we us our ours you
    your yours he him his she her hers they them their theirs one ones someone something
    anyone anything everyone everything each every some any all both either other another
    such own same
    be am is are was were been being do does did doing done have has had having get gets got
    will would shall should can could may might must ca wo
    of to in on at by for from with about as into onto over under than then so too very
    really actually basically just quite rather also even only still yet already ever
    and or but if because while although though whether since until unless
    who whom whose what which when where why how
    up out off down again more most much many few less least lot lots
    s t d ll m re ve
    """.split()
)

#: Quantifier and modality classes: a rewrite may swap words inside a class ("often" →
#: "frequently") but not move between classes ("usually" → "always", "might" → "will").
_QUANTIFIERS: dict[str, str] = {
    **dict.fromkeys("all every each always everyone everybody everything".split(), "universal"),
    **dict.fromkeys(
        "most mostly usually generally typically often frequently mainly largely normally".split(),
        "majority",
    ),
    **dict.fromkeys("some several sometimes occasionally few partly partially".split(), "partial"),
    **dict.fromkeys("rarely seldom hardly barely scarcely".split(), "rare"),
    **dict.fromkeys("might may maybe perhaps possibly probably likely".split(), "possible"),
    **dict.fromkeys("only merely solely".split(), "only"),
}

_SUFFIXES = (
    "ations", "ation", "ingly", "edly", "ness", "ment", "ings", "ing", "ied", "ies",
    "est", "ly", "ed", "es", "er", "s",
)  # fmt: skip


def _entities(tokens: Sequence[Token]) -> set[str]:
    """Lower-cased names: capitalised words that do not start a sentence (not ``I``)."""
    return {
        tok.base
        for tok in tokens
        if tok.kind == "word"
        and tok.text[0].isupper()
        and not tok.initial
        and tok.base != "i"
        and len(tok.base) > 1
    }


def _stem(word: str) -> str:
    """A crude stem, so that inflected forms meet: films/film, moving/move, stopped/stop."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            if suffix == "s" and word[-2] in "su":
                continue  # glass, virus
            stem = word[: -len(suffix)]
            if suffix in ("ies", "ied"):
                stem += "y"
            word = stem
            break
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]  # running → runn → run
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]  # move / moving → mov
    return word


def _content(tokens: Sequence[Token]) -> set[str]:
    return {
        _stem(tok.base)
        for tok in tokens
        if tok.kind == "word"
        and len(tok.base) > 1
        and tok.base not in _STOPWORDS
        and tok.base not in COUNTED_NEGATIONS
        and tok.base not in NUMBER_WORDS
        and tok.base not in ORDINAL_WORDS
        and not tok.negated
    }


def _quantifiers(tokens: Sequence[Token]) -> set[str]:
    """The quantifier classes a text uses ("not only", "each other", the month "May" aside)."""
    found = set()
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1].base if i + 1 < len(tokens) else ""
        if tok.base == "nothing" and nxt == "but":
            found.add("only")  # "nothing but a rehash" = "only a rehash"
            continue
        cls = _QUANTIFIERS.get(tok.base)
        if cls is None or (tok.text[0].isupper() and not tok.initial):
            continue
        if cls == "only" and i and tokens[i - 1].base == "not":
            continue
        if tok.base == "each" and nxt == "other":
            continue  # "each other" is reciprocal, not a quantifier
        found.add(cls)
    return found


class LexicalGuard:
    """Rejects rewrites that visibly change what the original says; no model, deterministic.

    Checks, in order (the first that fails names the verdict's reason):

    1. ``empty`` — the rewrite has no words or numbers;
    2. ``number_changed`` — the sets of numbers differ. Digits and number words are compared
       by value (``fifty`` = ``50``, ``twenty-five`` = ``25``, ``1,000`` = ``1000``, ``twice``
       = ``2``); ordinals separately (``first`` = ``1st``); ``one`` is not a number in "no
       one", "the red one", "one of";
    3. ``negation_changed`` — the parity of negation markers differs (``not``, ``no``,
       ``never``, ``none``, ``nothing``, ``nobody``, ``nowhere``, ``neither``, ``cannot``,
       ``without``, any ``n't``): "isn't" → "is not" keeps it, "never" → "not ever" too;
       the idioms "nothing but", "not only", "not just" and "none other" negate nothing;
    4. ``entity_dropped`` / ``entity_added`` — a capitalised word that does not start a
       sentence (a name: ``Armstrong``, ``Canada``) is missing from the other text, compared
       case-insensitively so that lower-cased text (SST-2) loses nothing. Skipped when either
       text has no lower-case letters (all-caps text);
    5. ``quantifier_changed`` — the classes of quantifier and modal words differ: universal
       (all, every, always), majority (most, usually, often), partial (some, several,
       sometimes), rare (rarely, hardly), possible (might, may, perhaps), only (only, merely,
       "nothing but"; "just" counts as "only" when the other text has "only").
       Words may be swapped within a class ("often" → "frequently");
    6. ``question_changed`` — one text is a question and the other is not (a rewriter that
       answered the question instead of rewording it);
    7. ``content_dropped`` — fewer than ``min_recall`` of the original's content words
       (stemmed, stopwords, negations and numbers excluded) appear in the rewrite.

    The verdict's score is that content-word recall (1.0 when the original has none).
    """

    name = "lexical"

    def __init__(self, min_recall: float = DEFAULT_MIN_RECALL) -> None:
        if not 0.0 <= min_recall <= 1.0:
            raise ConfigError(f"lexical guard: min_recall must be in [0, 1], got {min_recall}.")
        self.min_recall = min_recall

    @property
    def threshold(self) -> float:
        """The content-word recall below which a rewrite is rejected."""
        return self.min_recall

    def check(self, original: str, rewrite: str) -> Verdict:
        """The verdict on one pair."""
        ta, tb = tokenize(original), tokenize(rewrite)
        content_a = _content(ta)
        recall = len(content_a & _content(tb)) / len(content_a) if content_a else 1.0
        if not tb:
            return Verdict(False, 0.0, "empty", "the rewrite has no words")
        na, nb = stated_numbers(ta), stated_numbers(tb)
        if na != nb:
            return Verdict(False, recall, "number_changed", f"numbers {_show(na)} → {_show(nb)}")
        nega, negb = negation_count(ta), negation_count(tb)
        if nega % 2 != negb % 2:
            return Verdict(False, recall, "negation_changed", f"{nega} negation(s) → {negb}")
        if _has_lower(original) and _has_lower(rewrite):
            words_a = {t.base for t in ta}
            words_b = {t.base for t in tb}
            dropped = _entities(ta) - words_b
            if dropped:
                return Verdict(False, recall, "entity_dropped", f"missing {_show(dropped)}")
            added = _entities(tb) - words_a
            if added:
                return Verdict(False, recall, "entity_added", f"new {_show(added)}")
        quant_a, quant_b = _quantifiers(ta), _quantifiers(tb)
        # "just" may mean "only" ("just a rehash") or nothing much ("just great"): it stands
        # in for "only" when the other text has it, and adds no class of its own.
        if "only" in quant_a ^ quant_b:
            for quant, tokens in ((quant_a, ta), (quant_b, tb)):
                if "only" not in quant and any(t.base == "just" for t in tokens):
                    quant.add("only")
        if quant_a != quant_b:
            return Verdict(
                False,
                recall,
                "quantifier_changed",
                f"quantifiers {_show(quant_a)} → {_show(quant_b)}",
            )
        qa, qb = is_question_sentence(original, ta), is_question_sentence(rewrite, tb)
        if qa != qb:
            what = "question → statement" if qa else "statement → question"
            return Verdict(False, recall, "question_changed", what)
        if recall < self.min_recall:
            return Verdict(
                False,
                recall,
                "content_dropped",
                f"kept {recall:.0%} of the content words (< {self.min_recall:.0%})",
            )
        return Verdict(True, recall, "ok")

    async def check_many(self, pairs: list[tuple[str, str]]) -> list[Verdict]:
        """One verdict per ``(original, rewrite)`` pair."""
        return [self.check(a, b) for a, b in pairs]

    def describe(self) -> dict[str, Any]:
        """Name, threshold (minimum content-word recall) and rule version."""
        return {"name": self.name, "threshold": self.min_recall, "version": GUARD_VERSION}


def _has_lower(text: str) -> bool:
    return any(ch.islower() for ch in text)


def _show(values: set[str]) -> str:
    return "{" + ", ".join(sorted(values)) + "}" if values else "{}"


# ---------------------------------------------------------------------------------------------
# Model judge
# ---------------------------------------------------------------------------------------------


class JudgeFilter:
    """A model judges equivalence in both orders; the smaller P(yes) must reach the threshold.

    The meaning check's use of :class:`~sua_audit.equivalence.JudgeEquivalence`: for each
    pair, two label-scoring requests (the template ``judge/<template>`` rendered with
    ``(a, b) = (original, rewrite)`` and with the two swapped), P(yes) the mass on
    ``yes``/``Yes``; accepted when min(P(yes | a, b), P(yes | b, a)) reaches the threshold.
    Requests go through the generator, so they are cached like every other model call.

    A failed request (:class:`~sua_audit.errors.RequestFailed`) rejects the pair with reason
    ``judge_error`` instead of stopping the run.
    """

    name = "judge"

    def __init__(
        self,
        generator: Generator,
        prompts: PromptLibrary,
        threshold: float | None = None,
        *,
        template: str = "equivalence",
    ) -> None:
        threshold = DEFAULT_JUDGE_THRESHOLD if threshold is None else threshold
        if not 0.0 <= threshold <= 1.0:
            raise ConfigError(f"--meaning-threshold must be in [0, 1], got {threshold}.")
        self.equivalence = JudgeEquivalence(generator, prompts, threshold, template=template)
        self.generator = generator
        self.template = self.equivalence.template
        self.threshold: float = threshold

    def request(self, a: str, b: str) -> CompletionRequest:
        """The scoring request asking whether ``a`` and ``b`` mean the same."""
        return self.equivalence.request(a, b)

    async def scores(self, pairs: list[tuple[str, str]]) -> list[tuple[float | str, float | str]]:
        """P(yes | a, b) and P(yes | b, a) per pair; an error message in place of a failed one."""
        return await self.equivalence.scores(pairs)

    async def check_many(self, pairs: list[tuple[str, str]]) -> list[Verdict]:
        """One verdict per ``(original, rewrite)`` pair; both orders are asked."""
        verdicts = []
        for match in await self.equivalence.compare(pairs):
            if match.error:
                verdicts.append(Verdict(False, None, "judge_error", match.detail))
            elif match.equivalent:
                verdicts.append(Verdict(True, match.score, "ok", match.detail))
            else:
                verdicts.append(Verdict(False, match.score, "not_equivalent", match.detail))
        return verdicts

    def describe(self) -> dict[str, Any]:
        """Name, threshold, template reference (with its version) and the judge model."""
        return {
            "name": self.name,
            "threshold": self.threshold,
            "template": self.template.ref,
            "version": self.template.version,
            "model": dict(self.generator.identity),
        }


# ---------------------------------------------------------------------------------------------
# Sentence embeddings
# ---------------------------------------------------------------------------------------------


class EmbeddingFilter:
    """Accepts a rewrite whose MiniLM vector is close enough to the original's.

    The meaning check's use of :class:`~sua_audit.equivalence.EmbeddingEquivalence`: cosine
    similarity at or above the threshold (default
    :data:`~sua_audit.equivalence.DEFAULT_EMBEDDING_THRESHOLD`), and the two texts must state
    the same numbers. No model request: vectors are computed locally (offline) and cached in
    the cache database. Rejections carry reason ``not_equivalent`` (``number_changed`` when
    the numbers differ).
    """

    name = "embedding"

    def __init__(self, equivalence: EmbeddingEquivalence) -> None:
        self.equivalence = equivalence

    @property
    def threshold(self) -> float:
        """The cosine similarity a rewrite must reach."""
        return self.equivalence.threshold

    async def check_many(self, pairs: list[tuple[str, str]]) -> list[Verdict]:
        """One verdict per ``(original, rewrite)`` pair."""
        verdicts = []
        for (_, rewrite), match in zip(pairs, await self.equivalence.compare(pairs), strict=True):
            if not rewrite.strip():
                verdicts.append(Verdict(False, match.score, "empty", "the rewrite has no words"))
            elif match.equivalent:
                verdicts.append(Verdict(True, match.score, "ok"))
            elif match.detail.startswith("numbers"):
                verdicts.append(Verdict(False, match.score, "number_changed", match.detail))
            else:
                detail = f"cosine {match.score:.3f} < {self.threshold:g}"
                verdicts.append(Verdict(False, match.score, "not_equivalent", detail))
        return verdicts

    def describe(self) -> dict[str, Any]:
        """Name, threshold and the embedding model's identity."""
        info = self.equivalence.describe()
        return {
            "name": self.name,
            "threshold": self.threshold,
            "model": info["model"],
            "number_guard": info["number_guard"],
        }


# ---------------------------------------------------------------------------------------------
# Combinations
# ---------------------------------------------------------------------------------------------


class CombinedFilter:
    """The guard first (free), the judge only on the pairs the guard accepted.

    A rejected pair carries the guard's reason and score; an accepted one the judge's.
    """

    name = "both"

    def __init__(self, guard: LexicalGuard, judge: JudgeFilter) -> None:
        self.guard = guard
        self.judge = judge

    @property
    def threshold(self) -> float:
        """The judge's threshold."""
        return self.judge.threshold

    async def check_many(self, pairs: list[tuple[str, str]]) -> list[Verdict]:
        """Guard verdicts, with the judge's verdict in place of each guard acceptance."""
        verdicts = await self.guard.check_many(pairs)
        passed = [i for i, v in enumerate(verdicts) if v.accepted]
        judged = await self.judge.check_many([pairs[i] for i in passed])
        for i, verdict in zip(passed, judged, strict=True):
            verdicts[i] = verdict
        return verdicts

    def describe(self) -> dict[str, Any]:
        """Both parts' descriptions."""
        return {
            "name": self.name,
            "threshold": self.threshold,
            "guard": self.guard.describe(),
            "judge": self.judge.describe(),
        }


class AcceptAll:
    """``--meaning-filter off``: every rewrite is accepted, with no score."""

    name = "off"
    threshold: float | None = None

    async def check_many(self, pairs: list[tuple[str, str]]) -> list[Verdict]:
        """Accept everything."""
        return [Verdict(True, None, "ok") for _ in pairs]

    def describe(self) -> dict[str, Any]:
        """Just the name."""
        return {"name": self.name, "threshold": None}


def build_filter(
    spec: str,
    generator: Generator | None = None,
    prompts: PromptLibrary | None = None,
    *,
    threshold: float | None = None,
    store: Store | None = None,
    read_cache: bool = True,
) -> MeaningFilter:
    """The filter ``--meaning-filter spec`` names, with ``--meaning-threshold`` for the judge
    or the embedding.

    Args:
        spec: ``lexical``, ``judge``, ``both``, ``embedding`` or ``off``.
        generator: The judge's generator (the rewriter's, normally); needed by ``judge`` and
            ``both``.
        prompts: Where the judge template is found (default: the shipped templates).
        threshold: The judge's or the embedding's acceptance threshold (default
            :data:`DEFAULT_JUDGE_THRESHOLD`, :data:`DEFAULT_EMBEDDING_THRESHOLD`).
        store: Where the embedding filter caches its vectors (``None``: memory only).
        read_cache: ``False`` (``--cache-mode refresh``) re-encodes cached vectors.

    Raises:
        ConfigError: An unknown spec, a judge without a generator, a threshold outside [0, 1]
            or given to a filter without a judge or an embedding.
        MissingDependencyError: ``embedding`` without the ``embed`` extra.
    """
    if spec not in FILTER_NAMES:
        raise ConfigError(f"--meaning-filter {spec!r}: use one of {', '.join(FILTER_NAMES)}.")
    if threshold is not None and spec in ("lexical", "off"):
        raise ConfigError(
            f"--meaning-threshold applies to the model judge and the embedding; --meaning-filter "
            f"{spec} has none. Use --meaning-filter judge, both or embedding, or drop "
            "--meaning-threshold."
        )
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"--meaning-threshold must be in [0, 1], got {threshold}.")
    if spec == "off":
        return AcceptAll()
    if spec == "lexical":
        return LexicalGuard()
    if spec == "embedding":
        from sua_audit.equivalence import MiniLMEncoder

        return EmbeddingFilter(
            EmbeddingEquivalence(
                MiniLMEncoder(),
                store=store,
                threshold=DEFAULT_EMBEDDING_THRESHOLD if threshold is None else threshold,
                read_cache=read_cache,
            )
        )
    if generator is None:
        raise ConfigError(f"--meaning-filter {spec} needs a judge model (the rewriter).")
    if prompts is None:
        from sua_audit.prompting import PromptLibrary

        prompts = PromptLibrary()
    judge = JudgeFilter(generator, prompts, threshold)
    return judge if spec == "judge" else CombinedFilter(LexicalGuard(), judge)
