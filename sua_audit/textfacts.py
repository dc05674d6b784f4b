"""Facts about English text that several checks share: negation words, stated numbers, and
whether a text is a question.

The rule perturbers keep negations intact, the rewrite screens (:mod:`sua_audit.perturbation.llm`)
and the lexical meaning guard (:mod:`sua_audit.perturbation.meaning`) compare negations, numbers and
questions between an original and its rewrite, the embedding check of
:mod:`sua_audit.equivalence` compares stated numbers, and QA scoring
(:mod:`sua_audit.scoring.qa`) looks for a negation before an answer. They read these facts
from here. Where a caller reads a fact differently on purpose (the guard counts negations by
parity and leaves out "nor"; the rewrite screen asks only whether there is one), each reading
is a function of its own here, and the word sets callers narrow are narrowed where they are
used, with the reason.

Pure functions on strings, no imports from the rest of the tool: the bottom layer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = [
    "COUNTED_NEGATIONS",
    "NEGATION_WORDS",
    "NON_NEGATING",
    "NUMBER_WORDS",
    "ORDINAL_WORDS",
    "QUESTION_STARTS",
    "WH_WORDS",
    "Token",
    "digit_numbers",
    "has_negation",
    "is_question",
    "is_question_sentence",
    "looks_like_question",
    "negation_count",
    "stated_numbers",
    "tokenize",
]

# ---------------------------------------------------------------------------------------------
# Negation
# ---------------------------------------------------------------------------------------------

#: Words that negate (plus every word ending in ``n't``, which :func:`has_negation` and
#: :func:`negation_count` also count).
NEGATION_WORDS = frozenset(
    {
        "not", "no", "never", "nothing", "none", "nobody", "noone", "nowhere", "neither", "nor",
        "cannot", "without",
    }
)  # fmt: skip

#: Two-word idioms whose first word is a negation marker but which negate nothing: "nothing
#: but" (only), "not only" / "not just" (... but also), "none other than".
NON_NEGATING = frozenset({("nothing", "but"), ("not", "only"), ("not", "just"), ("none", "other")})

#: What :func:`negation_count` counts. ``nor`` is left out: it nearly always pairs with
#: ``neither`` or a preceding ``not``, and counting both would make "neither A nor B" look
#: un-negated to a parity check.
COUNTED_NEGATIONS = NEGATION_WORDS - {"nor"}

_WORD = re.compile(r"[a-z]+(?:['’][a-z]+)?")


def has_negation(text: str) -> bool:
    """Whether ``text`` has any negation word or ``n't`` (idioms such as "not only" count)."""
    words = _WORD.findall(text.lower().replace("’", "'"))
    return any(w in NEGATION_WORDS or w.endswith("n't") for w in words)


# ---------------------------------------------------------------------------------------------
# Tokens and numbers
# ---------------------------------------------------------------------------------------------

_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")


def digit_numbers(text: str) -> set[str]:
    """The numbers written in digits, as written but for thousands commas (``1,000`` →
    ``1000``, ``3.50`` stays ``3.50``); number words are not read (see
    :func:`stated_numbers` for numbers by value)."""
    return {n.replace(",", "") for n in _DIGITS.findall(text)}


_UNITS = {
    word: value
    for value, word in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen "
        "fourteen fifteen sixteen seventeen eighteen nineteen".split()
    )
}
_TENS = {
    word: 10 * value
    for value, word in enumerate(
        "twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2
    )
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 10**6, "billion": 10**9}
_MULTIPLES = {"dozen": 12, "twice": 2, "thrice": 3}
ORDINAL_WORDS = {
    word: value
    for value, word in enumerate(
        "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split(),
        start=1,
    )
}
NUMBER_WORDS = frozenset(_UNITS) | frozenset(_TENS) | frozenset(_SCALES) | frozenset(_MULTIPLES)

#: "one" is a pronoun, not a count, after these words ("no one", "the red one") or before
#: "of" / "another" ("one of them", "one another").
_ONE_PRONOUN_BEFORE = frozenset(
    {"no", "any", "every", "each", "some", "the", "this", "that", "which", "another", "little"}
)
_ONE_PRONOUN_AFTER = frozenset({"of", "another"})

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'"})
_TOKEN = re.compile(
    r"(?P<ord>\d+(?:st|nd|rd|th))\b"
    r"|(?P<num>\d+(?:[.,:]\d+)*)"
    r"|(?P<word>[^\W\d_]+(?:'[^\W\d_]+)*)"
)
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+$")
_CLITICS = ("'s", "'re", "'ll", "'ve", "'d", "'m")
_SENTENCE_END = ".!?:;\n"


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    """As written (after apostrophe normalisation)."""
    base: str
    """Lower case, clitic removed (``Canada's`` → ``canada``, ``don't`` → ``do``)."""
    kind: str
    """``word``, ``num`` or ``ord``."""
    initial: bool
    """First word of the text or of a sentence (its capital letter says nothing)."""
    negated: bool = False
    """Ends in ``n't``."""


