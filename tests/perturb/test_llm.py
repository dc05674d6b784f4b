"""Model-backed perturbers (paraphrase, ambiguity, adversarial) and the rewrite parser."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sua_audit.backends.base import (
    Backend,
    Capabilities,
    Completion,
    CompletionRequest,
    sample_seed,
)
from sua_audit.dataset import Item
from sua_audit.engine import Generator
from sua_audit.errors import ConfigError, RequestFailed
from sua_audit.perturbation import (
    PerturbContext,
    Variant,
    available_perturbers,
    get_perturber,
    perturb_item,
    render_nli,
)
from sua_audit.perturbation.llm import (
    MAX_LENGTH_RATIO,
    AmbiguityPerturber,
    ParaphrasePerturber,
    kind_of_text,
    parse_rewrite,
    parse_rewrite_detailed,
)
from sua_audit.prompting import PromptLibrary
from sua_audit.store import Store

QUESTION = "Who wrote the novel Moby-Dick in 1851?"
REVIEW = "The film was a total waste of time and I would not recommend it."
PREMISE = "A man is playing a guitar on stage."
HYPOTHESIS = "Someone is performing music."


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def qa(text: str = QUESTION, item_id: str = "q1") -> Item:
    return Item(id=item_id, task="qa", input=text, answers=("Herman Melville",), line=1)


def cls(text: str = REVIEW, labels: tuple[str, ...] = ("negative", "positive")) -> Item:
    return Item(id="c1", task="classification", input=text, labels=labels, line=1)


def nli(premise: str = PREMISE, hypothesis: str = HYPOTHESIS) -> Item:
    return Item(
        id="n1",
        task="nli",
        input=render_nli(premise, hypothesis),
        premise=premise,
        hypothesis=hypothesis,
        labels=("entailment", "neutral", "contradiction"),
        gold_labels=("entailment",),
        line=1,
    )


# ---------------------------------------------------------------------------------------------
# Test doubles: a scripted rewriter backend and a meaning filter
# ---------------------------------------------------------------------------------------------

Script = Callable[[str, int, int], str]
"""(text to rewrite, sample index, sample seed) -> raw reply."""


def _prompted_text(request: CompletionRequest) -> str:
    """The text a request asks to rewrite: the last paragraph of the user message."""
    return request.messages[-1].content.rsplit("\n\n", 1)[-1]


class ScriptedRewriter(Backend):
    """Answers sample ``i`` from ``script(text, i, sample_seed(seed, i))``; can fail on cue."""

    provider: ClassVar[str] = "scripted"

    def __init__(self, script: Script | dict[str, list[str]], *, fail_on: str = "") -> None:
        self.model = "rewriter"
        self.capabilities = Capabilities(n=True, seed=True)
        if isinstance(script, dict):
            table = script
            self.script: Script = lambda text, i, _seed: table[text][i % len(table[text])]
        else:
            self.script = script
        self.fail_on = fail_on
        self.history: list[CompletionRequest] = []

    async def complete(self, request: CompletionRequest) -> Completion:
        self.history.append(request)
        text = _prompted_text(request)
        if self.fail_on and self.fail_on in text:
            raise RequestFailed("server", "scripted rewriter failure")
        replies = [
            self.script(text, i, sample_seed(request.params.seed, i)) for i in range(request.n)
        ]
        return Completion(
            text=replies[0], texts=replies if request.n > 1 else None, path="scripted"
        )


@dataclass
class Verdict:
    accepted: bool
    score: float | None
    reason: str


class FakeMeaning:
    """Accepts every rewrite except those listed; records what it was asked."""

    def __init__(self, reject: tuple[str, ...] = (), reason: str = "low_overlap") -> None:
        self.reject = reject
        self.reason = reason
        self.calls: list[list[tuple[str, str]]] = []

    async def check_many(self, pairs: list[tuple[str, str]]) -> list[Verdict]:
        self.calls.append(list(pairs))
        return [
            Verdict(False, 0.2, self.reason)
            if rewrite in self.reject
            else Verdict(True, 0.93, "ok")
            for _, rewrite in pairs
        ]


def context(
    backend: Backend,
    *,
    meaning: Any = None,
    store: Store | None = None,
    prompts: PromptLibrary | None = None,
    **options: Any,
) -> PerturbContext:
    generator = Generator(backend, store, cache_mode="use" if store else "off")
    return PerturbContext(
        generator=generator, prompts=prompts or PromptLibrary(), meaning=meaning, options=options
    )


def rewrite(kind: str, item: Item, ctx: PerturbContext, *, n: int, seed: int = 0) -> list[Variant]:
    return run(get_perturber(kind)(item, n=n, seed=seed, context=ctx))


# Rewrites picked by each sample's seed, so they depend on (seed, item, kind, field, i) only.
POOL = {
    QUESTION: [
        "Sure! Here's a paraphrase:\n\nWhich author wrote the novel Moby-Dick in 1851?",
        "Who was the author of the 1851 novel Moby-Dick?",
        "Paraphrase: Who penned Moby-Dick, the novel from 1851?",
        '"Which writer produced the novel Moby-Dick in 1851?"',
        "Who is the writer of Moby-Dick, published in 1851?",
        "In 1851, who wrote the novel Moby-Dick?",
        "1. Moby-Dick (1851) was written by whom?",
        "Who authored the novel Moby-Dick in the year 1851?",
    ]
}


def pooled(text: str, i: int, seed: int) -> str:
    pool = POOL[text]
    return pool[int(hashlib.sha256(str(seed).encode()).hexdigest(), 16) % len(pool)]


# ---------------------------------------------------------------------------------------------
# parse_rewrite
# ---------------------------------------------------------------------------------------------

Q = "What is the capital of France?"
NQ = "when was the last time anyone was on the moon"  # search-style: no question mark
S = "The film was a total waste of time and I would not recommend it."
M = "A man is playing a guitar on stage."

PARSE_OK = [
    (Q, "Sure! Here's a paraphrase:\n\nWhich city is the capital of France?", "Which city is the capital of France?"),
    (Q, "Paraphrase: Which city serves as France's capital?", "Which city serves as France's capital?"),
    (Q, '"Which city is France\'s capital?"', "Which city is France's capital?"),
    (Q, "**Rewritten question:** Which city is the French capital?", "Which city is the French capital?"),
    (Q, "1. Which city is the capital of France?\n2. What city is France's capital?", "Which city is the capital of France?"),
    (Q, "The original question is: What is the capital of France?\nRewritten: What's France's capital city?", "What's France's capital city?"),
    (Q, "quick question: what's the capital of france??", "quick question: what's the capital of france??"),
    (S, "That same sentence could be rewritten as: The movie was a complete waste of time and I wouldn't recommend it.", "The movie was a complete waste of time and I wouldn't recommend it."),
    (S, '"The movie was a total disaster and I can\'t recommend it to anyone."\n\nThis rephrased sentence uses a different tone.', "The movie was a total disaster and I can't recommend it to anyone."),
    (S, "The movie was a complete waste of time, and I would not recommend it. This keeps the meaning because both say the film was bad.", "The movie was a complete waste of time, and I would not recommend it."),
    (S, '"Total waste of time, that film - would not recommend." - this keeps the meaning', "Total waste of time, that film - would not recommend."),
    (M, "Renamed: A guitarist plays on stage.", "A guitarist plays on stage."),
    (M, "```\nA guy is playing guitar up on the stage.\n```", "A guy is playing guitar up on the stage."),
    (M, "- A guy is performing on guitar on the stage (this keeps the same meaning)", "A guy is performing on guitar on the stage"),
    (M, 'Here is the rewritten sentence:\n"A man plays the guitar on a stage."\nI changed the verb tense.', "A man plays the guitar on a stage."),
    (M, "Sure, here's a more casual version: some guy's up on stage playing guitar", "some guy's up on stage playing guitar"),
    (M, "Certainly! *A man performs on a stage with his guitar.*", "A man performs on a stage with his guitar."),
    (M, 'A man performs on a stage with his guitar."', "A man performs on a stage with his guitar."),
    (NQ, "When did someone last walk on the moon", "When did someone last walk on the moon"),
    (Q, "Quick question: which city is France's capital?", "Quick question: which city is France's capital?"),
    ('Who wrote "Moby-Dick"?', '"Moby-Dick" was written by whom?', '"Moby-Dick" was written by whom?'),
    ("OK Computer is a great album.", "OK Computer is a fantastic record.", "OK Computer is a fantastic record."),
    ("The original cut was better.", "The original version of the film was better.", "The original version of the film was better."),
    # A base model behind a server with another family's chat template: the turn ends at the
    # control token, and markup tags are not part of a plain-text rewrite.
    (Q, "Which city is France's capital?  [/INST]</strong></em>", "Which city is France's capital?"),
    (Q, "Which city is France's capital?<end_of_turn>\n<start_of_turn>user\nthanks", "Which city is France's capital?"),
    (M, "A guy plays <em>guitar</em> on stage.<|im_end|>", "A guy plays guitar on stage."),
]  # fmt: skip

PARSE_REJECTED = [
    (Q, "The capital of France is Paris.", "not_a_question"),
    (Q, "The answer to this question is Paris.", "not_a_question"),
    (Q, "I'm sorry, but I can't help with that.", "refusal"),
    (Q, "As an AI language model, I cannot rewrite questions.", "refusal"),
    (Q, "what is the capital of france", "identical"),
    (Q, "  What is the capital of France ?  ", "identical"),
    (Q, "", "empty"),
    (Q, "\n\n   \n", "empty"),
    (Q, "Sure! Here's a paraphrase:", "empty"),
    (Q, "Which?", "too_short"),
    (M, "A man is playing a guitar on stage, " * 5 + "and everyone loves it.", "too_long"),
    (S, "Rewrite the following sentence using different words. Keep exactly the same meaning.", "echoed_instruction"),
    (M, 'In this revised sentence, "A man playing a guitar on stage" is made more concise.', "no_rewrite"),
    (M, "This sentence uses a different word to convey the same meaning.", "no_rewrite"),
    (M, "The original sentence has been transformed into a rewritten sentence.", "no_rewrite"),
    (M, "Original: A man is playing a guitar on stage.", "empty"),
    (Q, "The answer to this question is: What is the capital of France?", "identical"),
    (Q, "Can you answer that?", "no_rewrite"),
    (Q, "What's a question about the capital of France?", "no_rewrite"),
    (NQ, "The last time anyone was on the Moon was December 1972.", "not_a_question"),
    (Q, "What is the capital of France?  [/INST]", "identical"),
    (Q, "[/INST] Which city is France's capital?", "empty"),
]  # fmt: skip


@pytest.mark.parametrize(("original", "raw", "expected"), PARSE_OK)
def test_parse_rewrite_extracts_the_rewrite(original: str, raw: str, expected: str) -> None:
    assert parse_rewrite(raw, original) == expected


@pytest.mark.parametrize(("original", "raw", "reason"), PARSE_REJECTED)
def test_parse_rewrite_rejects_with_a_reason(original: str, raw: str, reason: str) -> None:
    parsed = parse_rewrite_detailed(raw, original)
    assert (parsed.text, parsed.reason) == (None, reason)
    assert parse_rewrite(raw, original) is None


def test_parse_rewrite_none_and_length_bounds() -> None:
    assert parse_rewrite_detailed(None, Q).reason == "empty"
    long_ok = "Which city, out of all the cities in the country, is the capital of France?"
    assert len(long_ok) / len(Q) < MAX_LENGTH_RATIO
    assert parse_rewrite(long_ok, Q) == long_ok


def test_parse_rewrite_keeps_a_multi_line_original_paragraph() -> None:
    original = "Great food.\nTerrible service."
    assert parse_rewrite(
        "Sure:\nThe food was great.\nThe service was awful.\n\nNote: x", original
    ) == ("The food was great.\nThe service was awful.")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (QUESTION, "question"),
        (NQ, "question"),
        (PREMISE, "sentence"),
        ("Good. Bad at times.", "text"),
    ],
)
def test_kind_of_text(text: str, expected: str) -> None:
    assert kind_of_text(text) == expected


def test_a_qa_input_is_always_a_question() -> None:
    assert kind_of_text("name of the first man in space", "qa") == "question"
    assert kind_of_text("name of the first man in space", "classification") == "sentence"


# ---------------------------------------------------------------------------------------------
# The perturbers
# ---------------------------------------------------------------------------------------------


def test_kinds_are_registered() -> None:
    assert {"paraphrase", "ambiguity", "adversarial"} <= set(available_perturbers())
    assert isinstance(get_perturber("paraphrase"), ParaphrasePerturber)
    assert isinstance(get_perturber("ambiguity"), AmbiguityPerturber)


@pytest.mark.parametrize("kind", ["paraphrase", "ambiguity", "adversarial"])
def test_no_rewriter_is_a_config_error(kind: str) -> None:
    with pytest.raises(ConfigError, match=rf"the {kind} perturbation needs a rewriter model"):
        run(get_perturber(kind)(qa(), n=2, seed=0, context=PerturbContext()))
    with pytest.raises(ConfigError, match="--rewriter-model"):
        run(get_perturber(kind)(qa(), n=2, seed=0, context=None))


def test_one_request_per_field_with_oversampling_and_derived_seed() -> None:
    backend = ScriptedRewriter(pooled)
    ctx = context(backend, rewrite_temperature=0.7)
    rewrite("paraphrase", qa(), ctx, n=3, seed=5)
    (request,) = backend.history
    assert request.n == 2 * 3 + 2
    assert request.params.temperature == 0.7
    assert request.params.max_tokens % 32 == 0 and request.params.max_tokens >= 64
    assert request.messages[-1].content.endswith(QUESTION)
    assert "question" in request.messages[-1].content
    # The seed is derived from (seed, item, kind, field): another kind or item gets another.
    rewrite("adversarial", qa(), ctx, n=3, seed=5)
    rewrite("paraphrase", qa(item_id="q2"), ctx, n=3, seed=5)
    rewrite("paraphrase", qa(), ctx, n=3, seed=5)
    seeds = [r.params.seed for r in backend.history]
    assert len(set(seeds[:3])) == 3 and seeds[3] == seeds[0]


def test_same_seed_same_variants_and_more_keeps_the_first() -> None:
    def variants(n: int, seed: int) -> list[dict[str, Any]]:
        ctx = context(ScriptedRewriter(pooled), meaning=FakeMeaning())
        return [v.to_dict() for v in rewrite("paraphrase", qa(), ctx, n=n, seed=seed)]

    first = variants(3, 1)
    assert len(first) == 3
    assert variants(3, 1) == first
    assert variants(5, 1)[:3] == first  # asking for more never changes the first ones
    assert any(variants(3, s) != first for s in range(2, 6))
    assert all(v["text"] != QUESTION for v in first)
    assert len({v["text"] for v in first}) == 3


def test_parsed_duplicates_and_identicals_are_dropped_and_counted() -> None:
    table = {
        QUESTION: [
            "Sure! Here's a paraphrase: Who was the author of Moby-Dick (1851)?",
            '"Who was the author of Moby-Dick (1851)?"',
            "who wrote the novel moby dick in 1851",
            "Who was the author of Moby-Dick (1851)?!",
        ]
    }
    ctx = context(ScriptedRewriter(table))
    out = rewrite("paraphrase", qa(), ctx, n=1)  # 4 samples asked for
    assert [v.text for v in out] == ["Who was the author of Moby-Dick (1851)?"]
    stats = ctx.stats.to_dict()["paraphrase"]
    assert stats["proposed"] == 4
    assert stats["accepted"] == 1
    assert stats["rejected"] == {"duplicate": 2, "identical": 1}


def test_rejections_are_counted_by_reason_and_fewer_variants_come_back() -> None:
    table = {
        QUESTION: [
            "Herman Melville wrote it.",
            "I'm sorry, I cannot help with that.",
            "Who penned the novel Moby-Dick in 1851?",
            "",
            "Who wrote the novel Moby-Dick in 1852?",
            "Which writer is behind Moby-Dick, from 1851?",
        ]
    }
    meaning = FakeMeaning(reject=("Which writer is behind Moby-Dick, from 1851?",))
    ctx = context(ScriptedRewriter(table), meaning=meaning)
    out = rewrite("paraphrase", qa(), ctx, n=3)  # 8 samples: the table's 6, then 2 again
    assert [v.text for v in out] == ["Who penned the novel Moby-Dick in 1851?"]
    assert out[0].detail.startswith("paraphrase via paraphrase/default@")
    assert out[0].detail.endswith("(meaning 0.93)")
    stats = ctx.stats.to_dict()["paraphrase"]
    assert stats["proposed"] == 8
    assert stats["accepted"] == 1
    assert stats["rejected"] == {
        "not_a_question": 2,
        "refusal": 2,
        "empty": 1,
        "number_changed": 1,
        "low_overlap": 1,
    }
    assert sum(stats["rejected"].values()) + stats["accepted"] == stats["proposed"]
    # The meaning filter sees only rewrites that passed the cheap checks, in one batch.
    assert meaning.calls == [
        [
            (QUESTION, "Who penned the novel Moby-Dick in 1851?"),
            (QUESTION, "Which writer is behind Moby-Dick, from 1851?"),
        ]
    ]


def test_a_free_text_meaning_reason_is_counted_as_meaning_changed() -> None:
    table = {QUESTION: ["Which author wrote Moby-Dick in 1851?"]}
    meaning = FakeMeaning(reject=("Which author wrote Moby-Dick in 1851?",), reason="Judge: 2/5")
    ctx = context(ScriptedRewriter(table), meaning=meaning)
    assert rewrite("paraphrase", qa(), ctx, n=1) == []
    assert ctx.stats.rejected["paraphrase"] == {"meaning_changed": 1, "duplicate": 3}


def test_label_words_and_negations_must_survive() -> None:
    item = cls("A positive surprise: I would not call it boring.")
    table = {
        item.input: [
            "A pleasant surprise: I would not call it boring.",  # label word lost
            "A positive surprise: I would call it exciting.",  # negation lost
            "A positive surprise - I wouldn't call it dull.",  # fine: "n't" is a negation
            "POSITIVE surprise; I would never call it boring.",  # fine
        ]
    }
    ctx = context(ScriptedRewriter(table))
    out = rewrite("paraphrase", item, ctx, n=4)
    assert [v.text for v in out] == [
        "A positive surprise - I wouldn't call it dull.",
        "POSITIVE surprise; I would never call it boring.",
    ]
    # 10 samples cycle through the table: rejects repeat, accepted ones come back as duplicates.
    assert ctx.stats.rejected["paraphrase"] == {
        "label_word_lost": 3,
        "negation_changed": 3,
        "duplicate": 2,
    }


def test_an_added_negation_is_rejected_and_qa_has_no_label_words() -> None:
    table = {QUESTION: ["Who did not write the novel Moby-Dick in 1851?"]}
    ctx = context(ScriptedRewriter(table))
    assert rewrite("paraphrase", qa(), ctx, n=1) == []
    assert ctx.stats.rejected["paraphrase"] == {"negation_changed": 4}


def test_a_rewrite_about_something_else_is_off_topic() -> None:
    table = {
        PREMISE: [
            "Sheeji. He, Sheeji. On fire.",  # nothing in common
            "A guy is performing with his guitar.",  # "guitar" in common
        ],
        "Loved it!": ["What a delight."],  # a one-word original may share nothing
    }
    ctx = context(ScriptedRewriter(table))
    item = cls(PREMISE, labels=("yes", "no"))
    assert [v.text for v in rewrite("adversarial", item, ctx, n=1)] == [
        "A guy is performing with his guitar."
    ]
    assert ctx.stats.rejected["adversarial"]["off_topic"] == 2
    assert [v.text for v in rewrite("paraphrase", cls("Loved it!"), ctx, n=1)] == [
        "What a delight."
    ]


def test_nli_premise_and_hypothesis_are_rewritten_separately() -> None:
    table = {
        PREMISE: ["A guy plays guitar on a stage.", "On stage, a man plays the guitar."],
        HYPOTHESIS: ["Somebody is making music.", "Sure! Somebody is making music."],
    }
    backend = ScriptedRewriter(table)
    meaning = FakeMeaning()
    ctx = context(backend, meaning=meaning)
    out = rewrite("paraphrase", nli(), ctx, n=2)
    prompts = sorted(_prompted_text(r) for r in backend.history)
    assert prompts == sorted([PREMISE, HYPOTHESIS])
    assert all("Premise:" not in r.messages[-1].content for r in backend.history)
    assert [v.fields["premise"] for v in out] == table[PREMISE]
    # The hypothesis has one distinct rewrite: the second variant keeps the original.
    assert [v.fields["hypothesis"] for v in out] == ["Somebody is making music.", HYPOTHESIS]
    for v in out:
        assert v.text == render_nli(v.fields["premise"], v.fields["hypothesis"])
    assert "premise: meaning 0.93; hypothesis: meaning 0.93" in out[0].detail
    assert "hypothesis: kept" in out[1].detail
    checked = [pair for call in meaning.calls for pair in call]
    assert (HYPOTHESIS, "Somebody is making music.") in checked
    assert all(orig in (PREMISE, HYPOTHESIS) for orig, _ in checked)


def test_ambiguity_skips_the_meaning_filter_and_flags_multi_answer() -> None:
    table = {
        QUESTION: [
            "Who wrote the novel Moby-Dick?",  # drops the year: accepted
            "Who wrote the novel Moby-Dick in 1851, and why?",  # drops nothing
            "What is the weather like today?",  # off topic
            "Who wrote the novel?",  # drops the title: accepted
        ]
    }
    meaning = FakeMeaning(reject=("Who wrote the novel Moby-Dick?",))
    ctx = context(ScriptedRewriter(table), meaning=meaning)
    out = rewrite("ambiguity", qa(), ctx, n=2)
    assert [v.text for v in out] == ["Who wrote the novel Moby-Dick?", "Who wrote the novel?"]
    assert all(v.flags == ("multi_answer",) for v in out)
    assert all(v.to_dict()["flags"] == ["multi_answer"] for v in out)
    assert out[0].detail.startswith("ambiguity via ambiguity/default@")
    assert out[0].detail.endswith("(rewritten)")
    assert meaning.calls == []
    assert ctx.stats.rejected["ambiguity"] == {
        "no_detail_removed": 2,
        "off_topic": 1,
        "duplicate": 1,
    }


def test_a_failed_rewriter_request_gives_fewer_variants_not_a_crash() -> None:
    table = {PREMISE: ["A guy plays guitar on a stage."], HYPOTHESIS: ["unused"]}
    ctx = context(ScriptedRewriter(table, fail_on=HYPOTHESIS), meaning=FakeMeaning())
    out = rewrite("paraphrase", nli(), ctx, n=1)
    assert [v.fields["hypothesis"] for v in out] == [HYPOTHESIS]
    assert ctx.stats.rejected["paraphrase"]["rewriter_error"] == 4
    ctx = context(ScriptedRewriter(table, fail_on="Moby"))
    assert rewrite("adversarial", qa(), ctx, n=2) == []
    assert ctx.stats.to_dict()["adversarial"]["rejected"] == {"rewriter_error": 6}


def test_perturb_item_numbers_model_variants_and_counts_unfilled_slots() -> None:
    table = {QUESTION: ["Who was the author of Moby-Dick (1851)?", "Herman Melville."]}
    ctx = context(ScriptedRewriter(table))
    out = run(perturb_item(qa(), seed=0, slots=["paraphrase", "paraphrase", "typo"], context=ctx))
    assert [(v.kind, v.index) for v in out] == [("clean", 0), ("paraphrase", 1), ("typo", 2)]
    assert ctx.stats.unfilled["paraphrase"] == 1


def test_a_prompts_dir_override_changes_the_requests(tmp_path: Path) -> None:
    (tmp_path / "paraphrase").mkdir()
    (tmp_path / "paraphrase" / "default.j2").write_text("Say this another way.\n\n{{ text }}\n")
    backend = ScriptedRewriter(pooled)
    ctx = context(backend, prompts=PromptLibrary(tmp_path))
    out = rewrite("paraphrase", qa(), ctx, n=1)
    assert backend.history[0].messages[-1].content == f"Say this another way.\n\n{QUESTION}"
    version = PromptLibrary(tmp_path).get("paraphrase").version
    assert f"paraphrase/default@{version}" in out[0].detail
    assert version != PromptLibrary().get("paraphrase").version


def test_a_second_run_is_answered_from_the_cache(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "cache.db")
    try:
        first_backend = ScriptedRewriter(pooled)
        ctx = context(first_backend, store=store, meaning=FakeMeaning())
        items = [qa(), qa(item_id="q2")]
        first = [rewrite("paraphrase", item, ctx, n=3, seed=3) for item in items]
        assert isinstance(ctx.generator, Generator)
        ctx.generator.flush()
        assert len(first_backend.history) == 2

        second_backend = ScriptedRewriter(pooled)
        ctx2 = context(second_backend, store=store, meaning=FakeMeaning())
        second = [rewrite("paraphrase", item, ctx2, n=3, seed=3) for item in items]
        assert second_backend.history == []
        assert isinstance(ctx2.generator, Generator)
        assert (ctx2.generator.stats.model_calls, ctx2.generator.stats.cache_hits) == (0, 2)
        assert [[v.to_dict() for v in vs] for vs in second] == [
            [v.to_dict() for v in vs] for vs in first
        ]
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------
# The real embedded model as rewriter
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_embedded_model_writes_some_parseable_paraphrases(embedded_dir: Path) -> None:
    """SmolLM2-135M as rewriter: print what it writes and the acceptance before any meaning
    filter (parser and cheap checks only). It answers most questions instead of rewriting
    them, so only structure is asserted."""
    from sua_audit.backends.hf import HFBackend

    backend = HFBackend(embedded_dir)
    items = [qa("What is the capital of France?"), cls(), nli()]
    ctx = context(backend, rewrite_temperature=0.7)

    async def go() -> list[list[Variant]]:
        try:
            perturber = get_perturber("paraphrase")
            return list(
                await asyncio.gather(*(perturber(i, n=2, seed=0, context=ctx) for i in items))
            )
        finally:
            await backend.aclose()

    results = run(go())
    for item, variants in zip(items, results, strict=True):
        print(f"\n{item.task}: {item.input!r}")
        for v in variants:
            print(f"  -> {v.text!r}")
    stats = ctx.stats.to_dict()["paraphrase"]
    print("\nparaphrase stats:", stats)
    assert stats["proposed"] == 4 * 6  # qa, classification, and the two NLI fields
    assert sum(stats["rejected"].values()) + stats["accepted"] == stats["proposed"]
    assert any(results), "no parseable paraphrase at all from the embedded model"
    for item, variants in zip(items, results, strict=True):
        assert len(variants) <= 2
        for v in variants:
            assert v.text != item.input
            assert v.kind == "paraphrase" and v.detail.startswith("paraphrase via ")
