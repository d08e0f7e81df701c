"""The job database: Peewee models over one SQLite file, the source of truth for which jobs exist.

Several dashboards and CLI calls share the file: WAL mode lets readers run beside a writer, the
busy timeout makes writers queue instead of failing, and every write runs in an IMMEDIATE
transaction so that a read-then-write never fails halfway on a lock upgrade.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import peewee as pw

from codexdash.errors import StoreError
from codexdash.records import SCHEMA_VERSION, JobStatus, is_looking, looking  # noqa: F401 - the store's names too

SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 15_000


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
    # What the operator calls the job (default: a short title from the prompt's first line).
    name = pw.TextField(null=True)
    # Input, cached input, output, reasoning and total tokens (JSON), once the job ended.
    tokens_detail = pw.TextField(null=True)
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
    kind = pw.CharField()  # "state", "kill", "notify" (a run of the hook) or "stalled" (a claimed silence)
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
    1: _add_columns("job", "codex_home", "error", "extra_args", "parent_id", "turn_offset", "retry_of", "tokens_detail", "name"),
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


def _make_private_dirs(directory: Path) -> None:
    """Creates the missing directories down to `directory`, each owner-only (0700) whatever the
    umask, as the XDG base directory spec asks; directories that exist are left as they are."""
    missing = []
    while not directory.exists() and directory.parent != directory:
        missing.append(directory)
        directory = directory.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)  # mkdir's mode is narrowed by the umask


def _create_owner_only(path: Path) -> None:
    _make_private_dirs(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _is_read_only(path: Path) -> bool:
    """An existing database this user cannot change: the file is not writable, or its directory
    is not (SQLite creates its -wal and -shm files beside it)."""
    return path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK))


def _read_pages(path: Path) -> bytes:
    """The database's content as one consistent image, read without writing anything.

    `mode=ro` reads it through SQLite's usual locking. In WAL mode that needs the -shm file,
    which cannot be created in a read-only directory: there, when there is no write-ahead log
    to replay (the last writer closed cleanly), `immutable=1` reads the file alone."""
    uri = path.absolute().as_uri()
    wal = Path(f"{path}-wal")
    no_log = not wal.exists() or wal.stat().st_size == 0
    if no_log and path.stat().st_size == 0:
        return b""  # an empty file: SQLite would make it a database on the first write
    attempts = ["mode=ro"]
    if no_log:
        attempts.append("mode=ro&immutable=1")
    error: Exception | None = None
    for query in attempts:
        try:
            con = sqlite3.connect(f"{uri}?{query}", uri=True)
        except sqlite3.Error as exc:
            error = exc
            continue
        try:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return con.serialize()
        except sqlite3.Error as exc:
            error = exc
        finally:
            con.close()
    hint = f" (its write-ahead log {wal.name} needs a {path.name}-shm file beside it)" if len(attempts) == 1 else ""
    raise StoreError(f"cannot read the read-only job database {path}: {error}{hint}; it was left untouched")


def _in_memory_copy(path: Path) -> tuple[sqlite3.Connection, str]:
    """A private in-memory copy of a read-only database, shared by this process's threads (a
    named memdb lives while one connection to it is open: the one returned)."""
    image = bytearray(_read_pages(path))
    if len(image) >= 20 and image[18:20] == b"\x02\x02":
        image[18:20] = b"\x01\x01"  # WAL is a file format; the copy in memory is a plain one
    import secrets

    uri = f"file:/codexdash-{os.getpid()}-{secrets.token_hex(8)}?vfs=memdb"
    anchor = sqlite3.connect(uri, uri=True, check_same_thread=False)
    if image:
        loaded = sqlite3.connect(":memory:")
        try:
            loaded.deserialize(bytes(image))
            loaded.backup(anchor)
        finally:
            loaded.close()
    return anchor, uri


class Store:
    """An open job database. Models are bound to the last opened store of the process."""

    def __init__(self, path: Path, readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        self._copy: sqlite3.Connection | None = None
        self._probe: sqlite3.Connection | None = None
        self._probe_lock = threading.Lock()
        if readonly:
            # The file is read once into memory: a look that settles a job works on the copy,
            # and nothing, not even a -shm file, is written beside the database.
            self._copy, uri = _in_memory_copy(path)
            self.db = pw.SqliteDatabase(uri, uri=True, pragmas={"busy_timeout": BUSY_TIMEOUT_MS, "foreign_keys": 1})
        else:
            self.db = pw.SqliteDatabase(
                str(path),
                pragmas={"journal_mode": "wal", "busy_timeout": BUSY_TIMEOUT_MS, "foreign_keys": 1, "synchronous": "normal"},
            )
        _database.initialize(self.db)

    def require_writable(self) -> None:
        if self.readonly:
            raise StoreError(f"the job database {self.path} is read-only; nothing was changed")

    @contextmanager
    def write(self) -> Iterator[None]:
        """One IMMEDIATE transaction; storage failures become a StoreError, nothing half-written."""
        if self.readonly and not is_looking():
            self.require_writable()
        try:
            with self.db.atomic("IMMEDIATE"):
                yield
        except (pw.OperationalError, pw.DatabaseError, sqlite3.DatabaseError) as exc:
            raise StoreError(f"cannot write the job database {self.path}: {exc}") from None

    def data_version(self) -> int | None:
        """A number that changes whenever a transaction commits to the database, from any
        connection of any process (SQLite's `PRAGMA data_version`, asked of a connection of its
        own that never writes). None when it cannot be told (a read-only copy): read again."""
        if self.readonly:
            return None
        with self._probe_lock:
            try:
                if self._probe is None:
                    self._probe = sqlite3.connect(str(self.path), check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
                return self._probe.execute("PRAGMA data_version").fetchone()[0]
            except sqlite3.Error:
                return None

    def close(self) -> None:
        with self._probe_lock:
            if self._probe is not None:
                self._probe.close()
                self._probe = None
        self.db.close()
        if self._copy is not None:
            self._copy.close()
            self._copy = None

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
        with looking():  # a read-only database is created or upgraded in its copy only
            self._migrate_now()

    def _migrate_now(self) -> None:
        tables = set(self.db.get_tables())
        if "job" not in tables:
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
            with self.write():
                MIGRATIONS[version](self.db)
                version += 1
                SchemaInfo.replace(key="schema_version", value=str(version)).execute()


def open_store(path: Path) -> Store:
    """Open (creating it owner-only if missing) the job database; read-only if this user cannot
    change it (see `looking`)."""
    path = Path(path)
    _check_header(path)
    readonly = _is_read_only(path)
    if not readonly:
        try:
            _create_owner_only(path)
        except OSError as exc:
            raise StoreError(f"cannot create the job database {path}: {exc.strerror}") from None
    try:
        store = Store(path, readonly)
    except (sqlite3.DatabaseError, OSError) as exc:
        raise StoreError(f"cannot read the job database {path}: {exc}; it was left untouched") from None
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
