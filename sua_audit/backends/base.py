"""The Backend interface: one async method, ``complete``, plus declared capabilities.

A backend turns one :class:`CompletionRequest` into one :class:`Completion`. It never caches,
retries or stores anything: the engine's :class:`~sua_audit.engine.Generator` does that around it.

Two request shapes share the one method:

* generation — ``choices is None``: sample (or greedily decode) one answer with ``params``;
* choice scoring — ``choices`` given: return the log-probability of each choice string as the
  assistant's answer (the exact label distribution for classification and NLI). Backends that
  cannot score choices (``capabilities.choice_scoring`` false) are driven by sampling instead.
"""

from __future__ import annotations

import abc
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

    def payload(self) -> dict[str, Any]:
        """Everything about the request that can change the answer, as plain JSON data."""
        out: dict[str, Any] = {
            "messages": [[m.role, m.content] for m in self.messages],
            "sample_index": self.sample_index,
        }
        if self.choices is not None:
            out["choices"] = list(self.choices)
        else:
            out["params"] = asdict(self.params)
        return out


@dataclass(slots=True)
class Completion:
    """A backend's answer to one request."""

    text: str | None = None
    choice_logprobs: list[float] | None = None
    """Log-probability of each requested choice, in request order."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    latency_ms: float = 0.0

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

    @abc.abstractmethod
    async def complete(self, request: CompletionRequest) -> Completion:
        """Answer one request."""

    def identity(self) -> dict[str, Any]:
        """What names this model's outputs in the cache key (provider, model, weights...)."""
        return {"provider": self.provider, "model": self.model}

    def max_concurrency(self) -> int:
        """Requests worth keeping in flight at once (for local models: a few batches)."""
        return 8

    def describe(self) -> dict[str, Any]:
        """Facts for the run summary (device, dtype, ...)."""
        return {**self.identity(), "capabilities": self.capabilities.to_dict()}

    async def aclose(self) -> None:  # noqa: B027 - optional hook with a default
        """Release resources (threads, connections)."""
