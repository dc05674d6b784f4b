"""The SQLite cache of model requests, and the record of runs.

Only the event-loop thread touches the database. Completed requests are written in small
batches inside one transaction each (``insert or ignore`` on the key), so an interrupted run
keeps everything finished before the interruption and a resumed run never writes a duplicate.
"""

from __future__ import annotations

import datetime
import json
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlite_utils import Database

from sua_audit.errors import ConfigError, SchemaVersionError, StoreError
from sua_audit.store.keys import canonical_json, request_key
from sua_audit.store.migrations import migrations

if TYPE_CHECKING:
    from sua_audit.store.batches import BatchLedger

__all__ = ["Store", "canonical_json", "request_key", "utc_now"]

logger = logging.getLogger(__name__)


def utc_now() -> str:
    """Current time as ISO-8601 UTC."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def _check_writable(conn: sqlite3.Connection, path: Path) -> None:
    """Take and release the write lock: a read-only cache is refused when it opens, before any
    model call, not when the first answers are flushed."""
    try:
        # A read-only database takes the lock but refuses the first write: write the header's
        # user_version back unchanged, then roll back.
        version = int(conn.execute("pragma user_version").fetchone()[0])
        conn.execute("begin immediate")
        try:
            conn.execute(f"pragma user_version = {version}")
        finally:
            conn.execute("rollback")
    except sqlite3.OperationalError as exc:
        if "readonly" in str(exc) or "read-only" in str(exc) or "read only" in str(exc):
            conn.close()
            raise ConfigError(
                f"--cache {path}: the cache database is read-only ({exc}). Pass --cache with "
                "a writable file, or --cache-mode off."
            ) from exc
        raise


class Store:
    """The cache database: completions by key, plus runs."""

    def __init__(self, db: Database, *, path: str = ":memory:") -> None:
        self.db = db
        self.path = path
        known = {m.name for m in migrations._migrations}
        applied = {m.name for m in migrations.applied(db)}
        newer = sorted(applied - known)
        if newer:
            raise SchemaVersionError(
                f"The cache {path} was written by a newer sua-audit (migrations {newer}). "
                "Upgrade sua-audit or pass --cache with another file."
            )
        migrations.apply(db)

    @classmethod
    def open(cls, path: str | Path) -> Store:
        """Open (creating if needed) the cache database at ``path``."""
        p = Path(path)
        if p.is_dir():
            raise ConfigError(f"--cache {p}: this is a folder. Pass a file path.")
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(p), timeout=30)
            # With WAL (migration 3), NORMAL still keeps every committed answer through a
            # crash or kill -9 of this process; only a power cut may lose the last commits,
            # which a rerun then asks again. FULL syncs on every flush and halves write speed.
            conn.execute("pragma synchronous=NORMAL")
            _check_writable(conn, p)
            db = Database(conn)
            return cls(db, path=str(p))
        except ConfigError:
            raise
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"Cannot use the cache database {p}: {exc}. "
                "Pass --cache with another path, or delete the file to start afresh."
            ) from exc
        except OSError as exc:
            raise ConfigError(
                f"--cache {p}: cannot create the cache database there ({exc.strerror or exc}). "
                "Pass --cache with a writable path."
            ) from exc

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    # -- completions -------------------------------------------------------------------------

    def get_many(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Cached responses for the keys that have one."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for key, response in self.db.execute(
                f"select key, response_json from completions where key in ({marks})", chunk
            ).fetchall():
                found[key] = json.loads(response)
        return found

    def put_many(self, rows: Iterable[dict[str, Any]]) -> int:
        """Store completed requests in one transaction; existing keys are left untouched."""
        rows = list(rows)
        if not rows:
            return 0
        try:
            with self.db.atomic():
                self.db.table("completions").insert_all(rows, ignore=True)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"Writing to the cache {self.path} failed: {exc}.") from exc
        return len(rows)

    # -- sentence vectors (embedding equivalence) --------------------------------------------

    def get_vectors(self, model_key: str, text_shas: Sequence[str]) -> dict[str, bytes]:
        """Cached vectors (raw float32 bytes) of the texts that have one, by text sha256."""
        found: dict[str, bytes] = {}
        for start in range(0, len(text_shas), 500):
            chunk = list(text_shas[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for sha, blob in self.db.execute(
                f"select text_sha256, vector from embeddings where model_key = ? "
                f"and text_sha256 in ({marks})",
                [model_key, *chunk],
            ).fetchall():
                found[sha] = bytes(blob)
        return found

    def put_vectors(self, model_key: str, vectors: Iterable[tuple[str, bytes]]) -> int:
        """Store vectors (text sha256, float32 bytes) in one transaction; existing ones stay."""
        now = utc_now()
        rows = [
            {
                "model_key": model_key,
                "text_sha256": sha,
                "dim": len(blob) // 4,
                "vector": blob,
                "created_utc": now,
            }
            for sha, blob in vectors
        ]
        if not rows:
            return 0
        try:
            with self.db.atomic():
                self.db.table("embeddings").insert_all(rows, ignore=True)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"Writing to the cache {self.path} failed: {exc}.") from exc
        return len(rows)

    # -- provider batch jobs ------------------------------------------------------------------

    def batch_ledger(self) -> BatchLedger:
        """The record of provider batch jobs kept in this database (``--batch``)."""
        from sua_audit.store.batches import BatchLedger

        return BatchLedger(self)

    def count_completions(self) -> int:
        """Rows in the cache."""
        return int(self.db.execute("select count(*) from completions").fetchone()[0])

    # -- runs --------------------------------------------------------------------------------

    def begin_run(self, run_id: str, config: dict[str, Any], dataset: dict[str, Any]) -> None:
        """Record that a run started."""
        from sua_audit import __version__

        with self.db.atomic():
            self.db.table("runs").insert(
                {
                    "id": run_id,
                    "config_json": canonical_json(config),
                    "dataset_path": dataset.get("path"),
                    "dataset_sha256": dataset.get("sha256"),
                    "tool_version": __version__,
                    "status": "running",
                    "started_utc": utc_now(),
                },
                replace=True,
            )

    def finish_run(self, run_id: str, status: str, summary: dict[str, Any] | None = None) -> None:
        """Record how a run ended."""
        with self.db.atomic():
            self.db.table("runs").update(
                run_id,
                {
                    "status": status,
                    "finished_utc": utc_now(),
                    "summary_json": canonical_json(summary) if summary else None,
                },
            )
