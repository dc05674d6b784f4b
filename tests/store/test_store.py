"""The SQLite cache: schema, keys, idempotent writes, newer-schema refusal."""

from __future__ import annotations

import sqlite3

import pytest
from sqlite_utils import Database

from sua_audit.backends.base import CompletionRequest, GenerationParams, Message
from sua_audit.errors import SchemaVersionError, StoreError
from sua_audit.store import Store, request_key
from sua_audit.store.migrations import migrations

IDENT = {"provider": "fake", "model": "echo"}


def _req(**kw: object) -> CompletionRequest:
    base: dict[str, object] = {"messages": (Message("user", "hi"),)}
    base.update(kw)
    return CompletionRequest(**base)  # type: ignore[arg-type]


def test_blank_database_gets_every_table() -> None:
    store = Store(Database(memory=True))
    cols = store.db["completions"].columns_dict
    assert cols["key"] is str and cols["response_json"] is str and cols["latency_ms"] is float
    assert set(store.db["runs"].columns_dict) >= {"id", "config_json", "status", "summary_json"}
    assert [m.name for m in migrations.applied(store.db)] == [
        "m001_create_completions",
        "m002_create_runs",
        "m003_wal",
        "m004_create_embeddings",
        "m005_create_batch_jobs",
    ]
    assert set(store.db["embeddings"].columns_dict) >= {"model_key", "text_sha256", "vector"}
    assert set(store.db["batch_jobs"].columns_dict) >= {"id", "input_file_id", "batch_id"}
    assert set(store.db["batch_lines"].columns_dict) >= {"line_key", "job_id", "status"}


def test_applying_migrations_twice_is_a_no_op(tmp_path) -> None:
    path = tmp_path / "c.db"
    Store.open(path).close()
    store = Store.open(path)
    assert len(migrations.applied(store.db)) == 5
    assert store.db.journal_mode == "wal"


def test_newer_database_is_refused(tmp_path) -> None:
    path = tmp_path / "c.db"
    store = Store.open(path)
    store.db["_sqlite_migrations"].insert(
        {"migration_set": "sua_audit", "name": "m999_future", "applied_at": "x"}
    )
    store.close()
    with pytest.raises(SchemaVersionError, match="newer sua-audit"):
        Store.open(path)


def test_corrupt_file_is_a_store_error(tmp_path) -> None:
    path = tmp_path / "c.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="Cannot use the cache"):
        Store.open(path)


def test_put_is_idempotent_and_keeps_first_answer() -> None:
    store = Store(Database(memory=True))
    row = {"key": "sha256:1", "provider": "fake", "model": "m", "response_json": '{"text": "a"}'}
    store.put_many([row])
    store.put_many([{**row, "response_json": '{"text": "b"}'}])
    assert store.count_completions() == 1
    assert store.get_many(["sha256:1", "sha256:2"]) == {"sha256:1": {"text": "a"}}


def test_key_covers_everything_that_changes_output() -> None:
    base = request_key(IDENT, _req())
    assert base.startswith("sha256:") and len(base) == 7 + 64
    assert request_key(IDENT, _req()) == base  # stable
    variants = [
        request_key({**IDENT, "model": "other"}, _req()),
        request_key({**IDENT, "dtype": "float32"}, _req()),
        request_key(IDENT, _req(messages=(Message("user", "hi!"),))),
        request_key(IDENT, _req(messages=(Message("system", "hi"),))),
        request_key(IDENT, _req(params=GenerationParams(temperature=0.5))),
        request_key(IDENT, _req(params=GenerationParams(seed=1))),
        request_key(IDENT, _req(params=GenerationParams(max_tokens=33))),
        request_key(IDENT, _req(sample_index=1)),
        request_key(IDENT, _req(choices=("a", "b"))),
        request_key(IDENT, _req(choices=("b", "a"))),
    ]
    assert len(set(variants + [base])) == len(variants) + 1


def test_key_ignores_dict_order() -> None:
    a = request_key({"provider": "fake", "model": "echo"}, _req())
    b = request_key({"model": "echo", "provider": "fake"}, _req())
    assert a == b


def test_runs_are_recorded(tmp_path) -> None:
    store = Store.open(tmp_path / "c.db")
    store.begin_run("r1", {"seed": 0}, {"path": "d.jsonl", "sha256": "abc"})
    store.finish_run("r1", "finished", {"items": 3})
    row = store.db["runs"].get("r1")
    assert row["status"] == "finished" and row["dataset_sha256"] == "abc"
    assert '"items":3' in row["summary_json"]
    # the database is a real file other processes can read
    assert sqlite3.connect(tmp_path / "c.db").execute("select count(*) from runs").fetchone() == (
        1,
    )


def test_vectors_round_trip_by_model_and_text() -> None:
    store = Store(Database(memory=True))
    assert store.put_vectors("m1", [("t1", b"\x00" * 8), ("t2", b"\x01" * 8)]) == 2
    store.put_vectors("m1", [("t1", b"\x02" * 8)])  # an existing vector stays
    assert store.get_vectors("m1", ["t1", "t2", "t3"]) == {"t1": b"\x00" * 8, "t2": b"\x01" * 8}
    assert store.get_vectors("m2", ["t1"]) == {}
