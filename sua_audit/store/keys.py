"""Canonical cache keys for model requests.

A key is ``"sha256:" + hex`` of the canonical JSON of everything that can change a request's
output: the backend identity (provider, model, weights, dtype, base URL), the messages, the
generation parameters or scored choices, and the sample index. Timeouts, concurrency and batch
size are left out on purpose: they change how fast an answer comes, not what it is.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sua_audit.backends.base import CompletionRequest

KEY_VERSION = 1


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, compact separators and non-ASCII kept as-is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(
    identity: dict[str, Any],
    request: CompletionRequest,
    payload: dict[str, Any] | None = None,
) -> str:
    """The cache key of ``request`` sent to the backend named by ``identity``.

    ``payload`` is the backend's view of the request (``Backend.key_payload``); by default the
    whole request.
    """
    body = request.payload() if payload is None else payload
    payload = {"v": KEY_VERSION, "backend": identity, "request": body}
    return "sha256:" + hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()
