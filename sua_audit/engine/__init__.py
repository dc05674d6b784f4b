"""The Generator: how audits, rescoring, variant sets and graders call a model.

Every backend request whose answer is used goes through it, so it is cached and counted. The
one exception is ``sua-audit backends --probe`` (:mod:`sua_audit.cli.backends`), which calls a
backend directly: it asks how the backend answers, not for an answer to keep. (Training and the
sentence encoder of :mod:`sua_audit.equivalence` run their models without a backend.)

``generate(request)`` looks the request up in the cache, otherwise calls the backend under a
concurrency bound, and buffers the answer for the cache. The buffer is flushed every
``flush_rows`` answers or ``flush_seconds``, whichever comes first, and on close, so an
interrupted run loses at most a fraction of a second of work. Errors are never cached.

A request the backend gives up on (:class:`~sua_audit.errors.RequestFailed`) comes back as that
exception object in the results, so the caller can report the item and the run goes on; any
other exception stops the run. One exception to "the run goes on": when the very first answers
are authentication or model-not-found failures, every request would fail the same way, and the
run stops.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from sua_audit.backends.base import Backend, Completion, CompletionRequest
from sua_audit.errors import RequestFailed, SpendLimitReached
from sua_audit.store import Store, canonical_json, request_key, utc_now

__all__ = ["CacheMode", "Generator", "GeneratorStats", "NullProgress", "Progress"]

logger = logging.getLogger(__name__)

CacheMode = Literal["use", "refresh", "off"]


class Progress(Protocol):
    """What the engine reports progress to (the CLI draws it; tests ignore it)."""

    def start(self, total: int, description: str) -> None:
        """Begin counting up to ``total`` model requests."""

    def advance(self, n: int = 1, *, cached: bool = False) -> None:
        """``n`` requests finished (from the cache when ``cached``)."""

    def close(self) -> None:
        """Stop drawing."""

    def note(self, text: str) -> None:
        """Show one line of status beside the count (provider batch jobs report here)."""


class NullProgress:
    """Progress that shows nothing."""

    def start(self, total: int, description: str) -> None:
        """Ignore."""

    def advance(self, n: int = 1, *, cached: bool = False) -> None:
        """Ignore."""

    def close(self) -> None:
        """Ignore."""

    def note(self, text: str) -> None:
        """Ignore."""


@dataclass(slots=True)
class GeneratorStats:
    """Counts for the run summary."""

    model_calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_seconds: float = 0.0
    failed: int = 0
    paths: dict[str, int] = field(default_factory=dict)
    """How many answers (made or cached) came by each path (``exact``, ``top_logprobs``, ...)."""


class Generator:
    """Cache → concurrency bound → backend → cache."""

    def __init__(
        self,
        backend: Backend,
        store: Store | None,
        *,
        cache_mode: CacheMode = "use",
        max_concurrency: int | None = None,
        progress: Progress | None = None,
        flush_rows: int = 512,
        flush_seconds: float = 0.25,
        spend_limit: tuple[Callable[[int, int], float], float] | None = None,
    ) -> None:
        self.backend = backend
        self.store = store if cache_mode != "off" else None
        self.cache_mode = cache_mode
        self.identity = backend.identity()
        self.progress = progress or NullProgress()
        self._semaphore = asyncio.Semaphore(max_concurrency or backend.max_concurrency())
        self._buffer: list[dict[str, object]] = []
        self._last_flush = time.monotonic()
        self._flush_rows = flush_rows
        self._flush_seconds = flush_seconds
        self.stats = GeneratorStats()
        self._answered = 0
        # (cost of (prompt, completion) tokens in USD, the most this run may spend).
        self._spend_limit = spend_limit
        # A backend that keeps state in the cache (provider batch jobs) gets it here.
        bind = getattr(backend, "bind", None)  # test doubles need not subclass Backend
        if bind is not None:
            bind(self.store, self._note)

    def _note(self, text: str) -> None:
        logger.info("%s", text)
        self.progress.note(text)

    def key(self, request: CompletionRequest) -> str:
        """The cache key of ``request`` for this generator's backend."""
        return request_key(self.identity, request, self.backend.key_payload(request))

    async def generate_many(
        self, requests: list[CompletionRequest]
    ) -> list[Completion | RequestFailed]:
        """Answer many requests, looking the cache up in one query; results in input order.

        A request that failed for good is returned as its :class:`RequestFailed`.
        """
        keys = [self.key(r) for r in requests]
        cached: dict[str, dict[str, object]] = {}
        if self.store is not None and self.cache_mode == "use":
            cached = self.store.get_many(keys)
        results: list[Completion | RequestFailed | None] = [None] * len(requests)
        missing: list[int] = []
        for i, key in enumerate(keys):
            hit = cached.get(key)
            if hit is not None:
                completion = Completion.from_dict(hit)
                results[i] = completion
                self._count_path(completion)
            else:
                missing.append(i)
        hits = len(requests) - len(missing)
        if hits:
            self.stats.cache_hits += hits
            self.progress.advance(hits, cached=True)
            logger.debug("cache: %d hits, %d misses", hits, len(missing))

        async def call(i: int) -> None:
            results[i] = await self._call(requests[i], keys[i])

        try:
            async with asyncio.TaskGroup() as tg:
                for i in missing:
                    tg.create_task(call(i))
        except BaseExceptionGroup as group:
            # Callers handle one error, the first; the others were the same failure's echoes.
            first: BaseException = group
            while isinstance(first, BaseExceptionGroup):
                first = first.exceptions[0]
            raise first from None
        return [r for r in results if r is not None]

    async def generate(self, request: CompletionRequest) -> Completion:
        """Answer one request; a final failure is raised."""
        (completion,) = await self.generate_many([request])
        if isinstance(completion, RequestFailed):
            raise completion
        return completion

    def _count_path(self, completion: Completion) -> None:
        if completion.path:
            self.stats.paths[completion.path] = self.stats.paths.get(completion.path, 0) + 1

    async def _call(self, request: CompletionRequest, key: str) -> Completion | RequestFailed:
        async with self._semaphore:
            t0 = time.perf_counter()
            try:
                completion = await self.backend.complete(request)
            except RequestFailed as exc:
                self.stats.model_seconds += time.perf_counter() - t0
                return self._failed(exc)
            self.stats.model_seconds += time.perf_counter() - t0
        self._answered += 1
        self._count_path(completion)
        self.stats.model_calls += 1
        self.stats.prompt_tokens += completion.prompt_tokens
        self.stats.completion_tokens += completion.completion_tokens
        self.progress.advance(1)
        over = self._over_budget()
        if self.store is not None:
            self._buffer.append(
                {
                    "key": key,
                    "provider": str(self.identity.get("provider")),
                    "model": str(self.identity.get("model")),
                    "request_json": canonical_json(
                        {"backend": self.identity, "request": request.payload()}
                    ),
                    "response_json": canonical_json(completion.to_dict()),
                    "prompt_tokens": completion.prompt_tokens,
                    "completion_tokens": completion.completion_tokens,
                    "latency_ms": completion.latency_ms,
                    "created_utc": utc_now(),
                }
            )
            now = time.monotonic()
            if (
                len(self._buffer) >= self._flush_rows
                or now - self._last_flush >= self._flush_seconds
            ):
                self.flush()
        if over is not None:
            self.flush()  # what was paid for stays in the cache
            raise over
        return completion

    def _over_budget(self) -> SpendLimitReached | None:
        if self._spend_limit is None:
            return None
        cost, limit = self._spend_limit
        spent = cost(self.stats.prompt_tokens, self.stats.completion_tokens)
        if spent < limit:
            return None
        return SpendLimitReached(
            f"spent ${spent:.4f} of --max-cost ${limit:g} after {self.stats.model_calls} "
            "requests; they are cached. Rerun with a higher --max-cost to finish the audit."
        )

    def _failed(self, exc: RequestFailed) -> RequestFailed:
        self.stats.failed += 1
        self.progress.advance(1)
        if exc.kind in ("auth", "not_found") and self._answered == 0:
            # Nothing has worked yet and the server rejects the credentials: every other
            # request would fail the same way, so stop instead of recording each one.
            raise exc
        logger.info("request failed (%s): %s", exc.kind, exc)
        return exc

    def flush(self) -> None:
        """Write buffered answers to the cache in one transaction."""
        if self.store is not None and self._buffer:
            rows, self._buffer = self._buffer, []
            self.store.put_many(rows)
        self._last_flush = time.monotonic()
