"""The Generator: cache hits and misses, cache modes, errors never cached, flush on failure."""

from __future__ import annotations

import asyncio

import pytest
from sqlite_utils import Database

from sua_audit.backends.base import CompletionRequest, GenerationParams, Message
from sua_audit.backends.fake import FakeBackend
from sua_audit.engine import Generator
from sua_audit.errors import BackendError
from sua_audit.store import Store


def _reqs(n: int) -> list[CompletionRequest]:
    return [
        CompletionRequest((Message("user", f"q{i}"),), GenerationParams(0.7, 8, i), sample_index=i)
        for i in range(n)
    ]


def _run(gen: Generator, reqs: list[CompletionRequest]):
    return asyncio.run(gen.generate_many(reqs))


def test_miss_then_hit() -> None:
    store = Store(Database(memory=True))
    first = Generator(FakeBackend(), store)
    a = _run(first, _reqs(10))
    first.flush()
    assert (first.stats.model_calls, first.stats.cache_hits) == (10, 0)
    backend = FakeBackend()
    second = Generator(backend, store)
    b = _run(second, _reqs(12))
    assert (second.stats.model_calls, second.stats.cache_hits) == (2, 10)
    assert len(backend.history) == 2
    assert [c.text for c in a] == [c.text for c in b[:10]]  # cached answers come back intact
    assert store.count_completions() == 10  # two new ones still buffered
    second.flush()
    assert store.count_completions() == 12


def test_results_keep_request_order() -> None:
    gen = Generator(FakeBackend(delay=0.001), None, cache_mode="off")
    reqs = _reqs(20)
    out = _run(gen, reqs)
    ref = _run(Generator(FakeBackend(), None, cache_mode="off"), reqs)
    assert [c.text for c in out] == [c.text for c in ref]


def test_refresh_calls_again_and_off_stores_nothing() -> None:
    store = Store(Database(memory=True))
    gen = Generator(FakeBackend(), store)
    _run(gen, _reqs(3))
    gen.flush()
    refresh = Generator(FakeBackend(), store, cache_mode="refresh")
    _run(refresh, _reqs(3))
    assert refresh.stats.model_calls == 3
    off = Generator(FakeBackend(), store, cache_mode="off")
    _run(off, _reqs(5))
    off.flush()
    assert off.stats.model_calls == 5 and store.count_completions() == 3


def test_errors_are_not_cached_and_finished_work_is_kept() -> None:
    store = Store(Database(memory=True))
    gen = Generator(FakeBackend(fail_after=4), store, max_concurrency=1)
    with pytest.raises(BackendError, match="scripted failure"):
        _run(gen, _reqs(10))
    gen.flush()
    kept = store.count_completions()
    assert kept == 4  # the four answered before the failure, nothing for the failure
    retry = Generator(FakeBackend(), store)
    _run(retry, _reqs(10))
    assert retry.stats.model_calls == 10 - kept and retry.stats.cache_hits == kept


def test_spend_limit_stops_the_run_and_keeps_what_was_paid_for() -> None:
    from sua_audit.errors import SpendLimitReached

    store = Store(Database(memory=True))
    one = asyncio.run(Generator(FakeBackend(), None, cache_mode="off").generate(_reqs(1)[0]))
    per_call = one.prompt_tokens + one.completion_tokens
    assert per_call > 0
    limit = 5.5 * per_call  # USD = tokens here: the sixth answer crosses it
    gen = Generator(
        FakeBackend(delay=0.001),
        store,
        max_concurrency=1,
        spend_limit=(lambda p, c: float(p + c), limit),
    )
    with pytest.raises(SpendLimitReached, match="--max-cost") as caught:
        _run(gen, _reqs(20))
    assert caught.value.exit_code == 3
    assert gen.stats.model_calls == 6
    assert store.count_completions() == 6  # flushed before stopping: a rerun pays for none
    rerun = Generator(FakeBackend(), store)
    _run(rerun, _reqs(6))
    assert rerun.stats.model_calls == 0
