"""Adversarial rule perturbers: ``homoglyph``, ``synonym``, ``deletion`` and ``instruction``.

This module owns four attacks that need no model. Importing it registers the four kinds.
The first three edit the item's text like :mod:`sua_audit.perturbation.rules` does (every text
field; an NLI premise and hypothesis separately, ``input`` re-rendered); ``instruction``
keeps the text and attacks the instruction instead.

Every kind has an edit *budget*, the most edits one variant makes per text field, read from
``context.budget(kind, default)`` (a plan's ``@budget``, e.g. ``synonym:2@4``). A variant
makes a uniformly drawn number of edits in ``1..budget``, fewer when the text offers fewer
spots. Variant ``j`` depends only on (item, seed, kind, j) (and, for ``instruction``, the
attack file given in the context).

* ``homoglyph`` (budget: characters, default 3): Latin letters replaced by look-alike
  Cyrillic or Greek letters (:data:`CONFUSABLES`, e.g. ``o`` → U+043E). Only letters inside
  plain ASCII words are replaced, never in the item's label words or negations. The text
  keeps its length: each edit is one code point for one code point.
* ``synonym`` (budget: words, default 2): content words swapped for a synonym from the
  curated list ``data/synonyms.tsv`` (:func:`load_synonyms`; sentiment-neutral words only,
  one-way entries, a few blocking neighbours per word). Never label words, negations,
  capitalised words inside a sentence (likely names), words inside quotes or words joined
  by hyphens or apostrophes. An ``a``/``an`` before the word is fixed when the swap changes
  its first sound.
* ``deletion`` (budget: words, default 2): non-content words deleted (:data:`DELETABLE`:
  intensifiers and fillers such as ``really``, ``very``, ``just``, ``quite``, and the
  articles ``the``/``a``/``an``). Intensifiers and fillers are picked first; articles only
  make up the rest of the drawn count. Only when a word follows (the deleted word modifies it),
  never right after a negation (``not just X but Y`` must not become ``not X but Y``),
  never a negation itself, never capitalised inside a sentence, never inside quotes, and
  never an article before ``few`` / ``little`` / ``lot`` / ``bit`` ... (``a few`` ≠ ``few``).
* ``instruction`` (budget: attack edits, default 1): the variant keeps every text field and
  sets ``fields["instruction"]``, which :func:`sua_audit.tasks.build_messages` puts in place
  of the question sentence of a classification / NLI prompt. Sources:

  - a user file of PromptBench attacked prompts, ``context.options["instruction_attacks"]``
    (path to JSONL with ``dataset``, ``attack``, ``original_prompt``, ``attacked_prompt``;
    :func:`load_instruction_attacks`). An attacked prompt is used for an item when the set
    of label words it quotes (``'positive'`` or ``"positive"``) equals the item's label set,
    case-insensitively: every quoted word is one of the item's labels *and* every label is
    named, so a prompt never offers a label the item lacks nor hides one it has (SST-2
    prompts for negative/positive items; MNLI prompts for 3-way NLI items; RTE / QNLI /
    WNLI prompts for entailment / not_entailment items). Prompts with ``{}`` placeholders,
    failed attacks (identical to their original) and repeats are never used. Variant ``j`` takes the ``j``-th prompt of a fixed per-item shuffle of
    the matching prompts. The budget only applies when given explicitly: it then keeps the
    prompts whose attacked text differs from the original by at most ``budget`` words (word
    edit distance); by default every matching prompt is used. When no prompt matches (or
    none is within the budget) the built-in set is used and the detail says why;
  - the built-in set (``data/instructions.json``, label-agnostic): each variant composes
    ``1..budget`` attack edits drawn from: reword the question, a distracting prefix, a
    role-play framing (each at most once), and a keyboard typo in one word of the question
    (repeatable; never in label words or negations).

  QA prompts have no question sentence to replace (``build_messages`` ignores
  ``fields["instruction"]`` for QA), so for QA items the perturber returns **no variants**;
  the slots stay unfilled and ``context.stats`` counts them as rejected with the reason
  ``"not_applicable_qa"``. Items without labels are treated the same way
  (``"no_labels"``).
"""

from __future__ import annotations

