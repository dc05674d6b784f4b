"""Whole audits of the hosted backends against a real llama.cpp OpenAI-compatible server.

The ``llama_server`` fixture serves the embedded SmolLM2-135M GGUF. Every audit here is a real
``sua-audit run`` process: the OpenAI backend, the same audit through LiteLLM, a rerun from the
cache, and the embedded (transformers) backend for comparison. The server answers one request
at a time on two CPU threads, so the workloads are tiny: four items, two perturbations each,
three samples per QA variant.

SmolLM2-135M is weak and its text is not stable across llama.cpp builds: the tests check paths,
structure, determinism and agreement between backends, never exact answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sua_audit import tasks
from sua_audit.backends import get_backend
from sua_audit.backends.base import Completion, CompletionRequest, GenerationParams
from sua_audit.backends.hosted import HostedBackend, parse_choice
from sua_audit.errors import RequestFailed

pytestmark = [pytest.mark.slow, pytest.mark.server]

MODEL = "smollm2"
K = 2
SAMPLES = 3
MAX_TOKENS = 16
RUN_TIMEOUT_S = 300

ITEMS: list[dict[str, Any]] = [
    {
        "id": "sent-neg",
        "task": "classification",
        "input": "The soup was cold and the waiter ignored us all evening.",
        "labels": ["negative", "positive"],
        "label": "negative",
    },
    {
        "id": "sent-pos",
        "task": "classification",
        "input": "A warm, funny film that I would happily watch again.",
        "labels": ["negative", "positive"],
        "label": "positive",
    },
    {
        "id": "nli-ent",
        "task": "nli",
        "input": "Premise: A man is playing a guitar on a stage.\nHypothesis: A person is making music.",
        "premise": "A man is playing a guitar on a stage.",
        "hypothesis": "A person is making music.",
        "labels": ["entailment", "neutral", "contradiction"],
        "label": "entailment",
    },
    {
        "id": "qa-paris",
        "task": "qa",
        "input": "What is the capital of France?",
        "answers": ["Paris"],
    },
]
CHOICE_IDS = [item["id"] for item in ITEMS if item["task"] != "qa"]
QA_IDS = [item["id"] for item in ITEMS if item["task"] == "qa"]
CLASSIFICATION_IDS = [item["id"] for item in ITEMS if item["task"] == "classification"]
LABELS: dict[str, list[str]] = {i["id"]: i["labels"] for i in ITEMS if i["task"] != "qa"}

#: Paths a hosted backend may take for a label distribution: the first answer token's top
#: log-probabilities, or (when no alternative names a label) sampled answers parsed for one.
CHOICE_PATHS = {"top_logprobs", "samples"}
#: Row and summary fields that differ between two runs of the same audit.
TIMING_KEYS = frozenset({"latency_ms", "wall_seconds", "started_utc", "finished_utc"})

#: Two labels with the same first word: every first token that could start one of them starts
#: both (``The``, ``T``...), so no top log-probability can tell them apart and the backend has
#: to sample. The QA prompt makes the model say "The capital of France is ...".
FALLBACK_CHOICES = ("The capital", "The city")


# -- running the CLI --------------------------------------------------------------------------


@dataclasses.dataclass
class Audit:
    """One finished ``sua-audit run``: its summary (stdout), result rows and stderr."""

    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    stderr: str

    def row(self, item_id: str) -> dict[str, Any]:
        (found,) = [r for r in self.rows if r["id"] == item_id]
        return found


def clean_env(home: Path) -> dict[str, str]:
    """The environment of a CLI run: no keys, no sua-audit settings, an isolated home.

    Built here rather than inherited from the autouse ``_isolate`` fixture because the audits
    run in module-scoped fixtures, which are set up before any function-scoped fixture.
    """
    drop = {"OPENAI_BASE_URL", "OPENAI_API_BASE"}
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.endswith("_API_KEY") or k.startswith("SUA_AUDIT_") or k in drop)
    }
    env.update(
        SUA_AUDIT_HOME=str(home),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_VERBOSITY="error",
        COLUMNS="120",
    )
    return env


def run_audit(
    home: Path,
    model: str,
    dataset: Path,
    out: Path,
    cache: Path,
    *extra: str,
    base_url: str | None = None,
) -> Audit:
    """Run ``sua-audit run`` in a subprocess; fail the test unless it exits 0."""
    args = [
        sys.executable,
        "-m",
        "sua_audit",
        "run",
        "--model",
        model,
        "--dataset",
        str(dataset),
        "--out",
        str(out),
        "--cache",
        str(cache),
        "--perturbations",
        str(K),
        "--samples",
        str(SAMPLES),
        "--max-tokens",
        str(MAX_TOKENS),
        "--json",
        "--no-progress",
        *extra,
    ]
    if base_url is not None:
        # llama.cpp serves one request at a time: a short queue keeps each wait far below the
        # timeout even on a busy two-core machine.
        args += ["--base-url", base_url, "--concurrency", "4", "--timeout", "120"]
    done = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=clean_env(home),
        check=False,
    )
    assert done.returncode == 0, f"sua-audit run {model} exited {done.returncode}:\n{done.stderr}"
    summary = json.loads(done.stdout)  # stdout is only the JSON summary
    assert summary == json.loads((out / "summary.json").read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return Audit(summary, rows, done.stderr)


def strip_timing(data: Any) -> Any:
    """``data`` without timing fields, at any depth."""
    if isinstance(data, dict):
        return {k: strip_timing(v) for k, v in data.items() if k not in TIMING_KEYS}
    if isinstance(data, list):
        return [strip_timing(v) for v in data]
    return data


def expected_requests(items: list[dict[str, Any]]) -> int:
    """Model requests of an audit: one per choice variant; greedy + samples per QA variant."""
    return sum((K + 1) * (2 if item["task"] == "qa" else 1) for item in items)


def write_jsonl(path: Path, items: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


# -- module fixtures: each audit runs once -----------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("llama-cpp")


@pytest.fixture(scope="module")
def dataset(workdir: Path) -> Path:
    return write_jsonl(workdir / "items.jsonl", ITEMS)


@pytest.fixture(scope="module")
def openai_audit(llama_server: str, session_home: Path, workdir: Path, dataset: Path) -> Audit:
    return run_audit(
        session_home,
        f"openai/{MODEL}",
        dataset,
        workdir / "openai",
        workdir / "openai.db",
        base_url=llama_server,
    )


@pytest.fixture(scope="module")
def litellm_audit(llama_server: str, session_home: Path, workdir: Path, dataset: Path) -> Audit:
    if importlib.util.find_spec("litellm") is None:
        pytest.skip("litellm is not installed (pip install 'sua-audit[litellm]')")
    return run_audit(
        session_home,
        f"litellm/openai/{MODEL}",
        dataset,
        workdir / "litellm",
        workdir / "litellm.db",
        base_url=llama_server,
    )


# -- checks shared by the audits -----------------------------------------------------------


def check_distribution(dist: dict[str, float], labels: list[str]) -> None:
    assert list(dist) == labels
    assert all(0.0 <= p <= 1.0 for p in dist.values()), dist
    assert sum(dist.values()) == pytest.approx(1.0, abs=1e-5), dist


def entropy(dist: dict[str, float]) -> float:
    return -sum(p * math.log(p) for p in dist.values() if p > 0)


def check_scores(row: dict[str, Any]) -> None:
    """The row's scores are finite and consistent with each other (λ = 1)."""
    assert row["entropy"] is not None and row["entropy"] >= 0
    assert row["sensitivity"] is not None and row["sensitivity"] >= 0
    divergences = [v["divergence"] for v in row["variants"][1:]]
    assert row["sensitivity"] == pytest.approx(sum(divergences) / len(divergences), abs=1e-9)
    assert row["sensitivity_max"] == pytest.approx(max(divergences), abs=1e-9)
    assert row["sua"] == pytest.approx(row["sensitivity"] - row["entropy"], abs=1e-9)


