"""Several replicas of one model: routing, per-replica limits and health (no servers, no sleeps
but a few ticks of the event loop), and the backend and config around them."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from sua_audit.backends import CompletionRequest, GenerationParams, Message, get_backend
from sua_audit.backends.endpoints import COOL_CAP, DOWN_AFTER, Endpoint, EndpointPool
from sua_audit.backends.hosted import HostedBackend
from sua_audit.backends.openai_backend import resolve_base_urls
from sua_audit.errors import ConfigError, RequestFailed
from sua_audit.parts import recorded_config
from sua_audit.runner import make_config
from sua_audit.store import request_key

A, B, C = "http://a:8000/v1", "http://b:8000/v1", "http://c:8000/v1"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def pool(n: int = 3, *, concurrency: int = 2, clock: Clock | None = None) -> EndpointPool:
    urls = [A, B, C][:n]
    return EndpointPool(
        [(url, url) for url in urls],
        concurrency=concurrency,
        clock=clock or Clock(),
        cool_first=2.0,
        cool_cap=16.0,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def failed(kind: str) -> RequestFailed:
    return RequestFailed(kind, kind)


async def attempt(p: EndpointPool, outcome: str, avoid: set[str] | None = None) -> Endpoint:
    """One attempt that ends ``ok`` or with a failure of kind ``outcome``."""
    endpoint, probe = await p.acquire(avoid or set())
    ok = outcome == "ok"
    await p.release(endpoint, probe=probe, ok=ok, failure=None if ok else failed(outcome))
    return endpoint


# -- routing ----------------------------------------------------------------------------------


def test_ties_go_round_robin_and_the_least_loaded_replica_wins() -> None:
    async def go() -> list[str]:
        p = pool()
        order = []
        held = []
        for _ in range(3):  # all idle: one each, in turn
            e, _ = await p.acquire()
            held.append(e)
            order.append(e.url)
        # b gives its slot back: it is now the least loaded, whoever's turn it is
        await p.release(held[1], probe=False, ok=True, failure=None)
        e, _ = await p.acquire()
        order.append(e.url)
        # all at 1/2 again: the turn goes on after b
        e, _ = await p.acquire()
        order.append(e.url)
        return order

    assert run(go()) == [A, B, C, B, C]


def test_load_is_relative_to_each_replicas_limit() -> None:
    async def go() -> str:
        p = pool(2, concurrency=4)
        a, b = p.endpoints
        await a.limit.throttle(None)  # a: limit 2
        await p.acquire()  # a (its turn)
        # a holds 1 of 2 (0.5), b 0 of 4: b; then b 1 of 4 (0.25) still beats a
        first, _ = await p.acquire()
        second, _ = await p.acquire()
        return first.url + " " + second.url

    assert run(go()) == f"{B} {B}"


def test_spread_is_even_when_every_attempt_answers() -> None:
    async def go() -> Counter[str]:
        p = pool()
        return Counter([(await attempt(p, "ok")).url for _ in range(30)])

    assert run(go()) == Counter({A: 10, B: 10, C: 10})


def test_a_full_pool_waits_for_the_first_slot_given_back() -> None:
    async def go() -> tuple[bool, str]:
        p = pool(2, concurrency=1)
        a, _ = await p.acquire()
        await p.acquire()
        waiting = asyncio.ensure_future(p.acquire())
        await asyncio.sleep(0.01)
        blocked = not waiting.done()
        await p.release(a, probe=False, ok=True, failure=None)
        e, _ = await asyncio.wait_for(waiting, 1)
        return blocked, e.url

    assert run(go()) == (True, A)


def test_a_429_halves_and_pauses_only_its_own_replica() -> None:
    async def go() -> tuple[list[int], list[str]]:
        clock = Clock()
        p = pool(clock=clock, concurrency=4)
        a = p.endpoints[0]
        await a.limit.throttle(30.0)  # Retry-After 30 s on a
        limits = [e.limit.limit for e in p.endpoints]
        urls = [(await attempt(p, "ok")).url for _ in range(4)]
        return limits, urls

    limits, urls = run(go())
    assert limits == [2, 4, 4]
    assert A not in urls and set(urls) == {B, C}  # paused: nothing goes to a


# -- health -----------------------------------------------------------------------------------


def test_three_failures_in_a_row_mark_a_replica_down_and_the_others_take_its_requests() -> None:
    async def go() -> None:
        clock = Clock()
        p = pool(clock=clock)
        a = p.endpoints[0]
        for i in range(DOWN_AFTER):
            endpoint, probe = await p.acquire({B, C} if i else set())  # force a
            assert endpoint is a and not probe
            await p.release(a, probe=False, ok=False, failure=failed("connection"))
        assert a.down and a.down_episodes == 1 and a.failures == DOWN_AFTER
        assert a.down_until == clock.now + 2.0
        # while it cools, it gets nothing, even from requests that would rather avoid b and c
        urls = [(await attempt(p, "ok", {B, C})).url for _ in range(6)]
        assert A not in urls

        # cooled: exactly one probe at a time goes to it
        clock.now += 2.0
        probe_at, probe = await p.acquire({B, C})
        assert probe_at is a and probe
        other, second_probe = await p.acquire({B, C})
        assert other is not a and not second_probe
        await p.release(other, probe=False, ok=True, failure=None)
        # the probe fails: down again for twice as long
        await p.release(a, probe=True, ok=False, failure=failed("timeout"))
        assert a.down and a.cooling == 4.0 and a.down_episodes == 1
        for expected in (8.0, 16.0, 16.0):  # doubling, capped
            clock.now += a.cooling
            endpoint, probe = await p.acquire({B, C})
            assert endpoint is a and probe
            await p.release(a, probe=True, ok=False, failure=failed("server"))
            assert a.cooling == expected
        # a probe that is answered brings it back, with a fresh count and cooling period
        clock.now += a.cooling
        endpoint, probe = await p.acquire({B, C})
        assert endpoint is a and probe
        await p.release(a, probe=True, ok=True, failure=None)
        assert not a.down and a.consecutive == 0 and a.cooling == 0
        assert a.describe()["marked_down"] == 1 and not a.describe()["down_at_end"]

    run(go())
    assert COOL_CAP >= 16.0  # the default cap is not below the one this test uses


def test_any_answer_resets_the_count_and_429s_or_4xx_never_mark_down() -> None:
    async def go() -> Endpoint:
        p = pool(1)
        for kind in ("connection", "timeout", "rate_limit", "connection", "server"):
            await attempt(p, kind)
        for kind in ("bad_request", "rate_limit", "malformed", "not_found") * 3:
            await attempt(p, kind)
        return p.endpoints[0]

    e = run(go())
    assert not e.down and e.down_episodes == 0 and e.consecutive == 0 and e.failures == 17


def test_when_every_replica_is_down_attempts_still_go_out() -> None:
    """No healthy replica is no reason to wait: requests fail (or succeed) as they would
    against one server, and a replica that answers is back at once."""

    async def go() -> None:
        clock = Clock()
        p = pool(2, clock=clock)
        for _ in range(DOWN_AFTER * 2):
            await attempt(p, "connection")
        assert all(e.down for e in p.endpoints)
        e = await asyncio.wait_for(attempt(p, "connection"), 1)  # no hang
        assert e.down
        back = await asyncio.wait_for(attempt(p, "ok"), 1)
        assert not back.down
        # the other one is still down: the next attempts go to the one that answered
        assert {(await attempt(p, "ok")).url for _ in range(3)} == {back.url}

    run(go())


def test_a_retry_avoids_the_replica_its_request_failed_on() -> None:
    async def go() -> list[str]:
        p = pool()
        return [(await attempt(p, "ok", {A, B})).url for _ in range(3)]

    assert run(go()) == [C, C, C]


def test_a_request_that_avoided_every_replica_may_use_any() -> None:
    async def go() -> str:
        p = pool(2)
        return (await attempt(p, "ok", {A, B})).url

    assert run(go()) in (A, B)


# -- the hosted backend over a pool -------------------------------------------------------------


class Replicas(HostedBackend):
    """A hosted backend over fake replicas: each client is a callable answering a body."""

    provider = "test"

    def __init__(self, behaviours: dict[str, Any], **options: Any) -> None:
        super().__init__("m", backoff_base=0.0, **options)
        self.endpoints = EndpointPool(
            list(behaviours.items()), concurrency=self.concurrency, clock=Clock()
        )
        self.sent: list[str] = []
        self.checks = 0

    async def _send(self, body: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover
        raise AssertionError("with replicas every call goes through _send_via")

    async def _send_via(self, client: Any, body: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        answer: dict[str, Any] = client(body)
        return answer

    async def _check_endpoints(self) -> None:
        self.checks += 1
        await asyncio.sleep(0)

    def _classify(self, exc: BaseException) -> RequestFailed | None:
        return None

    def identity(self) -> dict[str, Any]:
        return {"provider": "test", "model": "m"}


def answer(text: str) -> Any:
    def respond(body: dict[str, Any]) -> dict[str, Any]:
        return {"choices": [{"message": {"content": text}, "finish_reason": "stop"}]}

    return respond


def refuse(body: dict[str, Any]) -> dict[str, Any]:
    raise RequestFailed("connection", "connection refused")


def request(text: str) -> CompletionRequest:
    return CompletionRequest(messages=(Message("user", text),), params=GenerationParams())


def test_backend_spreads_requests_and_retries_on_the_live_replicas() -> None:
    backend = Replicas({A: answer("a"), B: refuse, C: answer("c")}, concurrency=2)

    async def go() -> list[str]:
        done = await asyncio.gather(*(backend.complete(request(f"q{i}")) for i in range(30)))
        return [c.text or "" for c in done]

    texts = run(go())
    assert set(texts) == {"a", "c"} and len(texts) == 30  # every request answered
    assert backend.checks == 1  # the replicas are checked once, before the first call
    assert backend.max_concurrency() == 6  # --concurrency on each of 3 replicas
    described = backend.describe()
    per = {e["url"]: e for e in described["endpoints"]}
    assert per[B]["answered"] == 0 and per[B]["marked_down"] == 1
    assert per[B]["failures"] == per[B]["calls"] >= DOWN_AFTER
    assert per[A]["answered"] + per[C]["answered"] == 30
    assert described["retries"] == per[B]["failures"]
    assert described["http_calls"] == sum(e["calls"] for e in per.values())


def test_backend_with_every_replica_dead_fails_each_request_as_one_server_would() -> None:
    backend = Replicas({A: refuse, B: refuse}, max_attempts=3)

    async def go() -> RequestFailed:
        with pytest.raises(RequestFailed) as info:
            await backend.complete(request("q"))
        return info.value

    failure = run(go())
    assert failure.kind == "connection" and failure.attempts == 3


# -- identity, options ------------------------------------------------------------------------


def test_one_url_keeps_the_identity_and_cache_key_it_always_had(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    backend = get_backend("openai/stub-model", base_url="http://user:pw@127.0.0.1:8000/v1/")
    assert backend.identity() == {
        "provider": "openai",
        "model": "stub-model",
        "base_url": "http://127.0.0.1:8000/v1",
    }
    req = request("hi")
    # Pinned before replicas existed: a change here would orphan every user's cache.
    assert request_key(backend.identity(), req, backend.key_payload(req)) == (
        "sha256:297a30c95ba0dbc7250f43743e0f61c614150a940723d912adf2d63ab6c6672f"
    )
    assert "endpoints" not in backend.describe() and backend.max_concurrency() == 16


def test_replicas_identity_is_their_sorted_public_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    one = get_backend("openai/m", base_url=[C, "http://u:secret@a:8000/v1/", B])
    two = get_backend("openai/m", base_url=f"{B},{A}, {C}")
    assert (
        one.identity()
        == two.identity()
        == {
            "provider": "openai",
            "model": "m",
            "base_urls": [A, B, C],
        }
    )
    assert "secret" not in str(one.describe())
    other = get_backend("openai/m", base_url=[A, B])
    assert other.identity() != one.identity()  # another replica set is another identity
    assert one.max_concurrency() == 48


def test_sua_audit_base_url_may_hold_several_comma_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUA_AUDIT_BASE_URL", f"{A}, {B}/")
    assert resolve_base_urls(None) == [A, B]
    monkeypatch.setenv("SUA_AUDIT_BASE_URL", A)
    assert resolve_base_urls(None) == [A]
    monkeypatch.setenv("SUA_AUDIT_BASE_URL", f"{A},{A}/")
    with pytest.raises(ConfigError, match="given twice"):
        resolve_base_urls(None)


def test_config_keeps_one_url_a_string_and_records_several_without_credentials() -> None:
    assert make_config("x.jsonl", base_url=[A]).base_url == A
    assert make_config("x.jsonl", base_url=A).base_url == A
    several = make_config("x.jsonl", base_url=["http://u:pw@a:8000/v1", B])
    assert several.base_url == ["http://u:pw@a:8000/v1", B]
    assert recorded_config(several)["base_url"] == [A, B]
    assert make_config("x.jsonl", base_url=f"{A},{B}").base_url == [A, B]


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"base_url": [A, f"{A}/"]}, "given twice"),
        ({"base_url": [A, "ftp://b/v1"]}, "http:// or https://"),
        ({"base_url": [A, B], "batch": True}, "--batch"),
    ],
)
def test_bad_replica_options_are_one_line_config_errors(
    options: dict[str, Any], needle: str
) -> None:
    with pytest.raises(ConfigError, match=needle) as info:
        make_config("x.jsonl", **options)
    assert "\n" not in str(info.value)


def test_only_the_openai_provider_takes_replicas_and_never_in_batch_mode() -> None:
    with pytest.raises(ConfigError, match="--batch"):
        get_backend("openai/m", base_url=[A, B], batch=True)
    with pytest.raises(ConfigError, match="openai provider"):
        get_backend("litellm/anthropic/claude", base_url=[A, B])
