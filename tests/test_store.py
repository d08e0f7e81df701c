"""The job database: owner-only, WAL, versioned, and never damaged by bad input."""

from __future__ import annotations

import os
import stat

import pytest

from codexdash.errors import StoreError
from codexdash.store import SCHEMA_VERSION, Job, SchemaInfo, open_store


def test_created_owner_only_in_wal_mode_with_a_schema_version(tmp_path):
    path = tmp_path / "deep" / "dir" / "jobs.db"
    store = open_store(path)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert store.db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute_sql("PRAGMA busy_timeout").fetchone()[0] >= 5000
        assert SchemaInfo.get_by_id("schema_version").value == str(SCHEMA_VERSION)
    finally:
        store.close()


def test_corrupt_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "jobs.db"
    garbage = b"this is not a database at all" * 100
    path.write_bytes(garbage)
    with pytest.raises(StoreError, match="not an SQLite database"):
        open_store(path)
    assert path.read_bytes() == garbage


def test_damaged_sqlite_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "jobs.db"
    store = open_store(path)
    store.close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # header kept, schema page destroyed
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError):
        open_store(path)
    assert path.read_bytes() == bytes(data)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "jobs.db"
    store = open_store(path)
    with store.write():
        SchemaInfo.replace(key="schema_version", value=str(SCHEMA_VERSION + 1)).execute()
    store.close()
    with pytest.raises(StoreError, match="newer"):
        open_store(path)


@pytest.mark.skipif(os.getuid() == 0, reason="root writes read-only files; covered by the read-only URI test below")
def test_read_only_file_opens_read_only(tmp_path):
    path = tmp_path / "jobs.db"
    open_store(path).close()
    path.chmod(0o400)
    store = open_store(path)
    assert store.readonly
    with pytest.raises(StoreError, match="read-only"):
        with store.write():
            pass


def test_read_only_store_refuses_writes_and_reads_records(tmp_path):
    from codexdash.store import Store

    path = tmp_path / "jobs.db"
    store = open_store(path)
    with store.write():
        Job.create(id="abc", marker="m", argv="[]", cwd="/", prompt="p", created_at=1.0)
    store.close()
    ro = Store(path, readonly=True)
    ro.db.connect()
    assert Job.get_by_id("abc").prompt == "p"
    with pytest.raises(StoreError, match="read-only"):
        with ro.write():
            Job.update(prompt="q").execute()
    ro.close()
    rw = open_store(path)
    assert Job.get_by_id("abc").prompt == "p"
    rw.close()


def test_same_schema_number_with_missing_columns_is_refused_untouched(tmp_path):
    import sqlite3

    path = tmp_path / "jobs.db"
    open_store(path).close()
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE job DROP COLUMN actor_pid")
    con.commit()
    con.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="lacks column"):
        open_store(path)
    assert path.read_bytes() == before
