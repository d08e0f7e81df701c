"""Codex sessions codexdash did not start: an interactive `codex` in tmux, a script's
`codex exec`, an IDE. They are shown beside the jobs, read-only: no marker ties them to a
process codexdash could verify, so nothing is ever sent to them.

Codex 0.171 keeps an index of its sessions (`state_5.sqlite`, table `threads`); it is read,
read-only, where it exists. Elsewhere the session files themselves are read (head and end).
A session is running while a live Codex process of this user has its file open; otherwise it
is in the state its file records.

Without the index, the recent look reads the day folders of the recent window and, with a
`stat` each, those of the week before it (a session started then may have been active since);
older sessions are listed by `list --all`, which walks every folder.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from codexdash.events import Outcome, SessionSummary
from codexdash.format import title
from codexdash.procs import PROC
from codexdash.session_files import (
    THREAD_SOURCE_PREFIX,
    find_by_id,
    is_session_path,
    iter_session_files,
    recent_session_files,
    open_index,
    parse_name,
    read_head,
)


_STATUS = {Outcome.COMPLETED: "completed", Outcome.FAILED: "failed", Outcome.INTERRUPTED: "interrupted"}


@dataclass
class ExternalSession:
    session_id: str
    session_file: str
    cwd: str | None
    prompt: str
    created_at: float
    status: str
    pid: int | None = None
    model: str | None = None
    tokens: int | None = None
    tokens_detail: dict | None = None
    ended_at: float | None = None
    error: str | None = None

    def as_json(self, iso) -> dict:
        return {
            "id": self.session_id, "name": title(self.prompt), "pid": self.pid, "status": self.status, "cwd": self.cwd, "prompt": self.prompt,
            "model": self.model, "created_at": iso(self.created_at), "ended_at": iso(self.ended_at),
            "exit_code": None, "session_id": self.session_id, "session_file": self.session_file,
            "tokens": self.tokens, "tokens_detail": self.tokens_detail, "cpu_percent": None, "rss_bytes": None, "error": self.error,
            "parent_id": None, "retry_of": None, "external": True, "last_activity": None,
        }


def open_by_codex(codex_home: Path) -> dict[str, int]:
    """Session files held open by a live Codex process of this user: path -> PID. Read from
    /proc where there is one (as psutil would: its name, real uid and open files)."""
    if not PROC:
        return _open_by_codex_psutil(codex_home)
    uid = os.getuid()
    held: dict[str, int] = {}
    for pid in (int(name) for name in os.listdir("/proc") if name.isdigit()):
        try:
            if "codex" not in _process_name(pid) or _real_uid(pid) != uid:
                continue
            fds = f"/proc/{pid}/fd"
            for fd in os.listdir(fds):
                try:
                    path = os.readlink(f"{fds}/{fd}")
                except OSError:
                    continue
                if path.startswith("/") and is_session_path(path, codex_home):
                    held[path] = pid
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
    return held


def _process_name(pid: int) -> str:
    """psutil's name(): the kernel's (cut at 15 characters), completed from the command line."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        stat = fh.read()
    name = stat[stat.index(b"(") + 1 : stat.rindex(b")")].decode(errors="surrogateescape")
    if len(name) >= 15:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            first = os.path.basename(fh.read().split(b"\0", 1)[0].decode(errors="surrogateescape"))
        if first.startswith(name):
            name = first
    return name


def _real_uid(pid: int) -> int:
    with open(f"/proc/{pid}/status", "rb") as fh:
        for line in fh:
            if line.startswith(b"Uid:"):
                return int(line.split()[1])
    raise ValueError("no Uid line")


def _open_by_codex_psutil(codex_home: Path) -> dict[str, int]:
    import psutil

    uid = os.getuid()
    held: dict[str, int] = {}
    for proc in psutil.process_iter(["name", "uids"]):
        try:
            if proc.info["uids"] is None or proc.info["uids"].real != uid or "codex" not in (proc.info["name"] or ""):
                continue
            for f in proc.open_files():
                if is_session_path(f.path, codex_home):
                    held[f.path] = proc.pid
        except psutil.Error:
            continue
    return held


def _from_index(codex_home: Path, since: float | None) -> list[tuple[str, str, float]] | None:
    """(session id, rollout path, created at) of every session in Codex's index, or None
    when there is no index this codexdash can read."""
    for index in sorted(Path(codex_home).glob("state_*.sqlite"), reverse=True):
        try:
            db = open_index(index)
            try:
                rows = db.execute(
                    "SELECT id, rollout_path, created_at FROM threads WHERE updated_at >= ? "
                    "AND (thread_source IS NULL OR thread_source NOT LIKE ?)",
                    (since or 0, THREAD_SOURCE_PREFIX + "%"),
                ).fetchall()
            finally:
                db.close()
        except sqlite3.Error:
            continue
        return [(str(i), str(p), float(c)) for i, p, c in rows]
    return None


