"""The ledger of provider batch jobs (``--batch``), in the cache database.

What it keeps, and why, is in migration ``m005_create_batch_jobs``. Every method is one
transaction, so a kill -9 leaves the ledger at a step the next run can resume from: a job
without an input file is abandoned (nothing was sent), a job with a file but no batch id is
looked up on the server before a batch is created, a job with a batch id is polled.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from sua_audit.errors import StoreError

__all__ = ["BatchLedger"]


class BatchLedger:
    """Reads and writes ``batch_jobs`` and ``batch_lines`` of one cache database."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.db = store.db

    def _write(self, statements: Iterable[tuple[str, Sequence[Any]]]) -> None:
        try:
            with self.db.atomic():
                for sql, params in statements:
                    self.db.execute(sql, params)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"Writing to the cache {self.store.path} failed: {exc}.") from exc

    def lines(self, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The ledger rows of the keys that have one, joined with their job's status."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            cursor = self.db.execute(
                "select l.line_key, l.job_id, l.status, l.response_json, l.error_json, "
                "j.status, j.batch_id, j.input_file_id from batch_lines l "
                f"left join batch_jobs j on j.id = l.job_id where l.line_key in ({marks})",
                chunk,
            )
            for key, job_id, status, response, error, job_status, batch_id, file_id in cursor:
                found[key] = {
                    "job_id": job_id,
                    "status": status,
                    "response": json.loads(response) if response else None,
                    "error": json.loads(error) if error else None,
                    "job_status": job_status,
                    "batch_id": batch_id,
                    "input_file_id": file_id,
                }
        return found

    def new_job(
        self, job_id: str, base_url: str, model: str, keys: Sequence[str], now: str
    ) -> None:
        """Record a job about to be uploaded, and its lines as pending in it."""
        statements: list[tuple[str, Sequence[Any]]] = [
            (
                "insert into batch_jobs (id, base_url, model, status, lines, created_utc, "
                "updated_utc) values (?, ?, ?, 'preparing', ?, ?, ?)",
                (job_id, base_url, model, len(keys), now, now),
            )
        ]
        statements += [
            (
                "insert or replace into batch_lines (line_key, job_id, status, response_json, "
                "error_json, updated_utc) values (?, ?, 'pending', null, null, ?)",
                (key, job_id, now),
            )
            for key in keys
        ]
        self._write(statements)

    def update_job(self, job_id: str, now: str, **fields: Any) -> None:
        """Set some of a job's columns (``input_file_id``, ``batch_id``, ``status``, ...)."""
        names = sorted(fields)
        assignments = ", ".join(f"{name} = ?" for name in names)
        self._write(
            [
                (
                    f"update batch_jobs set {assignments}, updated_utc = ? where id = ?",
                    (*(fields[name] for name in names), now, job_id),
                )
            ]
        )

    def job(self, job_id: str) -> dict[str, Any] | None:
        """One job's row."""
        cursor = self.db.execute("select * from batch_jobs where id = ?", (job_id,))
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cursor.description], row, strict=True))

    def jobs(self) -> list[dict[str, Any]]:
        """Every job, oldest first (for ``sua-audit batches`` and tests)."""
        cursor = self.db.execute("select * from batch_jobs order by created_utc, id")
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def settle(
        self,
        done: Sequence[tuple[str, dict[str, Any]]],
        failed: Sequence[tuple[str, dict[str, Any]]],
        now: str,
    ) -> None:
        """Record answered lines (with their response body) and failed ones (with the error)."""
        statements: list[tuple[str, Sequence[Any]]] = [
            (
                "update batch_lines set status = 'done', response_json = ?, error_json = null, "
                "updated_utc = ? where line_key = ?",
                (json.dumps(body, separators=(",", ":")), now, key),
            )
            for key, body in done
        ]
        statements += [
            (
                "update batch_lines set status = 'failed', error_json = ?, updated_utc = ? "
                "where line_key = ?",
                (json.dumps(error, separators=(",", ":")), now, key),
            )
            for key, error in failed
        ]
        self._write(statements)