def check_hosted_audit(audit: Audit, provider: str, model: str, base_url: str) -> None:
    """What every hosted audit of ITEMS against llama.cpp must show."""
    s = audit.summary
    assert [r["id"] for r in audit.rows] == [item["id"] for item in ITEMS]
    # A label item fails only when SmolLM2 names no label at all: its first token's top
    # logprobs put under 10% on label tokens, and none of its sampled answers names one. That
    # is a finding about the model (recorded with its reason), not a transport error.
    failed = [r for r in audit.rows if r["status"] == "failed"]
    assert all(r["task"] != "qa" and r["error"]["kind"] == "empty" for r in failed), failed
    assert len(failed) <= 1, [r["error"] for r in failed]
    ok_rows = [r for r in audit.rows if r["status"] == "ok"]
    assert s["results"]["items_scored"] == len(ok_rows)
    assert s["results"]["items_failed"] == len(failed)
    assert s["model_calls"] + s["failed_requests"] == expected_requests(ITEMS)
    assert s["cache_hits"] == 0
    assert s["tokens"]["prompt"] > 0 and s["tokens"]["completion"] > 0  # llama.cpp sends usage

    ident = s["model"]
    assert (ident["provider"], ident["model"], ident["base_url"]) == (provider, model, base_url)
    assert ident["server_honours_n"] is False  # llama.cpp answers n > 1 with one choice
    assert ident["server_returns_logprobs"] is True
    assert ident["retries"] == 0

    paths: Counter[str] = Counter()
    for row in ok_rows:
        assert [v["kind"] for v in row["variants"]] == ["clean", "typo", "word"]
        check_scores(row)
        for v in row["variants"]:
            paths[v["path"]] += 1
        if row["task"] == "qa":
            assert row["prediction"] == row["variants"][0]["prediction"]
            for v in row["variants"]:
                # n was ignored, so each of the k answers was its own seeded request.
                assert v["path"] == "seeded"
                assert len(v["samples"]) == SAMPLES
                assert isinstance(v["prediction"], str) and v["prediction"]
            assert 0 <= row["self_consistency"] <= 1
        else:
            labels = LABELS[row["id"]]
            assert row["distribution"] == row["variants"][0]["distribution"]
            assert row["prediction"] in labels
            for v in row["variants"]:
                assert v["path"] in CHOICE_PATHS
                check_distribution(v["distribution"], labels)
                assert v["prediction"] == max(v["distribution"], key=v["distribution"].get)
            assert row["entropy"] == pytest.approx(entropy(row["distribution"]), abs=1e-4)
    assert dict(paths) == s["results"]["answer_paths"]

    choice_paths = Counter(v["path"] for r in ok_rows if r["task"] != "qa" for v in r["variants"])
    assert choice_paths["top_logprobs"] > sum(choice_paths.values()) / 2, choice_paths

    # HTTP calls: one per choice variant scored from top log-probabilities; per QA variant one
    # greedy call and k seeded calls, plus the n > 1 calls that found out n is ignored (one per
    # sampling request that was in flight before the first answer came back).
    sampling_requests = len(QA_IDS) * (K + 1)
    if set(choice_paths) == {"top_logprobs"} and not failed:
        least = s["model_calls"] + sampling_requests * (SAMPLES - 1) + 1
        assert least <= ident["http_calls"] <= least + sampling_requests - 1
    else:
        assert ident["http_calls"] > s["model_calls"] + sampling_requests * (SAMPLES - 1)


