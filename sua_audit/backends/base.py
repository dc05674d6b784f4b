"""The Backend interface: one async method, ``complete``, plus declared capabilities.

A backend turns one :class:`CompletionRequest` into one :class:`Completion`. It never caches or
stores anything: the engine's :class:`~sua_audit.engine.Generator` does that around it. Retrying
is the backend's own business: hosted backends retry rate limits, server errors, timeouts and
dropped connections up to ``max_attempts`` (:mod:`sua_audit.backends.hosted`); local backends
have nothing to retry. The Generator does not retry.

Two request shapes share the one method:

* generation — ``choices is None``: ``n`` answers with ``params`` (``n = 1`` and temperature 0
  for the greedy answer). Sample ``i`` of a request is reproducible from ``params.seed`` and
  ``i``; how a backend gets the ``n`` answers (one call with ``n``, or ``n`` seeded calls) is
  its business, recorded in :attr:`Completion.path`;
* choice scoring — ``choices`` given: the log-probability of each choice string as the
  assistant's answer. Local models compute it exactly; hosted backends read it from the first
  answer token's top log-probabilities, or — when a server returns none — estimate it from
  ``n`` samples drawn with ``params`` and parsed (the path taken is recorded).

:class:`RequestFailed` (in :mod:`sua_audit.errors`) is how a backend reports that one request
cannot be answered (after its own retries); the run records it against the item and goes on.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend can return; the engine picks its estimation path from these."""

    logprobs: bool = False
    """Token log-probabilities of generated text."""
    top_logprobs: bool = False
    """The top-k alternatives at each generated position."""
    n: bool = False
    """Several samples in one request."""
    seed: bool = False
    """A per-request seed makes sampling reproducible."""
    choice_scoring: bool = False
    """Exact log-probabilities of given answer strings (local models)."""

    def to_dict(self) -> dict[str, bool]:
        """Plain dict for summaries and ``backends`` listings."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Parameters that change a generated answer; all of them are part of the cache key."""

    temperature: float = 0.0
    max_tokens: int = 32
    seed: int | None = None
    top_p: float = 1.0


def sample_seed(seed: int | None, index: int) -> int:
    """The seed of answer ``index`` of a request whose ``params.seed`` is ``seed``.

    Every backend that draws the ``n`` answers of one request as separate seeded draws uses
    this, so answer ``i`` is the same whichever batch or call it was drawn in.
    """
    return ((seed or 0) * 1_000_003 + index) % 2**31


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """One model call. Frozen and hashable; its :meth:`payload` feeds the cache key."""

    messages: tuple[Message, ...]
    params: GenerationParams = field(default_factory=GenerationParams)
    choices: tuple[str, ...] | None = None
    sample_index: int = 0
    n: int = 1
    """Answers wanted (generation), or samples for the sampling fallback (choice scoring)."""

    @property
    def sample_offset(self) -> int:
        """Index of this request's first sampled answer among all of its prompt's samples.

        Sampled answers are requested with ``sample_index = 1`` (the greedy answer has 0), so
        the offset is 0 for them; a later round of samples for the same prompt starts at
        ``sample_index = 1 + offset``. Backends that draw answers one seed at a time draw answer
        ``i`` with :func:`sample_seed` ``(seed, offset + i)``, so a later round continues the
        first one's sequence instead of repeating it.
        """
        return max(0, self.sample_index - 1)

    def payload(self) -> dict[str, Any]:
        """Everything about the request that can change the answer, as plain JSON data."""
        out: dict[str, Any] = {
            "messages": [[m.role, m.content] for m in self.messages],
            "sample_index": self.sample_index,
            "params": asdict(self.params),
        }
        if self.n != 1:
            out["n"] = self.n
        if self.choices is not None:
            out["choices"] = list(self.choices)
        return out


@dataclass(slots=True)
class Completion:
    """A backend's answer to one request."""

    text: str | None = None
    """The first answer (generation)."""
    texts: list[str] | None = None
    """All ``n`` answers, in sample order, when ``n > 1``."""
    choice_logprobs: list[float] | None = None
    """Log-probability of each requested choice, in request order (``-inf``: never seen)."""
    path: str | None = None
    """How the answer was obtained, e.g. ``exact``, ``top_logprobs``, ``n``, ``seeded``."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    latency_ms: float = 0.0
    label_mass: float | None = None
    """Choice scoring from an API: the share of evidence that named a label (probability of
    label tokens among the first token's alternatives, or the share of samples that parsed).
    ``None`` for exact scoring."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data, as stored in the cache."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Completion:
        """Rebuild from :meth:`to_dict` output, ignoring unknown keys from newer versions."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


class Backend(abc.ABC):
    """A model behind one async method."""

    provider: ClassVar[str]
    model: str
    capabilities: Capabilities
    #: Whether the audit should issue the next chunk's requests before scoring the current
    #: one: worth it when answers wait on a network (the server works while the client
    #: scores); a local model computes every answer itself and keeps its batches as they were.
    overlaps_chunks: ClassVar[bool] = False

    @abc.abstractmethod
    async def complete(self, request: CompletionRequest) -> Completion:
        """Answer one request."""

    def identity(self) -> dict[str, Any]:
        """What names this model's outputs in the cache key (provider, model, weights...)."""
        return {"provider": self.provider, "model": self.model}

    def key_payload(self, request: CompletionRequest) -> dict[str, Any]:
        """The part of the cache key that comes from the request.

        Everything that can change this backend's answer, and nothing else: a backend that
        ignores some field (exact choice scoring ignores sampling parameters) leaves it out, so
        changing that option does not throw away its cached answers.
        """
        return request.payload()

    def max_concurrency(self) -> int:
        """Requests worth keeping in flight at once (for local models: a few batches)."""
        return 8

    def describe(self) -> dict[str, Any]:
        """Facts for the run summary (device, dtype, ...)."""
        return {**self.identity(), "capabilities": self.capabilities.to_dict()}

    def bind(self, store: Any, note: Callable[[str], None] | None = None) -> None:  # noqa: B027
        """Optional hook: the engine hands over the run's cache and a status-line callback
        before the first request (a backend sending provider batches keeps its ledger there)."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook with a default
        """Release resources (threads, connections)."""
