"""Finding a job's Codex session file under `$CODEX_HOME`.

Codex writes `sessions/YYYY/MM/DD/rollout-<local time>-<session id>.jsonl` and may later move it
to `archived_sessions/` (same name) or compress it in place (`.jsonl.zst`). A file is tied to
its job by something only that job carries, never by resemblance:
- `codex exec --thread-source VALUE` writes VALUE into the file's `session_meta`: codexdash
  passes a value naming the job (see `thread_source_value`);
- while the job runs, the file is among the open files of the job's processes;
- once a session id is known, the file is found again by that id in either tree.
Codex 0.171 also keeps an index of its sessions (`state_5.sqlite`); it is read, read-only, where
it exists, and the files are searched where it does not.

Jobs recorded before thread sources (no value in their command line) fall back to matching by
start time, cwd and prompt, and only when exactly one unclaimed file fits.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from codexdash.events import Kind, SessionParser

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_NAME = re.compile(rf"^rollout-(\d{{4}})-(\d{{2}})-(\d{{2}})T(\d{{2}})-(\d{{2}})-(\d{{2}})-({_UUID})\.jsonl(\.zst)?$")
_SESSION_ID = re.compile(rf"^{_UUID}$")
# A session file is created just after Codex starts; allow for a slow start and clock rounding
# (names have whole seconds).
MATCH_BEFORE = 2.0
MATCH_AFTER = 120.0
HEAD_BYTES = 1 << 20
HEAD_LINES = 60
THREAD_SOURCE_PREFIX = "codexdash:"


@dataclass(frozen=True)
class SessionName:
    started: float  # epoch seconds, from the local time in the name
    session_id: str


def thread_source_value(job_id: str) -> str:
    """What a job passes as `--thread-source`: its session file then names it."""
    return THREAD_SOURCE_PREFIX + job_id


def parse_name(path: Path | str) -> SessionName | None:
    return _parse_file_name(os.path.basename(path))


@lru_cache(maxsize=16384)  # names listed each look: the recent days, archived files kept flat
def _parse_file_name(name: str) -> SessionName | None:
    """Kept by name: the dashboard lists the same files every second, and a name always says
    the same (the local time in it is read in this process's time zone, which stays put)."""
    m = _NAME.match(name)
    if not m:
        return None
    y, mo, d, h, mi, s = (int(x) for x in m.groups()[:6])
    try:
        started = dt.datetime(y, mo, d, h, mi, s).timestamp()  # naive = local time, as Codex names it
    except ValueError:
        return None
    return SessionName(started=started, session_id=m.group(7))


def sessions_dir(codex_home: Path) -> Path:
    return Path(codex_home) / "sessions"


def archived_dir(codex_home: Path) -> Path:
    return Path(codex_home) / "archived_sessions"


def is_session_path(path: str, codex_home: Path) -> bool:
    """A session file of this CODEX_HOME, live or archived, by its place and name."""
    if not _NAME.match(os.path.basename(path)):
        return False
    return any(path.startswith(str(root).rstrip("/") + "/") for root in (sessions_dir(codex_home), archived_dir(codex_home)))


def _day_dirs(codex_home: Path, around: float) -> list[Path]:
    days = {dt.date.fromtimestamp(around + delta) for delta in (-86400, 0, MATCH_AFTER)}
    return [sessions_dir(codex_home) / f"{d:%Y}" / f"{d:%m}" / f"{d:%d}" for d in sorted(days)]


def _scan(directory: Path | str) -> list[os.DirEntry]:
    try:
        return [e for e in os.scandir(directory) if _NAME.match(e.name)]
    except OSError:
        return []


def _archived_entries(codex_home: Path) -> list[os.DirEntry]:
    """Archived files: flat under archived_sessions/, or in day folders as under sessions/."""
    root = archived_dir(codex_home)
    found = []
    for dirpath, dirs, _files in os.walk(root, followlinks=False):
        if len(Path(dirpath).relative_to(root).parts) >= 3:
            dirs.clear()  # YYYY/MM/DD at most: a bounded walk, never a runaway tree
        found.extend(_scan(Path(dirpath)))
    return found


def _candidates(codex_home: Path, started_at: float) -> list[tuple[float, str]]:
    """Files, live and archived, whose names say they began around `started_at`; nearest first."""
    out = []
    for entry in [e for day in _day_dirs(codex_home, started_at) for e in _scan(day)] + _archived_entries(codex_home):
        name = parse_name(entry.name)
        if name is None:
            continue
        delta = name.started - started_at
        if -MATCH_BEFORE <= delta <= MATCH_AFTER:
            out.append((abs(delta), entry.path))
    return sorted(out)


def find_by_id(codex_home: Path, session_id: str) -> Path | None:
    """The session file with this id, in `sessions/` or `archived_sessions/`, plain or compressed."""
    if not session_id or not _SESSION_ID.match(session_id):
        return None
    suffixes = (f"-{session_id}.jsonl", f"-{session_id}.jsonl.zst")
    started = _uuid7_time(session_id)
    days = _day_dirs(codex_home, started) if started else []
    for entry in [e for day in days for e in _scan(day)] + _archived_entries(codex_home):
        if entry.name.endswith(suffixes):
            return Path(entry.path)
    if started is None:  # not a UUIDv7: its day is unknown, so every day is looked at
        for path in iter_session_files(codex_home):
            if path.endswith(suffixes):
                return Path(path)
    return None


def _uuid7_time(session_id: str) -> float | None:
    """The creation time a UUIDv7 carries in its first 48 bits (Codex's session ids are v7)."""
    if session_id[14] != "7":
        return None
    return int(session_id.replace("-", "")[:12], 16) / 1000.0


@dataclass
class SessionHead:
    session_id: str | None = None
    cwd: str | None = None
    prompt: str | None = None
    thread_source: str | None = None
    model: str | None = None  # from the first turn's context (written before its prompt)


def read_head(path: Path | str, need_prompt: bool = True) -> SessionHead:
    """The session id, cwd, thread source, model and first prompt from the start of a session
    file."""
    head = SessionHead()
    parser = SessionParser()
    from codexdash.tail import session_stream

    try:
        with session_stream(path, whole=False) as fh:  # the head only: a compressed file's end is not needed
            budget = HEAD_BYTES * 8  # session_meta alone can be ~20 KB; tool output can be larger
            for _ in range(HEAD_LINES):
                line = fh.readline(HEAD_BYTES * 4)
                budget -= len(line)
                if not line or budget < 0:
                    break
                for event in parser.feed(line):
                    if event.kind == Kind.META:
                        head.session_id = head.session_id or event.data.get("session_id")
                        head.cwd = head.cwd or event.data.get("cwd")
                        head.thread_source = head.thread_source or event.data.get("thread_source")
                        if not need_prompt:
                            return head
                    elif event.kind == Kind.MODEL:
                        head.model = head.model or event.text
                    elif event.kind == Kind.PROMPT:
                        head.prompt = event.text
                        return head
    except Exception:  # noqa: BLE001 - unreadable, corrupt or compressed without zstandard:
        pass  # a file whose head cannot be read names no job
    return head


def open_index(path: Path) -> sqlite3.Connection:
    """Codex's index, read-only (its path quoted: a CODEX_HOME may hold '?', '#' or '%')."""
    return sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True, timeout=0.5)