# -- 1. the OpenAI backend ----------------------------------------------------------------


def test_openai_backend_audits_llama_cpp(openai_audit: Audit, llama_server: str) -> None:
    check_hosted_audit(openai_audit, "openai", MODEL, llama_server)


def test_rerun_is_answered_from_the_cache(
    openai_audit: Audit, llama_server: str, session_home: Path, workdir: Path, dataset: Path
) -> None:
    again = run_audit(
        session_home,
        f"openai/{MODEL}",
        dataset,
        workdir / "openai-rerun",
        workdir / "openai.db",  # the first run's cache
        base_url=llama_server,
    )
    first = openai_audit.summary
    assert again.summary["model_calls"] == 0
    assert again.summary["cache_hits"] == first["model_calls"]
    # Failures are never cached: the rerun asks again (and the same seeds fail the same way).
    assert again.summary["failed_requests"] == first["failed_requests"]
    if not first["failed_requests"]:
        assert again.summary["model"]["http_calls"] == 0
    assert again.summary["tokens"] == {"prompt": 0, "completion": 0}  # cache hits are free
    assert strip_timing(again.rows) == strip_timing(openai_audit.rows)
    assert again.summary["results"] == first["results"]


# -- 2. the same audit through LiteLLM ----------------------------------------------------


def test_litellm_backend_audits_llama_cpp(litellm_audit: Audit, llama_server: str) -> None:
    check_hosted_audit(litellm_audit, "litellm", f"openai/{MODEL}", llama_server)


