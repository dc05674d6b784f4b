"""The cache database's schema, as an append-only list of migrations.

A released migration is never edited: changes are new migrations with the next number.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("sua_audit")


@migrations()
def m001_create_completions(db: Database) -> None:
    """One row per distinct model request ever answered: the cache proper.

    ``key`` is the canonical request hash (store/keys.py); the request is kept beside it so a
    cached answer can always be traced to what was asked. Errors are never stored here.
    """
    db.table("completions").create(
        {
            "key": str,
            "provider": str,
            "model": str,
            "request_json": str,
            "response_json": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "latency_ms": float,
            "created_utc": str,
        },
        pk="key",
    )


@migrations()
def m002_create_runs(db: Database) -> None:
    """One row per audit run: its resolved config and outcome, for provenance."""
    db.table("runs").create(
        {
            "id": str,
            "config_json": str,
            "dataset_path": str,
            "dataset_sha256": str,
            "tool_version": str,
            "status": str,
            "started_utc": str,
            "finished_utc": str,
            "summary_json": str,
        },
        pk="id",
    )


@migrations(transactional=False)
def m003_wal(db: Database) -> None:
    """WAL lets a second process read the cache while a run writes to it."""
    db.enable_wal()


@migrations()
def m004_create_embeddings(db: Database) -> None:
    """Sentence vectors of the embedding equivalence, so a rerun or rescore encodes nothing.

    ``model_key`` names the encoder (model, weights hash, encoder version); ``text_sha256`` the
    text; ``vector`` is the float32 array's bytes (``dim`` values, little-endian as numpy
    writes them on every platform the tool runs on).
    """
    db.table("embeddings").create(
        {
            "model_key": str,
            "text_sha256": str,
            "dim": int,
            "vector": bytes,
            "created_utc": str,
        },
        pk=("model_key", "text_sha256"),
    )
