"""Canonical JSON: one text per value, so that equal data hashes equal (cache keys, fake
backends' answers, variant-set digests)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["canonical_json"]


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, compact separators and non-ASCII kept as-is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