def find_in_index(codex_home: Path, thread_source: str) -> Path | None:
    """The rollout path Codex's own index (0.171+) gives for a thread source, if it exists.

    The index is private to Codex and versioned: it is opened read-only, its absence or any
    change of shape just means the files are searched instead."""
    try:
        indexes = sorted(Path(codex_home).glob("state_*.sqlite"), reverse=True)
    except OSError:
        return None
    for index in indexes:
        try:
            db = open_index(index)
            try:
                rows = db.execute("SELECT rollout_path FROM threads WHERE thread_source = ?", (thread_source,)).fetchall()
            finally:
                db.close()
        except sqlite3.Error:
            continue
        for (rollout,) in rows:
            if rollout and os.path.isfile(rollout):
                return Path(rollout)
            name = parse_name(rollout or "")
            if name is not None:  # moved since (archived): found again by its id
                return find_by_id(codex_home, name.session_id)
    return None


def find_by_thread_source(codex_home: Path, thread_source: str, started_at: float) -> Path | None:
    """The session file whose `session_meta` names this thread source, live or archived."""
    found = find_in_index(codex_home, thread_source)
    if found is not None:
        return found
    for _delta, path in _candidates(codex_home, started_at):
        if read_head(path, need_prompt=False).thread_source == thread_source:
            return Path(path)
    return None


def find_by_match(
    codex_home: Path, started_at: float, cwd: str, prompt: str, exclude: set[str] = frozenset()
) -> Path | None:
    """For a job recorded without a thread source: the one file that began just after
    `started_at` in `cwd` with this prompt. Two candidates, or a file that names a thread
    source, decide nothing: resemblance never chooses between jobs."""
    found = []
    for _delta, path in _candidates(codex_home, started_at):
        if path in exclude:
            continue
        head = read_head(path)
        if head.thread_source:
            continue
        if head.cwd is not None and os.path.realpath(head.cwd) != os.path.realpath(cwd):
            continue
        if head.prompt is not None and head.prompt.strip() == prompt.strip():
            found.append(Path(path))
    return found[0] if len(found) == 1 else None


def recent_session_files(codex_home: Path, since: float, stat_days: int) -> list[str]:
    """The session files, live and archived, in the day folders from `stat_days` days before
    `since` to today (names carry local time: a day of slack either side), and the archived
    ones kept flat whose names fall in that time: the files that may have been active since
    `since`, without walking years of folders. Newest first by name."""
    first = dt.date.fromtimestamp(since) - dt.timedelta(days=stat_days + 1)
    last = dt.date.today() + dt.timedelta(days=1)
    found = []
    for root in (str(sessions_dir(codex_home)), str(archived_dir(codex_home))):
        day = first
        while day <= last:  # the dashboard looks every few seconds: plain strings, no Path per day
            found.extend(e.path for e in _scan(f"{root}/{day:%Y/%m/%d}"))
            day += dt.timedelta(days=1)
    for entry in _scan(archived_dir(codex_home)):
        name = parse_name(entry.name)
        if name is not None and dt.date.fromtimestamp(name.started) >= first:
            found.append(entry.path)
    found.sort(key=os.path.basename, reverse=True)
    return found


def iter_session_files(codex_home: Path):
    """Every session file, live and archived, newest first by name (names sort by their local
    start time)."""
    found = []
    for root in (sessions_dir(codex_home), archived_dir(codex_home)):
        for dirpath, _dirs, files in os.walk(root, followlinks=False):
            for f in files:
                if _NAME.match(f):
                    found.append(os.path.join(dirpath, f))
    found.sort(key=os.path.basename, reverse=True)
    return found
