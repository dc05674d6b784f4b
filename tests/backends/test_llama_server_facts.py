"""Pin the behaviours of the real llama.cpp server that the OpenAI-compatible backend relies on.

These talk to ``/v1/chat/completions`` directly (httpx), not through sua-audit, so that a change
in the server shows up here rather than as a puzzling backend failure. SmolLM2-135M is weak and
its text is not stable across builds: the tests check structure and sanity, never exact text.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")

pytestmark = [pytest.mark.slow, pytest.mark.server]

MODEL = "smollm2"
PROMPT = (
    "Text: great movie!\n"
    "Which label fits this text best: negative or positive? Answer with one word."
)


def chat(base_url: str, **body: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    payload.update(body)
    resp = httpx.post(f"{base_url}/chat/completions", json=payload, timeout=120)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def test_top_logprobs_for_the_first_token(llama_server: str) -> None:
    data = chat(llama_server, logprobs=True, top_logprobs=10, max_tokens=1, temperature=0)
    (choice,) = data["choices"]
    content = choice["logprobs"]["content"]
    assert len(content) == 1
    first = content[0]
    assert isinstance(first["token"], str)
    assert math.isfinite(first["logprob"]) and first["logprob"] <= 0
    top = first["top_logprobs"]
    assert len(top) == 10
    tokens = [t["token"] for t in top]
    assert all(isinstance(t, str) for t in tokens)
    assert len(set(tokens)) == len(tokens)
    logprobs = [t["logprob"] for t in top]
    assert all(math.isfinite(lp) and lp <= 0 for lp in logprobs)
    assert logprobs == sorted(logprobs, reverse=True)
    # Probabilities of distinct tokens: their sum cannot exceed one.
    assert sum(math.exp(lp) for lp in logprobs) <= 1 + 1e-3
    # The sampled (greedy) token is the most likely one.
    assert first["token"] == tokens[0]
    assert first["logprob"] == pytest.approx(logprobs[0], abs=1e-4)


def test_n_greater_than_one_is_silently_ignored(llama_server: str) -> None:
    data = chat(llama_server, n=3, max_tokens=4, temperature=0.8, seed=1)
    assert len(data["choices"]) == 1
    assert data["choices"][0]["index"] == 0


def test_seed_makes_sampling_repeatable(llama_server: str) -> None:
    def text(seed: int) -> str:
        data = chat(llama_server, temperature=0.8, seed=seed, max_tokens=24)
        content: str = data["choices"][0]["message"]["content"]
        return content

    assert text(7) == text(7)
    # Different seeds should sample different text; a few tries make a fluke tie negligible.
    assert len({text(seed) for seed in (1, 2, 3, 4)}) > 1


def test_usage_counts_tokens(llama_server: str) -> None:
    data = chat(llama_server, max_tokens=5, temperature=0)
    usage = data["usage"]
    assert usage["prompt_tokens"] > 10  # the chat template wraps a ~25-token prompt
    assert 1 <= usage["completion_tokens"] <= 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert data["choices"][0]["finish_reason"] in {"stop", "length"}


def test_logprobs_need_top_logprobs(llama_server: str) -> None:
    # Quirk: `logprobs: true` alone gives `logprobs: null`; any top_logprobs (even 0) turns it on.
    assert chat(llama_server, logprobs=True, max_tokens=1)["choices"][0]["logprobs"] is None
    data = chat(llama_server, logprobs=True, top_logprobs=0, max_tokens=1)
    assert len(data["choices"][0]["logprobs"]["content"]) == 1


def test_too_long_prompt_is_a_400_with_an_openai_error_body(llama_server: str) -> None:
    payload = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "word " * 3000}],  # n_ctx is 2048
        "max_tokens": 1,
    }
    resp = httpx.post(f"{llama_server}/chat/completions", json=payload, timeout=120)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["type"] == "invalid_request_error"
    assert "2048" in error["message"]
