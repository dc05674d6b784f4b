"""Tests of the fault-injecting OpenAI-compatible stub server (stdlib clients only)."""

from __future__ import annotations

import asyncio
import http.client
import json
import math
import socket
import threading
import time
from typing import Any

import pytest

from tests.support.stub_openai import (
    CHAT_PATH,
    FaultPlan,
    Rule,
    StubServer,
    build_completion,
    drop,
    hang,
    label_logprobs,
    latency,
    malformed,
    parse_labels,
    status,
)

QUESTION = "Which drink is best: tea or coffee?"


def chat(content: str = "Say something.", **extra: Any) -> dict[str, Any]:
    return {"model": "stub-model", "messages": [{"role": "user", "content": content}], **extra}


class Client:
    """A keep-alive stdlib HTTP client bound to one server."""

    def __init__(self, server: StubServer, timeout: float = 5.0) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        self.conn.request(method, path, body=data, headers=hdrs)
        response = self.conn.getresponse()
        return response.status, response.headers, response.read()

    def post(self, payload: Any, **kw: Any) -> tuple[int, http.client.HTTPMessage, bytes]:
        return self.request("POST", CHAT_PATH, payload, **kw)

    def completion(self, payload: Any) -> dict[str, Any]:
        code, _, body = self.post(payload)
        assert code == 200, body
        return json.loads(body)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def server():
    with StubServer() as s:
        yield s


@pytest.fixture
def client(server: StubServer):
    c = Client(server)
    yield c
    c.close()


# -- healthy answers -----------------------------------------------------------------------------


def test_base_url_and_models(client: Client, server: StubServer) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    code, headers, body = client.request("GET", "/v1/models")
    assert code == 200 and headers["content-type"] == "application/json"
    listing = json.loads(body)
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == ["stub-model"]