def test_litellm_and_openai_backends_agree(litellm_audit: Audit, openai_audit: Audit) -> None:
    """Both backends send the same bodies to the same deterministic server."""
    for item_id in CHOICE_IDS:
        a, b = openai_audit.row(item_id), litellm_audit.row(item_id)
        assert a["status"] == b["status"]
        if a["status"] == "failed":
            continue
        for va, vb in zip(a["variants"], b["variants"], strict=True):
            assert va["text"] == vb["text"]
            assert va["path"] == vb["path"]
            diff = max(abs(va["distribution"][k] - vb["distribution"][k]) for k in LABELS[item_id])
            assert diff < 1e-3, (item_id, va["kind"], va["distribution"], vb["distribution"])
        assert a["prediction"] == b["prediction"]
    for item_id in QA_IDS:
        a, b = openai_audit.row(item_id), litellm_audit.row(item_id)
        for va, vb in zip(a["variants"], b["variants"], strict=True):
            assert va["prediction"] == vb["prediction"]  # greedy
            # The seeded answers match only if LiteLLM forwarded each request's seed.
            assert va["samples"] == vb["samples"], item_id
    assert litellm_audit.summary["model_calls"] == openai_audit.summary["model_calls"]


# -- 3. the embedded backend on the same weights --------------------------------------------


def test_embedded_backend_roughly_agrees_on_classification(
    openai_audit: Audit, embedded_dir: Path, session_home: Path, workdir: Path, dataset: Path
) -> None:
    """The embedded model is the same GGUF, de-quantized and run by transformers; llama.cpp
    computes with the Q4_1 weights themselves. Label probabilities differ by a few points, so
    only a loose agreement is asserted."""
    embedded = run_audit(
        session_home,
        "embedded/smollm2-135m-instruct",
        dataset,
        workdir / "embedded",
        workdir / "embedded.db",
        "--limit",
        str(len(CLASSIFICATION_IDS)),  # the classification items come first
    )
    assert [r["id"] for r in embedded.rows] == CLASSIFICATION_IDS
    for item_id in CLASSIFICATION_IDS:
        local, served = embedded.row(item_id), openai_audit.row(item_id)
        assert local["status"] == "ok"
        for vl, vs in zip(local["variants"], served["variants"], strict=True):
            assert vl["text"] == vs["text"]  # rule perturbations do not depend on the model
            assert vl["path"] == "exact"
            check_distribution(vl["distribution"], LABELS[item_id])
            labels = LABELS[item_id]
            diff = max(abs(vl["distribution"][k] - vs["distribution"][k]) for k in labels)
            assert diff < 0.1, (item_id, vl["kind"], vl["distribution"], vs["distribution"])
            if max(vl["distribution"].values()) > 0.6:  # a clear preference must be shared
                assert vl["prediction"] == vs["prediction"]


# -- the label-sampling fallback in a whole audit -----------------------------------------


@pytest.fixture(scope="module")
def fallback_audit(llama_server: str, session_home: Path, workdir: Path) -> Audit:
    item = {
        "id": "fallback",
        "task": "classification",
        "input": "What is the capital of France?",
        "labels": list(FALLBACK_CHOICES),
        "label": FALLBACK_CHOICES[0],
    }
    return run_audit(
        session_home,
        f"openai/{MODEL}",
        write_jsonl(workdir / "fallback.jsonl", [item]),
        workdir / "fallback",
        workdir / "fallback.db",
        base_url=llama_server,
    )


def test_labels_no_first_token_separates_are_scored_from_samples(fallback_audit: Audit) -> None:
    (row,) = fallback_audit.rows
    if row["status"] == "failed":
        # Legitimate when no sampled answer names a label; model text, so not pinned here.
        assert row["error"]["kind"] == "empty", row["error"]
        pytest.skip(f"no sampled answer named a label: {row['error']['message']}")
    assert fallback_audit.summary["results"]["answer_paths"] == {"samples": K + 1}
    labels = list(FALLBACK_CHOICES)
    for v in row["variants"]:
        assert v["path"] == "samples"
        check_distribution(v["distribution"], labels)
        # Shares of the (at most k) sampled answers that named a label.
        probs = v["distribution"].values()
        assert any(all(abs(p * d - round(p * d)) < 1e-4 for p in probs) for d in (1, 2, 3))
    check_scores(row)


