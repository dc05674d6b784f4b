"""Rule-based, meaning-preserving perturbers: ``typo``, ``word`` and ``distractor``.

This module owns the three perturbations that need no model. Each edits every text field of
an item: for NLI items with a separate premise and hypothesis, the two are edited separately
and ``input`` is re-rendered as ``"Premise: {p}\\nHypothesis: {h}"``; otherwise ``input`` is
edited. Importing the module registers the three kinds.

Every kind has an edit *budget*: the most edits one variant makes **per text field** (an NLI
premise and hypothesis each get the full budget), read from ``context.budget(kind, default)``
(the ``@budget`` of a plan such as ``typo:2@3``). A variant makes a uniformly drawn number of
edits in ``1..budget`` (fewer when the text offers fewer spots); the defaults reproduce the
behaviour the kinds had before budgets existed, variant for variant.

* ``typo`` (budget: words with a typo, default 2): one character-level typo (adjacent swap,
  deletion, duplication, substitution by a neighbouring QWERTY key) in each of 1–budget
  words, only inside purely alphabetic ASCII words of 4+ letters, so numbers, contractions
  and the item's label words and negations are never touched. The first and last letters of
  a word are kept, which keeps the word readable.
* ``word`` (budget: edits, default 2): word-level edits per field: first-letter / whole-text
  case, final punctuation (a QA question keeps its ``?``), a doubled space, contraction or
  expansion (``do not`` ↔ ``don't``; negation is always kept), or a filler word
  (``actually``, ``basically``, ``really``) between two plain words, outside quotes and away
  from numbers and negations. Each edit type applies at most once; only budgets above 5 let
  doubled spaces and fillers repeat.
* ``distractor`` (budget: sentences, default 1): distinct content-free sentences about the
  text itself, put before a QA question (the question stays last), before or after a
  classification text, and after an NLI premise only (the hypothesis is never touched).

More adversarial rule kinds (``homoglyph``, ``synonym``, ``deletion``, ``instruction``) live
in :mod:`sua_audit.perturbation.adversarial` and reuse the helpers here.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from sua_audit.dataset import Item
from sua_audit.perturbation import (
    PerturbContext,
    Variant,
    register_perturber,
    render_nli,
    rng_for,
)
from sua_audit.textfacts import NEGATION_WORDS, QUESTION_STARTS

__all__ = [
    "DISTRACTORS",
    "FILLERS",
    "DistractorPerturber",
    "TypoPerturber",
    "WordPerturber",
]

#: Neutral sentences about the writing of the text itself: no people, objects or facts a
#: question or hypothesis could be about, no numbers, no sentiment.
DISTRACTORS: tuple[str, ...] = (
    "This was written on a Tuesday.",
    "This text was typed in one sitting.",
    "This line was saved as plain text.",
    "This sentence is part of a longer collection.",
    "The formatting here is plain.",
    "This was copied from a text file.",
    "This entry was added to the list later.",
    "This text has been checked for spelling.",
    "This was written in English.",
    "This text was stored with others like it.",
    "The wording here was kept brief.",
    "This was written some time ago.",
    "This text uses standard punctuation.",
    "This text was saved without any images.",
    "This was typed rather than handwritten.",
    "This text was formatted as a single paragraph.",
    "This entry follows the same layout as the others.",
    "This was drafted on a weekday.",
    "This text was encoded as UTF-8.",
    "This text was kept in its original order.",
)

#: Filler words the ``word`` perturber may insert.
FILLERS: tuple[str, ...] = ("actually", "basically", "really")

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")

#: Negation words: never typo'd, never next to an inserted filler. Without "nowhere" and
#: "noone", as the rule kinds have always read them: adding them would change the variants
#: these kinds make for the same seed.
_NEGATIONS = NEGATION_WORDS - {"nowhere", "noone"}

#: Words after which a filler would read badly ("the actually film").
_NO_FILLER_AFTER = frozenset(
    {
        "a", "an", "the", "this", "that", "these", "those", "my", "your", "his", "her", "its",
        "our", "their", "of", "to", "in", "on", "at", "for", "with", "by", "from", "as",
        "very", "so", "too", "more", "most", "less", "least", "one", "two", "three",
    }
)  # fmt: skip

#: Copulas and modals: a filler right after them is grammatical ("is actually", "can really").
_FILLER_AFTER = frozenset(
    {"is", "are", "was", "were", "am", "will", "would", "can", "could", "should", "may", "might"}
)

#: Auxiliaries a filler may precede ("the building actually is", "they really should"); not
#: do / does / did, which are mostly inverted in questions ("how many bones do humans have").
_AUXILIARIES = _FILLER_AFTER | {"has", "have", "had", "must"}

#: Words that start a subject: after an inverted auxiliary ("did the ...") no filler fits.
_SUBJECT_STARTS = frozenset(
    {
        "a", "an", "the", "this", "that", "these", "those", "my", "your", "his", "her", "its",
        "our", "their", "i", "you", "he", "she", "it", "we", "they", "there", "someone",
        "anyone", "everyone", "people", "some", "any", "all", "each", "every",
    }
)  # fmt: skip

#: Words that open a question, as the rule kinds have always read them: without the rarer
#: openers "am", "shall", "may", "might", "must" (adding them would change where fillers go
#: and which QA inputs get a "?", so the variants made for the same seed).
_QUESTION_WORDS = QUESTION_STARTS - {"am", "shall", "may", "might", "must"}

#: (expanded, contracted) pairs. Negative contractions keep the negation in both directions.
_NEGATIVE_CONTRACTIONS: tuple[tuple[str, str], ...] = (
    ("do not", "don't"),
    ("does not", "doesn't"),
    ("did not", "didn't"),
    ("is not", "isn't"),
    ("are not", "aren't"),
    ("was not", "wasn't"),
    ("were not", "weren't"),
    ("could not", "couldn't"),
    ("would not", "wouldn't"),
    ("should not", "shouldn't"),
    ("will not", "won't"),
    ("has not", "hasn't"),
    ("have not", "haven't"),
    ("had not", "hadn't"),
    ("must not", "mustn't"),
    ("cannot", "can't"),
)
_AUX_CONTRACTIONS: tuple[tuple[str, str], ...] = (
    ("it is", "it's"),
    ("that is", "that's"),
    ("there is", "there's"),
    ("what is", "what's"),
    ("who is", "who's"),
    ("where is", "where's"),
    ("he is", "he's"),
    ("she is", "she's"),
    ("I am", "I'm"),
    ("you are", "you're"),
    ("we are", "we're"),
    ("they are", "they're"),
    ("I will", "I'll"),
    ("you will", "you'll"),
    ("we will", "we'll"),
    ("they will", "they'll"),
)

#: A plain ASCII word with nothing word-like or an apostrophe attached (so "12th", "B52",
#: "don't" and "café" are not candidates for typos).
_PLAIN_WORD = re.compile(r"(?<![\w'’])[A-Za-z]+(?![\w'’])")
_ALPHA = re.compile(r"[A-Za-z]+")


def _keyboard_neighbours() -> dict[str, str]:
    """Map each lower-case letter to the letters around it on a QWERTY keyboard."""
    out: dict[str, str] = {}
    for r, row in enumerate(_KEYBOARD_ROWS):
        for i, ch in enumerate(row):
            near = [row[j] for j in (i - 1, i + 1) if 0 <= j < len(row)]
            if r > 0:
                above = _KEYBOARD_ROWS[r - 1]
                near += [above[j] for j in (i, i + 1) if 0 <= j < len(above)]
            if r + 1 < len(_KEYBOARD_ROWS):
                below = _KEYBOARD_ROWS[r + 1]
                near += [below[j] for j in (i - 1, i) if 0 <= j < len(below)]
            out[ch] = "".join(near)
    return out


_NEIGHBOURS = _keyboard_neighbours()


@dataclass(frozen=True)
class _Ctx:
    """What an edit may need to know about the field it edits."""

    task: str
    field: str
    protected: frozenset[str]
    budget: int = 1
    """The most edits this field may get (the kind's unit: words, edits, sentences, ...)."""


_FieldEdit = Callable[[str, random.Random, _Ctx], tuple[str, list[str]]]


def _edit_count(rng: random.Random, budget: int) -> int:
    """How many edits one field gets: uniform in ``1..budget``.

    A budget of 1 draws nothing from ``rng``, and a budget of 2 draws exactly as
    ``rng.choice((1, 2))`` does, so the default budgets reproduce earlier variants exactly.
    """
    if budget <= 1:
        return 1
    return rng.choice(tuple(range(1, budget + 1)))


def _resolve_budget(kind: str, default: int, context: PerturbContext | None) -> int:
    """The edit budget of ``kind`` from ``context`` (``default`` without one).

    Raises:
        ValueError: When the budget is not a positive integer.
    """
    budget = default if context is None else context.budget(kind, default)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"the edit budget of {kind!r} must be a positive integer, got {budget!r}")
    return budget