def test_healthy_schema(client: Client) -> None:
    doc = client.completion(chat("Hello there, how are you?"))
    assert doc["object"] == "chat.completion"
    assert doc["id"].startswith("chatcmpl-")
    assert isinstance(doc["created"], int)
    assert doc["model"] == "stub-model"
    [choice] = doc["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"]
    assert choice["logprobs"] is None
    usage = doc["usage"]
    assert usage["prompt_tokens"] == 5
    assert usage["completion_tokens"] == len(choice["message"]["content"].split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_n_and_ignore_n(client: Client) -> None:
    doc = client.completion(chat(n=4, seed=3))
    assert [c["index"] for c in doc["choices"]] == [0, 1, 2, 3]
    assert len({c["message"]["content"] for c in doc["choices"]}) > 1
    with StubServer(ignore_n=True) as llama:
        other = Client(llama)
        try:
            assert len(other.completion(chat(n=4, seed=3))["choices"]) == 1
        finally:
            other.close()


def test_max_tokens_truncates(client: Client) -> None:
    full = client.completion(chat(temperature=0))["choices"][0]["message"]["content"]
    assert len(full.split()) >= 3
    doc = client.completion(chat(temperature=0, max_tokens=2))
    choice = doc["choices"][0]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == " ".join(full.split()[:2])
    assert doc["usage"]["completion_tokens"] == 2
    short = client.completion(chat(temperature=0, max_completion_tokens=1))
    assert short["choices"][0]["message"]["content"] == full.split()[0]


def test_logprobs_shape(client: Client) -> None:
    doc = client.completion(chat(logprobs=True, top_logprobs=5, n=2))
    for choice in doc["choices"]:
        content = choice["logprobs"]["content"]
        assert "".join(t["token"] for t in content) == choice["message"]["content"]
        for entry in content:
            assert set(entry) == {"token", "logprob", "bytes", "top_logprobs"}
            assert entry["bytes"] == list(entry["token"].encode())
            assert entry["logprob"] <= 0
            top = entry["top_logprobs"]
            assert len(top) == 5
            assert all(set(t) == {"token", "logprob", "bytes"} for t in top)
            assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
            assert top[0]["token"] == entry["token"]
            assert sum(math.exp(t["logprob"]) for t in top) <= 1 + 1e-6
    bare = client.completion(chat(logprobs=True))
    assert all(e["top_logprobs"] == [] for e in bare["choices"][0]["logprobs"]["content"])


def test_label_question_answers_a_label_with_label_logprobs(client: Client) -> None:
    doc = client.completion(chat(QUESTION, logprobs=True, top_logprobs=20, temperature=0))
    choice = doc["choices"][0]
    assert choice["message"]["content"] in {"tea", "coffee"}
    [entry] = choice["logprobs"]["content"]
    top = {t["token"]: t["logprob"] for t in entry["top_logprobs"]}
    assert len(top) == 20
    assert {"tea", "coffee", " tea", " coffee"} <= set(top)
    expected = label_logprobs("stub-model", chat(QUESTION)["messages"], ["tea", "coffee"])
    for token in ("tea", "coffee", " tea", " coffee"):
        assert top[token] == pytest.approx(expected[token], abs=1e-5)
    assert top[" tea"] < top["tea"] and top[" coffee"] < top["coffee"]
    # temperature 0 answers the most likely label
    assert choice["message"]["content"] == max(("tea", "coffee"), key=expected.__getitem__)
    assert sum(math.exp(v) for v in expected.values()) == pytest.approx(1.0)


def test_label_sampling_follows_the_distribution() -> None:
    request = chat("Pick one: red, green, blue or yellow?", n=128, temperature=1.0, seed=0)
    labels = ["red", "green", "blue", "yellow"]
    dist = label_logprobs("stub-model", request["messages"], labels)
    answers = [c["message"]["content"] for c in build_completion(request)["choices"]]
    assert set(answers) <= set(labels)
    mass = {lab: math.exp(dist[lab]) + math.exp(dist[" " + lab]) for lab in labels}
    total = sum(mass.values())
    favourite = max(labels, key=mass.__getitem__)
    assert answers.count(favourite) / 128 == pytest.approx(mass[favourite] / total, abs=0.2)


def test_parse_labels() -> None:
    assert parse_labels("Which is best: tea or coffee?") == ["tea", "coffee"]
    assert parse_labels("Context: x.\nAnswer with one of: yes, no, or maybe?") == [
        "yes",
        "no",
        "maybe",
    ]
    assert parse_labels('Label: "A" / "B" / "C"?') == ["A", "B", "C"]
    assert parse_labels("What is the capital of France?") == []
    assert parse_labels("Question: what is the capital of France?") == []


def test_determinism_per_seed(client: Client) -> None:
    def answer(**kw: Any) -> str:
        return client.completion(chat(**kw))["choices"][0]["message"]["content"]

    assert answer(seed=7) == answer(seed=7)
    assert answer() == answer()
    assert len({answer(seed=s) for s in range(8)}) > 1
    # temperature 0 is greedy: seed and choice index no longer matter
    greedy = client.completion(chat(temperature=0, n=3, seed=1))["choices"]
    assert len({c["message"]["content"] for c in greedy}) == 1
    assert answer(temperature=0, seed=2) == greedy[0]["message"]["content"]
    # the model is part of the hash
    other = client.completion({**chat(seed=7), "model": "other-model"})
    assert other["choices"][0]["message"]["content"] != answer(seed=7)


def test_responder_scripts_content() -> None:
    def responder(request: dict[str, Any]) -> Any:
        text = request["messages"][-1]["content"]
        if text == "str":
            return "scripted answer"
        if text == "dict":
            return {"content": "B", "top_logprobs": {"A": -1.5, "B": -0.3}}
        if text == "list":
            return ["one", {"content": "two", "finish_reason": "length"}]
        return {"choices": [{"index": 0, "message": {"role": "assistant", "content": "raw"}}]}

    with StubServer(responder=responder) as server:
        client = Client(server)
        try:
            doc = client.completion(chat("str", n=2))
            assert [c["message"]["content"] for c in doc["choices"]] == ["scripted answer"] * 2
            doc = client.completion(chat("dict", logprobs=True, top_logprobs=3))
            [entry] = doc["choices"][0]["logprobs"]["content"]
            assert entry["token"] == "B" and entry["logprob"] == -0.3
            assert [t["token"] for t in entry["top_logprobs"]][:2] == ["B", "A"]
            assert len(entry["top_logprobs"]) == 3
            doc = client.completion(chat("list", n=3))
            contents = [c["message"]["content"] for c in doc["choices"]]
            assert contents == ["one", "two", "one"]
            assert doc["choices"][1]["finish_reason"] == "length"
            doc = client.completion(chat("raw"))
            assert doc["choices"][0]["message"]["content"] == "raw"
            assert doc["object"] == "chat.completion" and doc["model"] == "stub-model"
        finally:
            client.close()


def test_responder_errors_become_500s() -> None:
    def responder(request: dict[str, Any]) -> str:
        raise RuntimeError("boom")

    with StubServer(responder=responder) as server:
        client = Client(server)
        try:
            code, _, body = client.post(chat())
            assert code == 500 and json.loads(body)["error"]["type"] == "server_error"
            assert "boom" in server.errors[0]
            assert client.post(chat())[0] == 500  # the connection survived
        finally:
            client.close()


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        (b"{not json", None),
        ({"model": "stub-model"}, "messages"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        (chat(n=0), "n"),
        (chat(top_logprobs=3), "top_logprobs"),
        (chat(logprobs=True, top_logprobs=21), "top_logprobs"),
        (chat(temperature=3), "temperature"),
        (chat(max_tokens=0), "max_tokens"),
    ],
)
def test_invalid_requests_get_400(client: Client, payload: Any, param: str | None) -> None:
    code, _, body = client.post(payload)
    assert code == 400
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_unknown_path_and_method(client: Client) -> None:
    assert client.request("GET", "/v1/nowhere")[0] == 404
    assert client.request("GET", CHAT_PATH)[0] == 405


