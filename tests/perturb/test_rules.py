"""Tests for sua_audit.perturbation (registry, perturb_item) and the rule-based perturbers."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sua_audit import perturbation as perturb
from sua_audit.dataset import Item
from sua_audit.errors import ConfigError
from sua_audit.perturbation import (
    DEFAULT_KINDS,
    MAX_REDRAWS,
    PerturbContext,
    Perturber,
    Variant,
    available_perturbers,
    get_perturber,
    parse_plan,
    perturb_item,
    register_perturber,
    render_nli,
)
from sua_audit.perturbation.rules import DISTRACTORS

NLI_LABELS = ("entailment", "neutral", "contradiction")


def qa(text: str = "Who wrote the novel about the white whale and the obsessed captain?") -> Item:
    return Item(id="qa-1", task="qa", input=text, answers=("Herman Melville",), line=1)


def cls(text: str, labels: tuple[str, ...] = ("negative", "positive")) -> Item:
    return Item(id="cls-1", task="classification", input=text, labels=labels, line=1)


def nli(premise: str, hypothesis: str, item_id: str = "nli-1") -> Item:
    return Item(
        id=item_id,
        task="nli",
        input=render_nli(premise, hypothesis),
        premise=premise,
        hypothesis=hypothesis,
        labels=NLI_LABELS,
        gold_labels=("entailment",),
        line=1,
    )


NLI_ITEM = nli(
    "Two women are embracing while holding takeout packages outside the station.",
    "Two women are holding packages.",
)
ITEMS = [
    qa(),
    cls("it is not a charming film , but it is often affecting and honest ."),
    NLI_ITEM,
]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def draw(kind: str, item: Item, *, n: int = 1, seed: int = 0) -> list[Variant]:
    return run(get_perturber(kind)(item, n=n, seed=seed))


# ---------------------------------------------------------------------------------------------
# perturb_item
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("item", ITEMS, ids=lambda i: i.task)
def test_same_seed_gives_identical_variants(item: Item) -> None:
    first = run(perturb_item(item, k=6, seed=11))
    second = run(perturb_item(item, k=6, seed=11))
    assert [v.to_dict() for v in first] == [v.to_dict() for v in second]


@pytest.mark.parametrize("item", ITEMS, ids=lambda i: i.task)
def test_different_seeds_give_different_variants(item: Item) -> None:
    texts = {tuple(v.text for v in run(perturb_item(item, k=6, seed=s))) for s in range(4)}
    assert len(texts) == 4


def test_variants_are_deterministic_across_processes() -> None:
    """String seeding does not depend on PYTHONHASHSEED (unlike hash())."""
    code = (
        "import asyncio, json\n"
        "from sua_audit.dataset import Item\n"
        "from sua_audit.perturbation import perturb_item\n"
        "item = Item(id='x', task='qa', input='Which planet has the largest moons in it?',"
        " line=1)\n"
        "print(json.dumps([v.to_dict() for v in asyncio.run(perturb_item(item, k=5, seed=3))]))\n"
    )
    outputs = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
        ).stdout
        for hash_seed in ("1", "2")
    ]
    assert outputs[0] == outputs[1]
    item = Item(id="x", task="qa", input="Which planet has the largest moons in it?", line=1)
    here = [v.to_dict() for v in run(perturb_item(item, k=5, seed=3))]
    assert json.loads(outputs[0]) == here


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (4, ["typo", "word", "distractor", "typo"]),
        (7, ["typo", "word", "distractor", "typo", "word", "distractor", "typo"]),
    ],
)
def test_kinds_are_assigned_round_robin(k: int, expected: list[str]) -> None:
    variants = run(perturb_item(qa(), k=k, seed=0))
    assert [v.kind for v in variants] == ["clean", *expected]
    assert [v.index for v in variants] == list(range(k + 1))


def test_custom_kind_order_is_followed() -> None:
    variants = run(perturb_item(qa(), k=3, seed=0, kinds=("distractor", "typo")))
    assert [v.kind for v in variants] == ["clean", "distractor", "typo", "distractor"]


def test_more_variants_keep_the_first_ones() -> None:
    short = run(perturb_item(NLI_ITEM, k=3, seed=5))
    long = run(perturb_item(NLI_ITEM, k=8, seed=5))
    assert [v.to_dict() for v in long[:4]] == [v.to_dict() for v in short]


@pytest.mark.parametrize("item", ITEMS, ids=lambda i: i.task)
def test_variants_differ_from_clean_and_from_each_other(item: Item) -> None:
    for seed in range(5):
        variants = run(perturb_item(item, k=9, seed=seed))
        texts = [v.text for v in variants]
        assert len(set(texts)) == len(texts)
        assert all(v.fields.keys() == item.text_fields().keys() for v in variants)
        assert all("identical" not in v.detail for v in variants)


def test_k_zero_gives_only_the_clean_variant() -> None:
    (clean,) = run(perturb_item(NLI_ITEM, k=0, seed=0))
    assert clean == Variant("clean", 0, NLI_ITEM.text_fields(), clean.detail)
    assert clean.text == NLI_ITEM.input


def test_negative_k_and_empty_kinds_are_refused() -> None:
    with pytest.raises(ValueError, match="k must be"):
        run(perturb_item(qa(), k=-1, seed=0))
    with pytest.raises(ValueError, match="kinds"):
        run(perturb_item(qa(), k=2, seed=0, kinds=()))


def test_variant_to_dict_has_fields_only_beyond_input() -> None:
    qa_variant = run(perturb_item(qa(), k=1, seed=0))[1].to_dict()
    assert set(qa_variant) == {"kind", "index", "text", "detail"}
    nli_variant = run(perturb_item(NLI_ITEM, k=1, seed=0))[1].to_dict()
    assert set(nli_variant["fields"]) == {"input", "premise", "hypothesis"}
    assert nli_variant["text"] == nli_variant["fields"]["input"]


# ---------------------------------------------------------------------------------------------
# Registry and re-draws, with fakes registered through the real registry
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give each test its own copy of the registry, so fakes do not leak."""
    perturb.available_perturbers()  # load the built-ins first
    monkeypatch.setattr(perturb, "_REGISTRY", dict(perturb._REGISTRY))