import difflib
import json
import random
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from sua_audit.dataset import MAX_LINE_BYTES, Item, iter_json_lines
from sua_audit.errors import ConfigError, DatasetError, DatasetProblem
from sua_audit.perturbation import KindTraits, PerturbContext, Variant, register_perturber, rng_for
from sua_audit.perturbation.rules import (
    _NEGATIONS,
    _PLAIN_WORD,
    _Ctx,
    _edit_count,
    _inside_quotes,
    _protected_words,
    _resolve_budget,
    _RulePerturber,
    _typo_word,
)
from sua_audit.tasks import CLASSIFY_QUESTION, NLI_QUESTION, label_text

__all__ = [
    "CONFUSABLES",
    "DEFAULT_BUDGETS",
    "DELETABLE",
    "SENTIMENT_WORDS",
    "DeletionPerturber",
    "HomoglyphPerturber",
    "InstructionAttack",
    "InstructionPerturber",
    "SynonymPerturber",
    "builtin_instructions",
    "label_text",
    "load_instruction_attacks",
    "load_synonyms",
    "matching_attacks",
    "quoted_labels",
]

#: Default per-field edit budget of each kind in this module.
DEFAULT_BUDGETS: dict[str, int] = {"homoglyph": 3, "synonym": 2, "deletion": 2, "instruction": 1}

#: Latin letter → look-alike Cyrillic / Greek letters (single code points, never mapped back
#: to Latin by NFKC). Only letters with a convincing twin are listed.
CONFUSABLES: dict[str, tuple[str, ...]] = {
    "a": ("\u0430",),  # CYRILLIC SMALL LETTER A
    "c": ("\u0441",),  # CYRILLIC SMALL LETTER ES
    "d": ("\u0501",),  # CYRILLIC SMALL LETTER KOMI DE
    "e": ("\u0435",),  # CYRILLIC SMALL LETTER IE
    "h": ("\u04bb",),  # CYRILLIC SMALL LETTER SHHA
    "i": ("\u0456",),  # CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I
    "j": ("\u0458",),  # CYRILLIC SMALL LETTER JE
    "o": ("\u043e", "\u03bf"),  # CYRILLIC SMALL LETTER O, GREEK SMALL LETTER OMICRON
    "p": ("\u0440", "\u03c1"),  # CYRILLIC SMALL LETTER ER, GREEK SMALL LETTER RHO
    "q": ("\u051b",),  # CYRILLIC SMALL LETTER QA
    "s": ("\u0455",),  # CYRILLIC SMALL LETTER DZE
    "v": ("\u03bd",),  # GREEK SMALL LETTER NU
    "w": ("\u051d",),  # CYRILLIC SMALL LETTER WE
    "x": ("\u0445",),  # CYRILLIC SMALL LETTER HA
    "y": ("\u0443",),  # CYRILLIC SMALL LETTER U
    "A": ("\u0410", "\u0391"),  # CYRILLIC CAPITAL A, GREEK CAPITAL ALPHA
    "B": ("\u0412", "\u0392"),  # CYRILLIC CAPITAL VE, GREEK CAPITAL BETA
    "C": ("\u0421",),  # CYRILLIC CAPITAL ES
    "E": ("\u0415", "\u0395"),  # CYRILLIC CAPITAL IE, GREEK CAPITAL EPSILON
    "H": ("\u041d", "\u0397"),  # CYRILLIC CAPITAL EN, GREEK CAPITAL ETA
    "I": ("\u0406", "\u0399"),  # CYRILLIC CAPITAL BYELORUSSIAN-UKRAINIAN I, GREEK CAPITAL IOTA
    "J": ("\u0408",),  # CYRILLIC CAPITAL JE
    "K": ("\u041a", "\u039a"),  # CYRILLIC CAPITAL KA, GREEK CAPITAL KAPPA
    "M": ("\u041c", "\u039c"),  # CYRILLIC CAPITAL EM, GREEK CAPITAL MU
    "N": ("\u039d",),  # GREEK CAPITAL NU
    "O": ("\u041e", "\u039f"),  # CYRILLIC CAPITAL O, GREEK CAPITAL OMICRON
    "P": ("\u0420", "\u03a1"),  # CYRILLIC CAPITAL ER, GREEK CAPITAL RHO
    "S": ("\u0405",),  # CYRILLIC CAPITAL DZE
    "T": ("\u0422", "\u03a4"),  # CYRILLIC CAPITAL TE, GREEK CAPITAL TAU
    "X": ("\u0425", "\u03a7"),  # CYRILLIC CAPITAL HA, GREEK CAPITAL CHI
    "Y": ("\u04ae", "\u03a5"),  # CYRILLIC CAPITAL STRAIGHT U, GREEK CAPITAL UPSILON
    "Z": ("\u0396",),  # GREEK CAPITAL ZETA
}