# -- what the hosted backend does, request by request ---------------------------------------


@dataclasses.dataclass
class Probe:
    """One backend's answers to three requests with the same messages, and its HTTP calls."""

    greedy: Completion
    """n = 1, temperature 0: one HTTP call, so its prompt_tokens is the prompt's size."""
    qa: Completion
    qa_calls: int
    choice: Completion | None
    choice_error: RequestFailed | None
    choice_calls: int
    honours_n: bool | None
    returns_logprobs: bool | None


async def _probe(base_url: str) -> Probe:
    backend = get_backend(f"openai/{MODEL}", base_url=base_url, concurrency=1, timeout=120)
    assert isinstance(backend, HostedBackend)
    try:
        messages = tasks.build_messages("qa", {"input": "What is the capital of France?"}, None)
        greedy = await backend.complete(
            CompletionRequest(messages, GenerationParams(temperature=0.0, max_tokens=MAX_TOKENS))
        )
        sampling = GenerationParams(temperature=0.7, max_tokens=MAX_TOKENS, seed=0)
        before = backend.calls
        qa = await backend.complete(
            CompletionRequest(messages, sampling, sample_index=1, n=SAMPLES)
        )
        qa_calls = backend.calls - before
        before = backend.calls
        choice: Completion | None = None
        error: RequestFailed | None = None
        try:
            choice = await backend.complete(
                CompletionRequest(messages, sampling, choices=FALLBACK_CHOICES, n=SAMPLES)
            )
        except RequestFailed as exc:
            error = exc
        return Probe(
            greedy=greedy,
            qa=qa,
            qa_calls=qa_calls,
            choice=choice,
            choice_error=error,
            choice_calls=backend.calls - before,
            honours_n=backend.honours_n,
            returns_logprobs=backend.returns_logprobs,
        )
    finally:
        await backend.aclose()


@pytest.fixture(scope="module")
def probe(llama_server: str) -> Probe:
    with pytest.MonkeyPatch.context() as mp:
        for var in [v for v in os.environ if v.endswith("_API_KEY")]:
            mp.delenv(var)  # no key of the caller's goes to the test server
        return asyncio.run(_probe(llama_server))


def test_hosted_paths_request_by_request(probe: Probe) -> None:
    assert probe.greedy.path == "single" and probe.greedy.text
    assert probe.greedy.prompt_tokens > 10
    # n = 3 comes back with one choice: the backend learns that and sends 3 seeded calls.
    assert probe.qa.path == "seeded"
    assert probe.honours_n is False
    assert probe.qa.texts is not None and len(probe.qa.texts) == SAMPLES
    assert probe.qa_calls == 1 + SAMPLES
    if probe.choice is None:
        assert probe.choice_error is not None and probe.choice_error.kind == "empty"
        pytest.skip(f"no sampled answer named a label: {probe.choice_error}")
    # No first token separates the labels: the top log-probabilities are read (the server has
    # them), then the same seeded samples as the QA request are drawn and parsed.
    assert probe.returns_logprobs is True
    assert probe.choice.path == "samples"
    assert probe.choice.texts == probe.qa.texts
    assert probe.choice_calls == 1 + SAMPLES  # n is known to be ignored by now
    named = Counter(parse_choice(t, FALLBACK_CHOICES) for t in probe.choice.texts)
    named.pop(None, None)
    total = sum(named.values())
    assert probe.choice.choice_logprobs is not None
    for i, lp in enumerate(probe.choice.choice_logprobs):
        assert math.exp(lp) == pytest.approx(named.get(i, 0) / total)


@pytest.mark.parametrize("request_kind", ["qa", "choice"])
def test_every_http_call_is_counted_in_tokens(probe: Probe, request_kind: str) -> None:
    """Each HTTP call of a request sends the same messages, so the request's prompt tokens
    are its calls times the prompt's size."""
    completion, calls = (
        (probe.qa, probe.qa_calls) if request_kind == "qa" else (probe.choice, probe.choice_calls)
    )
    if completion is None:
        pytest.skip("no sampled answer named a label")
    assert completion.prompt_tokens == calls * probe.greedy.prompt_tokens


