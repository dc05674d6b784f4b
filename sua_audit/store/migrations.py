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


@migrations()
def m005_create_batch_jobs(db: Database) -> None:
    """Provider batch jobs (``--batch``) and the requests in them, so a rerun after a crash or
    Ctrl-C resumes polling what it already paid for instead of submitting it again.

    ``batch_jobs``: one row per input file we wrote. ``id`` is ours (made before anything is
    sent); ``input_file_id`` is set once the upload answered and ``batch_id`` once the batch
    exists (a job with a file but no batch id is looked up on the server by its file before a
    batch is created, so a kill between the two never pays twice). ``status`` is the provider's
    batch status, or ``preparing`` / ``uploaded`` before it has one.

    ``batch_lines``: one row per request body (``line_key`` hashes the server URL and the body);
    ``status`` is ``pending`` (in ``job_id``'s batch), ``done`` (``response_json`` holds the
    answer, until the run caches it as a completion) or ``failed`` (``error_json``; asked again
    in a new batch when the run needs it).
    """
    db.table("batch_jobs").create(
        {
            "id": str,
            "base_url": str,
            "model": str,
            "input_file_id": str,
            "batch_id": str,
            "status": str,
            "lines": int,
            "output_file_id": str,
            "error_file_id": str,
            "created_utc": str,
            "updated_utc": str,
        },
        pk="id",
    )
    db.table("batch_lines").create(
        {
            "line_key": str,
            "job_id": str,
            "status": str,
            "response_json": str,
            "error_json": str,
            "updated_utc": str,
        },
        pk="line_key",
    )
    db.table("batch_lines").create_index(["job_id"])