#: Words ``deletion`` may remove: intensifiers and fillers whose removal keeps polarity, and
#: the articles. Never negations, hedges ("perhaps"), evaluative degree words ("too",
#: "pretty", "rather", "somewhat") or words with a meaning of their own ("only", "even").
DELETABLE: frozenset[str] = frozenset(
    {
        "really", "very", "just", "quite", "actually", "basically", "simply", "literally",
        "truly", "certainly", "definitely", "indeed", "also", "extremely", "totally",
        "the", "a", "an",
    }
)  # fmt: skip

_ARTICLES = frozenset({"the", "a", "an"})

#: Words after which an article must stay: "a few" / "a little" mean some, "few" / "little"
#: mean hardly any; "a lot", "a bit", "a couple" read wrongly without it.
_KEEP_ARTICLE_BEFORE: frozenset[str] = frozenset(
    {"few", "little", "lot", "lots", "bit", "couple", "number", "while", "handful"}
)

#: Words that express or turn around polarity after a negation-like word; nothing right
#: after one of these is deleted.
_NEGATION_LIKE: frozenset[str] = _NEGATIONS | {"hardly", "barely", "scarcely", "seldom", "rarely"}

#: Sentiment-bearing and evaluative words that must never enter the synonym list (checked
#: when the list is loaded). Not exhaustive: a guard against obvious mistakes.
SENTIMENT_WORDS: frozenset[str] = frozenset(
    {
        "good", "bad", "great", "fine", "nice", "poor", "best", "worst", "better", "worse",
        "awful", "terrible", "excellent", "funny", "boring", "dull", "brilliant", "beautiful",
        "ugly", "love", "loved", "hate", "hated", "like", "liked", "enjoy", "enjoyed",
        "mediocre", "masterpiece", "mess", "fun", "pleasant", "charming", "clever", "stupid",
        "weak", "strong", "solid", "decent", "okay", "ok", "wonderful", "amazing", "horrible",
        "bland", "tedious", "predictable", "entertaining", "interesting", "impressive",
        "disappointing", "disappointment", "fresh", "stale", "smart", "dumb", "silly", "sweet",
        "warm", "cold", "rich", "thin", "flat", "sharp", "tired", "lively", "slow", "fast",
        "hard", "easy", "simple", "complex", "light", "dark", "heavy", "cheap", "worthy",
        "worthless", "pretty", "cool", "hot", "moving", "touching", "powerful", "gripping",
        "engaging", "compelling", "flawed", "failure", "success", "successful", "hit", "flop",
        "happy", "sad", "glad", "sorry", "fan", "fans", "right", "wrong", "true", "false",
        "real", "kind", "mean", "well", "perfect", "ideal", "positive", "negative", "neutral",
    }
)  # fmt: skip

#: A plain ASCII word not joined to another by a hyphen or apostrophe.
_FREE_WORD = re.compile(r"(?<![\w'’-])[A-Za-z]+(?![\w'’-])")
_SENTENCE_END = re.compile(r"[.!?]\s*$")
_TOKEN = re.compile(r"\S+")


def _data_text(name: str) -> str:
    return resources.files("sua_audit.perturbation").joinpath("data", name).read_text("utf-8")


def _at_sentence_start(text: str, start: int) -> bool:
    """Whether position ``start`` begins the text or a sentence."""
    before = text[:start].rstrip(" \t\"'“‘(")
    return not before or before.endswith("\n") or bool(_SENTENCE_END.search(before))


def _looks_like_name(text: str, m: re.Match[str]) -> bool:
    """A capitalised word inside a sentence (likely part of a name), or an all-caps word."""
    word = m.group()
    if len(word) > 1 and word.isupper():
        return True
    return word[0].isupper() and not _at_sentence_start(text, m.start())


