"""Writing a run's outputs: ``results.jsonl`` (one line per item) and ``summary.json``.

Both files are written under temporary names and renamed into place only when complete, so a
crash or Ctrl-C never leaves a half-written output that looks finished.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus random hex."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def atomic_write(path: Path, chunks: Iterable[str]) -> None:
    """Write ``chunks`` to ``path`` through a temporary file and a rename: never half-written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_outputs(out_dir: Path, items: Iterable[dict[str, Any]], summary: dict[str, Any]) -> None:
    """Write results.jsonl (streamed from ``items``), then summary.json (its presence marks a
    finished run)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(
        out_dir / RESULTS_FILE,
        (json.dumps(row, ensure_ascii=False) + "\n" for row in items),
    )
    atomic_write(out_dir / SUMMARY_FILE, [json.dumps(summary, indent=2, ensure_ascii=False) + "\n"])


def read_summary(run_dir: Path) -> dict[str, Any]:
    """Load a finished run's summary.json."""
    data: dict[str, Any] = json.loads((run_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
    return data


def read_results(run_dir: Path) -> list[dict[str, Any]]:
    """Load a finished run's per-item results."""
    with (run_dir / RESULTS_FILE).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