def _protected_words(item: Item) -> frozenset[str]:
    """Words a typo must not touch: negations and the item's label words."""
    words = set(_NEGATIONS)
    for label in item.labels or ():
        words.update(w.lower() for w in _ALPHA.findall(label))
    return frozenset(words)


def _edit_item(
    item: Item, kind: str, rng: random.Random, edit: _FieldEdit, budget: int = 1
) -> Variant:
    """Apply a field edit to every text field of an item (premise and hypothesis separately).

    ``budget`` applies to each field on its own: an NLI variant may edit its premise and its
    hypothesis up to ``budget`` times each.
    """
    fields = item.text_fields()
    protected = _protected_words(item)
    new = dict(fields)
    notes: list[str] = []
    if "premise" in fields and "hypothesis" in fields:
        for name in ("premise", "hypothesis"):
            ctx = _Ctx(item.task, name, protected, budget)
            new[name], done = edit(fields[name], rng, ctx)
            notes += [f"{name}: {d}" for d in done]
        new["input"] = render_nli(new["premise"], new["hypothesis"])
    else:
        ctx = _Ctx(item.task, "input", protected, budget)
        new["input"], notes = edit(fields["input"], rng, ctx)
    detail = f"{kind}: " + ("; ".join(notes) if notes else "no applicable edit")
    return Variant(kind=kind, index=0, fields=new, detail=detail)