@dataclass
class Scripted:
    """A fake perturber: returns the clean text until it has been called `clean_calls` times."""

    kind: str = "scripted"
    clean_calls: int = 0
    calls: int = 0

    async def __call__(
        self, item: Item, *, n: int, seed: int, context: Any | None = None
    ) -> list[Variant]:
        out = []
        for _ in range(n):
            self.calls += 1
            text = item.input if self.calls <= self.clean_calls else f"{item.input} #{seed}"
            out.append(Variant(self.kind, 0, {"input": text}, f"scripted seed={seed}"))
        return out


def test_builtin_kinds_are_registered() -> None:
    assert set(DEFAULT_KINDS) <= set(available_perturbers())
    for kind in DEFAULT_KINDS:
        perturber = get_perturber(kind)
        assert isinstance(perturber, Perturber)
        assert perturber.kind == kind


def test_unknown_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown perturbation kind 'nope'.*typo"):
        get_perturber("nope")


def test_registering_a_taken_kind_needs_replace(registry: None) -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_perturber("typo", Scripted)
    register_perturber("typo", Scripted, replace=True)
    assert isinstance(get_perturber("typo"), Scripted)


def test_identical_variant_is_redrawn_with_another_seed(registry: None) -> None:
    fake = Scripted(clean_calls=1)
    register_perturber("scripted", lambda: fake)
    variants = run(perturb_item(qa(), k=2, seed=0, kinds=("scripted",)))
    assert fake.calls == 3  # one call for both slots, then one re-draw for the first slot
    assert "seed=0" not in variants[1].detail
    assert variants[1].text != qa().input
    assert variants[1].index == 1 and variants[2].index == 2
    assert "identical" not in variants[1].detail
    assert "seed=0" in variants[2].detail


def test_variant_still_identical_after_redraws_is_kept_and_flagged(registry: None) -> None:
    fake = Scripted(clean_calls=10**6)
    register_perturber("scripted", lambda: fake)
    variants = run(perturb_item(qa(), k=1, seed=0, kinds=("scripted",)))
    assert fake.calls == 1 + MAX_REDRAWS
    assert variants[1].text == qa().input
    assert f"identical to the clean text after {MAX_REDRAWS} re-draws" in variants[1].detail


