"""Canonical cache keys for model requests.

A key is ``"sha256:" + hex`` of the canonical JSON of everything that can change a request's
output: the backend identity (provider, model, weights, dtype, base URL), the messages, the
generation parameters or scored choices, and the sample index. Timeouts, concurrency and batch
size are left out on purpose: they change how fast an answer comes, not what it is.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

from sua_audit.canonical import canonical_json

__all__ = ["KEY_VERSION", "KeyedRequest", "canonical_json", "request_key"]

KEY_VERSION = 1


class KeyedRequest(Protocol):
    """What a key needs of a request (a backend's ``CompletionRequest`` is one)."""

    def payload(self) -> dict[str, Any]:
        """Everything in the request that can change its output, as plain JSON data."""
        ...


def request_key(
    identity: dict[str, Any],
    request: KeyedRequest,
    payload: dict[str, Any] | None = None,
) -> str:
    """The cache key of ``request`` sent to the backend named by ``identity``.

    ``payload`` is the backend's view of the request (``Backend.key_payload``); by default the
    whole request.
    """
    body = request.payload() if payload is None else payload
    payload = {"v": KEY_VERSION, "backend": identity, "request": body}
    return "sha256:" + hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()
