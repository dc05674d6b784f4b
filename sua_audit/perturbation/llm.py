"""Model-backed perturbers: ``paraphrase``, ``ambiguity`` and ``adversarial`` rewrites.

This module owns rewrites written by a *rewriter* model (``context.generator``) from the prompt
templates ``prompts/<kind>/default.j2``, and :func:`parse_rewrite`, which turns a chatty reply
("Sure! Here's a paraphrase: ...") into the rewrite alone or rejects it. Importing the module
registers the three kinds.

How one item is rewritten:

1. every text field is rewritten on its own: ``input``, or for NLI items the premise and the
   hypothesis separately (``input`` is then re-rendered with :func:`render_nli`). One request
   per field asks for ``2n + 2`` samples, seeded from (seed, item id, kind, field), so sample
   ``i`` is the same whatever ``n`` is and a rerun is answered from the cache;
2. each sample is parsed (:func:`parse_rewrite`), then checked in sample order: not a
   duplicate of an earlier one, the item's label words and its negations kept
   (classification / NLI label words; negations for every task), numbers kept (paraphrase,
   adversarial), at least one content word in common (else "off_topic"), and the meaning
   filter (``context.meaning``) passed. ``ambiguity`` rewrites change the meaning on
   purpose, so they skip the meaning filter and the numbers check; instead they must drop a
   detail (be shorter or lose a content word), and their variants carry the flag
   ``"multi_answer"``;
3. variant ``j`` takes the ``j``-th accepted rewrite of each field (an NLI field with fewer
   accepted rewrites keeps its original text), so asking for more never changes the first
   ones. Fewer than ``n`` variants come back when too few rewrites pass.

Every sample is counted in ``context.stats`` for its kind: proposed, then accepted or rejected
with one reason (``"rewriter_error"`` when the rewriter request failed, which never stops the
audit). The counts are of field rewrites, so an NLI variant may account for two.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sua_audit.backends.base import CompletionRequest, GenerationParams
from sua_audit.errors import ConfigError, RequestFailed
from sua_audit.perturbation import (
    KindTraits,
    PerturbContext,
    PerturbStats,
    Variant,
    register_perturber,
    render_nli,
)
from sua_audit.textfacts import (
    digit_numbers,
    has_negation,
    is_question,
    looks_like_question,
)

if TYPE_CHECKING:
    from sua_audit.dataset import Item
    from sua_audit.perturbation.meaning import MeaningFilter
    from sua_audit.prompting import PromptTemplate

__all__ = [
    "MAX_LENGTH_RATIO",
    "MIN_LENGTH_RATIO",
    "AdversarialPerturber",
    "AmbiguityPerturber",
    "LLMRewritePerturber",
    "ParaphrasePerturber",
    "ParsedRewrite",
    "kind_of_text",
    "parse_rewrite",
    "parse_rewrite_detailed",
]

#: A rewrite shorter than this share of the original (in normalised characters) is rejected.
MIN_LENGTH_RATIO = 0.3
#: A rewrite longer than this multiple of the original is rejected.
MAX_LENGTH_RATIO = 3.0

DEFAULT_TEMPERATURE = 0.9


# --------------------------------------------------------------------------------------------
# Parsing a rewriter's reply
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedRewrite:
    """The outcome of parsing one reply: the rewrite, or ``None`` and why not."""

    text: str | None
    reason: str
    """``"ok"``, or the rejection reason (``"empty"``, ``"refusal"``, ``"identical"``, ...)."""


_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "`": "`"}
_BULLET = re.compile(r"^\s*(?:[-*•·>]+|\d{1,2}[.)]|\(\d{1,2}\)|#+)\s+")
_FENCE = re.compile(r"^\s*```")
#: Chat-template control tokens: the model's turn ended there, the rest is not its reply. A
#: base model behind a server that falls back to another model family's template (llama.cpp
#: uses Llama-2's ``[INST]`` for a GGUF without one) writes them into its text.
_TURN_END = re.compile(
    r"\[/?INST\]|<</?SYS>>|</s>|<\|(?:im_end|im_start|eot_id|end_of_text|endoftext|end|user|"
    r"assistant|system)\|>|<(?:end|start)_of_turn>"
)
#: Inline markup tags (``<em>``, ``</strong>``) a reply about plain text should not carry.
_MARKUP_TAG = re.compile(r"</?(?:em|strong|b|i|u|sub|sup|br|p|span)\s*/?>", re.IGNORECASE)
_OPENERS = re.compile(
    r"^(?:sure|certainly|of course|okay|ok|absolutely|great|alright|yes)[!.,:]+\s*", re.I
)
#: "Paraphrase:", "Here's a rewritten version of the question:", "New question:" ...
_LABEL = re.compile(
    r"""^\W{0,3}
    (?:(?:here(?:'s|’s|\s+is|\s+are)|this\s+is)\s+)?
    (?:(?:a|an|the|my|one|your)\s+)?
    (?:(?:new|rewritten|revised|reworded|rephrased|paraphrased|casual|informal|vague|
        ambiguous|alternative|alternate|simpler|modified|updated|final|possible|another)\s+)*
    (?:paraphrase|rewrite|rewording|rephrasing|version|question|sentence|text|premise|
       hypothesis|output|result|response|option|variant|revision)s?\b
    [^:\n"“]{0,50}:\s*""",
    re.I | re.X,
)
#: A preamble that ends in a colon: "That sentence could be rewritten as: ...".
_PREAMBLE_WORDS = re.compile(
    r"paraphras|rewrit|rephras|reword|version|revis|same meaning|different words|"
    r"here(?:'s|’s| is)|as follows|could be|would be|can be|could say|would say|"
    r"\b(?:this|the) (?:question|sentence|text)\b",
    re.I,
)
_ONE_WORD_LABEL = re.compile(r"^\**([A-Z][a-z]{2,15})\**\s*:\s+(?=\S)")
_ORIGINAL_LABEL = re.compile(r"^\W{0,3}(?:the\s+)?(?:original|input|source)\b[^:\n]{0,40}:", re.I)
_EXPLANATION = re.compile(
    r"""^\(?\s*(?:
        (?:this|that|the\ above|it|which)\s+(?:new\s+|revised\s+|rewritten\s+)?
            (?:paraphrase|rewrite|version|sentence|question|text|rephrasing|rewording|revision|
               keeps|preserves|maintains|retains|conveys|has\ the\ same|means|uses|way|change)\b
        | (?:note|explanation|reason|why)\s*:
        | in\ (?:this|the)\s+(?:new\s+|revised\s+|rewritten\s+|edited\s+)?
            (?:version|rewrite|paraphrase|sentence|question|text)\b
        | I(?:'ve|’ve|\ have)?\s+(?:kept|changed|replaced|used|rephrased|reworded|made|rewrote|
               removed|added)\b
        | the\ (?:meaning|original)\b
        | (?:both|these)\ (?:sentences|versions|questions)\b
    )""",
    re.I | re.X,
)
_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[\"'“(]?[A-Z])")
_TRAILING_PAREN = re.compile(
    r"\s*\((?:this|note|i\b|which|meaning|same meaning|keeps|preserves|paraphrase|rewrite)[^)]*\)\s*$",
    re.I,
)
_REFUSAL = re.compile(
    r"\b(?:I'?m sorry|I am sorry|I apologi[sz]e|as an AI|as a language model|"
    r"I (?:can(?:no|')t|cannot|won't|will not) (?:help|assist|do|rewrite|rephrase|paraphrase|"
    r"provide|comply|fulfil)|I(?:'m| am) (?:not able|unable) to)",
    re.I,
)
_INSTRUCTION_ECHO = re.compile(
    r"\b(?:(?:rewrite|paraphrase|rephrase|reword)\s+(?:the|this)\s+(?:following|question|"
    r"sentence|text)|keep (?:exactly )?the same meaning|using different words|"
    r"write only the new|do not answer it|in more than one way|leave out one detail)\b",
    re.I,
)
#: Talk about the task instead of a rewrite ("Can you answer that?", "a question about ...").
#: A chatty "quick question:" is fine.
_META = re.compile(
    r"\b(?:answers?|answered|sentences?|rewrite|rewritten|rewriting|paraphrased?|rephrased?|"
    r"reworded|(?:this|the|that|your|my|a|original|new) question(?:\s+(?:is|about|asks))?)\b",
    re.I,
)


def _normalise(text: str) -> str:
    """Case-, punctuation- and whitespace-insensitive form used for comparisons."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("’", "'").replace("‘", "'")
    text = re.sub(r"[^\w\s']", " ", text)
    text = text.replace("'", "")
    return " ".join(text.split())


def _unwrap(text: str) -> str:
    """Strip markdown emphasis and one pair of surrounding quotes, repeatedly."""
    while True:
        before = text
        text = text.strip()
        for mark in ("**", "__", "*", "_", "`"):
            if len(text) > 2 * len(mark) and text.startswith(mark) and text.endswith(mark):
                text = text[len(mark) : -len(mark)].strip()
        if text and text[0] in _QUOTES:
            close = _QUOTES[text[0]]
            end = text.rfind(close, 1)
            if end > 0:
                rest = text[end + 1 :].strip()
                inner = text[1:end]
                # '"The rewrite."' or '"The rewrite." - this keeps the meaning' (but not
                # '"Moby-Dick" is a novel': the rest is then part of the sentence).
                if inner.count(close) == 0 or close != text[0]:
                    if not rest.strip(".!?,;: ") or _is_trailer(rest):
                        text = inner.strip()
        for quote in ('"', "“", "”"):
            if text.count(quote) == 1 and quote in (text[:1], text[-1:]):
                text = text.strip(quote).strip()
        if text == before:
            return text


def _is_trailer(rest: str) -> bool:
    """Whether text after a quoted rewrite is an explanation, not part of the sentence."""
    rest = rest.lstrip(" -–—:;,.")
    return not rest or bool(_EXPLANATION.match(rest)) or rest.startswith("(")


def _strip_labels(line: str, original: str) -> str:
    """Remove openers ("Sure!") and labels ("Paraphrase:", "Here's a rewrite:") in front."""
    for _ in range(4):
        before = line
        line = _OPENERS.sub("", line, count=1)
        line = _unwrap_emphasis_label(line)
        m = _LABEL.match(line)
        if m is not None:
            if not original.lower().startswith(m.group(0).strip().lower()):
                line = line[m.end() :]
        else:
            colon = line.find(":")
            if 0 < colon <= 100 and _PREAMBLE_WORDS.search(line[:colon]):
                if not original.lower().startswith(line[: colon + 1].lower()):
                    line = line[colon + 1 :]
            else:
                m1 = _ONE_WORD_LABEL.match(line)
                if m1 is not None and not original.startswith(m1.group(0).rstrip()):
                    line = line[m1.end() :]
        line = line.strip()
        if line == before:
            break
    return line


def _unwrap_emphasis_label(line: str) -> str:
    """``**Paraphrase:** text`` → ``Paraphrase: text``."""
    return re.sub(r"^\*\*([^*\n]{1,60}?:)\*\*", r"\1", line.strip())


def _explains(sentence: str, original: str) -> bool:
    """Whether a sentence comments on the rewrite rather than rewriting.

    When the original has a sentence that reads like a comment ("The original cut was
    better."), nothing is taken for one: the rewrite may well start the same way.
    """
    if not _EXPLANATION.match(sentence):
        return False
    return not any(_EXPLANATION.match(s) for s in _SENTENCE_SPLIT.split(original.strip()))


def _cut_explanations(text: str, original: str) -> str:
    """Drop trailing sentences that explain the rewrite instead of being part of it."""
    text = _TRAILING_PAREN.sub("", text)
    sentences = _SENTENCE_SPLIT.split(text)
    for i, sentence in enumerate(sentences[1:], start=1):
        if _explains(sentence, original):
            return " ".join(sentences[:i]).strip()
    # "The rewrite. - This keeps the meaning" with a dash instead of a sentence break.
    m = re.search(r"\s+[-–—]+\s+(?=\S)", text)
    if m is not None and _explains(text[m.end() :], original):
        return text[: m.start()].strip()
    return text.strip()


def parse_rewrite_detailed(raw: str | None, original: str) -> ParsedRewrite:
    """Extract the rewrite from a rewriter's reply, or say why there is none.

    Cuts the reply at the first chat-template control token (``[/INST]``, ``<end_of_turn>``,
    ``<|im_end|>``, ...) and drops inline markup tags (``<em>``) the original does not use.
    Strips code fences, bullets and numbering, openers and labels ("Sure! Here's a
    paraphrase:", "Rewritten:"), surrounding quotes and markdown, and trailing explanations
    ("This keeps the meaning because ..."); takes the first substantive line (the first
    paragraph when the original has several lines); skips lines labelled as the original.

    Args:
        raw: The reply text (``None`` counts as empty).
        original: The text that was to be rewritten.

    Returns:
        The rewrite with reason ``"ok"``, or ``None`` with one of ``"empty"``, ``"refusal"``,
        ``"echoed_instruction"``, ``"no_rewrite"`` (an explanation or comment, not a
        rewrite), ``"not_a_question"`` (a question came back answered or as a statement),
        ``"identical"``, ``"too_short"``, ``"too_long"``.
    """
    if raw is None or not raw.strip():
        return ParsedRewrite(None, "empty")
    # The reply ends at the first turn marker; markup tags the original lacks are dropped.
    raw = _TURN_END.split(raw, maxsplit=1)[0]
    if not _MARKUP_TAG.search(original):
        raw = _MARKUP_TAG.sub("", raw)
    if not raw.strip():
        return ParsedRewrite(None, "empty")
    multi_line = "\n" in original.strip()
    lines = raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    candidate: str | None = None
    block: list[str] = []
    for line in lines:
        if _FENCE.match(line):
            continue
        if not line.strip():
            if block:
                break
            continue
        stripped = _BULLET.sub("", line.strip(), count=1)
        if _ORIGINAL_LABEL.match(stripped):
            continue
        stripped = _strip_labels(stripped, original)
        if not _unwrap(stripped).strip(" .!:;,-–—*\"'"):
            continue  # a preamble line alone ("Sure! Here's a paraphrase:")
        block.append(stripped)
        if not multi_line:
            break
    if block:
        candidate = "\n".join(block)
    if candidate is None:
        return ParsedRewrite(None, "empty")
    text = _unwrap(candidate)
    if _explains(text, original):
        return ParsedRewrite(None, "no_rewrite")
    text = _unwrap(_cut_explanations(text, original))
    if not _normalise(text):
        return ParsedRewrite(None, "empty")
    if _REFUSAL.search(text) and not _REFUSAL.search(original):
        return ParsedRewrite(None, "refusal")
    if _INSTRUCTION_ECHO.search(text) and not _INSTRUCTION_ECHO.search(original):
        return ParsedRewrite(None, "echoed_instruction")
    if is_question(original) and not looks_like_question(text):
        return ParsedRewrite(None, "not_a_question")
    if _META.search(text) and not _META.search(original):
        return ParsedRewrite(None, "no_rewrite")
    norm, norm_original = _normalise(text), _normalise(original)
    if norm == norm_original:
        return ParsedRewrite(None, "identical")
    ratio = len(norm) / max(1, len(norm_original))
    if ratio < MIN_LENGTH_RATIO:
        return ParsedRewrite(None, "too_short")
    if ratio > MAX_LENGTH_RATIO:
        return ParsedRewrite(None, "too_long")
    return ParsedRewrite(text, "ok")


def parse_rewrite(raw: str | None, original: str) -> str | None:
    """The rewrite in a rewriter's reply, or ``None`` (see :func:`parse_rewrite_detailed`)."""
    return parse_rewrite_detailed(raw, original).text


# --------------------------------------------------------------------------------------------
# Checks on parsed rewrites
# --------------------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z]+(?:['’][a-z]+)?")
_STOPWORDS = frozenset(
    {
        "the", "and", "for", "are", "was", "were", "is", "of", "to", "in", "on", "at", "by",
        "with", "from", "that", "this", "these", "those", "what", "who", "when", "where",
        "which", "why", "how", "does", "did", "do", "has", "have", "had", "its", "his", "her",
        "their", "our", "your", "you", "they", "them", "she", "him", "can", "could", "would",
        "should", "will", "a", "an", "it", "be", "been", "as", "or", "but", "into", "about",
    }
)  # fmt: skip


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) >= 3 and w not in _STOPWORDS}


def _off_topic(original: str, text: str) -> bool:
    """No content word in common (compared by their first five letters, so "embrace" and
    "embracing" match), when the original has at least two: the rewriter wrote about
    something else. A short original ("Loved it!") may be paraphrased with no shared word."""
    words = {w[:5] for w in _content_words(original)}
    return len(words) >= 2 and not words & {w[:5] for w in _content_words(text)}


def _label_words(item: Item) -> set[str]:
    if item.task == "qa" or not item.labels:
        return set()
    return {w for label in item.labels for w in _WORD.findall(label.lower()) if len(w) >= 3}


def kind_of_text(text: str, task: str | None = None) -> str:
    """What the templates call the text: ``"question"``, ``"sentence"`` or ``"text"``.

    A QA input is a question even without a question mark.
    """
    body = text.strip()
    if task == "qa" or is_question(body):
        return "question"
    if "\n" in body or re.search(r"[.!?]\s+\S", body):
        return "text"
    return "sentence"


# --------------------------------------------------------------------------------------------
# The perturbers
# --------------------------------------------------------------------------------------------


def _request_seed(seed: int | str, item_id: str, kind: str, field: str) -> int:
    digest = hashlib.sha256(f"{seed}:{item_id}:{kind}:{field}:rewrite".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 2**31


def _max_tokens(text: str) -> int:
    """Room for a rewrite up to the length limit plus a short preamble, in steps of 32.

    Steps keep the number of distinct values small, so a local backend can batch requests
    (it batches only requests with the same ``max_tokens``).
    """
    approx_tokens = len(text) / 4 + 1
    want = MAX_LENGTH_RATIO * approx_tokens + 24
    return int(min(512, max(64, -(-want // 32) * 32)))


@dataclass
class _Candidate:
    text: str
    score: float | None = None


class LLMRewritePerturber:
    """Base of the model-backed perturbers (see the module docstring for the procedure).

    Subclasses set :attr:`kind` (also the template folder), and may turn off the meaning
    filter and the numbers check, add flags, or add a light check of their own.
    """

    kind: str = ""
    checks_meaning: ClassVar[bool] = True
    keeps_numbers: ClassVar[bool] = True
    flags: ClassVar[tuple[str, ...]] = ()

    async def __call__(
        self, item: Item, *, n: int, seed: int, context: PerturbContext | None = None
    ) -> list[Variant]:
        """Return up to ``n`` rewrites of ``item`` (index 0; the caller renumbers them).

        Args:
            item: The item to rewrite.
            n: How many variants are wanted.
            seed: Base seed; the rewriter requests are seeded from (seed, item, kind, field).
            context: The rewriter (``generator``), ``prompts``, ``meaning`` filter, ``stats``
                and ``options`` (``rewrite_temperature``, ``rewrite_samples``,
                ``rewrite_max_tokens``, ``templates`` = {kind: template name}).

        Returns:
            At most ``n`` variants, fewer when too few rewrites pass the checks.

        Raises:
            ConfigError: When there is no rewriter model (``context.generator`` is None).
        """
        if context is None or context.generator is None:
            raise ConfigError(
                f"the {self.kind} perturbation needs a rewriter model: pass --rewriter-model "
                "(default: the embedded SmolLM2), or use only the rule kinds typo, word and "
                "distractor."
            )
        if n <= 0:
            return []
        template = self._template(context)
        fields = item.text_fields()
        names = ["premise", "hypothesis"] if "premise" in fields else ["input"]
        options = context.options
        samples = max(n, int(options.get("rewrite_samples", 2 * n + 2)))
        temperature = float(options.get("rewrite_temperature", DEFAULT_TEMPERATURE))
        requests = [
            CompletionRequest(
                template.render(
                    text=fields[name],
                    kind_of_text=kind_of_text(fields[name], item.task),
                    task=item.task,
                    field=name,
                ),
                GenerationParams(
                    temperature=temperature,
                    max_tokens=int(options.get("rewrite_max_tokens", _max_tokens(fields[name]))),
                    seed=_request_seed(seed, item.id, self.kind, name),
                ),
                n=samples,
            )
            for name in names
        ]
        replies = await context.generator.generate_many(requests)
        stats = context.stats
        candidates: dict[str, list[_Candidate]] = {}
        for name, reply in zip(names, replies, strict=True):
            if isinstance(reply, RequestFailed):
                stats.proposed[self.kind] += samples
                stats.reject(self.kind, "rewriter_error", samples)
                candidates[name] = []
                continue
            texts = list(reply.texts or [reply.text or ""])[:samples]
            stats.proposed[self.kind] += len(texts)
            candidates[name] = self._screen(item, fields[name], texts, stats)
        if self.checks_meaning and context.meaning is not None:
            await self._check_meaning(context.meaning, fields, candidates, stats)
        for name in names:
            stats.accepted[self.kind] += len(candidates[name])
        checked = self.checks_meaning and context.meaning is not None
        return self._variants(
            fields, names, candidates, n, template, self._provenance(context, template), checked
        )

    def _provenance(self, context: PerturbContext, template: PromptTemplate) -> dict[str, Any]:
        """What made this kind's variants: the rewriter model and the template, by hash."""
        ident = getattr(context.generator, "identity", None)
        ident = ident if isinstance(ident, dict) else {}
        return {
            "rewriter": f"{ident.get('provider')}/{ident.get('model')}",
            "template": template.ref,
            "template_sha256": template.sha256,
        }

    def _template(self, context: PerturbContext) -> PromptTemplate:
        from sua_audit.prompting import PromptLibrary

        library = context.prompts if context.prompts is not None else PromptLibrary()
        name = dict(context.options.get("templates") or {}).get(self.kind, "default")
        template: PromptTemplate = library.get(self.kind, name)
        return template

    def _screen(
        self, item: Item, original: str, texts: list[str], stats: PerturbStats
    ) -> list[_Candidate]:
        """Parse and check samples in order; count each rejection."""
        kept: list[_Candidate] = []
        seen = {_normalise(original)}
        labels = {w for w in _label_words(item) if re.search(rf"\b{w}\b", original, re.I)}
        for raw in texts:
            parsed = parse_rewrite_detailed(raw, original)
            reason = parsed.reason
            text = parsed.text
            if text is not None:
                reason = self._check(item, original, text, labels, seen)
            if text is None or reason != "ok":
                stats.reject(self.kind, reason)
                continue
            seen.add(_normalise(text))
            kept.append(_Candidate(text))
        return kept

    def _check(self, item: Item, original: str, text: str, labels: set[str], seen: set[str]) -> str:
        """``"ok"`` or why a parsed rewrite is rejected."""
        if _normalise(text) in seen:
            return "duplicate"
        if any(not re.search(rf"\b{w}\b", text, re.I) for w in labels):
            return "label_word_lost"
        # A negation kept or left out, not counted: "not only" is one too (the meaning
        # filter compares negations by parity).
        if has_negation(original) != has_negation(text):
            return "negation_changed"
        # Digits only, as written: the meaning filter compares number words by value.
        if self.keeps_numbers and digit_numbers(original) != digit_numbers(text):
            return "number_changed"
        if _off_topic(original, text):
            return "off_topic"
        return self._extra_check(original, text)

    def _extra_check(self, original: str, text: str) -> str:
        """A subclass's own check of a rewrite; ``"ok"`` to accept."""
        return "ok"

    async def _check_meaning(
        self,
        meaning: MeaningFilter,
        fields: dict[str, str],
        candidates: dict[str, list[_Candidate]],
        stats: PerturbStats,
    ) -> None:
        """Run the meaning filter on every surviving rewrite at once; keep the accepted."""
        order = [(name, c) for name, cs in candidates.items() for c in cs]
        if not order:
            return
        verdicts = await meaning.check_many([(fields[name], c.text) for name, c in order])
        passed: dict[str, list[_Candidate]] = {name: [] for name in candidates}
        for (name, cand), verdict in zip(order, verdicts, strict=True):
            if verdict.accepted:
                cand.score = verdict.score
                passed[name].append(cand)
            else:
                reason = (
                    verdict.reason if re.fullmatch(r"[a-z_]{1,40}", verdict.reason or "") else ""
                )
                stats.reject(self.kind, reason or "meaning_changed")
        candidates.update(passed)

    def _describe(self, cand: _Candidate | None, scored: bool) -> str:
        if cand is None:
            return "kept"
        if not self.checks_meaning:
            return "rewritten"
        if cand.score is not None:
            return f"meaning {cand.score:.2f}"
        return "meaning checked" if scored else "meaning not checked"

    def _variants(
        self,
        fields: dict[str, str],
        names: list[str],
        candidates: dict[str, list[_Candidate]],
        n: int,
        template: PromptTemplate,
        provenance: dict[str, Any] | None = None,
        checked: bool = False,
    ) -> list[Variant]:
        count = min(n, max(len(candidates[name]) for name in names))
        scored = any(c.score is not None for cs in candidates.values() for c in cs)
        out: list[Variant] = []
        for j in range(count):
            new = dict(fields)
            notes: list[str] = []
            meaning: list[dict[str, Any]] = []
            for name in names:
                cand = candidates[name][j] if j < len(candidates[name]) else None
                if cand is not None:
                    new[name] = cand.text
                note = self._describe(cand, scored)
                notes.append(note if names == ["input"] else f"{name}: {note}")
                # The verdict of the meaning check on this field's rewrite: "accepted" (with
                # the filter's score, None when it gives none), "not_checked" (no filter, or
                # a kind that changes the meaning on purpose), "original" (field kept).
                verdict = "original" if cand is None else "accepted" if checked else "not_checked"
                meaning.append(
                    {
                        "field": name,
                        "verdict": verdict,
                        "score": None if cand is None else cand.score,
                    }
                )
            if names != ["input"]:
                new["input"] = render_nli(new["premise"], new["hypothesis"])
            detail = f"{self.kind} via {template.ref} ({'; '.join(notes)})"
            made = {**(provenance or {}), "meaning": meaning}
            out.append(Variant(self.kind, 0, new, detail, self.flags, made))
        return out


class ParaphrasePerturber(LLMRewritePerturber):
    """The same meaning in other words."""

    kind = "paraphrase"


class AdversarialPerturber(LLMRewritePerturber):
    """A realistic but harder wording: casual register, reordering, a chatty framing."""

    kind = "adversarial"


class AmbiguityPerturber(LLMRewritePerturber):
    """The text with a disambiguating detail removed, so several readings (answers) fit.

    The meaning changes on purpose, so no meaning filter: a rewrite must instead drop
    something (fewer words, or a content word of the original missing) and keep at least one
    content word (stay on topic). Variants carry the flag ``"multi_answer"``.
    """

    kind = "ambiguity"
    checks_meaning = False
    keeps_numbers = False
    flags = ("multi_answer",)

    def _extra_check(self, original: str, text: str) -> str:
        words, new_words = _content_words(original), _content_words(text)
        fewer = len(_WORD.findall(text.lower())) < len(_WORD.findall(original.lower()))
        if not fewer and words <= new_words:
            return "no_detail_removed"
        return "ok"


for _cls in (ParaphrasePerturber, AmbiguityPerturber, AdversarialPerturber):
    register_perturber(
        _cls.kind, _cls, traits=KindTraits(rewriter=True, meaning_checked=_cls.checks_meaning)
    )
