"""Pure parts of the hosted backends: label matching, parsing, backoff, limits, errors, prices."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from sua_audit.backends.hosted import (
    AdaptiveLimit,
    backoff_seconds,
    match_top_logprobs,
    parse_choice,
)
from sua_audit.backends.openai_backend import (
    classify_status,
    public_url,
    resolve_base_url,
    retry_after_seconds,
)
from sua_audit.config import AuditConfig
from sua_audit.dataset import DatasetInfo
from sua_audit.errors import RequestFailed, redact
from sua_audit.pricing import Price, estimate, judge_estimate, lookup, rewriter_estimate

FORMS = ("negative", "Negative", "positive", "Positive")
OWNERS = (0, 0, 1, 1)


def test_top_logprobs_map_to_forms_with_and_without_leading_space() -> None:
    top = [(" positive", math.log(0.5)), ("positive", math.log(0.2)), ("Neg", math.log(0.1))]
    lps = match_top_logprobs(top, FORMS, OWNERS)
    assert lps[2] == pytest.approx(math.log(0.7))  # both spellings of the same token add up
    assert lps[1] == pytest.approx(math.log(0.1))  # "Neg" is a prefix of "Negative" only
    assert lps[0] == -math.inf and lps[3] == -math.inf


def test_ambiguous_prefix_is_dropped_and_unrelated_tokens_ignored() -> None:
    forms = ("neutral", "negative")
    top = [("ne", math.log(0.6)), ("The", math.log(0.3)), ("neutral", math.log(0.05))]
    lps = match_top_logprobs(top, forms)
    assert lps[0] == pytest.approx(math.log(0.05))
    assert lps[1] == -math.inf


def test_no_label_in_top_gives_all_minus_inf() -> None:
    assert all(v == -math.inf for v in match_top_logprobs([("The", -0.1)], FORMS, OWNERS))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Positive.", 2),
        ("I think it is negative, not positive", 0),
        ("not_entailment", None),
        ("The answer: NEGATIVE", 0),
        ("positively glowing", None),
        ("", None),
    ],
)
def test_parse_choice(text: str, expected: int | None) -> None:
    assert parse_choice(text, FORMS) == expected


def test_parse_choice_accepts_spaces_for_underscores() -> None:
    assert parse_choice("It is not entailment.", ("entailment", "not_entailment")) == 1


def test_backoff_honours_retry_after_and_caps_growth() -> None:
    assert backoff_seconds(3, 2.5, base=0.5, cap=60) == 2.5
    assert backoff_seconds(1, 500.0, base=0.5, cap=60) == 60
    for attempt in range(1, 8):
        wait = backoff_seconds(attempt, None, base=0.5, cap=4.0)
        assert 0 <= wait <= min(4.0, 0.5 * 2 ** (attempt - 1))


def test_adaptive_limit_halves_on_throttle_and_grows_back() -> None:
    async def go() -> tuple[int, int, int]:
        limit = AdaptiveLimit(8)
        await limit.throttle(None)
        halved = limit.limit
        await limit.throttle(None)
        quartered = limit.limit
        for _ in range(100):
            await limit.acquire()
            await limit.release(ok=True)
        return halved, quartered, limit.limit

    halved, quartered, grown = asyncio.run(go())
    assert (halved, quartered) == (4, 2)
    assert grown == 8


def test_adaptive_limit_pauses_for_retry_after() -> None:
    async def go() -> float:
        limit = AdaptiveLimit(4)
        await limit.throttle(0.2)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await limit.acquire()
        await limit.release(ok=True)
        return loop.time() - t0

    assert asyncio.run(go()) >= 0.18


def test_adaptive_limit_pause_is_capped_by_max_pause() -> None:
    """A Retry-After within ``max_pause`` pauses everyone; a longer one pauses nobody (the
    request that got it fails instead), so one ``Retry-After: 86400`` cannot freeze a run."""

    async def waited(limit: AdaptiveLimit, retry_after: float) -> float:
        await limit.throttle(retry_after)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await asyncio.wait_for(limit.acquire(), timeout=5)
        await limit.release(ok=True)
        return loop.time() - t0

    async def go() -> tuple[float, float, int]:
        capped = AdaptiveLimit(4, max_pause=1.0)
        long_wait = await waited(capped, 86400.0)
        short_wait = await waited(capped, 0.2)
        return long_wait, short_wait, capped.throttles

    long_wait, short_wait, throttles = asyncio.run(go())
    assert long_wait < 0.1
    assert short_wait >= 0.18
    assert throttles == 2  # both 429s still count, and halve the limit


def test_adaptive_limit_bounds_in_flight() -> None:
    async def go() -> int:
        limit = AdaptiveLimit(3)

        async def one() -> None:
            await limit.acquire()
            await asyncio.sleep(0.01)
            await limit.release(ok=True)

        await asyncio.gather(*(one() for _ in range(20)))
        return limit.peak

    assert asyncio.run(go()) == 3


def test_retry_after_forms() -> None:
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= (retry_after_seconds({"retry-after": later}) or 0) <= 31
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds(None) is None


@pytest.mark.parametrize(
    ("status", "code", "message", "kind"),
    [
        (429, "rate_limit_exceeded", "", "rate_limit"),
        (503, "", "overloaded", "server"),
        (401, "invalid_api_key", "", "auth"),
        (404, "model_not_found", "", "not_found"),
        (400, "context_length_exceeded", "", "context_length"),
        (400, "", "This model's maximum context length is 4096 tokens", "context_length"),
        (400, "content_filter", "", "content_filter"),
        (422, "", "bad field", "bad_request"),
    ],
)
def test_classify_status(status: int, code: str, message: str, kind: str) -> None:
    assert classify_status(status, code, message) == kind


def test_base_url_resolution_and_public_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SUA_AUDIT_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert resolve_base_url(None) == "https://api.openai.com/v1"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://b:1/v1/")
    assert resolve_base_url(None) == "http://b:1/v1"
    monkeypatch.setenv("SUA_AUDIT_BASE_URL", "http://a:1/v1")
    assert resolve_base_url(None) == "http://a:1/v1"
    assert resolve_base_url("http://c/v1") == "http://c/v1"
    assert public_url("http://user:pw@host:8000/v1") == "http://host:8000/v1"


def test_redact_removes_env_secrets_and_key_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_VENDOR_API_KEY", "zzsecretvalue123")
    text = "bad key zzsecretvalue123 and Incorrect API key provided: sk-proj-abc****wxyz."
    out = redact(text)
    assert "zzsecretvalue123" not in out and "sk-proj" not in out and "wxyz" not in out
    failure = RequestFailed("auth", text)
    assert "zzsecretvalue123" not in str(failure)


def test_prices_from_flags_table_and_local() -> None:
    cfg = AuditConfig(dataset="x.jsonl", price_in=2.0, price_out=8.0)
    price = lookup("openai/anything", cfg)
    assert price is not None and price.input == pytest.approx(2e-6)
    assert lookup("hf/some/dir") == Price(0.0, 0.0, "local model")
    assert lookup("openai/definitely-not-a-model-name") is None


def test_batch_prices_come_from_the_table_or_half_the_interactive_price() -> None:
    from sua_audit.pricing import batch_price

    interactive = Price(2e-6, 8e-6, "t")
    listed = batch_price(
        interactive, {"input_cost_per_token_batches": 1e-6, "output_cost_per_token_batches": 3e-6}
    )
    assert (listed.input, listed.output) == (1e-6, 3e-6) and "batch" in listed.source
    halved = batch_price(interactive, {})
    assert (halved.input, halved.output) == (1e-6, 4e-6) and "batch at 0.5x" in halved.source
    # Prices given on the command line are what the user pays: used as given.
    flags = AuditConfig(dataset="x.jsonl", price_in=2.0, price_out=8.0, batch=True)
    given = lookup("openai/anything", flags)
    assert given is not None and given.input == pytest.approx(2e-6)
    table = lookup("openai/gpt-4o", AuditConfig(dataset="x.jsonl"))
    if table is not None:  # LiteLLM's price table is installed
        batched = lookup("openai/gpt-4o", AuditConfig(dataset="x.jsonl", batch=True))
        assert batched is not None and batched.input < table.input


def test_estimate_expected_and_worst_case() -> None:
    info = DatasetInfo(
        "x.jsonl",
        "0" * 64,
        10,
        tasks={"classification": 6, "qa": 4},
        input_chars={"classification": 6 * 400, "qa": 4 * 80},
    )
    cfg = AuditConfig(dataset="x.jsonl", perturbations=4, samples=5, max_tokens=32)
    est = estimate(info, cfg, Price(1e-6, 2e-6, "test"))
    assert est["requests"] == 6 * 5 + 4 * 5 * 2
    # expected: 1-token label answers; QA greedy + 5 samples of up to 32 tokens per variant
    assert est["completion_tokens"] == 6 * 5 + 4 * 5 * 6 * 32
    # classification: 30 prompts of (100 + 70) tokens; QA: greedy + one n request, (20 + 70)
    assert est["prompt_tokens"] == 30 * 170 + 4 * 5 * 2 * 90
    assert est["usd"] == pytest.approx(
        est["prompt_tokens"] * 1e-6 + est["completion_tokens"] * 2e-6
    )
    # worst case: every variant falls back to a probe plus 5 seeded samples of 32 tokens
    worst_prompts = 30 * 7 * 170 + 20 * 7 * 90
    worst_completion = 30 * (1 + 6 * 32) + 20 * 7 * 32
    assert est["worst_case_usd"] == pytest.approx(worst_prompts * 1e-6 + worst_completion * 2e-6)


def test_judge_estimate_counts_comparisons_per_qa_item() -> None:
    info = DatasetInfo(
        "x.jsonl", "0" * 64, 5, tasks={"qa": 2, "classification": 3},
        input_chars={"qa": 2 * 40, "classification": 3 * 400},
    )  # fmt: skip
    exact = AuditConfig(dataset="x.jsonl", perturbations="typo:1", samples=2)
    assert judge_estimate(info, exact, Price(1e-6, 1e-6, "t")) is None
    cfg = AuditConfig(
        dataset="x.jsonl", perturbations="typo:1", samples=2, max_tokens=10,
        equivalence="judge", equivalence_model="openai/gpt-4o",
    )  # fmt: skip
    est = judge_estimate(info, cfg, Price(1e-6, 2e-6, "t"))
    assert est is not None and est["model"] == "openai/gpt-4o"
    # n = (1 + 1) variants × (1 greedy + 2 samples) = 6 answers per QA item; both orders.
    assert est["requests"] == 2 * 2 * (6 - 1)
    assert est["worst_case_requests"] == 2 * 2 * 15
    # question (40 chars = 10 tokens) + two 10-token answers + the judge's own words
    assert est["prompt_tokens"] == round(est["requests"] * (10 + 20 + 60))
    assert est["completion_tokens"] == est["requests"]
    assert est["usd"] == pytest.approx(est["prompt_tokens"] * 1e-6 + est["requests"] * 2e-6)
    assert est["worst_case_usd"] == pytest.approx(est["usd"] * 3)
    labels_only = DatasetInfo("x.jsonl", "0" * 64, 3, tasks={"classification": 3})
    assert judge_estimate(labels_only, cfg, None) is None
    unpriced = judge_estimate(info, cfg, None)
    assert unpriced is not None and unpriced["usd"] is None


def test_rewriter_estimate_counts_fields_samples_and_judge_calls() -> None:
    info = DatasetInfo(
        "x.jsonl",
        "0" * 64,
        5,
        tasks={"classification": 3, "nli": 2},
        input_chars={"classification": 3 * 400, "nli": 2 * 800},
    )
    rules_only = AuditConfig(dataset="x.jsonl", perturbations="typo:2,word:1")
    assert rewriter_estimate(info, rules_only, Price(1e-6, 1e-6, "t")) is None

    cfg = AuditConfig(dataset="x.jsonl", perturbations="paraphrase:2,typo:1")
    est = rewriter_estimate(info, cfg, Price(1e-6, 2e-6, "t"))
    assert est is not None
    # one request per item and field: 3 classification inputs + 2 × (premise, hypothesis)
    assert est["requests"] == 3 + 2 * 2
    # a server ignoring n needs 2n + 2 = 6 seeded requests for each of them
    assert est["worst_case_requests"] == 7 * 6
    # 6 rewrites of ~(100 + 8) tokens per request; the text is 100 tokens per field either way
    assert est["completion_tokens"] == 7 * 6 * 108
    assert est["usd"] == pytest.approx(
        est["prompt_tokens"] * 1e-6 + est["completion_tokens"] * 2e-6
    )
    assert est["worst_case_usd"] > est["usd"]

    judged = AuditConfig(
        dataset="x.jsonl", perturbations="paraphrase:2,ambiguity:1", meaning_filter="both"
    )
    est_j = rewriter_estimate(info, judged, None)
    assert est_j is not None and est_j["usd"] is None
    # paraphrase: 7 rewrite requests + 7 × 6 rewrites judged twice; ambiguity (2·1 + 2 = 4
    # samples) is never judged
    assert est_j["requests"] == 7 + 7 * 6 * 2 + 7


def test_the_openai_client_runs_on_the_sdks_aiohttp_transport_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    openai = pytest.importorskip("openai")
    pytest.importorskip("aiohttp")
    from sua_audit.backends.openai_backend import TRANSPORT_ENV, _http_client

    def modules(client: object) -> str:
        return " ".join(k.__module__ for k in type(client).__mro__)

    # httpx's pure-Python pool cost about as much CPU per request as the rest of the client.
    client = _http_client(openai, "http://127.0.0.1:9/v1", 5.0)
    assert client is not None and "aiohttp" in modules(client)
    assert _http_client(openai, "http://user:pw@127.0.0.1:9/v1", 5.0) is None  # Basic auth
    monkeypatch.setenv(TRANSPORT_ENV, "httpx")
    assert _http_client(openai, "http://127.0.0.1:9/v1", 5.0) is None


def test_a_refused_connection_is_a_connection_failure_on_either_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sua_audit.backends.base import CompletionRequest, Message
    from sua_audit.backends.openai_backend import TRANSPORT_ENV, OpenAIBackend

    async def ask() -> RequestFailed:
        backend = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", timeout=3, max_attempts=1)
        try:
            with pytest.raises(RequestFailed) as info:
                await backend.complete(CompletionRequest((Message("user", "hi"),)))
            return info.value
        finally:
            await backend.aclose()

    monkeypatch.setenv("OPENAI_API_KEY", "x")
    for transport in ("", "sdk", "httpx"):
        monkeypatch.setenv(TRANSPORT_ENV, transport)
        assert asyncio.run(ask()).kind == "connection", transport


@pytest.mark.parametrize(
    ("transport", "url", "direct"),
    [
        ("", "http://127.0.0.1:9/v1", True),
        ("direct", "http://127.0.0.1:9/v1", True),
        ("sdk", "http://127.0.0.1:9/v1", False),
        ("httpx", "http://127.0.0.1:9/v1", False),
        ("", "http://user:pw@127.0.0.1:9/v1", False),  # httpx sends URL credentials
    ],
)
def test_chat_completions_go_straight_over_aiohttp_unless_the_sdk_is_asked_for(
    monkeypatch: pytest.MonkeyPatch, transport: str, url: str, direct: bool
) -> None:
    pytest.importorskip("aiohttp")
    from sua_audit.backends.openai_backend import TRANSPORT_ENV, OpenAIBackend

    monkeypatch.setenv(TRANSPORT_ENV, transport)
    backend = OpenAIBackend("m", base_url=url)
    try:
        assert (backend._channel.direct is not None) is direct
    finally:
        asyncio.run(backend.aclose())


def test_the_direct_path_sends_the_headers_the_sdk_would_and_reads_errors_the_same_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Key, organization, project and the SDK's user agent; a 429's Retry-After and a 400's
    message come back as the SDK path reports them."""
    pytest.importorskip("aiohttp")
    from sua_audit.backends.base import CompletionRequest, Message
    from sua_audit.backends.openai_backend import TRANSPORT_ENV, OpenAIBackend
    from tests.support.stub_openai import Rule, StubServer, status

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-direct")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-direct")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-direct")
    request = CompletionRequest((Message("user", "hello there"),))

    async def ask(base_url: str) -> tuple[str | None, list[RequestFailed]]:
        backend = OpenAIBackend("stub-model", base_url=base_url, max_attempts=1)
        try:
            done = await backend.complete(request)
            failures = []
            for _ in range(2):
                with pytest.raises(RequestFailed) as info:
                    await backend.complete(request)
                failures.append(info.value)
            return done.text, failures
        finally:
            await backend.aclose()

    seen = {}
    for transport in ("", "sdk"):
        monkeypatch.setenv(TRANSPORT_ENV, transport)
        rules = [
            Rule(status(429, retry_after=7), on=2),
            Rule(status(400, message="maximum context length exceeded"), on=3),
        ]
        with StubServer(faults=rules, api_key="sk-test-direct") as server:
            text, failures = asyncio.run(ask(server.base_url))
            headers = server.requests[0].headers
        assert text
        assert headers["authorization"] == "Bearer sk-test-direct"
        assert headers["openai-organization"] == "org-direct"
        assert headers["openai-project"] == "proj-direct"
        assert headers["user-agent"].startswith("AsyncOpenAI/Python")
        seen[transport] = [(f.kind, f.status, f.retry_after, str(f)) for f in failures]
    assert seen[""] == seen["sdk"]
    assert [k for k, *_ in seen[""]] == ["rate_limit", "context_length"]
    assert seen[""][0][2] == 7


def test_the_direct_path_finds_its_proxy_once_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP(S)_PROXY and NO_PROXY apply as for the SDK, looked up when the poster is made
    (aiohttp's trust_env looked them up again, in a thread, on every request)."""
    from sua_audit.backends.direct import env_proxy

    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert env_proxy("http://api.example.com/v1") is None
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    assert env_proxy("http://api.example.com/v1") == "http://proxy.example:3128"
    assert env_proxy("https://api.example.com/v1") is None  # only HTTPS_PROXY covers https
    assert env_proxy("http://127.0.0.1:8080/v1") is None