class _RulePerturber:
    """Base for rule perturbers: variant ``j`` uses its own string-seeded RNG.

    Subclasses set ``kind`` and ``default_budget`` (the per-field edit budget used when the
    context gives none) and implement ``_edit``, which reads the budget from ``ctx.budget``.
    """

    kind: str = ""
    default_budget: int = 1

    async def __call__(
        self, item: Item, *, n: int, seed: int, context: PerturbContext | None = None
    ) -> list[Variant]:
        """Return ``n`` variants (index 0); only ``context``'s budgets matter here.

        Args:
            item: The item to perturb.
            n: How many variants.
            seed: Base seed; variant ``j`` depends on (item, seed, kind, j) only.
            context: Edit budgets (rule perturbers call no model): at most
                ``context.budget(kind, default_budget)`` edits per text field.

        Returns:
            The variants.

        Raises:
            ValueError: When the budget is not a positive integer.
        """
        budget = _resolve_budget(self.kind, self.default_budget, context)
        return [
            _edit_item(item, self.kind, rng_for(seed, item.id, self.kind, j), self._edit, budget)
            for j in range(n)
        ]

    def _edit(self, text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, list[str]]:
        raise NotImplementedError("rule perturbers implement _edit(text, rng, ctx)")


# --------------------------------------------------------------------------------------------
# typo
# --------------------------------------------------------------------------------------------


def _typo_word(word: str, rng: random.Random) -> tuple[str, str]:
    """Make one typo in a word of 4+ letters, keeping its first and last letters."""
    ops = ["swapped", "dropped a letter in", "doubled a letter in", "mistyped"]
    rng.shuffle(ops)
    inner = range(1, len(word) - 1)
    for op in ops:
        if op == "swapped":
            spots = [i for i in range(1, len(word) - 2) if word[i] != word[i + 1]]
            if spots:
                i = rng.choice(spots)
                return word[:i] + word[i + 1] + word[i] + word[i + 2 :], op
        elif op == "dropped a letter in":
            i = rng.choice(inner)
            return word[:i] + word[i + 1 :], op
        elif op == "doubled a letter in":
            i = rng.choice(inner)
            return word[: i + 1] + word[i] + word[i + 1 :], op
        else:
            i = rng.choice(inner)
            key = rng.choice(_NEIGHBOURS[word[i].lower()])
            key = key.upper() if word[i].isupper() else key
            return word[:i] + key + word[i + 1 :], op
    raise AssertionError("unreachable: deletion always applies")  # pragma: no cover