_WORD_BEFORE = re.compile(r"([A-Za-z]+)\s+$")
_WORD_AFTER = re.compile(r"\s+([A-Za-z]+)")


def _neighbour_words(text: str, start: int, end: int) -> set[str]:
    """The lower-cased words right before and right after a span (across whitespace only)."""
    before = _WORD_BEFORE.search(text[:start])
    after = _WORD_AFTER.match(text, end)
    return {m.group(1).lower() for m in (before, after) if m}


# --------------------------------------------------------------------------------------------
# homoglyph
# --------------------------------------------------------------------------------------------


def _homoglyph_field(text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, list[str]]:
    """Replace ``1..ctx.budget`` letters of plain, unprotected words with confusables."""
    spots = [
        (m.group(), i)
        for m in _PLAIN_WORD.finditer(text)
        if m.group().lower() not in ctx.protected
        for i in range(m.start(), m.end())
        if text[i] in CONFUSABLES
    ]
    if not spots:
        return text, []
    count = min(len(spots), _edit_count(rng, ctx.budget))
    chosen = sorted(rng.sample(spots, count), key=lambda s: s[1])
    chars = list(text)
    notes = []
    for word, i in chosen:
        new = rng.choice(CONFUSABLES[text[i]])
        chars[i] = new
        name = unicodedata.name(new).title().replace("Letter ", "")
        notes.append(f'"{text[i]}" in "{word}"→U+{ord(new):04X} ({name})')
    return "".join(chars), notes


class HomoglyphPerturber(_RulePerturber):
    """Look-alike Cyrillic/Greek letters in ``1..budget`` positions (budget: characters, 3)."""

    kind = "homoglyph"
    default_budget = DEFAULT_BUDGETS["homoglyph"]

    def _edit(self, text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, list[str]]:
        return _homoglyph_field(text, rng, ctx)


# --------------------------------------------------------------------------------------------
# synonym
# --------------------------------------------------------------------------------------------