def test_strict_models_and_api_key() -> None:
    with StubServer(strict_models=True, api_key="sk-test", models=["a"]) as server:
        client = Client(server)
        try:
            code, _, body = client.post({**chat(), "model": "a"})
            assert code == 401 and json.loads(body)["error"]["code"] == "invalid_api_key"
            auth = {"Authorization": "Bearer sk-test"}
            assert client.post({**chat(), "model": "a"}, headers=auth)[0] == 200
            code, _, body = client.post({**chat(), "model": "b"}, headers=auth)
            assert code == 404 and json.loads(body)["error"]["code"] == "model_not_found"
        finally:
            client.close()


def test_keep_alive_and_chunked_bodies(client: Client, server: StubServer) -> None:
    for _ in range(3):
        client.completion(chat())
    sock = client.conn.sock
    client.completion(chat())
    assert client.conn.sock is sock  # same connection reused
    body = json.dumps(chat("chunked")).encode()
    client.conn.putrequest("POST", CHAT_PATH)
    client.conn.putheader("Content-Type", "application/json")
    client.conn.putheader("Transfer-Encoding", "chunked")
    client.conn.endheaders()
    client.conn.send(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    response = client.conn.getresponse()
    assert response.status == 200
    response.read()
    assert server.requests_for("chunked")[0].json == chat("chunked")


# -- faults --------------------------------------------------------------------------------------


def test_429_has_retry_after() -> None:
    plan = FaultPlan().add(status(429, retry_after=0.25), times=1)
    with StubServer(faults=plan) as server:
        client = Client(server)
        try:
            code, headers, body = client.post(chat())
            assert code == 429
            assert headers["retry-after"] == "0.25" and headers["retry-after-ms"] == "250"
            error = json.loads(body)["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert error["code"] == "rate_limit_exceeded"
            assert client.post(chat())[0] == 200  # times=1, same keep-alive connection
            assert server.fault_counts == {"status(429, retry_after=0.25)": 1}
        finally:
            client.close()


@pytest.mark.parametrize(
    ("fault", "code", "error_type", "error_code"),
    [
        (status(500), 500, "server_error", None),
        (status(503), 503, "server_error", None),
        (status(401), 401, "invalid_request_error", "invalid_api_key"),
        (
            status(400, code="context_length_exceeded"),
            400,
            "invalid_request_error",
            "context_length_exceeded",
        ),
        (status(400, code="content_filter"), 400, "invalid_request_error", "content_filter"),
    ],
)
def test_status_faults(fault: Any, code: int, error_type: str, error_code: str | None) -> None:
    with StubServer(faults=[Rule(fault)]) as server:
        client = Client(server)
        try:
            got, headers, body = client.post(chat())
            assert got == code and headers["content-type"] == "application/json"
            assert "retry-after" not in headers
            error = json.loads(body)["error"]
            assert error["message"]
            assert (error["type"], error["code"]) == (error_type, error_code)
            assert client.post(chat())[0] == code  # times=None: always
        finally:
            client.close()


@pytest.mark.parametrize("reset", [False, True])
def test_drop_gives_a_connection_error(reset: bool) -> None:
    with StubServer(faults=FaultPlan().add(drop(reset=reset), times=1)) as server:
        client = Client(server)
        try:
            with pytest.raises(ConnectionError):
                client.post(chat())
            client.close()
            assert client.post(chat())[0] == 200
            assert server.count == 2
            assert server.requests[0].fault == drop(reset=reset)
        finally:
            client.close()


def test_hang_exceeds_a_short_client_timeout() -> None:
    with StubServer(faults=FaultPlan().add(hang(30), contains="slow")) as server:
        client = Client(server, timeout=0.3)
        start = time.monotonic()
        try:
            with pytest.raises(TimeoutError):
                client.post(chat("slow please"))
            assert time.monotonic() - start < 5
            assert server.in_flight == 1
        finally:
            client.close()
        client = Client(server, timeout=2)
        try:
            assert client.post(chat("fast please"))[0] == 200
        finally:
            client.close()
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 2  # stop() cancels the hang


def test_short_hang_then_closes() -> None:
    with StubServer(faults=[Rule(hang(0.1))]) as server:
        client = Client(server, timeout=5)
        try:
            start = time.monotonic()
            with pytest.raises(ConnectionError):
                client.post(chat())
            assert time.monotonic() - start >= 0.1
            assert server.in_flight == 0
        finally:
            client.close()


def test_malformed_fails_json_parsing() -> None:
    with StubServer(faults=[Rule(malformed())]) as server:
        client = Client(server)
        try:
            code, headers, body = client.post(chat())
            assert code == 200 and headers["content-type"] == "application/json"
            assert int(headers["content-length"]) == len(body) > 0
            with pytest.raises(json.JSONDecodeError):
                json.loads(body)
        finally:
            client.close()


def test_latency_fault_and_global_latency() -> None:
    plan = FaultPlan().add(latency(0.2), contains="late")
    with StubServer(faults=plan, latency=0.05) as server:
        client = Client(server)
        try:
            start = time.monotonic()
            client.completion(chat("on time"))
            quick = time.monotonic() - start
            start = time.monotonic()
            client.completion(chat("late"))
            slow = time.monotonic() - start
            assert 0.05 <= quick < 0.2 <= slow - 0.05
        finally:
            client.close()


def test_rule_matching() -> None:
    def req(content: str = "x", **kw: Any) -> dict[str, Any]:
        return chat(content, **kw)

    plan = FaultPlan(
        [
            Rule(status(500), contains="boom", times=2),
            Rule(status(503), on=[3, 4]),
            Rule(status(429), every=5),
            Rule(malformed(), when=lambda r: r.get("temperature") == 0),
        ]
    )
    got = [plan.match(i, CHAT_PATH, req("boom")) for i in (1, 2)]
    assert got == [status(500), status(500)]
    assert plan.match(3, CHAT_PATH, req("boom")) == status(503)  # rule 1 exhausted
    assert plan.match(4, CHAT_PATH, req()) == status(503)
    assert plan.match(6, CHAT_PATH, req()) is None
    assert plan.match(10, CHAT_PATH, req()) == status(429)
    assert plan.match(11, CHAT_PATH, req(temperature=0)) == malformed()
    assert plan.match(4, "/v1/models", req()) is None  # rules default to chat completions
    assert [r.hits for r in plan.rules] == [2, 2, 1, 1]

    def draws(seed: int) -> list[bool]:
        p = FaultPlan().add(drop(), probability=0.3, seed=seed)
        return [p.match(i, CHAT_PATH, req()) is not None for i in range(1, 201)]

    assert draws(1) == draws(1) != draws(2)
    assert 30 < sum(draws(1)) < 90


def test_rules_count_chat_requests_and_apply_to_models_on_request(server: StubServer) -> None:
    server.faults.add(status(500), on=2)
    server.faults.add(status(503), path="/v1/models", times=1)
    client = Client(server)
    try:
        assert client.request("GET", "/v1/models")[0] == 503
        assert client.request("GET", "/v1/models")[0] == 200
        assert [client.post(chat())[0] for _ in range(3)] == [200, 500, 200]
        numbers = [(r.path, r.seq, r.number) for r in server.requests]
        assert numbers[2:] == [(CHAT_PATH, 3, 1), (CHAT_PATH, 4, 2), (CHAT_PATH, 5, 3)]
        assert server.chat_count == 3 and server.count == 5
    finally:
        client.close()


# -- recording, concurrency, lifecycle -------------------------------------------------------------


def test_recording(client: Client, server: StubServer) -> None:
    client.completion(chat("alpha one"))
    client.completion(chat("beta two"))
    client.completion(chat("alpha three"))
    assert server.count == 3
    alpha = server.requests_for("alpha")
    assert [r.json["messages"][0]["content"] for r in alpha] == ["alpha one", "alpha three"]
    first = alpha[0]
    assert first.method == "POST" and first.path == CHAT_PATH and first.fault is None
    assert first.headers["content-type"] == "application/json"
    assert first.time <= time.time()
    server.reset()
    assert server.count == 0 and server.requests == []


def test_record_false_keeps_only_counters() -> None:
    with StubServer(record=False, faults=FaultPlan().add(status(500), times=1)) as server:
        client = Client(server)
        try:
            assert [client.post(chat())[0] for _ in range(5)] == [500, 200, 200, 200, 200]
        finally:
            client.close()
        assert server.count == 5 and server.max_in_flight == 1
        assert server.fault_counts == {"status(500)": 1}
        with pytest.raises(RuntimeError):
            server.requests  # noqa: B018


def test_max_in_flight_with_concurrent_clients() -> None:
    # A long latency, so all 8 overlap even when a loaded 2-core machine starts threads late.
    with StubServer(latency=3.0) as server:
        results: list[int] = []

        def worker() -> None:
            c = Client(server)
            try:
                results.append(c.post(chat())[0])
            finally:
                c.close()

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == [200] * 8
        assert server.max_in_flight == 8
        assert server.in_flight == 0


def test_stop_frees_the_port() -> None:
    server = StubServer().start()
    port = server.port
    client = Client(server)
    client.completion(chat())
    server.stop()
    client.close()
    assert not server.running
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with StubServer(port=port) as again:  # the same port binds again
        assert again.port == port
        other = Client(again)
        try:
            other.completion(chat())
        finally:
            other.close()
    server.stop()  # idempotent


def test_async_context_manager() -> None:
    async def main() -> tuple[bytes, int]:
        async with StubServer() as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            body = json.dumps(chat()).encode()
            writer.write(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
            raw = await reader.read()
            writer.close()
            await writer.wait_closed()
            return raw, server.count

    raw, count = asyncio.run(main())
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and b"connection: close" in raw
    assert json.loads(raw.split(b"\r\n\r\n", 1)[1])["object"] == "chat.completion"
    assert count == 1
