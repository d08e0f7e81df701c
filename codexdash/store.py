"""The job database: Peewee models over one SQLite file, the source of truth for which jobs exist.

Several dashboards and CLI calls share the file: WAL mode lets readers run beside a writer, the
busy timeout makes writers queue instead of failing, and every write runs in an IMMEDIATE
transaction so that a read-then-write never fails halfway on a lock upgrade.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import peewee as pw

from codexdash.errors import StoreError

SCHEMA_VERSION = 3
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 15_000


class JobStatus:
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    KILLED = "killed"
    LOST = "lost"
    FAILED_TO_START = "failed_to_start"

    LIVE = (STARTING, RUNNING, STOPPING)
    FINISHED = (COMPLETED, FAILED, INTERRUPTED, KILLED, LOST, FAILED_TO_START)


_database = pw.DatabaseProxy()


class _Model(pw.Model):
    class Meta:
        database = _database


class SchemaInfo(_Model):
    key = pw.CharField(primary_key=True)
    value = pw.TextField()


class Job(_Model):
    id = pw.CharField(primary_key=True)
    marker = pw.CharField(unique=True)
    status = pw.CharField(index=True, default=JobStatus.STARTING)
    argv = pw.TextField()  # JSON list: exactly what was spawned
    cwd = pw.TextField()
    prompt = pw.TextField()
    model = pw.CharField(null=True)
    sandbox = pw.CharField(null=True)
    created_at = pw.FloatField(index=True)
    pid = pw.IntegerField(null=True)
    pid_start_time = pw.FloatField(null=True)
    started_at = pw.FloatField(null=True)
    ended_at = pw.FloatField(null=True)
    exit_code = pw.IntegerField(null=True)
    killed_by_us = pw.BooleanField(default=False)
    session_id = pw.CharField(null=True)
    session_file = pw.TextField(null=True)
    tokens = pw.IntegerField(null=True)
    detail = pw.TextField(null=True)  # why it failed to start, what was found at the end
    # The codexdash process starting or stopping the job (PID and start time). A job left in
    # the middle of either by a codexdash that died is taken over by the next one.
    actor_pid = pw.IntegerField(null=True)
    actor_start_time = pw.FloatField(null=True)
    # The CODEX_HOME the job ran with: its session file is looked for there, whatever the
    # CODEX_HOME of whoever looks later.
    codex_home = pw.TextField(null=True)
    # Codex's last error line (from its stderr, or the session's failure), once it ended.
    error = pw.TextField(null=True)
    # Extra Codex arguments as given (JSON list), so a retry runs the job again as it was.
    extra_args = pw.TextField(null=True)
    # A follow-up (`codex exec resume`) continues its parent's session in the same file: its
    # own turn starts at `turn_offset` there, and only that turn decides its outcome.
    parent_id = pw.CharField(null=True, index=True)
    turn_offset = pw.IntegerField(null=True)
    retry_of = pw.CharField(null=True)
    # Where the job's files are: the worktree Codex made for it (`--worktree`; a follow-up runs
    # in its parent's), and a commit holding the work tree's tracked files as they were when it
    # started (`git stash create`, else HEAD), which its diff is taken against.
    worktree = pw.TextField(null=True)
    git_base = pw.CharField(null=True)

    @property
    def argv_list(self) -> list[str]:
        return json.loads(self.argv)

    @property
    def extra_args_list(self) -> list[str]:
        return json.loads(self.extra_args) if self.extra_args else []

    @property
    def is_live(self) -> bool:
        return self.status in JobStatus.LIVE


class JobEvent(_Model):
    """The audit trail: every state change and every kill attempt with its checks and outcome."""

    job = pw.ForeignKeyField(Job, backref="events", on_delete="CASCADE")
    at = pw.FloatField()
    kind = pw.CharField()  # "state" or "kill"
    from_status = pw.CharField(null=True)
    to_status = pw.CharField(null=True)
    detail = pw.TextField(null=True)  # JSON

    @property
    def detail_data(self) -> dict:
        return json.loads(self.detail) if self.detail else {}


MODELS = [SchemaInfo, Job, JobEvent]

# Migrations from version N to N+1, each run in one transaction. Add here; never edit old ones.
def _add_columns(table: str, *columns: str):
    def migrate(db: pw.Database) -> None:
        for column in columns:
            db.execute_sql(f"ALTER TABLE {table} ADD COLUMN {column}")

    migrate.adds = set(columns)
    return migrate


MIGRATIONS: dict[int, callable] = {
    1: _add_columns("job", "codex_home", "error", "extra_args", "parent_id", "turn_offset", "retry_of"),
    2: _add_columns("job", "worktree", "git_base"),
}


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot read the job database {path}: {exc.strerror}") from None
    if head and head != SQLITE_HEADER:
        raise StoreError(f"{path} is not an SQLite database; it was left untouched (move it away to start afresh)")


def _create_owner_only(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class Store:
    """An open job database. Models are bound to the last opened store of the process."""

    def __init__(self, path: Path, readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        if readonly:
            self.db = pw.SqliteDatabase(f"file:{path}?mode=ro", uri=True, pragmas={"busy_timeout": BUSY_TIMEOUT_MS})
        else:
            self.db = pw.SqliteDatabase(
                str(path),
                pragmas={"journal_mode": "wal", "busy_timeout": BUSY_TIMEOUT_MS, "foreign_keys": 1, "synchronous": "normal"},
            )
        _database.initialize(self.db)

    @contextmanager
    def write(self) -> Iterator[None]:
        """One IMMEDIATE transaction; storage failures become a StoreError, nothing half-written."""
        if self.readonly:
            raise StoreError(f"the job database {self.path} is read-only; nothing was changed")
        try:
            with self.db.atomic("IMMEDIATE"):
                yield
        except (pw.OperationalError, pw.DatabaseError, sqlite3.DatabaseError) as exc:
            raise StoreError(f"cannot write the job database {self.path}: {exc}") from None

    def close(self) -> None:
        self.db.close()

    def _check_columns(self, version: int) -> None:
        """Every column the models need at this schema version is there: a file from another
        build of codexdash with the same schema number but other columns is refused, untouched."""
        to_come = {c for v, m in MIGRATIONS.items() if v >= version for c in getattr(m, "adds", ())}
        for model in (Job, JobEvent):
            have = {c.name for c in self.db.get_columns(model._meta.table_name)}
            missing = sorted(set(model._meta.columns) - have - to_come)
            if missing:
                raise StoreError(
                    f"the job database {self.path} lacks column(s) {', '.join(missing)} of table "
                    f"{model._meta.table_name}: it was written by another codexdash build; it was left untouched"
                )

    def _migrate(self) -> None:
        tables = set(self.db.get_tables())
        if "job" not in tables:
            if self.readonly:
                raise StoreError(f"the job database {self.path} is read-only and empty")
            with self.write():
                self.db.create_tables(MODELS)
                SchemaInfo.replace(key="schema_version", value=str(SCHEMA_VERSION)).execute()
            return
        row = SchemaInfo.get_or_none(SchemaInfo.key == "schema_version")
        version = int(row.value) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the job database {self.path} has schema {version}, newer than this codexdash knows ({SCHEMA_VERSION}); upgrade codexdash"
            )
        self._check_columns(version)
        while version < SCHEMA_VERSION:
            if self.readonly:
                raise StoreError(f"the job database {self.path} needs an upgrade but is read-only")
            with self.write():
                MIGRATIONS[version](self.db)
                version += 1
                SchemaInfo.replace(key="schema_version", value=str(version)).execute()


def open_store(path: Path) -> Store:
    """Open (creating owner-only if missing) the job database; read-only if the file is."""
    path = Path(path)
    _check_header(path)
    readonly = path.exists() and not os.access(path, os.W_OK)
    if not readonly:
        try:
            _create_owner_only(path)
        except OSError as exc:
            raise StoreError(f"cannot create the job database {path}: {exc.strerror}") from None
    store = Store(path, readonly)
    try:
        store.db.connect(reuse_if_open=True)
        store._migrate()
    except StoreError:
        store.close()
        raise
    except (pw.DatabaseError, sqlite3.DatabaseError) as exc:
        store.close()
        raise StoreError(f"cannot open the job database {path}: {exc}; it was left untouched") from None
    return store


def now() -> float:
    return time.time()
