"""A hosted audit issues the next chunk's requests before it scores the current one.

Against the loopback server, with 4 requests in flight, 2 perturbations and no floor on the
chunk size (chunks of ceil(8 × 4 / 3) = 11 items): the rows must come out in dataset order and equal those of the
same audit without the overlap; with the overlap a request of chunk c+1 reaches the server
before the first item of chunk c is scored, and without it never.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

import sua_audit
from sua_audit import auditing
from sua_audit.backends.hosted import HostedBackend
from tests.support.stub_openai import StubServer


def write_dataset(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            item = {
                "id": f"c{i:02d}",
                "task": "classification",
                "input": f"item {i}: the service was {'good' if i % 2 else 'slow'} today",
                "labels": ["negative", "positive"],
                "label": "positive" if i % 2 else "negative",
            }
            f.write(json.dumps(item) + "\n")
    return path


def audit_rows(server: StubServer, dataset: Path, out: Path) -> list[dict[str, Any]]:
    sua_audit.audit(
        dataset,
        model="openai/stub-model",
        base_url=server.base_url,
        cache_mode="off",
        out=out,
        perturbations="distractor:2",
        concurrency=4,
        evaluate=False,
    )
    lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def stable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("abstained",)}


#: ceil(8 × 4 in flight / 3 requests per item): 33 requests, so the last round of a chunk has
#: room for 3 of the next one.
PER_CHUNK = 11


def item_number(text: str) -> int:
    found = re.search(r"item (\d+):", text)
    assert found is not None, text
    return int(found.group(1))


def asked_ahead(asked: list[tuple[float, int]], scored: list[tuple[float, int]]) -> bool:
    """Whether the server received a request about an item of chunk c+1 before the first item
    of chunk c was scored (times from one clock, ``time.time``)."""
    first_scored: dict[int, float] = {}
    for when, i in sorted(scored):
        first_scored.setdefault(i // PER_CHUNK, when)
    return any(when < first_scored.get(i // PER_CHUNK - 1, -1.0) for when, i in asked)


@pytest.mark.parametrize("overlap", [True, False])
def test_rows_keep_dataset_order_and_do_not_depend_on_the_overlap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overlap: bool
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "x")
    monkeypatch.setattr(auditing, "CHUNK_ITEMS", 1)  # chunks sized by concurrency alone
    dataset = write_dataset(tmp_path / "d.jsonl", 3 * PER_CHUNK)
    scored_at: list[tuple[float, int]] = []
    score = auditing._score_item

    def scored(item: Any, *args: Any) -> Any:
        scored_at.append((time.time(), item_number(item.input)))
        return score(item, *args)

    with StubServer(latency=0.02) as server:
        reference = audit_rows(server, dataset, tmp_path / "ref")
        monkeypatch.setattr(HostedBackend, "overlaps_chunks", overlap)
        monkeypatch.setattr(auditing, "_score_item", scored)
        after = server.count
        rows = audit_rows(server, dataset, tmp_path / "run")
        asked = [(r.time, item_number(r.last_user)) for r in server.requests if r.seq > after]
    assert [r["id"] for r in rows] == [f"c{i:02d}" for i in range(3 * PER_CHUNK)]
    assert [stable(r) for r in rows] == [stable(r) for r in reference]
    assert len(scored_at) == 3 * PER_CHUNK and len(asked) == 3 * 3 * PER_CHUNK
    assert asked_ahead(asked, scored_at) is overlap
