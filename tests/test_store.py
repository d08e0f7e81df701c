"""The job database: owner-only, WAL, versioned, and never damaged by bad input."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from codexdash.errors import StoreError
from codexdash.store import SCHEMA_VERSION, Job, SchemaInfo, open_store
from tests.conftest import SAMPLES


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


@pytest.mark.parametrize("umask", [0o022, 0o000, 0o077])
def test_directories_created_for_the_database_are_owner_only_whatever_the_umask(tmp_path, umask):
    tmp_path.chmod(0o751)
    path = tmp_path / "a" / "b" / "c" / "jobs.db"
    old = os.umask(umask)
    try:
        open_store(path).close()
    finally:
        os.umask(old)
    for d in (tmp_path / "a", tmp_path / "a" / "b", tmp_path / "a" / "b" / "c"):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700, d
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o751  # an existing directory is left as it is


def _as_unprivileged() -> list[str]:
    """A command prefix under which file modes bind: nothing for a user, and for root, root
    without capabilities (CAP_DAC_OVERRIDE is what lets root write a 0400 file)."""
    if os.getuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root ignores file modes, and setpriv (util-linux) is not here to drop that")
    prefix = ["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all", "--"]
    with tempfile.TemporaryDirectory() as probe:
        os.chmod(probe, 0o500)
        done = subprocess.run([*prefix, "touch", f"{probe}/x"], capture_output=True, text=True)
        os.chmod(probe, 0o700)
    if done.returncode == 0 or "Permission denied" not in done.stderr:
        pytest.skip(f"cannot drop root's capabilities here: {done.stderr.strip() or 'the write went through'}")
    return prefix


def _read_only_cli(prefix, db, home, *args):
    env = dict(os.environ, CODEXDASH_DB=str(db), CODEX_HOME=str(home), CODEXDASH_CONFIG=str(home / "none.toml"),
               CODEXDASH_CODEX=sys.executable)
    return subprocess.run([*prefix, sys.executable, "-m", "codexdash", *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, cwd="/")


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_read_only_database_in_a_read_only_directory_is_listed_shown_and_never_written(tmp_path):
    prefix = _as_unprivileged()
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    finished, live = home / "finished.jsonl", home / "live.jsonl"
    shutil.copy(SAMPLES / "completed-tool-call.jsonl", finished)
    shutil.copy(SAMPLES / "completed-message.jsonl", live)
    db = data / "jobs.db"
    store = open_store(db)
    with store.write():
        Job.create(id="fin111", marker="m1", argv="[]", cwd="/", prompt="done", created_at=time.time() - 60,
                   status="completed", ended_at=time.time() - 30, session_file=str(finished))
        # Recorded running, but its process is gone: a look settles it (in memory only).
        Job.create(id="liv222", marker="m2", argv="[]", cwd="/", prompt="was running", created_at=time.time() - 20,
                   status="running", pid=_dead_pid(), pid_start_time=1.0, session_file=str(live))
    store.close()
    db.chmod(0o400)
    data.chmod(0o500)
    before = (db.read_bytes(), sorted(os.listdir(data)))
    try:
        listed = _read_only_cli(prefix, db, home, "list", "--json")
        assert listed.returncode == 0, listed.stderr
        rows = {r["id"]: r for r in json.loads(listed.stdout)}
        assert rows["fin111"]["status"] == "completed"
        assert rows["liv222"]["status"] == "completed"  # settled from its session file
        text = _read_only_cli(prefix, db, home, "list")
        assert text.returncode == 0 and "fin111" in text.stdout and "liv222" in text.stdout, text.stderr
        shown = _read_only_cli(prefix, db, home, "show", "liv222", "--json")
        assert shown.returncode == 0 and json.loads(shown.stdout)["status"] == "completed", shown.stderr
        logs = _read_only_cli(prefix, db, home, "logs", "fin111")
        assert logs.returncode == 0 and "✔ completed: hi from mock" in logs.stdout, logs.stderr
        for args in (("start", "hi"), ("kill", "liv222", "--yes"), ("kill", "fin111", "--yes"), ("retry", "fin111"),
                     ("resume", "fin111", "more")):
            refused = _read_only_cli(prefix, db, home, *args)
            assert refused.returncode == 1, (args, refused.stdout, refused.stderr)
            assert refused.stderr.strip().splitlines() == [f"codexdash: the job database {db} is read-only; nothing was changed"]
        assert (db.read_bytes(), sorted(os.listdir(data))) == before  # not even a -shm file
    finally:
        data.chmod(0o700)
    store = open_store(db)  # the settled outcome was never written
    assert Job.get_by_id("liv222").status == "running"
    store.close()


def test_read_only_database_whose_last_commits_are_still_in_its_write_ahead_log(tmp_path):
    import sqlite3

    prefix = _as_unprivileged()
    data = tmp_path / "data"
    db = data / "jobs.db"
    open_store(db).close()
    writer = sqlite3.connect(db)  # kept open: the commit stays in jobs.db-wal
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("INSERT INTO job (id, marker, status, argv, cwd, prompt, created_at, killed_by_us) "
                   "VALUES ('wal333', 'm', 'completed', '[]', '/', 'only in the log', 1.0, 0)")
    writer.commit()
    try:
        assert os.path.getsize(f"{db}-wal") > 0
        for name in os.listdir(data):
            (data / name).chmod(0o400)
        data.chmod(0o500)
        listed = _read_only_cli(prefix, db, tmp_path, "list", "--all", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [r["prompt"] for r in json.loads(listed.stdout)] == ["only in the log"]
    finally:
        data.chmod(0o700)
        writer.close()


def test_read_only_empty_file_lists_no_jobs(tmp_path):
    prefix = _as_unprivileged()
    data = tmp_path / "data"
    data.mkdir()
    db = data / "jobs.db"
    db.touch(mode=0o400)
    data.chmod(0o500)
    try:
        listed = _read_only_cli(prefix, db, tmp_path, "list", "--all")
        assert listed.returncode == 0 and listed.stdout.startswith("no jobs"), listed.stderr
    finally:
        data.chmod(0o700)
    assert db.read_bytes() == b""


def test_read_only_database_of_an_older_schema_is_upgraded_in_memory_only(tmp_path):
    import sqlite3

    from codexdash.store import MIGRATIONS

    prefix = _as_unprivileged()
    data = tmp_path / "data"
    db = data / "jobs.db"
    open_store(db).close()
    con = sqlite3.connect(db)  # back to schema 1: the columns later versions added are dropped
    for (index,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'job_%'").fetchall():
        con.execute(f"DROP INDEX {index}")
    for column in sorted({c for m in MIGRATIONS.values() for c in getattr(m, "adds", ())}):
        con.execute(f"ALTER TABLE job DROP COLUMN {column}")
    con.execute("UPDATE schemainfo SET value = '1' WHERE key = 'schema_version'")
    con.execute("INSERT INTO job (id, marker, status, argv, cwd, prompt, created_at, killed_by_us) "
                "VALUES ('old444', 'm', 'completed', '[]', '/', 'from long ago', 1.0, 0)")
    con.commit()
    con.close()
    db.chmod(0o400)
    data.chmod(0o500)
    before = db.read_bytes()
    try:
        listed = _read_only_cli(prefix, db, tmp_path, "list", "--all", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [r["prompt"] for r in json.loads(listed.stdout)] == ["from long ago"]
    finally:
        data.chmod(0o700)
    assert db.read_bytes() == before