# Day folders before the recent window whose files are looked at by their modification time.
STAT_DAYS = 7


def _from_files(codex_home: Path, since: float | None) -> list[tuple[str, str, float]]:
    found = []
    for path in iter_session_files(codex_home) if since is None else recent_session_files(codex_home, since, STAT_DAYS):
        name = parse_name(path)
        if name is None:
            continue
        if since is not None and name.started < since:
            try:
                if os.stat(path).st_mtime < since:
                    continue
            except OSError:
                continue
        found.append((name.session_id, path, name.started))
    return found


def external_sessions(codex_home: Path, claimed: set[str], since: float | None,
                      reads: SessionReads | None = None) -> list[ExternalSession]:
    """Sessions under `codex_home` that no job claims, active since `since` (None: all).
    With `reads` (a look kept between calls), a file unchanged since the last look is not read again."""
    listed = _from_index(codex_home, since)
    if listed is None:
        listed = _from_files(codex_home, since)
    listed = [entry for entry in listed if entry[0] not in claimed]
    # Which Codex holds which file costs a read of every process: only when there is a session to tell.
    held = open_by_codex(codex_home) if listed else {}
    keep, reads = reads is not None, reads or SessionReads()
    out, looked = [], set()
    for session_id, path, created in listed:
        if not os.path.exists(path):  # archived or compressed since the index was written
            moved = find_by_id(codex_home, session_id)
            if moved is None:
                continue
            path = str(moved)
        looked.add(path)
        session = reads.read(path, created, held.get(path))
        if session is not None:
            out.append(session)
    if keep:
        reads.keep_only(looked)
    return out


class SessionReads:
    """What each session file said, kept while the file (inode, size, modification time) and
    the process holding it are the same: the dashboard looks every few seconds, and most
    sessions elsewhere have long ended."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[tuple, ExternalSession | None]] = {}

    def read(self, path: str, created: float, pid: int | None) -> ExternalSession | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns, created, pid)
        kept = self._kept.get(path)
        if kept is not None and kept[0] == key:
            return kept[1]
        session = read_external(path, created, pid)
        self._kept[path] = (key, session)
        return session

    def keep_only(self, paths: set[str]) -> None:
        for gone in self._kept.keys() - paths:
            del self._kept[gone]


def read_external(path: str, created: float, pid: int | None) -> ExternalSession | None:
    from codexdash.tail import open_session

    head = read_head(path)
    if head.thread_source and head.thread_source.startswith(THREAD_SOURCE_PREFIX):
        return None  # a codexdash job's, in a store this look does not read
    summary = SessionSummary()
    try:
        for event in open_session(path, last=60).events:
            summary.add(event)
        mtime = os.stat(path).st_mtime
    except OSError:
        return None
    if pid is not None:
        status, ended = "running", None
    else:
        status, ended = _STATUS.get(summary.outcome or "", "lost"), mtime
    name = parse_name(path)
    return ExternalSession(
        session_id=head.session_id or (name.session_id if name else os.path.basename(path)),
        session_file=path, cwd=head.cwd, prompt=head.prompt or "", created_at=created, status=status, pid=pid,
        model=summary.model, tokens=summary.tokens, tokens_detail=summary.token_usage, ended_at=ended,
        error=summary.outcome_text if summary.outcome == Outcome.FAILED else None,
    )


def short_id(session_id: str) -> str:
    """How a session is named in tables: the end of its id (a UUIDv7 begins with its creation
    time, so sessions started together share their first characters)."""
    return session_id[-12:]


def find_external(codex_home: Path, ref: str, claimed: set[str]) -> ExternalSession | None:
    """The external session whose id begins or ends with `ref` (uniquely), or None."""
    ref = ref.strip().lower()
    if len(ref) < 4:
        return None
    matches = [(sid, p, c) for sid, p, c in (_from_index(codex_home, None) or _from_files(codex_home, None))
               if (sid.startswith(ref) or sid.endswith(ref)) and sid not in claimed]
    if len(matches) != 1:
        return None
    sid, path, created = matches[0]
    held = open_by_codex(codex_home)
    return read_external(path, created, held.get(path))
