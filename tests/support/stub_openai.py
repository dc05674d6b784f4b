"""A fault-injecting, loopback, OpenAI-compatible chat-completions server for tests and benchmarks.

Pure stdlib: asyncio streams and a small hand-written HTTP/1.1 parser (keep-alive, Content-Length
and chunked request bodies). It runs its own event loop in a daemon thread, so sync tests use it
as a context manager::

    plan = FaultPlan().add(status(429, retry_after=0.05), times=2)
    with StubServer(faults=plan) as server:
        client = SomeOpenAIClient(base_url=server.base_url)
        ...
        assert server.count == 3

and async tests use ``async with StubServer(...) as server``. Endpoints: ``GET /v1/models``,
``POST /v1/chat/completions``, and the Files and Batch APIs (``/v1/files...``, ``/v1/batches...``;
see :mod:`tests.support.stub_batches` for their lifecycle and the ``batch_*`` options).

Healthy answers are deterministic. With ``temperature == 0`` the answer depends on (model,
messages) only; otherwise on (model, messages, seed, choice index), where a missing seed counts as
``None`` (still deterministic). If the last user message ends a phrase with a colon-separated list
of labels and a question mark (``"Which is best: tea or coffee?"``, ``"Answer with one of: yes, no,
maybe?"``), the answer is one of those labels, drawn from a fixed per-prompt distribution (see
:func:`label_logprobs`) whose top logprobs, including leading-space variants, are returned when
``logprobs`` is requested. Otherwise the answer is a short pseudo-random phrase.

Run standalone (for benchmarks that want the server in its own process)::

    python -m tests.support.stub_openai --port 8000 --latency 0.2 --no-record --batch-seconds 2
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import random
import re
import socket
import struct
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from tests.support.stub_batches import ExpireSpec, LineFaults

__all__ = [
    "CHAT_PATH",
    "MODELS_PATH",
    "Fault",
    "FaultPlan",
    "RecordedRequest",
    "Rule",
    "StubServer",
    "build_completion",
    "drop",
    "hang",
    "label_logprobs",
    "last_user_text",
    "latency",
    "malformed",
    "parse_labels",
    "status",
]

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
DEFAULT_MODELS = ("stub-model",)
MAX_TOP_LOGPROBS = 20
MAX_N = 128

Responder = Callable[[dict[str, Any]], "str | dict[str, Any] | list[str | dict[str, Any]]"]

# ---------------------------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------------------------

FaultKind = Literal["status", "hang", "drop", "malformed", "latency"]

# (type, code, param, message) used for a bare ``status(n)``.
_ERROR_DEFAULTS: dict[int, tuple[str | None, str | None, str | None, str]] = {
    400: ("invalid_request_error", None, None, "Bad request."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        None,
        "Incorrect API key provided. You can find your API key in your account settings.",
    ),
    403: ("invalid_request_error", "unsupported_country_region_territory", None, "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "model", "The model does not exist."),
    429: (
        "requests",
        "rate_limit_exceeded",
        None,
        "Rate limit reached for requests. Please try again later.",
    ),
    500: ("server_error", None, None, "The server had an error while processing your request."),
    502: ("server_error", None, None, "Bad gateway."),
    503: (
        "server_error",
        None,
        None,
        "The engine is currently overloaded, please try again later.",
    ),
}

# Specialised messages/params for well-known 400 codes.
_CODE_DEFAULTS: dict[str, tuple[str | None, str | None, str]] = {
    "context_length_exceeded": (
        "invalid_request_error",
        "messages",
        "This model's maximum context length is 4096 tokens. However, your messages resulted in "
        "more tokens. Please reduce the length of the messages.",
    ),
    "content_filter": (
        "invalid_request_error",
        "prompt",
        "The response was filtered due to the prompt triggering the content management policy.",
    ),
}


def _phrase_of(code: int) -> str:
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Error" if code >= 400 else "OK"


@dataclass(frozen=True)
class Fault:
    """One way of answering (or not answering) a request. Build with the helper functions."""

    kind: FaultKind
    http_status: int = 200
    seconds: float = 0.0
    retry_after: float | None = None
    code: str | None = None
    message: str | None = None
    error_type: str | None = None
    param: str | None = None
    reset: bool = False

    def __str__(self) -> str:
        if self.kind == "status":
            extra = f", code={self.code!r}" if self.code else ""
            if self.retry_after is not None:
                extra += f", retry_after={self.retry_after}"
            return f"status({self.http_status}{extra})"
        if self.kind in ("hang", "latency"):
            return f"{self.kind}({self.seconds})"
        return f"{self.kind}()"

    def error_body(self) -> dict[str, Any]:
        """The OpenAI-style error document of a ``status`` fault."""
        etype, ecode, eparam, emsg = _ERROR_DEFAULTS.get(
            self.http_status, ("server_error" if self.http_status >= 500 else None, None, None, "")
        )
        if self.code in _CODE_DEFAULTS:
            etype, eparam, emsg = _CODE_DEFAULTS[self.code]
        return {
            "error": {
                "message": self.message or emsg or _phrase_of(self.http_status),
                "type": self.error_type if self.error_type is not None else etype,
                "param": self.param if self.param is not None else eparam,
                "code": self.code if self.code is not None else ecode,
            }
        }


def status(
    http_status: int,
    /,
    *,
    retry_after: float | None = None,
    code: str | None = None,
    message: str | None = None,
    error_type: str | None = None,
    param: str | None = None,
) -> Fault:
    """An HTTP error with an OpenAI-style JSON body; ``retry_after`` sets Retry-After headers."""
    if not 400 <= http_status <= 599:
        raise ValueError("status faults must be 4xx or 5xx")
    return Fault(
        "status",
        http_status=http_status,
        retry_after=retry_after,
        code=code,
        message=message,
        error_type=error_type,
        param=param,
    )


def hang(seconds: float = 3600.0) -> Fault:
    """Read the request, answer nothing for ``seconds``, then close the connection."""
    return Fault("hang", seconds=seconds)


def drop(*, reset: bool = False) -> Fault:
    """Close the connection without any response (``reset=True``: abortive close, RST)."""
    return Fault("drop", reset=reset)


def malformed() -> Fault:
    """200 with JSON content type and a truncated, unparseable JSON body."""
    return Fault("malformed")


def latency(seconds: float) -> Fault:
    """The healthy answer, after ``seconds`` on top of the server-wide latency."""
    return Fault("latency", seconds=seconds)


@dataclass
class Rule:
    """Apply ``fault`` to requests that satisfy every given criterion, ``times`` times (None: always).

    ``contains`` is a substring of the last user message; ``on`` (request number or numbers) and
    ``every`` (request number divisible by it) count 1-based among requests to ``path`` (None:
    any path); ``probability`` is drawn from a ``random.Random(seed)`` owned by the rule, only for
    requests that passed the other criteria.
    """

    fault: Fault
    when: Callable[[dict[str, Any]], bool] | None = None
    contains: str | None = None
    on: int | Collection[int] | None = None
    every: int | None = None
    probability: float | None = None
    seed: int = 0
    times: int | None = None
    path: str | None = CHAT_PATH
    hits: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._on: frozenset[int] | None = (
            None
            if self.on is None
            else frozenset([self.on] if isinstance(self.on, int) else self.on)
        )
        if self.every is not None and self.every < 1:
            raise ValueError("every must be >= 1")

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def matches(self, number: int, path: str, request: dict[str, Any]) -> bool:
        if self.exhausted:
            return False
        if self.path is not None and path != self.path:
            return False
        if self._on is not None and number not in self._on:
            return False
        if self.every is not None and number % self.every:
            return False
        if self.contains is not None and self.contains not in last_user_text(request):
            return False
        if self.when is not None and not self.when(request):
            return False
        return self.probability is None or self._rng.random() < self.probability


class FaultPlan:
    """An ordered, thread-safe list of :class:`Rule`; the first matching rule's fault applies."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self._rules: list[Rule] = list(rules)
        self._lock = threading.Lock()

    def add(
        self,
        fault: Fault,
        *,
        when: Callable[[dict[str, Any]], bool] | None = None,
        contains: str | None = None,
        on: int | Collection[int] | None = None,
        every: int | None = None,
        probability: float | None = None,
        seed: int = 0,
        times: int | None = None,
        path: str | None = CHAT_PATH,
    ) -> FaultPlan:
        """Append a rule (see :class:`Rule`); returns the plan for chaining."""
        rule = Rule(fault, when, contains, on, every, probability, seed, times, path)
        with self._lock:
            self._rules.append(rule)
        return self

    def match(self, number: int, path: str, request: dict[str, Any]) -> Fault | None:
        """The fault for this request (consuming one of the rule's ``times``), or None."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(number, path, request):
                    rule.hits += 1
                    return rule.fault
        return None

    @property
    def rules(self) -> list[Rule]:
        with self._lock:
            return list(self._rules)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def __len__(self) -> int:
        return len(self._rules)


# ---------------------------------------------------------------------------------------------
# Healthy answers
# ---------------------------------------------------------------------------------------------

_TOKEN_RE = re.compile(r"\s*\S+")
_LABEL_LIST_RE = re.compile(r":([^:?\n]+)\?")
_LABEL_SPLIT_RE = re.compile(r"\s*(?:,|/|\||;|\bor\b)\s*", re.IGNORECASE)
_LABEL_STRIP = " \t\"'`*.[]()"
_SPACE_PENALTY = 3.0
_FILLERS = ("\n", "The", " the", "I", ".", ",", ":", "**", "Answer", " answer", "It", " is", "A")
_WORDS = (
    "amber quiet river seven lantern orbit maple signal velvet harbor cobalt meadow copper "
    "falcon prism willow tundra ember glacier violet echo summit basalt canyon linen marble "
    "thistle beacon juniper saffron"
).split()
_PAD_POOL = _FILLERS + tuple(" " + word for word in _WORDS)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        ).strip()
    return "" if content is None else str(content)


def last_user_text(request: Mapping[str, Any]) -> str:
    """The text of the last ``user`` message of a chat request ('' if none)."""
    messages = request.get("messages") if isinstance(request, Mapping) else None
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return _text(message.get("content"))
    return ""


def parse_labels(text: str) -> list[str]:
    """Labels offered by the last ``...: A, B or C?`` phrase of ``text`` (at least two, else [])."""
    for match in reversed(_LABEL_LIST_RE.findall(text)):
        labels: list[str] = []
        for part in _LABEL_SPLIT_RE.split(match):
            label = part.strip(_LABEL_STRIP)
            if label and label not in labels:
                labels.append(label)
        if 2 <= len(labels) <= 26 and all(len(label.split()) <= 4 for label in labels):
            return labels
    return []


def _digest(*parts: Any) -> bytes:
    raw = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.blake2b(raw.encode(), digest_size=16).digest()


def _unit(*parts: Any) -> float:
    """A deterministic float in [0, 1) from ``parts``."""
    return int.from_bytes(_digest(*parts)[:8], "big") / 2**64


def _logsumexp(values: Iterable[float]) -> float:
    values = list(values)
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def label_logprobs(model: str, messages: Any, labels: Sequence[str]) -> dict[str, float]:
    """The stub's fixed first-token distribution for a label question, as token -> logprob.

    Each label gets a logit in [0, 4) from a hash of (model, messages, label); its leading-space
    variant ``" " + label`` gets that logit minus 3; a few filler tokens get low logits. The dict
    is sorted by decreasing logprob; probabilities sum to 1 over all its entries.
    """
    logits: dict[str, float] = {}
    for label in labels:
        logit = 4.0 * _unit("label", model, messages, label)
        logits[label] = logit
        logits[" " + label] = logit - _SPACE_PENALTY
    for i, filler in enumerate(_FILLERS):
        logits.setdefault(filler, -4.0 - 0.5 * i)
    norm = _logsumexp(logits.values())
    return dict(sorted(((t, lg - norm) for t, lg in logits.items()), key=lambda kv: -kv[1]))


def _sample_label(
    labels: Sequence[str], dist: Mapping[str, float], temperature: float, u: float
) -> str:
    """Greedy at temperature 0; else sample a label, merging it with its leading-space variant."""
    if temperature <= 0:
        return max(labels, key=lambda label: dist[label])
    weights = [
        math.exp(dist[label] / temperature) + math.exp(dist[" " + label] / temperature)
        for label in labels
    ]
    threshold = u * sum(weights)
    for label, weight in zip(labels, weights, strict=True):
        threshold -= weight
        if threshold < 0:
            return label
    return labels[-1]


def _phrase(*key: Any) -> str:
    rng = random.Random(_digest("phrase", *key))
    words = rng.choices(_WORDS, k=rng.randint(3, 8))
    return " ".join(words).capitalize() + "."


def _default_choices(request: dict[str, Any], n: int) -> list[dict[str, Any]]:
    model, messages = request.get("model"), request.get("messages")
    temperature = request.get("temperature")
    temperature = 1.0 if temperature is None else float(temperature)
    seed = request.get("seed")
    labels = parse_labels(last_user_text(request))
    dist = label_logprobs(model, messages, labels) if labels else None
    specs = []
    for index in range(n):
        key: tuple[Any, ...] = (
            (model, messages) if temperature <= 0 else (model, messages, seed, index)
        )
        if dist is not None:
            label = _sample_label(labels, dist, temperature, _unit("sample", *key))
            specs.append({"content": label, "top_logprobs": dist})
        else:
            specs.append({"content": _phrase(*key)})
    return specs


def _top_entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": round(logprob, 6), "bytes": list(token.encode())}


def _padding(listed: Sequence[tuple[str, float]], count: int) -> list[tuple[str, float]]:
    """``count`` more alternatives below ``listed``, sharing what probability mass is left."""
    mass = max(1.0 - sum(math.exp(lp) for _, lp in listed), 1e-9)
    floor = min((lp for _, lp in listed), default=0.0)
    taken = {token for token, _ in listed}
    out: list[tuple[str, float]] = []
    for token in _PAD_POOL:
        if len(out) >= count:
            break
        if token not in taken:
            i = len(out) + 1
            out.append((token, min(math.log(mass * 0.5**i), floor - 0.1 * i)))
    return out


def _logprobs(
    tokens: list[str], k: int, first_top: Mapping[str, float] | None, key: Any
) -> dict[str, Any]:
    content = []
    for position, token in enumerate(tokens):
        if position == 0 and first_top:
            ranked = sorted(first_top.items(), key=lambda kv: -kv[1])
            chosen = first_top.get(token, ranked[-1][1] - 1.0)
        else:
            chosen = -(0.01 + 0.5 * _unit("lp", key, position))
            ranked = [(token, chosen)]
        top = ranked[:k]
        if len(top) < k:
            top += _padding(top, k - len(top))
        entry = _top_entry(token, chosen)
        entry["top_logprobs"] = [_top_entry(t, lp) for t, lp in top]
        content.append(entry)
    return {"content": content, "refusal": None}


class RequestError(Exception):
    """A client error the server reports as an OpenAI-style 4xx."""

    def __init__(
        self, message: str, *, param: str | None = None, code: str | None = None, status_: int = 400
    ) -> None:
        super().__init__(message)
        self.fault = status(status_, message=message, param=param, code=code)


def _validate(request: Any) -> tuple[int, int, int | None, bool]:
    """Check a chat request; returns (n, top_logprobs, max_tokens, logprobs)."""
    if not isinstance(request, dict):
        raise RequestError("We could not parse the JSON body of your request.")
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("you must provide a model parameter", param="model")
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty array", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise RequestError(f"messages[{i}] must be an object with a role", param="messages")
    n = request.get("n", 1)
    if n is None:
        n = 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_N:
        raise RequestError(f"n must be an integer in [1, {MAX_N}]", param="n")
    temperature = request.get("temperature", 1.0)
    if temperature is not None and (
        not isinstance(temperature, int | float) or not 0 <= temperature <= 2
    ):
        raise RequestError("temperature must be a number in [0, 2]", param="temperature")
    logprobs = bool(request.get("logprobs") or False)
    top = request.get("top_logprobs")
    if top is not None:
        if not isinstance(top, int) or isinstance(top, bool) or not 0 <= top <= MAX_TOP_LOGPROBS:
            raise RequestError("top_logprobs must be an integer in [0, 20]", param="top_logprobs")
        if not logprobs:
            raise RequestError(
                "logprobs must be set to true if top_logprobs is set", param="top_logprobs"
            )
    max_tokens = request.get("max_completion_tokens", request.get("max_tokens"))
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
    ):
        raise RequestError("max_tokens must be a positive integer", param="max_tokens")
    if request.get("stream"):
        raise RequestError("the stub server does not implement streaming", param="stream")
    return n, top or 0, max_tokens, logprobs


def _count_tokens(messages: list[Any]) -> int:
    return sum(len(_text(m.get("content")).split()) for m in messages if isinstance(m, dict))


def build_completion(
    request: dict[str, Any],
    *,
    responder: Responder | None = None,
    ignore_n: bool = False,
    completion_id: str = "chatcmpl-stub",
) -> dict[str, Any]:
    """The healthy ``chat.completion`` document for ``request`` (raises RequestError if invalid).

    ``responder(request)`` may return a str (content of every choice), a dict (a choice spec:
    ``content``, optional ``finish_reason``, ``top_logprobs`` mapping token -> logprob for the first
    token, or verbatim ``logprobs``; or, when it has a ``choices`` key, the whole response body),
    or a list of those (one per choice, cycled up to ``n``).
    """
    n, k, max_tokens, want_logprobs = _validate(request)
    count = 1 if ignore_n else n
    model = request["model"]
    if responder is None:
        specs: list[Any] = _default_choices(request, count)
    else:
        result = responder(request)
        if isinstance(result, dict) and "choices" in result:
            body = dict(result)
            body.setdefault("id", completion_id)
            body.setdefault("object", "chat.completion")
            body.setdefault("created", int(time.time()))
            body.setdefault("model", model)
            return body
        items = result if isinstance(result, list) else [result]
        if not items:
            raise ValueError("responder returned an empty list")
        specs = [items[i % len(items)] for i in range(count)]
    choices = []
    completion_tokens = 0
    for index, spec in enumerate(specs):
        if isinstance(spec, str):
            spec = {"content": spec}
        text = str(spec.get("content") or "")
        first_top = spec.get("top_logprobs")
        tokens = [text] if first_top and text in first_top else _TOKEN_RE.findall(text)
        finish = spec.get("finish_reason", "stop")
        if max_tokens is not None and len(tokens) > max_tokens:
            tokens = tokens[:max_tokens]
            text = "".join(tokens)
            finish = "length"
        completion_tokens += len(tokens)
        choice: dict[str, Any] = {
            "index": index,
            "message": {"role": "assistant", "content": text, "refusal": None},
            "logprobs": None,
            "finish_reason": finish,
        }
        if want_logprobs:
            choice["logprobs"] = spec.get("logprobs") or _logprobs(
                tokens, k, first_top, (model, text, index)
            )
        choices.append(choice)
    prompt_tokens = _count_tokens(request["messages"])
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_stub",
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


# ---------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    seq: int  # 1-based over all requests
    number: int  # 1-based among requests to the same path (what Rule.on / Rule.every count)
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    json: Any  # parsed body, or None (no body / invalid JSON)
    fault: Fault | None
    time: float  # time.time() at receipt

    @property
    def last_user(self) -> str:
        return last_user_text(self.json) if isinstance(self.json, dict) else ""


class _Close(Exception):
    """Internal: end this connection now."""


def _format_seconds(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class StubServer:
    """The loopback OpenAI-compatible server; start/stop from sync or async code.

    ``latency`` (seconds) delays every chat-completions answer (not drops or hangs); it may be
    changed while running. ``record=False`` keeps only counters (for long benchmarks).
    ``api_key``: if set, requests without ``Authorization: Bearer <api_key>`` get a 401.
    ``strict_models``: unknown models get a 404 ``model_not_found``.

    Files and Batch APIs (see :mod:`tests.support.stub_batches`; read when a batch is created, so
    they may be changed between batches): ``batch_seconds`` from creation to ``completed``, split
    by ``batch_phases`` (validating, in_progress, finalizing); ``batch_progress`` spreads finishing
    lines over in_progress (False: all at its end); ``batch_cancel_seconds`` spent ``cancelling``
    (None: the finalizing share); ``batch_line_faults`` fails single lines; ``batch_expire`` /
    ``batch_expire_fraction`` choose batches that expire and how much of them finishes first;
    ``batch_max_lines`` caps an input file; ``batch_clock`` is the clock the lifecycle reads.
    """

    def __init__(
        self,
        *,
        faults: FaultPlan | Iterable[Rule] | None = None,
        responder: Responder | None = None,
        latency: float = 0.0,
        models: Sequence[str] = DEFAULT_MODELS,
        strict_models: bool = False,
        ignore_n: bool = False,
        record: bool = True,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        batch_seconds: float = 1.0,
        batch_phases: tuple[float, float, float] = (0.1, 0.8, 0.1),
        batch_progress: bool = True,
        batch_cancel_seconds: float | None = None,
        batch_line_faults: LineFaults = None,
        batch_expire: ExpireSpec = None,
        batch_expire_fraction: float = 0.5,
        batch_max_lines: int = 50_000,
        batch_clock: Callable[[], float] = time.time,
    ) -> None:
        from tests.support.stub_batches import BatchStore  # it imports this module

        self.faults = faults if isinstance(faults, FaultPlan) else FaultPlan(faults or ())
        self.responder = responder
        self.latency = latency
        self.models = list(models)
        self.strict_models = strict_models
        self.ignore_n = ignore_n
        self.record = record
        self.api_key = api_key
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._log: list[RecordedRequest] = []
        self._errors: list[str] = []
        self._fault_counts: Counter[str] = Counter()
        self._per_path: Counter[str] = Counter()
        self._seq = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self.batch_seconds = batch_seconds
        self.batch_phases = batch_phases
        self.batch_progress = batch_progress
        self.batch_cancel_seconds = batch_cancel_seconds
        self.batch_line_faults: LineFaults = (
            FaultPlan(batch_line_faults)
            if batch_line_faults is not None
            and not isinstance(batch_line_faults, FaultPlan)
            and not callable(batch_line_faults)
            else batch_line_faults
        )
        self.batch_expire = batch_expire
        self.batch_expire_fraction = batch_expire_fraction
        self.batch_max_lines = batch_max_lines
        self.batch_clock = batch_clock
        self._batch_store = BatchStore(self, self._lock)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url``: ``http://127.0.0.1:<port>/v1``."""
        return f"{self.url}/v1"

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> StubServer:
        """Bind and serve in a daemon thread; returns self once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("StubServer already started")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._bind())
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                loop.close()
                ready.set()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        thread = threading.Thread(target=run, name=f"stub-openai-{id(self):x}", daemon=True)
        self._thread = thread
        thread.start()
        if not ready.wait(10):
            raise RuntimeError("StubServer did not start within 10 s")
        if failure:
            self._thread = None
            thread.join(5)
            raise failure[0]
        return self

    def stop(self) -> None:
        """Close the listener and every connection (cancelling hangs) and free the port."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            self._thread = None
            self._loop = None

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def __aenter__(self) -> StubServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.to_thread(self.stop)

    async def _bind(self) -> None:
        self._server = await asyncio.start_server(
            self._handle_connection, self.host, self.port, limit=1 << 20, backlog=1024
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        for _ in range(3):  # let transports run their connection_lost callbacks
            await asyncio.sleep(0)

    # -- recording -------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the request log (requires ``record=True``)."""
        self._require_record()
        with self._lock:
            return list(self._log)

    def requests_for(self, substring: str) -> list[RecordedRequest]:
        """Recorded chat requests whose last user message contains ``substring``."""
        return [r for r in self.requests if substring in r.last_user]

    @property
    def count(self) -> int:
        """Requests received (all paths)."""
        return self._seq

    @property
    def chat_count(self) -> int:
        """Chat-completions requests received."""
        return self._per_path[CHAT_PATH]

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def max_in_flight(self) -> int:
        """Peak number of requests being handled at once (received, not yet answered/closed)."""
        return self._max_in_flight

    @property
    def fault_counts(self) -> Counter[str]:
        """How often each fault was applied, keyed by ``str(fault)``."""
        with self._lock:
            return Counter(self._fault_counts)

    @property
    def errors(self) -> list[str]:
        """Tracebacks of exceptions raised by responders or rule predicates (answered 500)."""
        with self._lock:
            return list(self._errors)

    def reset(self) -> None:
        """Clear the log and counters (not the fault plan, nor stored files and batches)."""
        with self._lock:
            self._log.clear()
            self._errors.clear()
            self._fault_counts.clear()
            self._per_path.clear()
            self._seq = 0
            self._max_in_flight = self._in_flight
        self._batch_store.reset_counters()

    # -- files and batches -----------------------------------------------------------------

    @property
    def files_uploaded(self) -> int:
        """Files stored through ``POST /v1/files``."""
        return self._batch_store.files_uploaded

    @property
    def batches_created(self) -> int:
        """Batches created through ``POST /v1/batches`` (including those that will fail)."""
        return self._batch_store.batches_created

    @property
    def batch_lines_answered(self) -> int:
        """Batch lines finished so far, answered or failed (not counted in ``chat_count``)."""
        return self._batch_store.answered()

    @property
    def batches(self) -> list[dict[str, Any]]:
        """Every batch object as ``GET /v1/batches/{id}`` would return it now, oldest first."""
        return self._batch_store.batches()

    @property
    def batch_custom_ids(self) -> dict[str, list[str]]:
        """Batch id -> the custom_ids of its input file, in file order."""
        return self._batch_store.custom_ids()

    @property
    def files(self) -> list[dict[str, Any]]:
        """Every stored file object (uploads and batch outputs), oldest first."""
        return self._batch_store.files()

    def batch(self, batch_id: str) -> dict[str, Any]:
        """One batch object as of now (KeyError if unknown)."""
        return self._batch_store.batch(batch_id)

    def file_content(self, file_id: str) -> bytes:
        """The bytes of a stored file (KeyError if unknown)."""
        return self._batch_store.file_content(file_id)

    def complete_batch(self, batch_id: str) -> dict[str, Any]:
        """Finish every line of a running batch now (``completed``); returns the batch object."""
        return self._batch_store.complete(batch_id)

    def expire_batch(self, batch_id: str) -> dict[str, Any]:
        """End a running batch as ``expired`` now, keeping the lines finished so far."""
        return self._batch_store.expire(batch_id)

    def cancel_batch(self, batch_id: str) -> dict[str, Any]:
        """Cancel a running batch, as ``POST /v1/batches/{id}/cancel`` does.

        The three controls raise RequestError for an unknown id (404); cancel also for a batch
        already cancelling or ended (409), while complete/expire leave an ended batch as it is.
        """
        return self._batch_store.cancel(batch_id)

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` requests were received; False on timeout."""
        deadline = time.monotonic() + timeout
        while self._seq < count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True

    def _require_record(self) -> None:
        if not self.record:
            raise RuntimeError("this StubServer was created with record=False")

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        reset = False
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return  # client closed between requests
                except asyncio.LimitOverrunError:
                    await self._write(
                        writer, 431, {"error": {"message": "headers too large"}}, False
                    )
                    return
                lines = head.lstrip(b"\r\n")[:-4].decode("latin-1").split("\r\n")
                parts = lines[0].split(" ")
                if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
                    await self._write(
                        writer, 400, {"error": {"message": "bad request line"}}, False
                    )
                    return
                method, target, version = parts
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                connection = headers.get("connection", "").lower()
                keep_alive = (
                    "close" not in connection
                    if version == "HTTP/1.1"
                    else "keep-alive" in connection
                )
                if headers.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                if "chunked" in headers.get("transfer-encoding", "").lower():
                    body = await self._read_chunked(reader)
                else:
                    body = await reader.readexactly(int(headers.get("content-length") or 0))
                keep_alive = await self._serve(method, target, headers, body, writer, keep_alive)
                if not keep_alive:
                    return
        except _Close as close:
            reset = bool(close.args and close.args[0])
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        except asyncio.CancelledError:
            pass  # server shutting down
        finally:
            if task is not None:
                self._connections.discard(task)
            if reset and sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
            writer.close()

    @staticmethod
    async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip(), 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)

    async def _write(
        self,
        writer: asyncio.StreamWriter,
        code: int,
        body: Any,
        keep_alive: bool,
        extra_headers: Sequence[tuple[str, str]] = (),
        content_type: str = "application/json",
    ) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        head = [
            f"HTTP/1.1 {code} {_phrase_of(code)}",
            f"content-type: {content_type}",
            f"content-length: {len(payload)}",
            f"connection: {'keep-alive' if keep_alive else 'close'}",
            *(f"{name}: {value}" for name, value in extra_headers),
            "",
            "",
        ]
        writer.write("\r\n".join(head).encode("latin-1") + payload)
        await writer.drain()

    async def _serve(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        writer: asyncio.StreamWriter,
        keep_alive: bool,
    ) -> bool:
        """Answer one request; returns whether the connection stays open."""
        path = target.split("?", 1)[0]
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        with self._lock:
            self._seq += 1
            seq = self._seq
            self._per_path[path] += 1
            number = self._per_path[path]
            self._in_flight += 1
            if self._in_flight > self._max_in_flight:
                self._max_in_flight = self._in_flight
        try:
            fault: Fault | None = None
            error: Fault | None = None
            try:
                if self.api_key is not None and headers.get("authorization") != (
                    f"Bearer {self.api_key}"
                ):
                    error = status(401)
                else:
                    fault = self.faults.match(
                        number, path, parsed if isinstance(parsed, dict) else {}
                    )
            except Exception:
                error = self._internal_error()
            self._remember(seq, number, method, path, headers, parsed, fault)
            request_id = f"req_stub_{seq}"
            if error is not None:
                await self._send_error(writer, error, keep_alive, request_id)
                return keep_alive
            if fault is not None and fault.kind == "drop":
                raise _Close(fault.reset)
            if fault is not None and fault.kind == "hang":
                await asyncio.sleep(fault.seconds)
                raise _Close(False)
            if path == CHAT_PATH:
                if method != "POST":
                    return await self._method_not_allowed(writer, keep_alive, request_id)
                delay = self.latency + (fault.seconds if fault and fault.kind == "latency" else 0)
                if delay > 0:
                    await asyncio.sleep(delay)
                if fault is not None and fault.kind == "status":
                    await self._send_error(writer, fault, keep_alive, request_id)
                    return keep_alive
                try:
                    if body and parsed is None:
                        raise RequestError("We could not parse the JSON body of your request.")
                    if (
                        self.strict_models
                        and isinstance(parsed, dict)
                        and parsed.get("model") not in self.models
                    ):
                        raise RequestError(
                            f"The model `{parsed.get('model')}` does not exist.",
                            param="model",
                            code="model_not_found",
                            status_=404,
                        )
                    completion = build_completion(
                        parsed,
                        responder=self.responder,
                        ignore_n=self.ignore_n,
                        completion_id=f"chatcmpl-stub-{seq}",
                    )
                    payload = json.dumps(completion).encode()
                except RequestError as exc:
                    await self._send_error(writer, exc.fault, keep_alive, request_id)
                    return keep_alive
                except Exception:
                    await self._send_error(writer, self._internal_error(), keep_alive, request_id)
                    return keep_alive
                if fault is not None and fault.kind == "malformed":
                    payload = payload[: max(1, len(payload) // 2)]
                await self._write(writer, 200, payload, keep_alive, [("x-request-id", request_id)])
                return keep_alive
            if path == MODELS_PATH:
                if method != "GET":
                    return await self._method_not_allowed(writer, keep_alive, request_id)
                if fault is not None and fault.kind == "status":
                    await self._send_error(writer, fault, keep_alive, request_id)
                    return keep_alive
                listing = {
                    "object": "list",
                    "data": [
                        {"id": m, "object": "model", "created": 0, "owned_by": "stub"}
                        for m in self.models
                    ],
                }
                payload = json.dumps(listing).encode()
                if fault is not None and fault.kind == "malformed":
                    payload = payload[: max(1, len(payload) // 2)]
                await self._write(writer, 200, payload, keep_alive, [("x-request-id", request_id)])
                return keep_alive
            if self._batch_store.handles(path):
                if fault is not None and fault.kind == "latency":
                    await asyncio.sleep(fault.seconds)
                if fault is not None and fault.kind == "status":
                    await self._send_error(writer, fault, keep_alive, request_id)
                    return keep_alive
                try:
                    code, payload, content_type = self._batch_store.handle(
                        method, target, headers, body
                    )
                except RequestError as exc:
                    await self._send_error(writer, exc.fault, keep_alive, request_id)
                    return keep_alive
                except Exception:
                    await self._send_error(writer, self._internal_error(), keep_alive, request_id)
                    return keep_alive
                if fault is not None and fault.kind == "malformed":
                    payload = payload[: max(1, len(payload) // 2)]
                await self._write(
                    writer,
                    code,
                    payload,
                    keep_alive,
                    [("x-request-id", request_id)],
                    content_type=content_type,
                )
                return keep_alive
            await self._send_error(
                writer,
                status(404, message=f"Unknown path {path}", code="unknown_url", param=None),
                keep_alive,
                request_id,
            )
            return keep_alive
        finally:
            with self._lock:
                self._in_flight -= 1

    async def _method_not_allowed(
        self, writer: asyncio.StreamWriter, keep_alive: bool, request_id: str
    ) -> bool:
        await self._send_error(
            writer, status(405, message="Method not allowed"), keep_alive, request_id
        )
        return keep_alive

    async def _send_error(
        self, writer: asyncio.StreamWriter, fault: Fault, keep_alive: bool, request_id: str
    ) -> None:
        headers = [("x-request-id", request_id)]
        if fault.retry_after is not None:
            headers.append(("retry-after", _format_seconds(fault.retry_after)))
            headers.append(("retry-after-ms", str(round(fault.retry_after * 1000))))
        await self._write(writer, fault.http_status, fault.error_body(), keep_alive, headers)

    def _internal_error(self) -> Fault:
        self._record_error(traceback.format_exc())
        return status(500, message="stub server: responder or fault predicate raised")

    def _record_error(self, text: str) -> None:
        with self._lock:
            self._errors.append(text)

    def _remember(
        self,
        seq: int,
        number: int,
        method: str,
        path: str,
        headers: dict[str, str],
        parsed: Any,
        fault: Fault | None,
    ) -> None:
        if fault is None and not self.record:
            return
        with self._lock:
            if fault is not None:
                self._fault_counts[str(fault)] += 1
            if self.record:
                self._log.append(
                    RecordedRequest(seq, number, method, path, headers, parsed, fault, time.time())
                )


def _line_fault_rule(spec: str) -> Rule:
    """``STATUS:SUBSTRING`` (``--batch-line-fault``) as a rule for batch lines."""
    code, sep, text = spec.partition(":")
    if not sep or not code.strip().isdigit():
        raise argparse.ArgumentTypeError("expected STATUS:SUBSTRING, e.g. 500:boom")
    return Rule(status(int(code)), contains=text)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve in the foreground until interrupted (for benchmarks in a separate process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--model", action="append", help="model id to list (repeatable)")
    parser.add_argument("--ignore-n", action="store_true", help="answer one choice whatever n is")
    parser.add_argument("--no-record", action="store_true", help="keep counters only")
    batch = parser.add_argument_group("Batch API")
    batch.add_argument(
        "--batch-seconds", type=float, default=1.0, help="seconds from creation to completed"
    )
    batch.add_argument(
        "--batch-cancel-seconds", type=float, default=None, help="seconds spent cancelling"
    )
    batch.add_argument(
        "--batch-no-progress",
        action="store_true",
        help="finish all lines at the end of in_progress instead of one after another",
    )
    batch.add_argument(
        "--batch-expire",
        type=int,
        action="append",
        metavar="N",
        help="the Nth created batch expires (repeatable)",
    )
    batch.add_argument(
        "--batch-expire-fraction",
        type=float,
        default=0.5,
        help="share of an expiring batch's lines finished before it expires",
    )
    batch.add_argument(
        "--batch-line-fault",
        type=_line_fault_rule,
        action="append",
        metavar="STATUS:SUBSTRING",
        help="batch lines whose last user message contains SUBSTRING fail with STATUS",
    )
    args = parser.parse_args(argv)
    server = StubServer(
        latency=args.latency,
        models=args.model or DEFAULT_MODELS,
        ignore_n=args.ignore_n,
        record=not args.no_record,
        host=args.host,
        port=args.port,
        batch_seconds=args.batch_seconds,
        batch_cancel_seconds=args.batch_cancel_seconds,
        batch_progress=not args.batch_no_progress,
        batch_expire=args.batch_expire,
        batch_expire_fraction=args.batch_expire_fraction,
        batch_line_faults=FaultPlan(args.batch_line_fault) if args.batch_line_fault else None,
    )
    with server:
        print(server.base_url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        print(f"served {server.count} requests, max in flight {server.max_in_flight}", flush=True)
        if server.batches_created:
            print(
                f"{server.batches_created} batches, {server.batch_lines_answered} batch lines",
                flush=True,
            )


if __name__ == "__main__":
    # Run the canonical module, not this ``__main__`` copy: tests.support.stub_batches imports
    # tests.support.stub_openai, and both must share one set of classes.
    from tests.support.stub_openai import main as _main

    _main()
