"""A deterministic stand-in model: a test double and a ``--model fake/...`` dry run.

Answers are derived from a hash of the request, so they are stable across processes, differ
between variants, and need no model. ``fail_after`` makes it raise after that many calls, to
test interrupted runs.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import ClassVar

from sua_audit.backends.base import Backend, Capabilities, Completion, CompletionRequest
from sua_audit.canonical import canonical_json
from sua_audit.errors import BackendError

_ANSWERS = ("Paris", "paris.", "London", "I don't know", "Berlin")


def _unit(payload: object, salt: str) -> float:
    digest = hashlib.sha256((salt + canonical_json(payload)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class FakeBackend(Backend):
    """Hash-driven answers; records every request it receives in ``history``."""

    provider: ClassVar[str] = "fake"

    def __init__(
        self, model: str = "echo", *, delay: float = 0.0, fail_after: int | None = None
    ) -> None:
        self.model = model
        self.capabilities = Capabilities(seed=True, choice_scoring=True)
        self.delay = delay
        self.fail_after = fail_after
        self.history: list[CompletionRequest] = []

    async def complete(self, request: CompletionRequest) -> Completion:
        """Answer from the request's hash."""
        if self.fail_after is not None and len(self.history) >= self.fail_after:
            raise BackendError("fake backend: scripted failure")
        self.history.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        payload = request.payload()
        if request.choices is not None:
            lps = [-4.0 * _unit(payload, c) for c in request.choices]
            return Completion(
                choice_logprobs=lps, prompt_tokens=10, finish_reason="scored", path="exact"
            )
        if self.model == "rewrite":
            texts = [_rewrite(request, i) for i in range(max(1, request.n))]
        else:
            texts = [
                _ANSWERS[int(_unit(payload, f"text{i}") * len(_ANSWERS))]
                for i in range(max(1, request.n))
            ]
        return Completion(
            text=texts[0],
            texts=texts if request.n > 1 else None,
            prompt_tokens=10,
            completion_tokens=2 * len(texts),
            finish_reason="stop",
            path="fake",
        )


_LEADS = ("Put simply, ", "In short, ", "Basically, ", "Honestly, ", "To be clear, ")


def _rewrite(request: CompletionRequest, i: int) -> str:
    """``fake/rewrite``: the prompt's last paragraph (where rewrite templates put the text)
    behind a meaning-keeping lead-in chosen by seed and sample, for rewriter tests."""
    text = request.messages[-1].content.rsplit("\n\n", 1)[-1].strip()
    lead = _LEADS[(hash_seed(request.params.seed) + i) % len(_LEADS)]
    return lead + text[:1].lower() + text[1:]


def hash_seed(seed: int | None) -> int:
    return (seed or 0) % 7919