def _typo_field(text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, list[str]]:
    """Put one typo in each of ``1..ctx.budget`` plain words of 4+ letters (uniform count)."""
    candidates = [
        m
        for m in _PLAIN_WORD.finditer(text)
        if len(m.group()) >= 4 and m.group().lower() not in ctx.protected
    ]
    if not candidates:
        return text, []
    count = min(len(candidates), _edit_count(rng, ctx.budget))
    chosen = sorted(rng.sample(candidates, count), key=lambda m: m.start())
    notes: list[str] = []
    pieces: list[str] = []
    last = 0
    for m in chosen:
        typo, op = _typo_word(m.group(), rng)
        pieces += [text[last : m.start()], typo]
        last = m.end()
        notes.append(f'{op} "{m.group()}"→"{typo}"')
    pieces.append(text[last:])
    return "".join(pieces), notes


class TypoPerturber(_RulePerturber):
    """Character-level typos in ``1..budget`` words per text field (budget: words, default 2)."""

    kind = "typo"
    default_budget = 2

    def _edit(self, text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, list[str]]:
        return _typo_field(text, rng, ctx)


# --------------------------------------------------------------------------------------------
# word
# --------------------------------------------------------------------------------------------

_Op = Callable[[str, random.Random, _Ctx], tuple[str, str] | None]


def _op_case(text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, str] | None:
    """Change the case of the first letter, or lower-case the whole text."""
    options: list[tuple[str, str]] = []
    first = re.match(r"[A-Za-z]+", text)
    if first:
        word = first.group()
        if word[0].islower():
            options.append((word[0].upper() + text[1:], "capitalised the first letter"))
        elif word != "I" and not (len(word) > 1 and word.isupper()):
            options.append((word[0].lower() + text[1:], "lower-cased the first letter"))
    if text != text.lower():
        options.append((text.lower(), "lower-cased the whole text"))
    return rng.choice(options) if options else None


def _op_punctuation(text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, str] | None:
    """Add or remove a final period (a QA question's '?' is kept; '?' is added if missing)."""
    body = text.rstrip()
    tail = text[len(body) :]
    if not body or body.endswith(("?", "!", "…")):
        return None
    if body.endswith("."):
        before = body[:-1].rstrip()
        last_token = before.split()[-1] if before.split() else ""
        if not before or "." in last_token or body.endswith(".."):
            return None  # an abbreviation ("U.S.") or an ellipsis: leave it
        return before + tail, "removed the final period"
    if not (body[-1].isalnum() or body[-1] in "\"')”’"):
        return None
    words = body.split()
    tokenised = " ," in body or " 's" in body or " n't" in body
    if ctx.task == "qa" and words[0].lower().strip("\"'“") in _QUESTION_WORDS:
        mark, name = "?", "question mark"
    else:
        mark, name = ".", "period"
    return body + (" " if tokenised else "") + mark + tail, f"added a final {name}"


def _op_space(text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, str] | None:
    """Double one space between two words."""
    gaps = [m.start() for m in re.finditer(r"(?<=\S) (?=\S)", text)]
    if not gaps:
        return None
    at = rng.choice(gaps)
    after = text[:at].split()[-1]
    return text[:at] + "  " + text[at + 1 :], f'doubled the space after "{after}"'


