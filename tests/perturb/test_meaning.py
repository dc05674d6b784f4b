"""Meaning filters: the lexical guard's rules, the two-way judge, their combination, the CLI spec."""

from __future__ import annotations

import asyncio
import json
import math
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlite_utils import Database

from sua_audit.backends.base import Backend, Capabilities, Completion, CompletionRequest
from sua_audit.engine import Generator
from sua_audit.errors import ConfigError, RequestFailed
from sua_audit.perturbation.meaning import (
    DEFAULT_FILTER,
    DEFAULT_JUDGE_THRESHOLD,
    FILTER_NAMES,
    JUDGE_CHOICES,
    AcceptAll,
    CombinedFilter,
    JudgeFilter,
    LexicalGuard,
    MeaningFilter,
    Verdict,
    build_filter,
)
from sua_audit.prompting import PromptLibrary
from sua_audit.store import Store
from tests.support.models import hf_backend

PAIRS = Path(__file__).parent / "data" / "meaning_pairs.jsonl"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def guard_check(a: str, b: str) -> Verdict:
    return LexicalGuard().check(a, b)


# ---------------------------------------------------------------------------------------------
# Lexical guard: one case per rule, and the rewrites each rule must let through
# ---------------------------------------------------------------------------------------------

REJECTED = [
    # numbers, digits and words alike
    ("The company hired 50 people.", "The company hired 15 people.", "number_changed"),
    ("Two women are hugging.", "Three women are hugging.", "number_changed"),
    ("The recipe needs two cups of flour.", "The recipe needs a cup of flour.", "number_changed"),
    ("The train leaves at 7:30.", "The train leaves at 8:30.", "number_changed"),
    ("She came second in the race.", "She came third in the race.", "number_changed"),
    ("Tickets are free for children under five.", "Tickets are free for children.", "number_changed"),
    # negation parity
    ("The film was not boring.", "The film was boring.", "negation_changed"),
    ("The museum is open on Mondays.", "The museum isn't open on Mondays.", "negation_changed"),
    ("it 's a charming journey .", "it is n't a charming journey .", "negation_changed"),
    ("He likes neither tea nor coffee.", "He likes tea and coffee.", "negation_changed"),
    ("A man is playing the guitar.", "No man is playing the guitar.", "negation_changed"),
    ("He drinks coffee with sugar.", "He drinks coffee without sugar.", "negation_changed"),
    # names
    ("In 1969, Neil Armstrong walked on the Moon.", "In 1969, Buzz Aldrin walked on the Moon.", "entity_dropped"),
    ("What is the capital of Canada?", "What is the capital of Australia?", "entity_dropped"),
    ("What is the capital of Canada?", "The capital of Canada is Ottawa.", "entity_added"),
    # quantifiers and modality
    ("The store is usually open until midnight.", "The store is always open until midnight.", "quantifier_changed"),
    ("All students passed the exam.", "Some students passed the exam.", "quantifier_changed"),
    ("She might attend the conference.", "She will attend the conference.", "quantifier_changed"),
    # a question answered or asserted instead of reworded
    ("Is it going to rain tomorrow?", "It is going to rain tomorrow.", "question_changed"),
    ("who sang hallelujah first", "Leonard Cohen sang it first.", "entity_added"),
    # too little content kept
    ("The committee approved the new budget.", "Sure! Here is a rewritten version of the sentence.", "content_dropped"),
    ("A dog is running through the deep snow near the old barn.", "Cats sleep by the fire.", "content_dropped"),
    # nothing left
    ("The film was good.", "", "empty"),
    ("The film was good.", " ... ", "empty"),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b", "reason"), REJECTED)
def test_guard_rejects_visible_meaning_changes(a: str, b: str, reason: str) -> None:
    verdict = guard_check(a, b)
    assert (verdict.accepted, verdict.reason) == (False, reason), verdict
    assert verdict.detail  # says what changed


ACCEPTED = [
    ("After the meeting ended, Sarah drove home.", "Sarah drove home after the meeting ended."),
    ("The committee approved the new budget.", "The new budget was approved by the committee."),
    # numbers written differently
    ("The company hired 50 new employees.", "The company took on fifty new employees."),
    ("It costs 1,000 dollars.", "It costs one thousand dollars."),
    ("The house has twenty-five rooms.", "The house has 25 rooms."),
    ("The house has two hundred and five rooms.", "The house has 205 rooms."),
    ("The city has 3 million people.", "Three million people live in the city."),
    ("She won the race for the first time.", "She won the race for the 1st time."),
    ("She visited twice.", "She visited two times."),
    ("No one came to the party.", "Nobody came to the party."),
    ("She is one of the best players.", "She ranks among the best players."),
    # negations kept in another form
    ("I don't think he will come.", "I do not think he'll come."),
    ("this is n't a movie you 'll forget .", "you will not forget this movie ."),
    ("She has never been there.", "She has not ever been there."),
    ("the plot is nothing but a rehash of older films .", "the plot is only a rehash of older films ."),
    ("It is not only funny but also moving.", "It is both funny and moving."),
    ("It's just a movie.", "It's only a movie."),
    ("It's just great.", "It's really great."),
    # names: case-insensitive, possessives, sentence starts, all-caps text
    ("allows us to hope that nolan is poised to embark a career .", "it lets us hope that Nolan is poised to embark on a career ."),
    ("What is the capital of Canada?", "Which city is Canada's capital?"),
    ("Paris is lovely in spring.", "In spring, the city is lovely."),
    ("THE FILM WAS GREAT FUN", "The film was great fun."),
    # quantifiers swapped within their class; "each other" is no quantifier
    ("the dialogue is often hilarious .", "the dialogue is frequently hilarious ."),
    ("Two women are hugging.", "Two women hug each other."),
    # questions with and without a question mark
    ("who sang the song hallelujah first", "Who first sang the song Hallelujah?"),
    # inflections meet through the stemmer
    ("A dog is running through the snow.", "A dog runs through the snow."),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b"), ACCEPTED)
def test_guard_accepts_rewordings(a: str, b: str) -> None:
    verdict = guard_check(a, b)
    assert (verdict.accepted, verdict.reason) == (True, "ok"), verdict


def test_guard_scores_content_recall_and_applies_its_threshold() -> None:
    a, b = "The doctor advised him to rest at home.", "The physician told him to rest."
    # content words of a: doctor, advis(ed), rest, home -> only "rest" kept
    verdict = guard_check(a, b)
    assert verdict.score == pytest.approx(0.25)
    assert LexicalGuard(min_recall=0.25).check(a, b).accepted
    strict = LexicalGuard(min_recall=0.3).check(a, b)
    assert (strict.accepted, strict.reason) == (False, "content_dropped")
    assert guard_check(a, a) == Verdict(True, 1.0, "ok")
    assert guard_check("Is it?", "It is?").score == 1.0  # no content words: nothing to lose


GUARD_REASONS = {
    "ok",
    "empty",
    "number_changed",
    "negation_changed",
    "entity_dropped",
    "entity_added",
    "quantifier_changed",
    "question_changed",
    "content_dropped",
}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_guard_accepts_any_text_unchanged(text: str) -> None:
    verdict = guard_check(text, text)
    assert verdict.accepted or verdict.reason == "empty"
    if re.search(r"[A-Za-z0-9]", text):
        assert verdict.accepted, verdict


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.text(max_size=60))
def test_guard_gives_a_known_reason_and_a_valid_score_on_any_pair(a: str, b: str) -> None:
    verdict = guard_check(a, b)
    assert verdict.reason in GUARD_REASONS
    assert verdict.accepted == (verdict.reason == "ok")
    assert verdict.score is not None and 0.0 <= verdict.score <= 1.0


def test_guard_checks_run_in_order_and_the_first_failure_names_the_reason() -> None:
    verdict = guard_check("Two cats did not sleep.", "Three cats slept.")
    assert verdict.reason == "number_changed"


def test_guard_is_deterministic_and_describes_itself() -> None:
    guard = LexicalGuard(0.3)
    pairs = [("The film was not boring.", "The film was boring."), ("a b c", "a b c")]
    assert run(guard.check_many(pairs)) == run(guard.check_many(pairs))
    assert guard.describe() == {"name": "lexical", "threshold": 0.3, "version": "1"}
    assert guard.threshold == 0.3
    with pytest.raises(ConfigError):
        LexicalGuard(1.5)


# ---------------------------------------------------------------------------------------------
# The evaluation pairs
# ---------------------------------------------------------------------------------------------


def load_pairs() -> list[dict[str, Any]]:
    return [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines() if line]


def test_evaluation_pairs_are_balanced_and_cover_the_categories() -> None:
    rows = load_pairs()
    assert len(rows) >= 60
    assert all(set(r) == {"a", "b", "same", "category", "split"} for r in rows)
    same = [r for r in rows if r["same"]]
    assert len(same) * 2 == len(rows)
    cats = {r["category"] for r in rows}
    assert {"reorder", "synonym", "voice", "question", "nli", "sst2"} <= cats
    assert {"negation", "number", "entity", "antonym", "scope", "qualifier", "topic_drift"} <= cats
    assert {r["split"] for r in rows} == {"dev", "heldout"}
    assert len({(r["a"], r["b"]) for r in rows}) == len(rows)


def _rates(rows: list[dict[str, Any]]) -> tuple[float, float, float]:
    guard = LexicalGuard()
    ok = [guard.check(r["a"], r["b"]).accepted for r in rows]
    same = [bool(r["same"]) for r in rows]
    accuracy = sum(o == s for o, s in zip(ok, same, strict=True)) / len(rows)
    recall = sum(o and s for o, s in zip(ok, same, strict=True)) / sum(same)
    specificity = sum(not o and not s for o, s in zip(ok, same, strict=True)) / (
        len(rows) - sum(same)
    )
    return accuracy, recall, specificity


def test_guard_accuracy_on_the_evaluation_pairs() -> None:
    # Measured (bench/meaning_filter.py): accuracy 0.78 on all 132 pairs, 0.775 on the 40
    # held-out pairs; keeps 91% of paraphrases, rejects 65% of non-paraphrases.
    rows = load_pairs()
    accuracy, recall, specificity = _rates(rows)
    assert accuracy >= 0.70
    assert recall >= 0.80
    assert specificity >= 0.55
    held_out = [r for r in rows if r["split"] == "heldout"]
    assert _rates(held_out)[0] >= 0.65


def test_guard_catches_every_number_and_negation_pair() -> None:
    rows = [r for r in load_pairs() if r["category"] in ("number", "negation")]
    guard = LexicalGuard()
    missed = [r for r in rows if guard.check(r["a"], r["b"]).accepted]
    assert len(missed) <= 1, missed  # measured: 1 (dollars -> euros)


# ---------------------------------------------------------------------------------------------
# The judge, on a scripted backend
# ---------------------------------------------------------------------------------------------

_TEXTS = re.compile(r"Text A: (?P<a>.*)\nText B: (?P<b>.*)\n")


class ScriptedJudge(Backend):
    """Answers label-scoring requests with P(yes) from ``script[(text A, text B)]``.

    A value that is a ``RequestFailed`` is raised; a list is returned as the raw log-probs.
    """

    provider: ClassVar[str] = "scripted"

    def __init__(self, script: dict[tuple[str, str], Any], default: float = 0.9) -> None:
        self.model = "judge"
        self.capabilities = Capabilities(choice_scoring=True)
        self.script = script
        self.default = default
        self.history: list[CompletionRequest] = []
        self.seen: list[tuple[str, str]] = []

    async def complete(self, request: CompletionRequest) -> Completion:
        self.history.append(request)
        m = _TEXTS.search(request.messages[-1].content)
        assert m is not None, request.messages[-1].content
        pair = (m["a"], m["b"])
        self.seen.append(pair)
        value = self.script.get(pair, self.default)
        if isinstance(value, RequestFailed):
            raise value
        if isinstance(value, list):
            return Completion(choice_logprobs=value, path="exact")
        # Split each side's mass over its two spellings, unevenly, to test the summing.
        p = float(value)
        lps = [_log(0.7 * p), _log(0.3 * p), _log(0.4 * (1 - p)), _log(0.6 * (1 - p))]
        return Completion(choice_logprobs=lps, path="exact")


def _log(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


def judge_for(
    script: dict[tuple[str, str], Any], threshold: float | None = None, **kw: Any
) -> tuple[JudgeFilter, ScriptedJudge, Generator]:
    backend = ScriptedJudge(script, **kw)
    generator = Generator(backend, None, cache_mode="off")
    return JudgeFilter(generator, PromptLibrary(), threshold), backend, generator


def test_judge_asks_both_orders_and_takes_the_smaller_p_yes() -> None:
    judge, backend, _ = judge_for({("A cat.", "A feline."): 0.9, ("A feline.", "A cat."): 0.3})
    (verdict,) = run(judge.check_many([("A cat.", "A feline.")]))
    assert sorted(backend.seen) == [("A cat.", "A feline."), ("A feline.", "A cat.")]
    for request in backend.history:
        assert request.choices == JUDGE_CHOICES
        assert request.params.temperature == 0.0
    assert verdict.score == pytest.approx(0.3)
    assert (verdict.accepted, verdict.reason) == (False, "not_equivalent")
    assert "0.900" in verdict.detail and "0.300" in verdict.detail


def test_judge_threshold_is_inclusive_and_configurable() -> None:
    script = {("x one", "x two"): 0.6, ("x two", "x one"): 0.75}
    default, _, _ = judge_for(script)
    assert default.threshold == DEFAULT_JUDGE_THRESHOLD == 0.5
    (verdict,) = run(default.check_many([("x one", "x two")]))
    assert (verdict.accepted, verdict.reason) == (True, "ok")
    assert verdict.score == pytest.approx(0.6)
    exact, _, _ = judge_for(script, threshold=0.6)
    assert run(exact.check_many([("x one", "x two")]))[0].accepted
    strict, _, _ = judge_for(script, threshold=0.61)
    assert not run(strict.check_many([("x one", "x two")]))[0].accepted
    with pytest.raises(ConfigError):
        judge_for(script, threshold=1.2)


def test_judge_normalises_over_the_four_answer_forms() -> None:
    # yes 0.03 + Yes 0.03 against no 0.02 + No 0.02: only 10% of the mass, P(yes) = 0.6.
    lps = [math.log(0.03), math.log(0.03), math.log(0.02), math.log(0.02)]
    judge, _, _ = judge_for({("p", "q"): lps, ("q", "p"): lps})
    (verdict,) = run(judge.check_many([("p", "q")]))
    assert verdict.score == pytest.approx(0.6)
    assert verdict.accepted


def test_a_failed_judge_request_rejects_that_pair_only() -> None:
    failure = RequestFailed("server", "HTTP 503 after 6 attempts")
    judge, backend, generator = judge_for({("b1", "a1"): failure}, default=0.95)
    verdicts = run(judge.check_many([("a1", "b1"), ("a2", "b2")]))
    assert (verdicts[0].accepted, verdicts[0].reason, verdicts[0].score) == (
        False,
        "judge_error",
        None,
    )
    assert "server" in verdicts[0].detail
    assert verdicts[1].accepted and verdicts[1].reason == "ok"
    assert generator.stats.failed == 1


def test_a_judge_without_yes_or_no_mass_is_an_error_not_a_score() -> None:
    nothing = [-math.inf] * 4
    judge, _, _ = judge_for({("a", "b"): nothing, ("b", "a"): nothing})
    (verdict,) = run(judge.check_many([("a", "b")]))
    assert (verdict.accepted, verdict.reason) == (False, "judge_error")


def test_judge_sends_each_distinct_request_once() -> None:
    judge, backend, _ = judge_for({})
    verdicts = run(judge.check_many([("same", "same"), ("a", "b"), ("a", "b"), ("b", "a")]))
    assert len(verdicts) == 4
    assert sorted(backend.seen) == [("a", "b"), ("b", "a"), ("same", "same")]
    assert run(judge.check_many([])) == []


def test_judge_describes_its_template_model_and_threshold() -> None:
    judge, _, _ = judge_for({}, threshold=0.7)
    info = judge.describe()
    assert info["name"] == "judge" and info["threshold"] == 0.7
    assert re.fullmatch(r"judge/equivalence@[0-9a-f]{12}", info["template"])
    assert info["version"] == info["template"].rsplit("@", 1)[1]
    assert info["model"] == {"provider": "scripted", "model": "judge"}


def test_judge_template_renders_both_texts_and_is_strict() -> None:
    template = PromptLibrary().get("judge", "equivalence")
    (message,) = template.render(a="first text", b="second text")
    assert message.role == "user"
    assert "Text A: first text\nText B: second text\n" in message.content
    assert "yes or no" in message.content
    with pytest.raises(ConfigError):
        template.render(a="only one")


def test_judge_template_can_be_overridden(tmp_path: Path) -> None:
    (tmp_path / "judge").mkdir()
    (tmp_path / "judge" / "equivalence.j2").write_text(
        "Text A: {{ a }}\nText B: {{ b }}\nSame? yes or no.\n", encoding="utf-8"
    )
    backend = ScriptedJudge({})
    judge = JudgeFilter(Generator(backend, None, cache_mode="off"), PromptLibrary(tmp_path))
    run(judge.check_many([("a", "b")]))
    assert backend.history[0].messages[-1].content.endswith("Same? yes or no.")


# ---------------------------------------------------------------------------------------------
# Guard + judge, and the --meaning-filter spec
# ---------------------------------------------------------------------------------------------


def test_combined_filter_runs_the_judge_only_on_what_the_guard_accepts() -> None:
    ok_pair = ("The committee approved the budget.", "The budget was approved by the committee.")
    judged_no = ("The prices went up.", "The prices went down.")
    guard_no = ("The film was not boring.", "The film was boring.")
    script = {judged_no: 0.2, judged_no[::-1]: 0.8}
    judge, backend, _ = judge_for(script, default=0.9)
    combined = CombinedFilter(LexicalGuard(), judge)
    verdicts = run(combined.check_many([ok_pair, guard_no, judged_no]))
    assert [v.reason for v in verdicts] == ["ok", "negation_changed", "not_equivalent"]
    assert verdicts[0].score == pytest.approx(0.9)  # the judge's score, not the guard's
    assert guard_no[0] not in {a for a, _ in backend.seen}
    assert len(backend.history) == 4
    assert combined.threshold == judge.threshold
    info = combined.describe()
    assert info["name"] == "both" and info["guard"]["name"] == "lexical"
    assert info["judge"]["name"] == "judge"


def test_build_filter_maps_each_spec() -> None:
    generator = Generator(ScriptedJudge({}), None, cache_mode="off")
    assert DEFAULT_FILTER == "lexical" and DEFAULT_FILTER in FILTER_NAMES
    built = {spec: build_filter(spec, generator) for spec in FILTER_NAMES}
    assert isinstance(built["lexical"], LexicalGuard)
    assert isinstance(built["judge"], JudgeFilter)
    assert isinstance(built["both"], CombinedFilter)
    assert isinstance(built["off"], AcceptAll)
    for spec, flt in built.items():
        assert isinstance(flt, MeaningFilter)
        assert flt.name == spec
        assert flt.describe()["name"] == spec
    assert run(built["off"].check_many([("a", "b")])) == [Verdict(True, None, "ok")]
    assert build_filter("both", generator, threshold=0.8).threshold == 0.8
    assert build_filter("judge", generator).threshold == DEFAULT_JUDGE_THRESHOLD


@pytest.mark.parametrize(
    ("spec", "kwargs", "message"),
    [
        ("fuzzy", {}, "use one of lexical, judge, both, embedding, off"),
        ("embedding", {"threshold": 1.5}, r"must be in \[0, 1\]"),
        ("judge", {"generator": None}, "needs a judge model"),
        ("lexical", {"threshold": 0.5}, "applies to the model judge"),
        ("off", {"threshold": 0.5}, "applies to the model judge"),
        ("judge", {"threshold": -0.1}, r"must be in \[0, 1\]"),
    ],
)
def test_build_filter_refuses_bad_options(spec: str, kwargs: dict[str, Any], message: str) -> None:
    generator = Generator(ScriptedJudge({}), None, cache_mode="off")
    kwargs = {"generator": generator, **kwargs}
    with pytest.raises(ConfigError, match=message):
        build_filter(spec, **kwargs)


# ---------------------------------------------------------------------------------------------
# The real embedded model as judge
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_embedded_judge_gives_probabilities_and_caches_both_orders(
    tmp_path: Path, embedded_dir: Path
) -> None:
    pairs = [
        ("The committee approved the new budget.", "The new budget was approved by the committee."),
        ("The film was not boring.", "The film was boring."),
        ("What is the capital of Canada?", "Which city is Canada's capital?"),
    ]
    store = Store.open(tmp_path / "cache.db")
    backend = hf_backend(embedded_dir, name="smollm2-135m-instruct")
    try:
        first = Generator(backend, store)
        judge = JudgeFilter(first, PromptLibrary())
        scores = run(judge.scores(pairs))
        first.flush()
        verdicts = run(judge.check_many(pairs))  # the same requests: answered from the cache
        assert (first.stats.model_calls, first.stats.cache_hits) == (2 * len(pairs),) * 2
        for (forward, backward), verdict in zip(scores, verdicts, strict=True):
            assert isinstance(forward, float) and isinstance(backward, float)
            assert 0.0 < forward < 1.0 and 0.0 < backward < 1.0
            assert verdict.score == pytest.approx(min(forward, backward))
            assert verdict.reason in ("ok", "not_equivalent")
        assert store.count_completions() == 2 * len(pairs)

        reopened = Store(Database(str(tmp_path / "cache.db")))
        second = Generator(backend, reopened)
        calls_before = backend.forward_passes
        again = run(JudgeFilter(second, PromptLibrary()).check_many(pairs))
        reopened.close()
        assert second.stats.model_calls == 0
        assert second.stats.cache_hits == 2 * len(pairs)
        assert backend.forward_passes == calls_before
        assert [v.score for v in again] == pytest.approx([v.score for v in verdicts])
    finally:
        run(backend.aclose())
        store.close()