# -- the cost estimate ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def priced_audit(llama_server: str, session_home: Path, workdir: Path) -> Audit:
    """Label scoring only, priced at $1 per 1M tokens: one call per variant with a 1-token
    answer, as the estimate assumes (token counts are fixed by the tokenizer, not by what the
    model says)."""
    choice_items = [item for item in ITEMS if item["task"] != "qa"]
    return run_audit(
        session_home,
        f"openai/{MODEL}",
        write_jsonl(workdir / "priced.jsonl", choice_items),
        workdir / "priced",
        workdir / "priced.db",
        "--price-in",
        "1",
        "--price-out",
        "1",
        base_url=llama_server,
    )


def test_priced_audit_reports_its_cost(priced_audit: Audit) -> None:
    s = priced_audit.summary
    cost, tokens = s["cost"], s["tokens"]
    assert cost["price_source"] == "--price-in/--price-out"
    assert cost["usd"] == pytest.approx((tokens["prompt"] + tokens["completion"]) / 1e6, abs=1e-6)
    assert 0 < cost["estimate_usd"] <= cost["worst_case_usd"]
    if s["results"]["answer_paths"] == {"top_logprobs": s["model_calls"]}:
        assert tokens["completion"] == s["model_calls"]  # max_tokens=1 per label scoring


def test_cost_worst_case_is_an_upper_bound(priced_audit: Audit) -> None:
    cost = priced_audit.summary["cost"]
    assert cost["usd"] <= cost["worst_case_usd"], (cost, priced_audit.summary["tokens"])


# -- QA answers clustered by a judge served by llama.cpp ------------------------------------


def rescore(home: Path, run: Path, out: Path, *extra: str, base_url: str) -> dict[str, Any]:
    """``sua-audit rescore RUN --out OUT ...`` in a subprocess with the judge's server in
    ``SUA_AUDIT_BASE_URL`` (the judge is a helper model: it does not take ``--base-url``)."""
    env = clean_env(home)
    env["SUA_AUDIT_BASE_URL"] = base_url
    done = subprocess.run(
        [sys.executable, "-m", "sua_audit", "rescore", str(run), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=env,
        check=False,
    )
    assert done.returncode == 0, f"rescore exited {done.returncode}:\n{done.stderr}"
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def qa_rows(out: Path) -> dict[str, dict[str, Any]]:
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return {r["id"]: r for r in rows if r["id"] in QA_IDS}


def test_a_judge_on_llama_cpp_reclusters_qa_answers_from_the_cache(
    openai_audit: Audit, llama_server: str, session_home: Path, workdir: Path
) -> None:
    # The audited answers come from the run's cache (zero audited-model calls); the judge is the
    # same GGUF behind the server, asked in both orders with label scoring (choice log-probs).
    run = workdir / "openai"
    judge = f"openai/{MODEL}"
    first = rescore(
        session_home, run, workdir / "judged", "--equivalence", "judge",
        "--equivalence-model", judge, base_url=llama_server,
    )  # fmt: skip
    eq = first["results"]["equivalence"]
    assert eq["method"] == "judge" and eq["model"]["model"] == MODEL
    assert eq["template"].startswith("judge/") and eq["answer_template"].startswith("judge/")
    exact = qa_rows(run)
    judged = qa_rows(workdir / "judged")
    assert set(judged) == set(exact) == set(QA_IDS)
    distinct = [
        {a for v in r["variants"] for a in (v["prediction"], *v["samples"])} for r in exact.values()
    ]
    if any(len(d) > 1 for d in distinct):
        assert eq["model_calls"] > 0
    for item_id, row in judged.items():
        # The exact-match entropy is kept beside the meaning one, equal to the run's own.
        assert row["semantic_entropy_exact"] == pytest.approx(exact[item_id]["semantic_entropy"])
        # A judge only merges: answers equal after normalisation always share a cluster.
        assert 1 <= len(row["clusters"]) <= len(exact[item_id]["clusters"])
    again = rescore(
        session_home, run, workdir / "judged-again", "--equivalence", "judge",
        "--equivalence-model", judge, base_url=llama_server,
    )  # fmt: skip
    assert again["results"]["equivalence"]["model_calls"] == 0
    assert again["results"]["equivalence"]["cache_hits"] >= eq["model_calls"]
    assert strip_timing(qa_rows(workdir / "judged-again")) == strip_timing(judged)