def tokenize(text: str) -> list[Token]:
    text = text.translate(_APOSTROPHES)
    out: list[Token] = []
    for m in _TOKEN.finditer(text):
        before = text[: m.start()].rstrip(" \t\"'([{-*")
        initial = not before or before[-1] in _SENTENCE_END or "\n" in text[len(before) : m.start()]
        kind = m.lastgroup or "word"
        raw = m.group()
        if kind != "word":
            out.append(Token(raw, raw.lower(), kind, initial))
            continue
        lower = raw.lower()
        negated = lower.endswith("n't")
        if negated:
            base = lower[:-3]
        else:
            base = lower
            for clitic in _CLITICS:
                if lower.endswith(clitic) and len(lower) > len(clitic):
                    base = lower[: -len(clitic)]
                    break
        out.append(Token(raw, base, kind, initial, negated))
    return out


def _number_key(raw: str) -> str:
    """Canonical text of a written number: ``1,000`` → ``1000``, ``3.50`` → ``3.5``."""
    if ":" in raw:
        return raw
    if _THOUSANDS.match(raw):
        raw = raw.replace(",", "")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return raw
    return format(value.normalize(), "f")


def stated_numbers(tokens: Sequence[Token]) -> set[str]:
    """The numbers a text states, digits and words alike (``fifty`` and ``50`` are equal).

    Ordinals apart (``first`` = ``1st`` → ``"ord:1"``); ``one`` is no number in "no one",
    "the red one", "one of". ``tokens`` come from :func:`tokenize`.
    """
    found: set[str] = set()
    total = current = 0
    in_words = False

    def close() -> None:
        nonlocal total, current, in_words
        if in_words:
            found.add(str(total + current))
        total = current = 0
        in_words = False

    for i, tok in enumerate(tokens):
        word = tok.base
        nxt = tokens[i + 1].base if i + 1 < len(tokens) else ""
        if tok.kind == "ord":
            close()
            found.add(f"ord:{int(tok.text[:-2])}")
        elif tok.kind == "num":
            close()
            key = _number_key(tok.text)
            if nxt in _SCALES and key.isdigit():
                continue  # "3 million": the scale word below finishes it
            found.add(key)
        elif word in ORDINAL_WORDS:
            close()
            found.add(f"ord:{ORDINAL_WORDS[word]}")
        elif word in _MULTIPLES:
            close()
            found.add(str(_MULTIPLES[word]))
        elif word in _UNITS or word in _TENS:
            prev = tokens[i - 1].base if i else ""
            if word == "one" and (prev in _ONE_PRONOUN_BEFORE or nxt in _ONE_PRONOUN_AFTER):
                close()
                continue
            current += _UNITS.get(word, 0) + _TENS.get(word, 0)
            in_words = True
        elif word in _SCALES:
            prev_tok = tokens[i - 1] if i else None
            if not in_words and prev_tok is not None and prev_tok.kind == "num":
                key = _number_key(prev_tok.text)
                current = int(key) if key.isdigit() else 1
            scale = _SCALES[word]
            if scale == 100:
                current = max(current, 1) * 100
            else:
                total += max(current, 1) * scale
                current = 0
            in_words = True
        elif word == "and" and in_words and (nxt in _UNITS or nxt in _TENS):
            continue  # "two hundred and five"
        else:
            close()
    close()
    return found


def negation_count(tokens: Sequence[Token]) -> int:
    """How many negations ``tokens`` hold: negation words but ``nor``, and ``n't`` words; the
    idioms of :data:`NON_NEGATING` negate nothing. Compare by parity: "isn't" and "is not"
    count one each, "never" and "not ever" too."""
    count = 0
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1].base if i + 1 < len(tokens) else ""
        if tok.negated or (tok.base in COUNTED_NEGATIONS and (tok.base, nxt) not in NON_NEGATING):
            count += 1
    return count


# ---------------------------------------------------------------------------------------------
# Questions
# ---------------------------------------------------------------------------------------------

#: Question words.
WH_WORDS = frozenset({"who", "what", "when", "where", "which", "why", "how", "whose", "whom"})

#: Words that open a question: question words and the auxiliaries of inverted questions.
QUESTION_STARTS = frozenset(
    """
    who whom whose what which when where why how is are was were am do does did can could
    will would shall should may might must has have had
    """.split()
)


def is_question_sentence(text: str, tokens: Sequence[Token] | None = None) -> bool:
    """Whether ``text`` reads as a question, by its final punctuation: "?" (before closing
    quotes or brackets) yes, "." or "!" no; unpunctuated text (NQ-style "who sang hallelujah
    first") by its first word, a question word or an auxiliary (:data:`QUESTION_STARTS`).

    ``tokens``: ``tokenize(text)``, when the caller has them already.
    """
    stripped = text.rstrip(" \t\n\"')]")
    if stripped.endswith("?"):
        return True
    if stripped.endswith((".", "!")):
        return False
    # Unpunctuated text (NQ-style "who sang hallelujah first"): judge by the first word.
    if tokens is None:
        tokens = tokenize(text)
    return bool(tokens) and tokens[0].base in QUESTION_STARTS


def is_question(text: str) -> bool:
    """A strict test for an original: it ends with "?" or opens with a question word.

    Search-style questions often have no question mark ("who wrote the iliad"). An opening
    auxiliary alone does not count here (it does in :func:`is_question_sentence`).
    """
    first = re.match(r"\W*([A-Za-z]+)", text)
    return text.rstrip().endswith("?") or (first is not None and first.group(1).lower() in WH_WORDS)


def looks_like_question(text: str) -> bool:
    """A lenient test for a rewrite of a question: a question mark anywhere, or a question word
    among its first six words."""
    words = re.findall(r"[a-z]+", text.lower())[:6]
    return "?" in text or bool(WH_WORDS.intersection(words))