@cache
def load_synonyms() -> dict[str, tuple[tuple[str, ...], frozenset[str]]]:
    """Load and check the curated synonym list ``data/synonyms.tsv``.

    Returns:
        ``headword -> (synonyms, blocking neighbour words)``.

    Raises:
        ValueError: When an entry breaks the list's rules (not a single lower-case
            alphabetic headword, a repeated headword, a synonym equal to its headword, a
            sentiment word or negation on either side).
    """
    out: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {}
    for number, raw in enumerate(_data_text("synonyms.tsv").splitlines(), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        where = f"synonyms.tsv line {number}"
        if len(parts) not in (2, 3):
            raise ValueError(f"{where}: expected headword<TAB>synonyms[<TAB>blockers]")
        head = parts[0]
        words = tuple(w.strip() for w in parts[1].split(",") if w.strip())
        blockers = frozenset(w.strip() for w in (parts[2] if len(parts) == 3 else "").split(","))
        if not re.fullmatch(r"[a-z]+", head) or head in out:
            raise ValueError(f"{where}: headword {head!r} is not a new lower-case word")
        if not words or any(not re.fullmatch(r"[A-Za-z]+", w) or w == head for w in words):
            raise ValueError(f"{where}: synonyms of {head!r} must be other single words")
        banned = SENTIMENT_WORDS | _NEGATION_LIKE
        if head in banned or any(w.lower() in banned for w in words):
            raise ValueError(f"{where}: {head!r} or a synonym is a sentiment word or negation")
        out[head] = (words, blockers - {""})
    return out


_VOWEL_SOUND_EXCEPTIONS = ("hour", "honest", "honor", "honour", "heir")
_CONSONANT_SOUND_EXCEPTIONS = ("uni", "use", "usu", "euro", "one", "once")


def _article_for(word: str) -> str:
    """``"a"`` or ``"an"`` for a word, by a spelling heuristic."""
    low = word.lower()
    if low.startswith(_VOWEL_SOUND_EXCEPTIONS):
        return "an"
    if low.startswith(_CONSONANT_SOUND_EXCEPTIONS):
        return "a"
    if len(word) > 1 and word.isupper():  # an acronym read letter by letter: "an FBI", "a TV"
        return "an" if low[0] in "aefhilmnorsx" else "a"
    return "an" if low[0] in "aeiou" else "a"


def _with_case(source: str, replacement: str) -> str:
    """Give ``replacement`` the capitalisation of ``source`` (as listed when lower-case)."""
    if len(source) > 1 and source.isupper():
        return replacement.upper()
    if source[0].isupper():
        return replacement[0].upper() + replacement[1:]
    return replacement


_ARTICLE_BEFORE = re.compile(r"(?<![\w'’-])(a|an|A|An|AN)(\s+)$")


def _synonym_field(text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, list[str]]:
    """Swap ``1..ctx.budget`` listed words for one of their synonyms."""
    synonyms = load_synonyms()
    spots = []
    for m in _FREE_WORD.finditer(text):
        low = m.group().lower()
        if low not in synonyms or low in ctx.protected or _looks_like_name(text, m):
            continue
        if _inside_quotes(text[: m.start()]):
            continue
        if _neighbour_words(text, m.start(), m.end()) & synonyms[low][1]:
            continue
        spots.append(m)
    if not spots:
        return text, []
    count = min(len(spots), _edit_count(rng, ctx.budget))
    chosen = sorted(rng.sample(spots, count), key=lambda m: m.start())
    replacements = [rng.choice(synonyms[m.group().lower()][0]) for m in chosen]
    notes = [""] * len(chosen)
    # Right to left, so earlier offsets stay valid.
    for k in range(len(chosen) - 1, -1, -1):
        m = chosen[k]
        new = _with_case(m.group(), replacements[k])
        head, tail = text[: m.start()], text[m.end() :]
        note = f'"{m.group()}"→"{new}"'
        article = _ARTICLE_BEFORE.search(head)
        if article and _article_for(m.group()) != _article_for(new):
            old_art = article.group(1)
            fixed = _with_case(old_art, "an" if old_art.lower() == "a" else "a")
            head = head[: article.start()] + fixed + article.group(2)
            note += f' (article "{old_art}"→"{fixed}")'
        text = head + new + tail
        notes[k] = note
    return text, notes


class SynonymPerturber(_RulePerturber):
    """Listed content words swapped for synonyms in ``1..budget`` spots (budget: words, 2)."""

    kind = "synonym"
    default_budget = DEFAULT_BUDGETS["synonym"]

    def _edit(self, text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, list[str]]:
        return _synonym_field(text, rng, ctx)


# --------------------------------------------------------------------------------------------
# deletion
# --------------------------------------------------------------------------------------------


def _is_negation_token(token: str) -> bool:
    low = token.lower().strip("\"'“”‘’.,;:!?()")
    return low in _NEGATION_LIKE or low.endswith(("n't", "n’t"))


def _deletion_field(text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, list[str]]:
    """Delete ``1..ctx.budget`` deletable words, each followed by a word, none after a negation."""
    tokens = list(_TOKEN.finditer(text))
    spots = []
    for m in _FREE_WORD.finditer(text):
        low = m.group().lower()
        if low not in DELETABLE or low in ctx.protected or _looks_like_name(text, m):
            continue
        if _inside_quotes(text[: m.start()]):
            continue
        # The token after must start a word, and the deleted word must be a whole token.
        after = text[m.end() :]
        following = re.match(r"[ \t]+([A-Za-z]+)", after)
        if following is None:
            continue
        if low in _ARTICLES and following.group(1).lower() in _KEEP_ARTICLE_BEFORE:
            continue
        position = next((i for i, t in enumerate(tokens) if t.start() == m.start()), None)
        if position is None or tokens[position].end() != m.end():
            continue
        if position > 0 and _is_negation_token(tokens[position - 1].group()):
            continue
        spots.append(m)
    if not spots:
        return text, []
    count = min(len(spots), _edit_count(rng, ctx.budget))
    # Intensifiers and fillers first; articles only fill what is left of the count.
    fillers = [m for m in spots if m.group().lower() not in _ARTICLES]
    articles = [m for m in spots if m.group().lower() in _ARTICLES]
    picked = rng.sample(fillers, min(count, len(fillers)))
    picked += rng.sample(articles, count - len(picked))
    chosen = sorted(picked, key=lambda m: m.start())
    notes = [f'deleted "{m.group()}"' for m in chosen]
    for m in reversed(chosen):
        gap = re.match(r"[ \t]+", text[m.end() :])
        assert gap is not None  # checked above
        rest = text[m.end() + gap.end() :]
        if m.group()[0].isupper() and _at_sentence_start(text, m.start()):
            rest = rest[0].upper() + rest[1:]
        text = text[: m.start()] + rest
    return text, notes


class DeletionPerturber(_RulePerturber):
    """Intensifiers, fillers and articles deleted in ``1..budget`` spots (budget: words, 2)."""

    kind = "deletion"
    default_budget = DEFAULT_BUDGETS["deletion"]

    def _edit(self, text: str, rng: random.Random, ctx: _Ctx) -> tuple[str, list[str]]:
        return _deletion_field(text, rng, ctx)


# --------------------------------------------------------------------------------------------
# instruction
# --------------------------------------------------------------------------------------------

_QUOTED = re.compile(r"""(?<![A-Za-z0-9])(['"])([^'"]{1,40}?)\1(?![A-Za-z0-9])""")


def quoted_labels(prompt: str) -> frozenset[str]:
    """The lower-cased words a prompt quotes (``'positive'`` or ``"positive"``)."""
    return frozenset(m.group(2).strip().lower() for m in _QUOTED.finditer(prompt))


def _word_edits(a: str, b: str) -> int:
    """Word-level edit distance between two prompts (replaced, inserted or deleted words)."""
    sm = difflib.SequenceMatcher(a=a.split(), b=b.split(), autojunk=False)
    return sum(max(i2 - i1, j2 - j1) for op, i1, i2, j1, j2 in sm.get_opcodes() if op != "equal")


@dataclass(frozen=True)
class InstructionAttack:
    """One attacked instruction from a PromptBench-style file."""

    dataset: str
    attack: str
    original: str
    attacked: str
    labels: frozenset[str]
    """The lower-cased words the attacked prompt quotes."""
    edits: int
    """Word edits from the original prompt to the attacked one."""
    line: int


def load_instruction_attacks(
    path: str | Path, *, max_line_bytes: int = MAX_LINE_BYTES
) -> tuple[InstructionAttack, ...]:
    """Read a JSONL file of attacked prompts in the PromptBench schema.

    Each line needs ``attacked_prompt`` (str); ``original_prompt``, ``dataset`` and
    ``attack`` are used when present. Lines are read by the dataset reader
    (:func:`sua_audit.dataset.iter_json_lines`), so the same rules apply: a line over
    ``max_line_bytes`` (``--max-line-bytes``) is refused without being read whole, as are
    UTF-16 / UTF-32 files, invalid UTF-8, duplicate keys, lone surrogates and giant or
    non-finite numbers. Loaded files are cached by path, size, mtime and line limit.

    Raises:
        ConfigError: When the file cannot be read or a line is malformed (one line per
            problem: file, line, what is wrong).
        ValueError: When ``max_line_bytes`` is not positive.
    """
    if str(path) == "-":
        raise ConfigError(
            "instruction_attacks: reading from standard input ('-') is not supported; save "
            "the attacked prompts to a JSONL file and pass its path"
        )
    p = Path(path).expanduser()
    try:
        stat = p.stat()
    except OSError as exc:
        raise ConfigError(
            f"instruction_attacks: {p}: cannot be read ({exc.strerror or exc}); "
            "give the path of a JSONL file of attacked prompts (PromptBench schema)"
        ) from None
    return _load_attacks(str(p.resolve()), stat.st_size, stat.st_mtime_ns, max_line_bytes)


def _attack_line_problem(problem: DatasetProblem) -> str:
    """``file:line: field: what is wrong — fix`` (no field for whole-line problems)."""
    if problem.field == "(line)":
        return (
            f"{problem.path}:{problem.line}: {problem.problem.removeprefix('is ')} — {problem.fix}"
        )
    return f"{problem.path}:{problem.line}: {problem.field}: {problem.problem} — {problem.fix}"


@lru_cache(maxsize=8)
def _load_attacks(
    path: str, size: int, mtime_ns: int, max_line_bytes: int
) -> tuple[InstructionAttack, ...]:
    problems: list[str] = []
    out: list[InstructionAttack] = []
    rows = iter_json_lines(path, max_line_bytes=max_line_bytes)
    try:
        for row in rows:
            if row.problems:
                problems.extend(_attack_line_problem(p) for p in row.problems)
                continue
            out.extend(_attack_from(row.value, path, row.line, problems))
    except DatasetError as exc:  # the file as a whole: a directory, UTF-16, a pipe, ...
        raise ConfigError(
            "instruction_attacks: "
            + "; ".join(f"{p.path}: {p.problem} — {p.fix}" for p in exc.problems)
        ) from None
    except OSError as exc:
        raise ConfigError(f"instruction_attacks: {path}: cannot be read ({exc})") from None
    if problems:
        shown = problems[:10] + (
            [f"... and {len(problems) - 10} more"] if len(problems) > 10 else []
        )
        raise ConfigError("instruction_attacks: malformed lines:\n" + "\n".join(shown))
    if not out:
        raise ConfigError(f"instruction_attacks: {path}: holds no attacked prompts")
    return tuple(out)


def _attack_from(row: Any, path: str, number: int, problems: list[str]) -> list[InstructionAttack]:
    """The attack of one decoded line (a list of one), or ``[]`` with the problem recorded."""
    attacked = row.get("attacked_prompt") if isinstance(row, dict) else None
    if not isinstance(attacked, str) or not attacked.strip():
        problems.append(f"{path}:{number}: attacked_prompt: missing or not a string")
        return []
    original = row.get("original_prompt")
    original = original if isinstance(original, str) else ""
    attacked = " ".join(attacked.split())
    return [
        InstructionAttack(
            dataset=str(row.get("dataset", "")),
            attack=str(row.get("attack", "")),
            original=" ".join(original.split()),
            attacked=attacked,
            labels=quoted_labels(attacked),
            edits=_word_edits(" ".join(original.split()), attacked) if original else 0,
            line=number,
        )
    ]


def matching_attacks(
    attacks: Sequence[InstructionAttack], labels: Sequence[str], *, max_edits: int | None = None
) -> list[InstructionAttack]:
    """The attacks usable for an item with these labels.

    An attack matches when the set of words it quotes equals the item's label set
    (case-insensitive), it has no ``{}`` placeholder, it changed its original prompt (failed
    attacks, identical to the original, are left out), and (when ``max_edits`` is given) it
    differs from its original prompt by at most ``max_edits`` words. Repeated attacked
    prompts (the same prompt listed for two datasets) are kept once, in file order.
    """
    wanted = frozenset(label.lower() for label in labels)
    out: list[InstructionAttack] = []
    seen: set[str] = set()
    for a in attacks:
        if (
            wanted
            and a.labels == wanted
            and "{}" not in a.attacked
            and a.attacked != a.original
            and (max_edits is None or a.edits <= max_edits)
            and a.attacked not in seen
        ):
            seen.add(a.attacked)
            out.append(a)
    return out


@cache
def builtin_instructions() -> dict[str, Any]:
    """The built-in attack material of ``data/instructions.json`` (rephrase, prefix, roleplay)."""
    data = json.loads(_data_text("instructions.json"))
    return {key: value for key, value in data.items() if not key.startswith("_")}


_STRUCTURAL_OPS = ("rephrase", "prefix", "roleplay")


def _builtin_attack(
    labels: Sequence[str], nli: bool, protected: frozenset[str], rng: random.Random, budget: int
) -> tuple[str, list[str]]:
    """Compose ``1..budget`` built-in attack edits on the clean question."""
    data = builtin_instructions()
    count = _edit_count(rng, budget)
    remaining = list(_STRUCTURAL_OPS)
    ops: list[str] = []
    for _ in range(count):
        op = rng.choice([*remaining, "typo"])
        if op != "typo":
            remaining.remove(op)
        ops.append(op)
    notes: list[str] = []
    labels_str = label_text(labels)
    if "rephrase" in ops:
        template = rng.choice(data["rephrase"]["nli" if nli else "classification"])
        notes.append("reworded the question")
    else:
        template = NLI_QUESTION if nli else CLASSIFY_QUESTION
    question = template.format(labels=labels_str)
    typos = ops.count("typo")
    if typos:
        words = [
            m
            for m in _PLAIN_WORD.finditer(question)
            if len(m.group()) >= 4 and m.group().lower() not in protected
        ]
        chosen = sorted(rng.sample(words, min(typos, len(words))), key=lambda m: m.start())
        for m in reversed(chosen):
            typo, how = _typo_word(m.group(), rng)
            question = question[: m.start()] + typo + question[m.end() :]
            notes.append(f'{how} "{m.group()}"→"{typo}"')
    frame = []
    if "roleplay" in ops:
        frame.append(rng.choice(data["roleplay"]))
        notes.append(f'role-play "{frame[-1]}"')
    if "prefix" in ops:
        frame.append(rng.choice(data["prefix"]))
        notes.append(f'prefix "{frame[-1]}"')
    return " ".join([*frame, question]), notes


class InstructionPerturber:
    """Instruction-level attacks: the text is kept, ``fields["instruction"]`` is attacked.

    Budget: attack edits (built-in set: composed edits, default 1; a PromptBench file: word
    edits from the original prompt, only when given explicitly). See the module docstring.
    """

    kind = "instruction"
    default_budget = DEFAULT_BUDGETS["instruction"]

    async def __call__(
        self, item: Item, *, n: int, seed: int, context: PerturbContext | None = None
    ) -> list[Variant]:
        """Return ``n`` instruction variants of a classification / NLI item; none for QA.

        Args:
            item: The item.
            n: How many variants.
            seed: Base seed; variant ``j`` depends on (item, seed, kind, j) and the file.
            context: Budget, ``options["instruction_attacks"]`` (a PromptBench JSONL path),
                and ``stats`` (QA items and items without labels are counted there).

        Returns:
            The variants (index 0), or ``[]`` when the item has no instruction to attack.

        Raises:
            ConfigError: When the attack file cannot be read or is malformed.
            ValueError: When the budget is not a positive integer.
        """
        if item.task == "qa" or not item.labels:
            if context is not None and n > 0:
                reason = "not_applicable_qa" if item.task == "qa" else "no_labels"
                context.stats.reject(self.kind, reason, n)
            return []
        budget = _resolve_budget(self.kind, self.default_budget, context)
        fields = item.text_fields()
        nli = item.task == "nli" and "premise" in fields and "hypothesis" in fields
        options: Mapping[str, Any] = context.options if context is not None else {}
        source = options.get("instruction_attacks")
        pool: list[InstructionAttack] = []
        fallback = ""
        if source:
            explicit = context is not None and self.kind in context.budgets
            attacks = load_instruction_attacks(source)
            pool = matching_attacks(attacks, item.labels, max_edits=budget if explicit else None)
            if not pool:
                within = f" within {budget} word edits" if explicit else ""
                fallback = (
                    f" (no attacked prompt in {Path(source).name} quotes exactly the labels "
                    f"{label_text(item.labels)}{within}; built-in attack used)"
                )
        order = list(range(len(pool)))
        random.Random(f"{seed}:{item.id}:{self.kind}:pool").shuffle(order)
        protected = _protected_words(item)
        out = []
        for j in range(n):
            if pool:
                attack = pool[order[j % len(pool)]]
                instruction = attack.attacked
                detail = (
                    f"instruction: {attack.dataset or 'file'}/{attack.attack or 'attack'} "
                    f'prompt (line {attack.line}, {attack.edits} word edits) "{instruction}"'
                )
            else:
                rng = rng_for(seed, item.id, self.kind, j)
                instruction, notes = _builtin_attack(item.labels, nli, protected, rng, budget)
                detail = "instruction: built-in: " + "; ".join(notes) + fallback
            out.append(
                Variant(
                    kind=self.kind,
                    index=0,
                    fields={**fields, "instruction": instruction},
                    detail=detail,
                )
            )
        return out


register_perturber(HomoglyphPerturber.kind, HomoglyphPerturber)
register_perturber(SynonymPerturber.kind, SynonymPerturber)
register_perturber(DeletionPerturber.kind, DeletionPerturber)
register_perturber(
    InstructionPerturber.kind, InstructionPerturber, traits=KindTraits(instruction=True)
)
