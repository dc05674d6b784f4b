"""Tests for the adversarial rule perturbers: homoglyph, synonym, deletion, instruction."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sua_audit.perturbation.adversarial as adv
from sua_audit.dataset import Item
from sua_audit.errors import ConfigError
from sua_audit.perturbation import PerturbContext, Variant, available_perturbers, get_perturber
from sua_audit.perturbation import render_nli as render
from sua_audit.tasks import CLASSIFY_QUESTION, NLI_QUESTION, build_messages

NEW_KINDS = ("homoglyph", "synonym", "deletion", "instruction")
TEXT_KINDS = ("homoglyph", "synonym", "deletion")
NLI_LABELS = ("entailment", "neutral", "contradiction")

REVIEW = (
    "the film is really a very big and quite moving story , and the plot often seems "
    "just a little slow but the actors are actually not bad at all ."
)


def qa(text: str = "When did the film about the big ship begin to be shown in theaters?") -> Item:
    return Item(id="qa-1", task="qa", input=text, answers=("1997",), line=1)


def cls(text: str = REVIEW, labels: tuple[str, ...] = ("negative", "positive")) -> Item:
    return Item(id="cls-1", task="classification", input=text, labels=labels, line=1)


def nli(
    premise: str = "A very tall man is quickly reading the large book about a famous film.",
    hypothesis: str = "The man is not reading a movie script.",
    labels: tuple[str, ...] = NLI_LABELS,
) -> Item:
    return Item(
        id="nli-1",
        task="nli",
        input=render(premise, hypothesis),
        premise=premise,
        hypothesis=hypothesis,
        labels=labels,
        gold_labels=(labels[0],),
        line=1,
    )


ITEMS = [qa(), cls(), nli()]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def draw(
    kind: str,
    item: Item,
    *,
    n: int = 1,
    seed: int = 0,
    budget: int | None = None,
    options: dict[str, Any] | None = None,
) -> list[Variant]:
    ctx = PerturbContext(
        budgets={} if budget is None else {kind: budget}, options=dict(options or {})
    )
    return run(get_perturber(kind)(item, n=n, seed=seed, context=ctx))


def words(text: str) -> list[str]:
    return text.split()


# ---------------------------------------------------------------------------------------------
# Registry and determinism
# ---------------------------------------------------------------------------------------------


def test_new_kinds_are_registered_on_import() -> None:
    assert set(NEW_KINDS) <= set(available_perturbers())
    for kind in NEW_KINDS:
        assert get_perturber(kind).kind == kind


@pytest.mark.parametrize("kind", NEW_KINDS)
@pytest.mark.parametrize("item", [cls(), nli()], ids=["cls", "nli"])
def test_same_seed_same_variants_and_more_keeps_the_first(kind: str, item: Item) -> None:
    first = draw(kind, item, n=4, seed=11, budget=3)
    assert first == draw(kind, item, n=4, seed=11, budget=3)
    assert draw(kind, item, n=2, seed=11, budget=3) == first[:2]
    others = [draw(kind, item, n=4, seed=s, budget=3) for s in range(12, 16)]
    assert any(o != first for o in others)


def test_variants_are_deterministic_across_processes() -> None:
    code = (
        "import asyncio, json\n"
        "from sua_audit.perturbation import get_perturber\n"
        "import sua_audit.perturbation.adversarial\n"
        "from tests.perturb.test_adversarial import ITEMS, NEW_KINDS\n"
        "out = []\n"
        "for kind in NEW_KINDS:\n"
        "    for item in ITEMS:\n"
        "        vs = asyncio.run(get_perturber(kind)(item, n=3, seed=5))\n"
        "        out.append([v.fields for v in vs])\n"
        "print(json.dumps(out))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    results = [
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            cwd=repo,
            env={**os.environ, "PYTHONHASHSEED": str(h)},
        ).stdout
        for h in (1, 2)
    ]
    assert results[0] == results[1]
    expected = [[v.fields for v in draw(k, i, n=3, seed=5)] for k in NEW_KINDS for i in ITEMS]
    assert json.loads(results[0]) == expected


@pytest.mark.parametrize("kind", NEW_KINDS)
def test_a_budget_below_one_is_refused(kind: str) -> None:
    with pytest.raises(ValueError, match="budget"):
        draw(kind, cls(), budget=0)


# ---------------------------------------------------------------------------------------------
# Budgets
# ---------------------------------------------------------------------------------------------


def homoglyph_edits(before: str, after: str) -> int:
    assert len(before) == len(after)
    return sum(a != b for a, b in zip(before, after, strict=True))


def synonym_edits(before: str, after: str) -> int:
    a, b = words(before), words(after)
    assert len(a) == len(b)
    return sum(x != y and x.lower() not in {"a", "an"} for x, y in zip(a, b, strict=True))


def deletion_edits(before: str, after: str) -> int:
    return len(words(before)) - len(words(after))


EDITS = {"homoglyph": homoglyph_edits, "synonym": synonym_edits, "deletion": deletion_edits}


@pytest.mark.parametrize("kind", TEXT_KINDS)
@pytest.mark.parametrize("budget", [1, 2, 4])
def test_text_kinds_respect_the_budget_and_reach_it(kind: str, budget: int) -> None:
    item = cls()
    counts = set()
    for seed in range(40):
        (variant,) = draw(kind, item, seed=seed, budget=budget)
        edits = EDITS[kind](item.input, variant.text)
        assert 1 <= edits <= budget
        assert len(variant.detail.split("; ")) == edits
        counts.add(edits)
    assert counts == set(range(1, budget + 1))


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_text_kinds_default_budgets(kind: str) -> None:
    item = cls()
    counts = set()
    for seed in range(40):
        (variant,) = run(get_perturber(kind)(item, n=1, seed=seed))
        counts.add(EDITS[kind](item.input, variant.text))
    assert counts == set(range(1, adv.DEFAULT_BUDGETS[kind] + 1))


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_nli_budget_applies_to_each_field(kind: str) -> None:
    item = nli()
    for seed in range(20):
        (variant,) = draw(kind, item, seed=seed, budget=2)
        for name in ("premise", "hypothesis"):
            before, after = getattr(item, name), variant.fields[name]
            if before != after:
                assert 1 <= EDITS[kind](before, after) <= 2


def test_fewer_spots_than_the_budget_make_fewer_edits() -> None:
    item = cls("the film is fine")
    (variant,) = draw("synonym", item, budget=5)
    assert variant.text == "the movie is fine"
    (variant,) = draw("deletion", item, budget=5)
    assert variant.text == "film is fine"


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_no_spot_means_no_edit_and_says_so(kind: str) -> None:
    (variant,) = draw(kind, cls("1999 2000 !"))
    assert variant.text == "1999 2000 !"
    assert variant.detail == f"{kind}: no applicable edit"


# ---------------------------------------------------------------------------------------------
# Protected words and NLI fields
# ---------------------------------------------------------------------------------------------

NEGATION = re.compile(
    r"\b(?:not|no|never|nothing|none|nobody|neither|nor|cannot|without|hardly|barely)\b|n['’]t\b",
    re.IGNORECASE,
)


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_label_words_and_negations_are_never_touched(kind: str) -> None:
    text = "positive , not negative : the film was never very big , and it is not a movie ."
    item = cls(text)
    for seed in range(40):
        (variant,) = draw(kind, item, seed=seed, budget=4)
        for word in ("positive", "negative", "not", "never"):
            assert variant.text.count(word) == text.count(word), (word, variant.text)
        if kind == "deletion":
            assert "never very big" in variant.text and "not a movie" in variant.text


@pytest.mark.parametrize("kind", TEXT_KINDS)
def test_nli_fields_are_edited_separately_and_input_rerendered(kind: str) -> None:
    item = nli()
    changed = {"premise": 0, "hypothesis": 0}
    for seed in range(20):
        (variant,) = draw(kind, item, seed=seed)
        fields = variant.fields
        assert set(fields) == {"input", "premise", "hypothesis"}
        assert fields["input"] == render(fields["premise"], fields["hypothesis"])
        for name in changed:
            changed[name] += fields[name] != getattr(item, name)
        notes = variant.detail.removeprefix(f"{kind}: ").split("; ")
        assert all(n.startswith(("premise: ", "hypothesis: ")) for n in notes)
    assert changed["premise"] > 0 and changed["hypothesis"] > 0


# ---------------------------------------------------------------------------------------------
# homoglyph
# ---------------------------------------------------------------------------------------------


def test_confusables_are_single_cyrillic_or_greek_letters() -> None:
    for latin, twins in adv.CONFUSABLES.items():
        assert latin.isascii() and latin.isalpha()
        for twin in twins:
            assert len(twin) == 1 and not twin.isascii()
            assert unicodedata.name(twin).startswith(("CYRILLIC", "GREEK"))
            assert unicodedata.normalize("NFKC", twin) != latin
            assert twin.isupper() == latin.isupper()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.text(alphabet="abcdeopsxy ABCEOPT0123,.'-", min_size=1, max_size=60),
    seed=st.integers(0, 10**6),
    budget=st.integers(1, 6),
)
def test_homoglyph_output_differs_only_in_confusable_positions(
    text: str, seed: int, budget: int
) -> None:
    (variant,) = draw("homoglyph", cls(text), seed=seed, budget=budget)
    out = variant.text
    assert len(out) == len(text)
    diffs = [i for i, (a, b) in enumerate(zip(text, out, strict=True)) if a != b]
    assert len(diffs) <= budget
    for i in diffs:
        assert out[i] in adv.CONFUSABLES[text[i]]
    assert re.findall(r"\d+", out) == re.findall(r"\d+", text)


# ---------------------------------------------------------------------------------------------
# synonym
# ---------------------------------------------------------------------------------------------

#: An independent list of evaluative words no synonym entry may contain.
POLAR = {
    "good", "bad", "great", "fine", "nice", "poor", "awful", "terrible", "excellent", "funny",
    "boring", "dull", "brilliant", "beautiful", "ugly", "love", "hate", "like", "enjoy",
    "mediocre", "mess", "fun", "pleasant", "charming", "clever", "stupid", "weak", "strong",
    "decent", "okay", "wonderful", "amazing", "horrible", "tedious", "superb", "lame", "best",
    "worst", "masterpiece", "disaster", "delightful", "annoying", "fantastic", "pathetic",
    "gorgeous", "lousy", "perfect", "flawed", "not", "no", "never",
}  # fmt: skip


def test_synonym_list_is_curated() -> None:
    synonyms = adv.load_synonyms()
    assert len(synonyms) >= 150
    for head, (alternatives, blockers) in synonyms.items():
        assert head not in POLAR and not {a.lower() for a in alternatives} & POLAR
        assert head.isalpha() and head.islower()
        assert all(a.isalpha() and a.lower() != head for a in alternatives)
        assert all(b.isalpha() for b in blockers)
    for word in ("film", "plot", "big"):
        assert word in synonyms
    assert adv.load_synonyms()["film"][0] == ("movie",)


def assert_only_listed_swaps(before: str, after: str) -> None:
    synonyms = adv.load_synonyms()
    a, b = words(before), words(after)
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        if x == y:
            continue
        if x.lower() in {"a", "an"}:
            assert y.lower() in {"a", "an"}
            continue
        assert y.lower() in {s.lower() for s in synonyms[x.lower()][0]}, (x, y)


SYN_VOCAB = st.sampled_from(
    [
        "the", "a", "an", "film", "movie", "plot", "big", "Big", "actor", "Actor", "often",
        "not", "good", "positive", "negative", "fine", "is", "very", "\"film\"", "film-maker",
        "theme", "park", "bang", "attempt", "idea", "it", ".", ",", "FILM", "Film",
    ]
)  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(words_=st.lists(SYN_VOCAB, min_size=1, max_size=14), seed=st.integers(0, 10**6))
def test_synonym_swaps_only_listed_words(words_: list[str], seed: int) -> None:
    text = " ".join(words_)
    (variant,) = draw("synonym", cls(text), seed=seed, budget=3)
    assert_only_listed_swaps(text, variant.text)
    assert '"film"' in variant.text or '"film"' not in text  # never inside quotes
    assert variant.text.count("film-maker") == text.count("film-maker")


def test_synonym_keeps_names_blocked_phrases_and_fixes_articles() -> None:
    cases = {
        "we saw Big Fish and the big bang theory": "we saw Big Fish and the big bang theory",
        "he is an actor": "he is a performer",
        "An idea": "A notion",
        "Film is art": "Movie is art",
        "the FILM is long": "the FILM is long",  # all capitals: an acronym or a title
    }
    for text, expected in cases.items():
        for seed in range(5):
            (variant,) = draw("synonym", cls(text), seed=seed)
            assert variant.text == expected


def test_synonym_never_swaps_sentiment_words_on_real_reviews() -> None:
    text = "a good film with a great plot , fine actors and a funny ending ."
    for seed in range(30):
        (variant,) = draw("synonym", cls(text), seed=seed, budget=5)
        for word in ("good", "great", "fine", "funny"):
            assert f" {word} " in variant.text
        assert_only_listed_swaps(text, variant.text)


# ---------------------------------------------------------------------------------------------
# deletion
# ---------------------------------------------------------------------------------------------

DEL_VOCAB = st.sampled_from(
    [
        "not", "no", "never", "n't", "isn't", "don't", "hardly", "really", "very", "just",
        "quite", "the", "a", "an", "few", "little", "good", "film", "is", "it", ",", ".", "The",
        "Really", "only", "too", "cannot", "without", "3",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    words_=st.lists(DEL_VOCAB, min_size=1, max_size=16),
    seed=st.integers(0, 10**6),
    task=st.sampled_from(["qa", "classification"]),
)
def test_deletion_never_removes_negations_and_only_deletes_listed_words(
    words_: list[str], seed: int, task: str
) -> None:
    text = " ".join(words_)
    item = qa(text) if task == "qa" else cls(text)
    (variant,) = draw("deletion", item, seed=seed, budget=4)
    after = variant.text
    # (a deleted sentence-initial "The" capitalises the next word, so compare lower-cased)
    assert [n.lower() for n in NEGATION.findall(after)] == NEGATION.findall(text.lower())
    deleted = [m.group(1) for m in re.finditer(r'deleted "([^"]+)"', variant.detail)]
    assert len(deleted) == len(words(text)) - len(words(after))
    assert all(w.lower() in adv.DELETABLE for w in deleted)
    # what is left is the original word sequence minus the deleted words (case aside)
    remaining = [w.lower() for w in words(after)]
    it = iter(w.lower() for w in words(text))
    assert all(any(r == w for w in it) for r in remaining)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("it is not just funny but also touching", "not just"),
        ("he isn't really there", "isn't really"),
        ("there are a few good jokes", "a few"),
        ("it has a little charm", "a little"),
        ("the very end, really.", "really."),
        ('he said "very nice" twice', '"very nice"'),
    ],
)
def test_deletion_keeps_words_whose_loss_changes_meaning(text: str, kept: str) -> None:
    for seed in range(20):
        (variant,) = draw("deletion", cls(text), seed=seed, budget=3)
        assert kept in variant.text


def test_deletion_recapitalises_the_sentence_start() -> None:
    (variant,) = draw("deletion", cls("The film is long."), budget=1)
    assert variant.text == "Film is long."


# ---------------------------------------------------------------------------------------------
# instruction
# ---------------------------------------------------------------------------------------------


def clean_question(item: Item) -> str:
    labels = adv.label_text(item.labels or ())
    return (NLI_QUESTION if item.premise else CLASSIFY_QUESTION).format(labels=labels)


def assert_only_question_differs(item: Item, variant: Variant) -> None:
    (clean,) = build_messages(item.task, item.text_fields(), item.labels)
    (attacked,) = build_messages(item.task, variant.fields, item.labels)
    instruction = variant.fields["instruction"]
    assert instruction != clean_question(item)
    assert attacked.content == clean.content.replace(clean_question(item), instruction)
    assert {k: v for k, v in variant.fields.items() if k != "instruction"} == item.text_fields()


def test_label_text_matches_the_clean_prompt() -> None:
    item = nli()
    (message,) = build_messages(item.task, item.text_fields(), item.labels)
    assert clean_question(item) in message.content
    assert adv.label_text(["a", "b"]) == "a or b"


@pytest.mark.parametrize("item", [cls(), nli()], ids=["cls", "nli"])
@pytest.mark.parametrize("budget", [1, 2, 4])
def test_builtin_instruction_changes_only_the_question(item: Item, budget: int) -> None:
    seen_ops = set()
    for seed in range(25):
        (variant,) = draw("instruction", item, seed=seed, budget=budget)
        assert variant.kind == "instruction"
        assert_only_question_differs(item, variant)
        notes = variant.detail.removeprefix("instruction: built-in: ").split("; ")
        assert 1 <= len(notes) <= budget
        for label in item.labels or ():
            assert label in variant.fields["instruction"]  # labels are never typo'd
        seen_ops.update(n.split(" ")[0] for n in notes)
    if budget >= 2:
        assert {"reworded", "role-play", "prefix"} <= seen_ops


def test_instruction_is_not_applicable_to_qa() -> None:
    ctx = PerturbContext()
    assert run(get_perturber("instruction")(qa(), n=3, seed=0, context=ctx)) == []
    assert ctx.stats.rejected["instruction"]["not_applicable_qa"] == 3
    assert run(get_perturber("instruction")(qa(), n=2, seed=0)) == []


def write_attacks(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


SYNTHETIC = [
    {
        "dataset": "sst2",
        "attack": "a1",
        "original_prompt": "Is the sentiment 'positive' or 'negative'?",
        "attacked_prompt": "Is teh sentiment 'positive' or 'negative'?",
    },
    {
        "dataset": "sst2",
        "attack": "a2",
        "original_prompt": "Is the sentiment 'positive' or 'negative'?",
        "attacked_prompt": "Iz teh sentimnet 'Positive' or 'Negative'?",
    },
    {  # failed attack: identical to the original
        "dataset": "sst2",
        "attack": "a3",
        "original_prompt": "Say 'positive' or 'negative'.",
        "attacked_prompt": "Say 'positive' or 'negative'.",
    },
    {  # quotes a label the items lack
        "dataset": "x",
        "attack": "a4",
        "original_prompt": "Say 'positive', 'neutral' or 'negative'.",
        "attacked_prompt": "Sya 'positive', 'neutral' or 'negative'.",
    },
    {  # placeholder
        "dataset": "x",
        "attack": "a5",
        "original_prompt": "About {}: 'positive' or 'negative'?",
        "attacked_prompt": "Abut {}: 'positive' or 'negative'?",
    },
    {  # doesn't and its apostrophe are not a quote
        "dataset": "x",
        "attack": "a6",
        "original_prompt": "If it doesn't fit, say 'unanswerable'.",
        "attacked_prompt": "If it doesn't fti, say 'unanswerable'.",
    },
]


def test_quoted_labels_ignore_apostrophes() -> None:
    assert adv.quoted_labels(SYNTHETIC[5]["attacked_prompt"]) == {"unanswerable"}
    assert adv.quoted_labels('Answer "entailment" or "not_entailment".') == {
        "entailment",
        "not_entailment",
    }


def test_attack_file_matching_rules(tmp_path: Path) -> None:
    path = write_attacks(tmp_path / "attacks.jsonl", SYNTHETIC)
    attacks = adv.load_instruction_attacks(path)
    assert len(attacks) == len(SYNTHETIC)
    matched = adv.matching_attacks(attacks, ["negative", "positive"])
    assert [a.attack for a in matched] == ["a1", "a2"]
    assert [a.edits for a in matched] == [1, 5]
    assert [a.attack for a in adv.matching_attacks(attacks, ["NEGATIVE", "Positive"])] == [
        "a1",
        "a2",
    ]
    assert [
        a.attack for a in adv.matching_attacks(attacks, ["negative", "positive"], max_edits=1)
    ] == ["a1"]
    assert adv.matching_attacks(attacks, ["negative", "positive", "neutral"])[0].attack == "a4"


def test_attack_file_variants_cycle_through_matching_prompts(tmp_path: Path) -> None:
    path = write_attacks(tmp_path / "attacks.jsonl", SYNTHETIC)
    item = cls()
    variants = draw("instruction", item, n=4, seed=3, options={"instruction_attacks": str(path)})
    instructions = [v.fields["instruction"] for v in variants]
    assert set(instructions[:2]) == {
        SYNTHETIC[0]["attacked_prompt"],
        SYNTHETIC[1]["attacked_prompt"],
    }
    assert instructions[2:] == instructions[:2]
    for variant in variants:
        assert_only_question_differs(item, variant)
        assert variant.detail.startswith("instruction: sst2/a")
    # an explicit budget filters by word edits from the original prompt
    only = draw(
        "instruction", item, n=3, seed=3, budget=1, options={"instruction_attacks": str(path)}
    )
    assert {v.fields["instruction"] for v in only} == {SYNTHETIC[0]["attacked_prompt"]}


def test_attack_file_without_a_match_falls_back_to_builtin(tmp_path: Path) -> None:
    path = write_attacks(tmp_path / "attacks.jsonl", SYNTHETIC)
    item = nli(labels=("entailment", "not_entailment"))
    (variant,) = draw("instruction", item, options={"instruction_attacks": str(path)})
    assert variant.detail.startswith("instruction: built-in: ")
    assert "no attacked prompt in attacks.jsonl quotes exactly the labels" in variant.detail
    assert_only_question_differs(item, variant)
    assert variant.fields == draw("instruction", item)[0].fields


def test_bad_attack_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        adv.load_instruction_attacks(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"attacked_prompt": "ok \'positive\'"}\nnot json\n{"x": 1}\n', "utf-8")
    with pytest.raises(ConfigError) as info:
        adv.load_instruction_attacks(bad)
    message = str(info.value)
    assert "bad.jsonl:2: not valid JSON" in message
    assert "bad.jsonl:3: attacked_prompt: missing" in message
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", "utf-8")
    with pytest.raises(ConfigError, match="no attacked prompts"):
        adv.load_instruction_attacks(empty)


def test_promptbench_prompts_match_items_by_their_labels(shared_data: Path) -> None:
    path = shared_data / "promptbench_adv_prompts.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not found")
    options = {"instruction_attacks": str(path)}
    attacks = {a.attacked: a for a in adv.load_instruction_attacks(path)}
    cases = [
        (cls(), {"sst2"}),
        (nli(), {"mnli"}),
        (nli(labels=("entailment", "not_entailment")), {"rte", "qnli", "wnli"}),
    ]
    for item, datasets in cases:
        variants = draw("instruction", item, n=12, seed=1, options=options)
        assert len({v.fields["instruction"] for v in variants}) == 12
        for variant in variants:
            attack = attacks[variant.fields["instruction"]]
            assert attack.dataset in datasets
            assert attack.labels == {label.lower() for label in item.labels or ()}
            assert attack.attacked != attack.original
            assert_only_question_differs(item, variant)
        limited = draw("instruction", item, n=6, seed=1, budget=2, options=options)
        assert all(attacks[v.fields["instruction"]].edits <= 2 for v in limited)
    # AdvGLUE QQP labels (duplicate / not_duplicate) are quoted by no PromptBench prompt
    qqp = cls("q1 ? q2 ?", labels=("not_duplicate", "duplicate"))
    (variant,) = draw("instruction", qqp, options=options)
    assert variant.detail.startswith("instruction: built-in: ")


def test_deletion_prefers_intensifiers_over_articles() -> None:
    text = "the film is really long and a very slow one"
    for seed in range(20):
        (variant,) = draw("deletion", cls(text), seed=seed, budget=1)
        assert variant.detail in {'deletion: deleted "really"', 'deletion: deleted "very"'}
    (variant,) = draw("deletion", cls("the film is long"), budget=1)
    assert variant.detail == 'deletion: deleted "the"'