def test_a_perturber_returning_too_many_variants_is_an_error(registry: None) -> None:
    class Long(Scripted):
        async def __call__(self, item: Item, **kwargs: Any) -> list[Variant]:
            return [Variant("long", 0, {"input": f"x{i}"}, "") for i in range(2)]

    register_perturber("long", Long)
    with pytest.raises(RuntimeError, match="returned 2 variants, expected 1"):
        run(perturb_item(qa(), k=1, seed=0, kinds=("long",)))


def test_slots_a_perturber_cannot_fill_are_counted_and_numbering_has_no_gaps(
    registry: None,
) -> None:
    class Short(Scripted):
        async def __call__(self, item: Item, **kwargs: Any) -> list[Variant]:
            return []

    register_perturber("short", Short)
    context = PerturbContext()
    variants = run(perturb_item(qa(), seed=0, slots=("short", "typo", "short"), context=context))
    assert [v.kind for v in variants] == ["clean", "typo"]
    assert [v.index for v in variants] == [0, 1]
    assert context.stats.unfilled["short"] == 2
    assert context.stats.to_dict()["short"]["unfilled_slots"] == 2


@pytest.mark.parametrize(
    ("spec", "slots", "budgets"),
    [
        ("4", ["typo", "word", "distractor", "typo"], {}),
        ("0", [], {}),
        ("typo:2,word", ["typo", "typo", "word"], {}),
        ("word:1, typo:2@3", ["word", "typo", "typo"], {"typo": 3}),
    ],
)
def test_plan_parsing(spec: str, slots: list[str], budgets: dict[str, int]) -> None:
    plan = parse_plan(spec)
    assert plan.slots == slots
    assert plan.k == len(slots)
    assert plan.budgets == budgets
    assert parse_plan(str(plan)).slots == slots  # round-trips through its text form


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("typo:two", "cannot read"),
        ("nosuch:2", "unknown kind 'nosuch'"),
        ("typo:0", "start at 1"),
        ("typo:1@0", "start at 1"),
        ("typo:1,typo:2", "given twice"),
    ],
)
def test_bad_plans_are_config_errors(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_plan(spec)


# ---------------------------------------------------------------------------------------------
# NLI handling and the distractor
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", DEFAULT_KINDS)
def test_nli_fields_are_perturbed_separately_and_input_rerendered(kind: str) -> None:
    for variant in draw(kind, NLI_ITEM, n=6):
        fields = variant.fields
        assert fields["input"] == render_nli(fields["premise"], fields["hypothesis"])
        assert fields != NLI_ITEM.text_fields()
        if kind != "distractor":
            # edits land inside each part, not across the "Premise:/Hypothesis:" frame
            assert fields["premise"] != NLI_ITEM.premise
            assert fields["hypothesis"] != NLI_ITEM.hypothesis


def test_distractor_is_never_added_to_the_hypothesis() -> None:
    for seed in range(30):
        (variant,) = draw("distractor", NLI_ITEM, seed=seed)
        assert variant.fields["hypothesis"] == NLI_ITEM.hypothesis
        premise = variant.fields["premise"]
        assert premise.startswith(NLI_ITEM.premise or "")
        assert premise[len(NLI_ITEM.premise or "") :].strip() in DISTRACTORS


def test_distractor_keeps_the_qa_question_last() -> None:
    item = qa()
    for seed in range(20):
        (variant,) = draw("distractor", item, seed=seed)
        assert variant.text.endswith(item.input)
        assert variant.text[: -len(item.input)].strip() in DISTRACTORS


def test_distractor_goes_either_side_of_a_classification_text() -> None:
    item = cls("a gorgeous , witty , seductive movie .")
    sides = set()
    for seed in range(20):
        (variant,) = draw("distractor", item, seed=seed)
        sides.add("after" if variant.text.startswith(item.input) else "before")
        assert item.input in variant.text
    assert sides == {"before", "after"}


# ---------------------------------------------------------------------------------------------
# typo
# ---------------------------------------------------------------------------------------------

NUMBERISH = st.sampled_from(
    ["1972", "747jumbo", "covid2019cases", "3.14", "12th", "B52", "1,000", "$2", "9", "2023-01-05"]
)
WORDISH = st.sampled_from(
    ["season", "episodes", "president", "the", "of", "answer", "Montreal", "degrees", "won't"]
)


def digit_tokens(text: str) -> list[str]:
    return [t for t in text.split() if any(c.isdigit() for c in t)]


@settings(max_examples=150, deadline=None)
@given(
    tokens=st.lists(st.one_of(NUMBERISH, WORDISH), min_size=1, max_size=14),
    seed=st.integers(0, 10**6),
)
def test_typo_never_alters_numbers(tokens: list[str], seed: int) -> None:
    text = " ".join(tokens)
    (variant,) = draw("typo", qa(text), seed=seed)
    assert digit_tokens(variant.text) == digit_tokens(text)
    assert re.findall(r"\d+", variant.text) == re.findall(r"\d+", text)


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet="ab cdefg0123456789.,?", min_size=1, max_size=60), seed=st.integers())
def test_typo_never_alters_digits_in_arbitrary_text(text: str, seed: int) -> None:
    (variant,) = draw("typo", qa(text), seed=seed)
    assert re.findall(r"\d+", variant.text) == re.findall(r"\d+", text)


