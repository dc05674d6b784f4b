"""What every hosted (HTTP API) backend shares: paths to a distribution, retries, rate limits.

A hosted backend only implements ``_send(body) -> dict`` (one chat-completions call, OpenAI
schema in and out) and ``_classify(exc)`` (its SDK's exceptions → a :class:`RequestFailed`
kind). This base class turns :class:`CompletionRequest` into those calls:

* **choice scoring** — one call, ``max_tokens=1, logprobs, top_logprobs=K``; the first answer
  token's alternatives are matched to the choice strings (:func:`match_top_logprobs`). Path
  ``top_logprobs``. If the server returns no log-probabilities (detected on the first answer and
  remembered), or none of the alternatives names a label, the distribution is estimated from
  ``n`` sampled answers parsed for a label (:func:`parse_choice`). Path ``samples``.
* **n answers** — one call with ``n`` while the server honours it (path ``n``); a server that
  silently returns fewer choices (llama.cpp does) is detected on the first such answer and from
  then on each answer is its own call with seed :func:`sample_seed` (path ``seeded``).
* **resilience** — every HTTP call runs under an :class:`AdaptiveLimit` (halves the requests in
  flight on a 429 and pauses for its Retry-After, then grows back by one per window of
  successes) and is retried with exponential backoff and jitter for rate limits, 5xx, timeouts,
  dropped connections and malformed bodies, up to ``max_attempts``. No wait is longer than
  ``max_retry_wait``: a server whose Retry-After asks for longer fails that request for good at
  once (its own kind, ``rate_limit`` for a 429) and pauses nobody else, so one
  ``Retry-After: 86400`` cannot freeze the run. What still fails, and every non-retryable error
  (auth, context length, content filter, other 4xx), is raised as :class:`RequestFailed` for
  the run to record against the item.

Keys never leave the environment: they are passed to the SDK client and appear in no identity,
request payload or error message; :func:`~sua_audit.errors.install_log_redaction` keeps them (and Authorization
headers, and URL credentials) out of log lines too, the HTTP libraries' DEBUG lines included.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import math
import random
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from sua_audit.backends.base import (
    Backend,
    Capabilities,
    Completion,
    CompletionRequest,
    sample_seed,
)
from sua_audit.errors import ConfigError, RequestFailed

if TYPE_CHECKING:
    from sua_audit.backends.endpoints import Endpoint, EndpointPool

logger = logging.getLogger(__name__)

#: Error kinds worth another attempt.
RETRYABLE = frozenset({"rate_limit", "server", "timeout", "connection", "malformed"})

#: OpenAI's maximum; servers that allow fewer clamp or refuse (a refusal is retried at 5).
TOP_LOGPROBS = 20

#: Below this probability on label tokens among the first token's alternatives, the top
#: logprobs say too little (a first token "E" at p = 0.008 would otherwise read as certainty
#: for "Entailment"): the distribution is estimated from samples instead.
MIN_LABEL_MASS = 0.1


class AdaptiveLimit:
    """A concurrency limit that halves on rate limiting and grows back slowly.

    ``acquire``/``release`` bracket one HTTP attempt. :meth:`throttle` (on a 429) halves the
    limit and, given a Retry-After of at most ``max_pause`` seconds, pauses new attempts until
    it has passed; a longer Retry-After pauses nobody (the request that got it gives up, see
    :meth:`HostedBackend._attempt`). Each ``limit`` consecutive successes raise the limit by
    one, up to ``ceiling``.
    """

    def __init__(
        self,
        ceiling: int,
        *,
        max_pause: float = math.inf,
        cond: asyncio.Condition | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ceiling = max(1, ceiling)
        self.max_pause = max_pause
        self.limit = self.ceiling
        self.in_flight = 0
        self.peak = 0
        self.throttles = 0
        self._successes = 0
        self._resume_at = 0.0
        # Several replicas' limits share their pool's condition (see .endpoints), so that a
        # release on any of them wakes requests waiting for room on any.
        self._cond = cond if cond is not None else asyncio.Condition()
        self._clock = clock

    @property
    def resume_at(self) -> float:
        """When a Retry-After pause ends (on ``clock``; 0: no pause)."""
        return self._resume_at

    def has_room(self, now: float) -> bool:
        """Another attempt may start now: not paused, fewer than ``limit`` in flight."""
        return self._resume_at <= now and self.in_flight < self.limit

    def take(self) -> None:
        """Count one more attempt in flight (the caller holds the condition and checked
        :meth:`has_room`)."""
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)

    def give_back(self, *, ok: bool) -> None:
        """One attempt ended (the caller holds the condition and notifies)."""
        self.in_flight -= 1
        if ok:
            self._successes += 1
            if self._successes >= self.limit and self.limit < self.ceiling:
                self.limit += 1
                self._successes = 0

    async def acquire(self) -> None:
        async with self._cond:
            while True:
                wait = self._resume_at - self._clock()
                if wait > 0:
                    self._cond.release()
                    try:
                        await asyncio.sleep(wait)
                    finally:
                        await self._cond.acquire()
                    continue
                if self.in_flight < self.limit:
                    break
                await self._cond.wait()
            self.take()

    async def release(self, *, ok: bool) -> None:
        async with self._cond:
            self.give_back(ok=ok)
            self._cond.notify_all()

    async def throttle(self, retry_after: float | None) -> None:
        async with self._cond:
            self.throttles += 1
            self.limit = max(1, self.limit // 2)
            self._successes = 0
            if retry_after and 0 < retry_after <= self.max_pause:
                self._resume_at = max(self._resume_at, self._clock() + retry_after)
            self._cond.notify_all()


def backoff_seconds(attempt: int, retry_after: float | None, *, base: float, cap: float) -> float:
    """Wait before attempt ``attempt + 1``: the server's Retry-After when it gave one (capped),
    else exponential backoff ``base·2^(attempt-1)`` with full jitter, capped."""
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, cap)
    return random.uniform(0, min(cap, base * 2 ** (attempt - 1)))


def _norm_token(token: str) -> str:
    # Tokenizers mark a leading space in several ways; servers usually decode it to " ".
    return token.replace("Ġ", " ").replace("▁", " ").strip()


def match_top_logprobs(
    top: Sequence[tuple[str, float]], choices: Sequence[str], owners: Sequence[int] | None = None
) -> list[float]:
    """Choice log-probabilities from the first answer token's top alternatives.

    A token (leading space and quotes stripped) counts for a choice when the choice starts with
    it (case-sensitive: ``Pos`` → ``Positive``, not ``positive``). A token that fits choices of
    different labels (``ne`` for ``neutral`` and ``negative``) is ambiguous and dropped; one
    that fits several forms of one label counts once. The probabilities of all tokens that
    count for a choice are added. A choice no token fits gets ``-inf`` (probability 0 after
    renormalising over the labels).

    ``owners[i]`` is the label of choice ``i`` (default: every choice its own label).
    """
    owners = list(owners) if owners is not None else list(range(len(choices)))
    mass = [0.0] * len(choices)
    for token, logprob in top:
        t = _norm_token(token).strip("\"'`*")
        if not t or not math.isfinite(logprob):
            continue
        fits = [i for i, c in enumerate(choices) if c.startswith(t)]
        if not fits or len({owners[i] for i in fits}) > 1:
            continue
        mass[fits[0]] += math.exp(logprob)
    return [math.log(m) if m > 0 else -math.inf for m in mass]


def parse_choice(text: str, choices: Sequence[str]) -> int | None:
    """The choice an answer names: the earliest whole-word, case-insensitive mention
    (underscores and spaces interchangeable); ``None`` when it names none."""
    best: tuple[int, int] | None = None
    low = text.lower()
    for i, c in enumerate(choices):
        words = re.split(r"[_\s]+", c.lower().strip())
        pattern = r"(?<![a-z0-9])" + r"[\s_]+".join(map(re.escape, words)) + r"(?![a-z0-9])"
        m = re.search(pattern, low)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), i)
    return None if best is None else best[1]


def _usage(body: dict[str, Any]) -> tuple[int, int]:
    usage = body.get("usage") or {}
    return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)


def _choice_text(choice: dict[str, Any]) -> str:
    message = choice.get("message") or {}
    content = message.get("content")
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


class HostedBackend(Backend):
    """Shared request logic of the OpenAI-compatible backends."""

    provider: ClassVar[str]
    overlaps_chunks: ClassVar[bool] = True

    def __init__(
        self,
        model: str,
        *,
        concurrency: int = 16,
        timeout: float = 60.0,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        max_retry_wait: float = 60.0,
        top_logprobs: int = TOP_LOGPROBS,
        batch: bool = False,
        batch_poll: float = 5.0,
    ) -> None:
        if not math.isfinite(max_retry_wait) or max_retry_wait <= 0:
            raise ValueError(f"max_retry_wait must be positive and finite, not {max_retry_wait}")
        self.model = model
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.backoff_base = backoff_base
        # The longest wait before a retry, and the longest pause a Retry-After may impose on
        # every request; a server asking for longer fails the request instead.
        self.max_retry_wait = max_retry_wait
        self.top_logprobs = top_logprobs
        self.limit = AdaptiveLimit(concurrency, max_pause=max_retry_wait)
        # Learned from the server's answers during the run (None: not yet known).
        self.honours_n: bool | None = None
        self.returns_logprobs: bool | None = None
        self.retries = 0
        self.calls = 0
        self.min_label_mass = MIN_LABEL_MASS
        # While honours_n is unknown, one request finds out and the others wait for it, so a
        # server that ignores n costs one wasted call per run, not one per request in flight.
        self._n_probe = asyncio.Lock()
        self.capabilities = Capabilities(logprobs=True, top_logprobs=True, n=True, seed=True)
        # Several replicas of the model (a backend given several server URLs sets this): each
        # attempt goes to one of them, under that replica's own limit (see .endpoints).
        self.endpoints: EndpointPool | None = None
        self._endpoints_checked: asyncio.Future[None] | None = None
        self.batch = batch
        self.batch_poll = batch_poll
        self._batches: Any = None
        if batch:
            from sua_audit.backends.batch import MAX_LINES

            # Every request of a chunk goes in at once (the batch is the rate limit), and n is
            # taken as honoured: probing it first would cost a whole batch round trip. A short
            # answer still falls back to seeded calls for that request.
            self.concurrency = MAX_LINES
            self.limit = AdaptiveLimit(MAX_LINES, max_pause=max_retry_wait)
            self.honours_n = True
            # A failed line is retried in the next batch: waiting first would only spread the
            # retries of one batch over several (the queue gathers what arrives together).
            self.backoff_base = 0.0

    # -- what a concrete backend provides ------------------------------------------------------

    @abc.abstractmethod
    async def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        """One chat-completions call; the response as OpenAI-schema JSON data."""

    @abc.abstractmethod
    def _classify(self, exc: BaseException) -> RequestFailed | None:
        """Map an SDK exception to a failure (``None``: not an API error — let it raise).

        The returned failure may carry ``retry_after`` (seconds) as an attribute.
        """

    async def _send_via(self, client: Any, body: dict[str, Any]) -> dict[str, Any]:
        """One chat-completions call through one replica's client (:attr:`endpoints`)."""
        raise NotImplementedError(f"{type(self).__name__} serves one endpoint")

    async def _check_endpoints(self) -> None:
        """Before the first call to several replicas: refuse them unless they serve the same
        model (a :class:`~sua_audit.errors.SuaAuditError` that stops the run)."""

    def _batch_client(self) -> Any:
        """The provider's files and batches endpoints (:class:`.batch.BatchClient`)."""
        raise NotImplementedError(f"{type(self).__name__} cannot send batches")

    def _batch_model(self) -> str | None:
        """The model name batch files carry when it differs from :attr:`model`."""
        return None

    # -- Backend interface ---------------------------------------------------------------------

    def bind(self, store: Any, note: Callable[[str], None] | None = None) -> None:
        """In batch mode, keep the batch ledger in the run's cache (the first binding wins:
        a rewriter sharing this backend binds it again)."""
        if not self.batch or self._batches is not None:
            return
        if store is None:
            raise ConfigError(
                "--batch keeps its batch ids in the cache so a rerun can resume them; it "
                "cannot run with --cache-mode off. Drop one of the two."
            )
        from sua_audit.backends.batch import BatchQueue

        ident = self.identity()
        self._batches = BatchQueue(
            self._batch_client(),
            store.batch_ledger(),
            base_url=str(ident.get("base_url") or ident.get("provider")),
            model=self.model,
            model_in_file=self._batch_model(),
            poll=self.batch_poll,
            note=note,
        )

    async def aclose(self) -> None:
        """Stop polling batches: they go on at the provider, and a rerun resumes them."""
        if self._batches is not None:
            await self._batches.aclose()

    def max_concurrency(self) -> int:
        """The engine keeps this many requests open; the adaptive limit governs HTTP calls.
        With several replicas, ``concurrency`` on each."""
        return self.concurrency * (len(self.endpoints) if self.endpoints is not None else 1)

    def describe(self) -> dict[str, Any]:
        """Identity plus what the run learned about the server (and, with several replicas,
        each one's calls, failures and the times it was marked down)."""
        pool = self.endpoints
        return {
            **super().describe(),
            "server_honours_n": self.honours_n,
            "server_returns_logprobs": self.returns_logprobs,
            "http_calls": self.calls,
            "retries": self.retries,
            "rate_limit_slowdowns": (
                self.limit.throttles
                if pool is None
                else sum(e.limit.throttles for e in pool.endpoints)
            ),
            "peak_in_flight": self.limit.peak if pool is None else pool.peak,
            **({"batch": self._batches.describe()} if self._batches is not None else {}),
            **({"endpoints": pool.describe()} if pool is not None else {}),
        }

    async def complete(self, request: CompletionRequest) -> Completion:
        """Answer one request by the cheapest path the server supports."""
        if request.choices is not None:
            spent = (0, 0)
            if self.returns_logprobs is not False:
                done, spent = await self._score_by_logprobs(request)
                if done is not None:
                    return done
            return _plus_usage(await self._score_by_samples(request), spent)
        return await self._generate(request, max(1, request.n))

    # -- paths ---------------------------------------------------------------------------------

    def _body(self, request: CompletionRequest, **overrides: Any) -> dict[str, Any]:
        p = request.params
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": p.temperature,
            "max_tokens": p.max_tokens,
        }
        if p.top_p < 1.0:
            body["top_p"] = p.top_p
        if p.seed is not None:
            # A later round of samples (offset > 0) must not repeat the first round's draws.
            offset = request.sample_offset
            body["seed"] = sample_seed(p.seed, offset) if offset else p.seed
        body.update(overrides)
        return body

    async def _score_by_logprobs(
        self, request: CompletionRequest
    ) -> tuple[Completion | None, tuple[int, int]]:
        """The label distribution from the first token's top logprobs, or ``None`` (with the
        call's token usage, which the fallback's answer must still account for)."""
        assert request.choices is not None
        body = self._body(
            request,
            temperature=0.0,
            max_tokens=1,
            logprobs=True,
            top_logprobs=self.top_logprobs,
        )
        body.pop("seed", None)
        resp = await self._call(body)
        spent = _usage(resp)
        choices = resp.get("choices") or []
        content = ((choices[0].get("logprobs") or {}).get("content") or []) if choices else []
        if not content or not content[0].get("top_logprobs"):
            if self.returns_logprobs is None:
                logger.warning(
                    "%s returned no log-probabilities; label distributions will be estimated "
                    "from sampled answers instead",
                    self.model,
                )
            self.returns_logprobs = False
            return None, spent
        self.returns_logprobs = True
        top = [
            (e.get("token") or "", float(e.get("logprob", -math.inf)))
            for e in content[0]["top_logprobs"]
        ]
        lps = match_top_logprobs(top, request.choices, _label_owners(request.choices))
        mass = sum(math.exp(lp) for lp in lps if lp > -math.inf)
        if mass < self.min_label_mass:
            # The answer mostly starts with something else ("The ..."): sample instead.
            return None, spent
        return Completion(
            text=_choice_text(choices[0]),
            choice_logprobs=lps,
            prompt_tokens=spent[0],
            completion_tokens=spent[1],
            finish_reason=choices[0].get("finish_reason"),
            path="top_logprobs",
            label_mass=round(min(mass, 1.0), 6),
        ), (0, 0)

    async def _score_by_samples(self, request: CompletionRequest) -> Completion:
        assert request.choices is not None
        n = max(1, request.n)
        answers = await self._generate(request, n)
        texts = answers.texts or [answers.text or ""]
        counts = [0] * len(request.choices)
        for text in texts:
            idx = parse_choice(text, request.choices)
            if idx is not None:
                counts[idx] += 1
        if not any(counts):
            raise RequestFailed(
                "empty",
                f"none of {len(texts)} sampled answers names a label (first: {texts[0][:60]!r})",
            )
        total = sum(counts)
        return Completion(
            text=answers.text,
            texts=answers.texts,
            choice_logprobs=[math.log(c / total) if c else -math.inf for c in counts],
            prompt_tokens=answers.prompt_tokens,
            completion_tokens=answers.completion_tokens,
            finish_reason=answers.finish_reason,
            path="samples",
            label_mass=round(total / len(texts), 6),
        )

    async def _generate(self, request: CompletionRequest, n: int) -> Completion:
        spent = (0, 0)
        if n > 1 and self.honours_n is None:
            async with self._n_probe:
                if self.honours_n is None:
                    resp = await self._call(self._body(request, n=n))
                    choices = resp.get("choices") or []
                    if len(choices) >= n:
                        self.honours_n = True
                        return self._answers(resp, choices[:n], path="n", n=n)
                    logger.warning(
                        "%s returned %d of %d requested answers (it ignores n); "
                        "sending one seeded request per answer instead",
                        self.model,
                        len(choices),
                        n,
                    )
                    self.honours_n = False
                    # Its lone answer is not sample 0 (whose seed is derived), so it is not
                    # reused: one wasted call per run keeps samples reproducible.
                    spent = _usage(resp)
        if n > 1 and self.honours_n:
            resp = await self._call(self._body(request, n=n))
            choices = resp.get("choices") or []
            if len(choices) >= n:
                return self._answers(resp, choices[:n], path="n", n=n)
            spent = _usage(resp)  # a short answer this time: fall back for this request
        if n == 1:
            resp = await self._call(self._body(request))
            return self._answers(resp, (resp.get("choices") or [])[:1], path="single", n=1)
        seed, offset = request.params.seed, request.sample_offset
        calls = [
            asyncio.ensure_future(
                self._call(self._body(request, seed=sample_seed(seed, offset + i)))
            )
            for i in range(n)
        ]
        try:
            responses = await asyncio.gather(*calls)
        except BaseException:
            # One answer failed for good, so this request has: stop the others' attempts
            # (gather alone leaves them running, retrying paid calls nobody will use).
            for call in calls:
                call.cancel()
            raise
        picked = [(r.get("choices") or [{}])[0] for r in responses]
        out = self._answers({}, picked, path="seeded", n=n)
        for r in responses:
            spent = _add(spent, _usage(r))
        return _plus_usage(out, spent)

    @staticmethod
    def _answers(
        resp: dict[str, Any], choices: Sequence[dict[str, Any]], *, path: str, n: int
    ) -> Completion:
        if not choices:
            raise RequestFailed("empty", "the server returned no answer")
        for c in choices:
            if c.get("finish_reason") == "content_filter":
                raise RequestFailed(
                    "content_filter", "the vendor's content filter stopped the answer"
                )
        texts = [_choice_text(c) for c in choices]
        pt, ct = _usage(resp)
        return Completion(
            text=texts[0],
            texts=texts if n > 1 else None,
            prompt_tokens=pt,
            completion_tokens=ct,
            finish_reason=choices[0].get("finish_reason"),
            path=path,
        )

    # -- one HTTP call, with limit and retries ---------------------------------------------------

    async def _call(self, body: dict[str, Any]) -> dict[str, Any]:
        """One logical call: attempts under the adaptive limit, retried by tenacity."""
        from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return backoff_seconds(
                state.attempt_number,
                getattr(exc, "retry_after", None),
                base=self.backoff_base,
                cap=self.max_retry_wait,
            )

        def before_sleep(state: RetryCallState) -> None:
            self.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            logger.info(
                "retrying after %s (attempt %d of %d)",
                getattr(exc, "kind", "error"),
                state.attempt_number,
                self.max_attempts,
            )

        if self.endpoints is not None:
            await self._endpoints_ready()
        # Replicas this call's attempts failed on (connection, timeout, 5xx): its retries go
        # to the others while another healthy one exists.
        avoid: set[str] = set()
        attempts = 0
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.max_attempts),
                wait=wait,
                retry=retry_if_exception(self._retryable),
                before_sleep=before_sleep,
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    return await self._attempt(body, avoid)
        except RequestFailed as failure:
            failure.attempts = attempts
            raise
        raise AssertionError("unreachable: tenacity returns or raises")  # pragma: no cover

    def _retryable(self, exc: BaseException) -> bool:
        """Worth another attempt: a retryable kind the server lets us retry soon enough."""
        return (
            isinstance(exc, RequestFailed)
            and exc.kind in RETRYABLE
            and not self._waits_too_long(exc)
        )

    def _waits_too_long(self, failure: RequestFailed) -> bool:
        return failure.retry_after is not None and failure.retry_after > self.max_retry_wait

    async def _endpoints_ready(self) -> None:
        """Check the replicas once, before the first call to any (callers arriving meanwhile
        wait for the check, and all of them see its error)."""
        checked = self._endpoints_checked
        if checked is None or (
            not checked.done() and checked.get_loop() is not asyncio.get_running_loop()
        ):
            self._endpoints_checked = checked = asyncio.ensure_future(self._check_endpoints())
        await asyncio.shield(checked)

    async def _attempt(self, body: dict[str, Any], avoid: set[str] | None = None) -> dict[str, Any]:
        """One HTTP call under the adaptive limit (of the replica it is routed to, with several);
        API errors become :class:`RequestFailed`."""
        pool = self.endpoints
        endpoint: Endpoint | None = None
        probe = False
        if pool is None:
            limit = self.limit
            await limit.acquire()
        else:
            endpoint, probe = await pool.acquire(avoid or ())
            limit = endpoint.limit
        ok = False
        failure: RequestFailed | None = None
        try:
            self.calls += 1
            if self._batches is not None:
                resp = await self._batches.send(body)
            elif endpoint is not None:
                resp = await self._send_via(endpoint.client, body)
            else:
                resp = await self._send(body)
            if not isinstance(resp, dict) or not isinstance(resp.get("choices"), list):
                raise RequestFailed("malformed", "the response has no 'choices' list")
            ok = True
            return resp
        except RequestFailed as exc:
            failure = exc
        except Exception as exc:  # noqa: BLE001 - classified below or re-raised
            failure = self._classify(exc)
            if failure is None:
                raise
        finally:
            if pool is None or endpoint is None:
                await limit.release(ok=ok)
            else:
                await pool.release(endpoint, probe=probe, ok=ok, failure=failure)
        assert failure is not None  # the try block returned otherwise
        if failure.kind == "rate_limit":
            await limit.throttle(failure.retry_after)
        if endpoint is not None and avoid is not None:
            from sua_audit.backends.endpoints import HEALTH_KINDS

            if failure.kind in HEALTH_KINDS:
                avoid.add(endpoint.url)
        if failure.kind in RETRYABLE and self._waits_too_long(failure):
            # Waiting that long would stall the item (and, shared, the run): give up now.
            raise _too_long(failure, self.max_retry_wait)
        raise failure


def _too_long(failure: RequestFailed, cap: float) -> RequestFailed:
    """``failure``, saying that its Retry-After is past the cap (so it is not retried)."""
    longer = RequestFailed(
        failure.kind,
        f"{failure} (the server asks to retry after {failure.retry_after:g}s, longer than "
        f"--max-retry-wait {cap:g}s)",
        status=failure.status,
    )
    longer.retry_after = failure.retry_after
    return longer


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] + b[0], a[1] + b[1]


def _plus_usage(completion: Completion, spent: tuple[int, int]) -> Completion:
    """Charge a completion with tokens of calls whose answers were not used (they cost too)."""
    completion.prompt_tokens += spent[0]
    completion.completion_tokens += spent[1]
    return completion


def _label_owners(choices: Sequence[str]) -> list[int]:
    """Group surface forms that differ only in case (``positive``/``Positive``) as one label."""
    seen: dict[str, int] = {}
    return [seen.setdefault(c.lower(), len(seen)) for c in choices]
