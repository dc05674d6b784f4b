"""Helpers shared by the benchmark scripts (not a benchmark itself).

Every benchmark compares two ways of doing the same work inside one run, alternating them over
several repeats and reporting medians and their ratio, so that other load on the machine affects
both sides alike. Each script ends with one line ``BENCH_JSON {...}`` that ``run_all.py`` (and
anything else) can parse.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
"""The repository root (the folder holding ``bench/``)."""
SHARED_DATA = ROOT.parent / "shared" / "data"
"""``../shared/data`` relative to the repository."""
JSON_PREFIX = "BENCH_JSON "


def quiet_hf() -> None:
    """Silence transformers' progress bars and advisories, as the CLI does; stay offline."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def dataset_path(name: str) -> Path:
    """``../shared/data/<name>``, or exit (status 1) with a clear message when it is missing."""
    path = SHARED_DATA / name
    if not path.is_file():
        sys.exit(
            f"error: dataset {path} not found. The benchmarks read the shared data sets in "
            f"{SHARED_DATA} (next to the repository); put {name} there and rerun."
        )
    return path


def read_jsonl(path: Path, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` non-blank JSON lines of ``path``; exit (status 1) when fewer."""
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
                if len(rows) == limit:
                    break
    if len(rows) < limit:
        sys.exit(f"error: {path} has only {len(rows)} items; asked for {limit}.")
    return rows


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence."""
    return float(statistics.median(values))


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain fixed-width text table."""
    cells = [[str(c) for c in header]] + [[_cell(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def emit(result: dict[str, Any]) -> None:
    """Print the final machine-readable line."""
    print(JSON_PREFIX + json.dumps(result, sort_keys=True), flush=True)