def _match_case(source: str, replacement: str) -> str:
    """Give `replacement` the capitalisation of `source`'s first letter."""
    if source[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    if replacement.startswith("I ") or replacement.startswith("I'"):
        return replacement
    return replacement[:1].lower() + replacement[1:]


def _contraction_pattern(contracted: str) -> re.Pattern[str]:
    """Regex for a contraction, also in tokenised form ("does n't", "it 's")."""
    if contracted.endswith("n't"):
        stem, suffix = contracted[:-3], r"n['’]t"
    else:
        stem, rest = contracted.split("'")
        suffix = r"['’]" + re.escape(rest)
    return re.compile(rf"\b{re.escape(stem)} ?{suffix}(?![\w'’])", re.IGNORECASE)


def _expanded_pattern(expanded: str, *, needs_next_word: bool) -> re.Pattern[str]:
    words = r"\s+".join(re.escape(w) for w in expanded.split())
    ahead = r"(?=\s+[A-Za-z])" if needs_next_word else ""
    return re.compile(rf"\b{words}\b{ahead}", re.IGNORECASE)


_CONTRACTION_RULES: list[tuple[re.Pattern[str], re.Pattern[str], str, str, bool]] = [
    (
        _expanded_pattern(expanded, needs_next_word=not negative),
        _contraction_pattern(contracted),
        expanded,
        contracted,
        contracted.endswith("'s"),
    )
    for pairs, negative in ((_NEGATIVE_CONTRACTIONS, True), (_AUX_CONTRACTIONS, False))
    for expanded, contracted in pairs
]

#: After "'s", these mean "has", so "it's been" must not become "it is been".
_NEXT_WORD = re.compile(r"\s+([A-Za-z]+)")
_HAS_NEXT = re.compile(r"\s+(been|got|gotten|had|[A-Za-z]+ed)\b", re.IGNORECASE)


def _op_contraction(text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, str] | None:
    """Contract or expand one phrase (do not ↔ don't, it is ↔ it's); negation is kept."""
    options: list[tuple[int, int, str, str]] = []
    for expanded_re, contracted_re, expanded, contracted, apostrophe_s in _CONTRACTION_RULES:
        for m in expanded_re.finditer(text):
            if _inside_quotes(text[: m.start()]):
                continue  # never reword a quotation
            new = _match_case(m.group(), contracted)
            options.append((m.start(), m.end(), new, f'contracted "{m.group()}"→"{new}"'))
        for m in contracted_re.finditer(text):
            if _inside_quotes(text[: m.start()]):
                continue
            if apostrophe_s and _HAS_NEXT.match(text, m.end()):
                continue
            following = _NEXT_WORD.match(text, m.end())
            if following and following.group(1).lower() in _SUBJECT_STARTS:
                continue  # inverted: "won't you" must not become "will not you"
            new = _match_case(m.group(), expanded)
            options.append((m.start(), m.end(), new, f'expanded "{m.group()}"→"{new}"'))
    if not options:
        return None
    start, end, new, note = rng.choice(sorted(options))
    return text[:start] + new + text[end:], note


def _inside_quotes(before: str) -> bool:
    """Whether a position, given the text before it, lies inside a quoted phrase."""
    return (
        before.count('"') % 2 == 1
        or before.count("“") > before.count("”")
        or before.count("``") > before.count("''")
    )


def _op_filler(text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, str] | None:
    """Insert a filler word between two plain words, next to an auxiliary verb.

    Spots, best first: right after an auxiliary that is not inverted ("is actually hard",
    but not "did actually the eagles" nor a clause-opening "are really laws"); else right
    before one ("the building actually is", but not "brain actually does a human"). Never
    inside quotes, next to a number, punctuation, a negation or another filler. No spot:
    the edit does not apply.
    """
    tokens = list(re.finditer(r"\S+", text))
    after_aux: list[int] = []
    before_aux: list[int] = []
    for i in range(1, len(tokens)):
        prev, nxt = tokens[i - 1], tokens[i]
        p, q = prev.group(), nxt.group()
        # The word before `prev`: an auxiliary that opens a clause is inverted ("are laws").
        before = tokens[i - 2].group() if i >= 2 else ""
        following = tokens[i + 1].group() if i + 1 < len(tokens) else ""
        if text[prev.end() : nxt.start()] != " ":
            continue
        if not (_ALPHA.fullmatch(p) and _ALPHA.fullmatch(q)):
            continue  # punctuation, numbers, contractions: never split them
        pl, ql = p.lower(), q.lower()
        if {pl, ql} & (_NEGATIONS | set(FILLERS)) or _inside_quotes(text[: prev.end()]):
            continue
        opens_clause = not _ALPHA.fullmatch(before) or before.lower() in _QUESTION_WORDS
        if (
            pl in _FILLER_AFTER
            and not opens_clause
            and q.islower()
            and ql not in _SUBJECT_STARTS | _AUXILIARIES | {"to"}
        ):
            after_aux.append(prev.end())
        elif (
            ql in _AUXILIARIES
            and pl not in _NO_FILLER_AFTER
            and pl not in _QUESTION_WORDS
            and following.lower().strip(",.;:?!") not in _SUBJECT_STARTS | _NEGATIONS
            and not following.lower().startswith(("n't", "n’t"))
        ):
            before_aux.append(prev.end())
    spots = after_aux or before_aux
    if not spots:
        return None
    at = rng.choice(spots)
    filler = rng.choice(FILLERS)
    after = text[:at].split()[-1]
    return text[:at] + " " + filler + text[at:], f'inserted "{filler}" after "{after}"'


_WORD_OPS: tuple[_Op, ...] = (_op_case, _op_punctuation, _op_space, _op_contraction, _op_filler)

#: Word edits that can apply again without undoing themselves (another gap, another spot);
#: case, final punctuation and contractions would toggle back, so they apply at most once.
_REPEATABLE_WORD_OPS: tuple[_Op, ...] = (_op_space, _op_filler)


def _word_field(text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, list[str]]:
    """Apply ``1..ctx.budget`` applicable word-level edits to a text (uniform count).

    Each of the five edit types applies at most once, in a shuffled order. Only a budget
    above five lets doubled spaces and fillers repeat (in other spots) to reach the drawn
    count. Fewer edits are made when fewer apply.
    """
    ops = list(_WORD_OPS)
    rng.shuffle(ops)
    want = _edit_count(rng, ctx.budget)
    notes: list[str] = []
    for op in ops:
        if len(notes) == want:
            break
        done = op(text, rng, ctx)
        if done is not None and done[0] != text:
            text, note = done
            notes.append(note)
    while len(notes) < want and ctx.budget > len(_WORD_OPS):
        progress = False
        for op in _REPEATABLE_WORD_OPS:
            if len(notes) == want:
                break
            done = op(text, rng, ctx)
            if done is not None and done[0] != text:
                text, note = done
                notes.append(note)
                progress = True
        if not progress:
            break
    return text, notes


class WordPerturber(_RulePerturber):
    """Meaning-keeping word-level edits: case, punctuation, spacing, contractions, fillers.

    Budget: edits per text field, default 2 (each variant makes 1–2).
    """

    kind = "word"
    default_budget = 2

    def _edit(self, text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, list[str]]:
        return _word_field(text, rng, ctx)


# --------------------------------------------------------------------------------------------
# distractor
# --------------------------------------------------------------------------------------------


def _distractor_field(text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, list[str]]:
    """Add ``1..ctx.budget`` distinct neutral sentences, all on one side: before QA questions,
    after NLI premises, either side otherwise."""
    if ctx.field == "hypothesis":
        return text, []
    count = min(_edit_count(rng, ctx.budget), len(DISTRACTORS))
    if count == 1:
        sentence = rng.choice(DISTRACTORS)
    else:
        sentence = " ".join(rng.sample(DISTRACTORS, count))
    if ctx.field == "premise":
        append = True
    elif ctx.task == "qa" or ctx.task == "nli":
        append = False  # the question stays last; an NLI input's parts stay in order
    else:
        append = rng.random() < 0.5
    if append:
        return f"{text.rstrip()} {sentence}", [f'appended "{sentence}"']
    return f"{sentence} {text.lstrip()}", [f'prepended "{sentence}"']


class DistractorPerturber(_RulePerturber):
    """Content-free sentences about the text itself, added where they cannot change the
    answer. Budget: sentences per field, default 1."""

    kind = "distractor"
    default_budget = 1

    def _edit(self, text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, list[str]]:
        return _distractor_field(text, rng, ctx)


register_perturber(TypoPerturber.kind, TypoPerturber)
register_perturber(WordPerturber.kind, WordPerturber)
register_perturber(DistractorPerturber.kind, DistractorPerturber)
