"""Several replicas of one model: where each HTTP attempt goes, and which replicas are down.

A run given ``--base-url`` more than once (data-parallel vLLM replicas with no load balancer in
front) keeps one :class:`Endpoint` per URL, each with its own client and its own
:class:`~sua_audit.backends.hosted.AdaptiveLimit` (``--concurrency`` requests in flight on each;
a 429 halves that replica's limit and pauses that replica only). :class:`EndpointPool` routes
every attempt:

* **routing** — to the healthy replica with the most free capacity: the lowest
  ``in_flight / limit`` among those with room now (not full, not paused by a Retry-After);
  replicas that tie are taken in turn (round robin). A retry avoids the replicas its request
  already failed on with a connection error, timeout or 5xx while another healthy one exists.
* **health** — :data:`DOWN_AFTER` consecutive attempts that fail with a connection error, a
  timeout or a 5xx mark a replica down for a cooling period (:data:`COOL_FIRST` seconds); any
  answer from it (a success, a 4xx, a 429, a malformed body) resets the count. When the
  period is over, one attempt probes it: an answer brings it back, another such failure marks
  it down again for twice as long, up to :data:`COOL_CAP` seconds.
* **all down** — when no replica is healthy, attempts go to all of them as if none were down
  (each still under its own limit): requests fail as they would against one dead server,
  after their retries, and are recorded against their items; one that comes back is used.

The pool's state is changed only under one :class:`asyncio.Condition`, which the replicas'
limits share, so a release or a 429 on any replica wakes the requests waiting for room.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sua_audit.backends.hosted import AdaptiveLimit
from sua_audit.errors import RequestFailed

__all__ = [
    "COOL_CAP",
    "COOL_FIRST",
    "DOWN_AFTER",
    "HEALTH_KINDS",
    "Endpoint",
    "EndpointPool",
]

logger = logging.getLogger(__name__)

#: Consecutive failed attempts (of :data:`HEALTH_KINDS`) that mark a replica down.
DOWN_AFTER = 3
#: The first cooling period of a replica marked down, in seconds; each failed probe doubles it.
COOL_FIRST = 2.0
#: The longest cooling period, in seconds.
COOL_CAP = 60.0
#: Failure kinds that say a replica is unwell (anything else is an answer from a live server).
HEALTH_KINDS = frozenset({"connection", "timeout", "server"})

#: The longest a request waiting for room sleeps before it looks again (a safety net: releases,
#: throttles and health changes wake it at once).
_RECHECK = 1.0


@dataclass(eq=False)
class Endpoint:
    """One replica: its public URL, what the backend sends through, its limit and health."""

    url: str
    client: Any
    limit: AdaptiveLimit
    calls: int = 0
    failures: int = 0
    down_episodes: int = 0
    consecutive: int = 0
    down_until: float | None = None
    cooling: float = 0.0
    probing: bool = False
    _answered: int = field(default=0, repr=False)

    @property
    def down(self) -> bool:
        """Marked down (cooling, or cooled and waiting for its probe's answer)."""
        return self.down_until is not None

    def describe(self) -> dict[str, Any]:
        """This replica's counts for the run summary."""
        return {
            "url": self.url,
            "calls": self.calls,
            "answered": self._answered,
            "failures": self.failures,
            "marked_down": self.down_episodes,
            "down_at_end": self.down,
            "rate_limit_slowdowns": self.limit.throttles,
            "peak_in_flight": self.limit.peak,
        }


class EndpointPool:
    """Routes attempts across replicas and keeps their health (see the module docstring).

    ``acquire`` picks a replica and takes one slot of its limit; ``release`` gives the slot
    back with the attempt's outcome. ``clock`` is the monotonic clock the cooling periods are
    measured on (tests pass their own).
    """

    def __init__(
        self,
        endpoints: Sequence[tuple[str, Any]],
        *,
        concurrency: int,
        max_pause: float = math.inf,
        down_after: int = DOWN_AFTER,
        cool_first: float = COOL_FIRST,
        cool_cap: float = COOL_CAP,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not endpoints:
            raise ValueError("an endpoint pool needs at least one endpoint")
        self._cond = asyncio.Condition()
        self._clock = clock
        self.endpoints = [
            Endpoint(
                url,
                client,
                AdaptiveLimit(concurrency, max_pause=max_pause, cond=self._cond, clock=clock),
            )
            for url, client in endpoints
        ]
        self.down_after = max(1, down_after)
        self.cool_first = cool_first
        self.cool_cap = max(cool_cap, cool_first)
        self.in_flight = 0
        self.peak = 0
        self._turn = 0

    def __len__(self) -> int:
        return len(self.endpoints)

    # -- routing -------------------------------------------------------------------------------

    def choose(self, avoid: Collection[str] = ()) -> tuple[Endpoint | None, float | None]:
        """The replica the next attempt should go to, and whether it is a probe; ``None`` when
        none has room now. Read-only but for the round-robin turn: :meth:`acquire` takes the
        slot. Returns ``(endpoint, seconds until something may change)``."""
        now = self._clock()
        healthy = [e for e in self.endpoints if self._usable(e, now)]
        # No healthy replica: health is no reason to wait, so requests go on as with one
        # dead server (their attempts fail and are retried, then recorded).
        pool = healthy or self.endpoints
        preferred = [e for e in pool if e.url not in avoid] or pool
        best: Endpoint | None = None
        best_at = 0
        n = len(self.endpoints)
        for step in range(n):
            index = (self._turn + step) % n
            e = self.endpoints[index]
            if e not in preferred or not e.limit.has_room(now):
                continue
            if best is None or _load(e) < _load(best):
                best, best_at = e, index
        if best is not None:
            self._turn = (best_at + 1) % n
            return best, None
        wakes = [t - now for e in self.endpoints for t in (e.limit.resume_at, e.down_until) if t]
        wake = min((w for w in wakes if w > 0), default=_RECHECK)
        return None, min(wake, _RECHECK)

    @staticmethod
    def _usable(e: Endpoint, now: float) -> bool:
        if e.down_until is None:
            return True
        return now >= e.down_until and not e.probing  # cooled: one probe at a time

    async def acquire(self, avoid: Collection[str] = ()) -> tuple[Endpoint, bool]:
        """Wait for room on a replica and take it: ``(endpoint, probe)``; ``probe`` when this
        attempt is the one that tries a cooled replica again."""
        async with self._cond:
            while True:
                endpoint, wake = self.choose(avoid)
                if endpoint is not None:
                    break
                try:
                    await asyncio.wait_for(self._cond.wait(), wake)
                except TimeoutError:
                    pass
            probe = False
            if endpoint.down_until is not None and self._clock() >= endpoint.down_until:
                if not endpoint.probing:
                    endpoint.probing = probe = True
            endpoint.limit.take()
            endpoint.calls += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            return endpoint, probe

    async def release(
        self, endpoint: Endpoint, *, probe: bool, ok: bool, failure: RequestFailed | None
    ) -> None:
        """Give the slot back and learn from the attempt: ``ok``, or its ``failure`` (``None``
        when it ended without an answer or an error to judge, e.g. cancelled)."""
        async with self._cond:
            self.in_flight -= 1
            endpoint.limit.give_back(ok=ok)
            if probe:
                endpoint.probing = False
            if ok:
                endpoint._answered += 1
                self._alive(endpoint)
            elif failure is not None:
                endpoint.failures += 1
                if failure.kind in HEALTH_KINDS:
                    self._unwell(endpoint, failure.kind, probe)
                else:
                    self._alive(endpoint)
            self._cond.notify_all()

    # -- health --------------------------------------------------------------------------------

    def _alive(self, e: Endpoint) -> None:
        e.consecutive = 0
        if e.down_until is not None:
            logger.warning("replica %s answers again; sending it requests", e.url)
            e.down_until = None
            e.cooling = 0.0

    def _unwell(self, e: Endpoint, kind: str, probe: bool) -> None:
        e.consecutive += 1
        now = self._clock()
        if probe:
            e.cooling = min(self.cool_cap, max(e.cooling, self.cool_first) * 2)
            e.down_until = now + e.cooling
            logger.warning(
                "replica %s still fails (%s); next try in %gs", e.url, kind, round(e.cooling, 3)
            )
        elif e.down_until is None and e.consecutive >= self.down_after:
            e.down_episodes += 1
            e.cooling = self.cool_first
            e.down_until = now + e.cooling
            logger.warning(
                "replica %s marked down after %d failed attempts in a row (%s); its requests "
                "go to the other replicas, and it is tried again in %gs",
                e.url,
                e.consecutive,
                kind,
                round(e.cooling, 3),
            )

    def describe(self) -> list[dict[str, Any]]:
        """Every replica's counts, in the order the URLs were given."""
        return [e.describe() for e in self.endpoints]


def _load(e: Endpoint) -> float:
    return e.limit.in_flight / e.limit.limit