def test_typo_edits_one_or_two_words_and_keeps_word_count() -> None:
    text = "the acting costumes music cinematography and sound are astounding"
    for seed in range(20):
        (variant,) = draw("typo", qa(text), seed=seed)
        before, after = text.split(), variant.text.split()
        assert len(after) == len(before)
        changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
        assert 1 <= len(changed) <= 2
        assert all(len(a) >= 4 and a[0] == b[0] and a[-1] == b[-1] for a, b in changed)
        assert variant.detail.startswith("typo: ")


def test_typo_leaves_label_words_alone() -> None:
    item = cls("positive review overall", labels=("negative", "positive"))
    for seed in range(20):
        (variant,) = draw("typo", item, seed=seed)
        assert variant.text.startswith("positive ")
        assert variant.text != item.input


def test_typo_without_candidate_words_says_so() -> None:
    (variant,) = draw("typo", qa("Who is he?"))
    assert variant.text == "Who is he?"
    assert variant.detail == "typo: no applicable edit"


# ---------------------------------------------------------------------------------------------
# word
# ---------------------------------------------------------------------------------------------

NEGATION = re.compile(r"\bnot\b|n['’]t\b|\bcannot\b|\bno\b|\bnever\b|\bnor\b", re.IGNORECASE)
WORD_VOCAB = st.sampled_from(
    [
        "it", "is", "not", "do", "don't", "does", "n't", "can't", "cannot", "won't", "will",
        "It's", "it 's", "there", "is", "never", "no", "film", "good", "they", "are", "I",
        "am", "was", "really", "the", "\"quoted", "phrase\"", "3", "1,000", ",", ".", "?",
        "What", "is", "that", "we", "are", "you",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    words=st.lists(WORD_VOCAB, min_size=1, max_size=16),
    task=st.sampled_from(["qa", "classification"]),
    seed=st.integers(0, 10**6),
)
def test_word_never_changes_negation(words: list[str], task: str, seed: int) -> None:
    text = " ".join(words)
    item = qa(text) if task == "qa" else cls(text)
    (variant,) = draw("word", item, seed=seed)
    assert len(NEGATION.findall(variant.text)) == len(NEGATION.findall(text))
    assert re.findall(r"\d+", variant.text) == re.findall(r"\d+", text)


def test_word_keeps_a_qa_questions_question_mark() -> None:
    item = qa("What is the capital of France?")
    seen = set()
    for seed in range(40):
        (variant,) = draw("word", item, seed=seed)
        assert variant.text.rstrip().endswith("?")
        assert variant.text != item.input
        seen.update(re.findall(r"(?<=word: )\w+|(?<=; )\w+", variant.detail))
    assert {"contracted", "doubled"} <= seen


@pytest.mark.parametrize(
    ("text", "task", "expected"),
    [
        ("when was the last time anyone was on the moon", "qa", "?"),
        ("it 's a charming and often affecting journey .", "classification", "journey"),
        ("unflinchingly bleak and desperate", "classification", "desperate."),
        ("a gorgeous , witty , seductive movie", "classification", "movie ."),
    ],
)
def test_word_punctuation_follows_the_task(text: str, task: str, expected: str) -> None:
    item = qa(text) if task == "qa" else cls(text)
    endings = set()
    for seed in range(60):
        (variant,) = draw("word", item, seed=seed)
        if "final" in variant.detail:
            endings.add(variant.text.rstrip()[-len(expected) :])
    assert endings == {expected}


@pytest.mark.parametrize(
    ("text", "forbidden"),
    [
        ("who wrote the song oh lord won't you buy me a mercedes benz", "will not you"),
        ("it's been a long time since the war ended", "it is been"),
        ('He said "I do not know" and left the room quietly', '"I don\'t know"'),
        ("the movie is 10 times longer than it is good", "10 actually"),
    ],
)
def test_word_edits_avoid_known_traps(text: str, forbidden: str) -> None:
    for seed in range(60):
        (variant,) = draw("word", qa(text), seed=seed)
        assert forbidden not in variant.text


def test_filler_goes_after_an_auxiliary_and_never_splits_numbers() -> None:
    item = cls("the last 20 minutes are somewhat redeeming but the film is slow")
    inserted = 0
    for seed in range(60):
        (variant,) = draw("word", item, seed=seed)
        match = re.search(r'inserted "(\w+)" after "(\w+)"', variant.detail)
        if match:
            inserted += 1
            assert match.group(2) in {"are", "is"}
            words = " ".join(variant.text.split())
            assert f"{match.group(2)} {match.group(1)} " in words
            assert "last 20 minutes" in words
    assert inserted > 0


# ---------------------------------------------------------------------------------------------
# Edit budgets (context.budget(kind, default): the most edits per text field)
# ---------------------------------------------------------------------------------------------

LONG_TEXT = (
    "the acting costumes music cinematography and sound are astounding and the story "
    "is simple but the direction is careful and the pacing is gentle throughout"
)


def draw_budget(kind: str, item: Item, budget: int, *, seed: int = 0, n: int = 1) -> list[Variant]:
    ctx = PerturbContext(budgets={kind: budget})
    return run(get_perturber(kind)(item, n=n, seed=seed, context=ctx))


def test_default_budgets_are_the_documented_ones() -> None:
    for kind, default in (("typo", 2), ("word", 2), ("distractor", 1)):
        for item in ITEMS:
            plain = draw(kind, item, n=4, seed=9)
            assert draw_budget(kind, item, default, seed=9, n=4) == plain


@pytest.mark.parametrize("budget", [1, 3, 5])
def test_typo_budget_is_the_number_of_words_with_a_typo(budget: int) -> None:
    counts = set()
    for seed in range(40):
        (variant,) = draw_budget("typo", qa(LONG_TEXT), budget, seed=seed)
        before, after = LONG_TEXT.split(), variant.text.split()
        changed = sum(a != b for a, b in zip(before, after, strict=True))
        assert 1 <= changed <= budget
        counts.add(changed)
    assert counts == set(range(1, budget + 1))


@pytest.mark.parametrize("budget", [1, 3, 7])
def test_word_budget_is_the_number_of_edits(budget: int) -> None:
    item = cls("it is not a charming film , but it is often affecting and it is honest")
    counts = set()
    for seed in range(60):
        (variant,) = draw_budget("word", item, budget, seed=seed)
        notes = variant.detail.removeprefix("word: ").split("; ")
        assert 1 <= len(notes) <= budget
        counts.add(len(notes))
        assert len(NEGATION.findall(variant.text)) == len(NEGATION.findall(item.input))
    assert max(counts) == budget if budget <= 5 else max(counts) > 5


@pytest.mark.parametrize("budget", [1, 2, 4])
def test_distractor_budget_is_the_number_of_sentences(budget: int) -> None:
    counts = set()
    for seed in range(30):
        (variant,) = draw_budget("distractor", qa(), budget, seed=seed)
        added = variant.text[: -len(qa().input)].strip()
        sentences = re.findall(r"[^.]+\.", added)
        assert all(s.strip() in DISTRACTORS for s in sentences)
        assert len(set(sentences)) == len(sentences)
        assert 1 <= len(sentences) <= budget
        counts.add(len(sentences))
        (nli_variant,) = draw_budget("distractor", NLI_ITEM, budget, seed=seed)
        assert nli_variant.fields["hypothesis"] == NLI_ITEM.hypothesis
        assert nli_variant.fields["premise"].startswith(NLI_ITEM.premise or "")
    assert counts == set(range(1, budget + 1))


@pytest.mark.parametrize("kind", DEFAULT_KINDS)
def test_rule_budget_must_be_positive(kind: str) -> None:
    with pytest.raises(ValueError, match="budget"):
        draw_budget(kind, qa(), 0)
