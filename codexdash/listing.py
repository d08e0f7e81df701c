"""Jobs as JSON, and `list` without the engine when there is nothing for the engine to do.

A job's JSON is made from its stored fields (`row_json`): the engine makes it from a model's
fields, `list --json` from thousands of rows; piped, it writes a finished job's JSON text from
its row at once (`row_text`, the same text as json.dumps of row_json's dict). A cold `codexdash list` reads the store with
sqlite3, read-only, and the live jobs' processes from /proc: peewee and psutil stay unloaded.
Whenever the engine has something to do, the quick look gives way to it (returns None): a
database to create, upgrade or copy, a live job whose process is gone or is starting or
stopping (to settle), one whose session file is not known yet (to find and record), a notify
hook that may be due. So both give the same answer; the quick one just gets there sooner.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time
from json.encoder import encode_basestring as _str  # as json.dumps(..., ensure_ascii=False) writes a string
from pathlib import Path

from codexdash.format import title
from codexdash.records import SCHEMA_VERSION, JobStatus

# Finished jobs shown by default: the last day's.
RECENT_SECONDS = 24 * 3600

# The stored fields a job's JSON is made of, in the order `row_json` takes them.
JSON_FIELDS = ("id", "name", "pid", "status", "cwd", "prompt", "model", "created_at", "ended_at", "exit_code",
               "session_id", "session_file", "tokens", "tokens_detail", "error", "parent_id", "retry_of", "worktree")

_UTC = dt.timezone.utc


_MINUTES: dict[int, str] = {}  # minute since the epoch -> "YYYY-MM-DDTHH:MM:"
_DAYS: dict[int, str] = {}  # day since the epoch -> "YYYY-MM-DDT"
# The rest of a time's text, "SS." and "mmmZ", made once: joining three texts is faster than
# formatting two numbers, and `list --json` writes thousands of times.
_SECONDS = [a + b + "." for a in "012345" for b in "0123456789"]  # "00." to "59."
_MILLISECONDS = [a + b + c + "Z" for a in "0123456789" for b in "0123456789" for c in "0123456789"]  # "000Z" to "999Z"


def iso_time(ts: float | None) -> str | None:
    """The UTC time as ISO 8601 with milliseconds (`2026-01-01T00:00:00.000Z`), as
    `datetime.fromtimestamp(ts, utc).isoformat(timespec="milliseconds")` writes it, computed
    from the seconds (the microseconds rounded half to even, as datetime rounds them) and the
    minute's text made once: `list --json` writes two per job."""
    if ts is None:
        return None
    secs = int(ts)
    if secs < 0:
        d = dt.datetime.fromtimestamp(ts, _UTC)
        return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (d.year, d.month, d.day, d.hour, d.minute, d.second, d.microsecond // 1000)
    us = round((ts - secs) * 1e6)
    if us >= 1_000_000:
        us -= 1_000_000
        secs += 1
    minute, second = divmod(secs, 60)
    return (_MINUTES.get(minute) or _minute_text(minute)) + _SECONDS[second] + _MILLISECONDS[us // 1000]


def _minute_text(minute: int) -> str:
    day, in_day = divmod(minute, 1440)
    date = _DAYS.get(day)
    if date is None:
        date = _DAYS[day] = dt.datetime.fromtimestamp(day * 86400, _UTC).strftime("%Y-%m-%dT")
    if len(_MINUTES) >= 100_000:  # a long-lived process (the dashboard) keeps a bounded number
        _MINUTES.clear()
    text = _MINUTES[minute] = "%s%02d:%02d:" % (date, in_day // 60, in_day % 60)
    return text


def _json_or_none(text: str | None):
    return json.loads(text) if text else None


def row_json(row: tuple, stats=None, tokens: int | None = None, tokens_detail: dict | None = None,
             last_activity: float | None = None) -> dict:
    """A job as JSON, with the stable keys scripts rely on, from its JSON_FIELDS as stored (a
    row straight from the store: no model object and no dict between), and, for a live job,
    its process figures (procs.ProcessStats), what its session file says of tokens and when
    that file last changed (`last_activity`: what the dashboard's Idle counts from)."""
    (job_id, name, pid, status, cwd, prompt, model, created_at, ended_at, exit_code, session_id, session_file,
     stored_tokens, stored_detail, error, parent_id, retry_of, worktree) = row
    return {
        "id": job_id,
        "name": name or title(prompt),
        "pid": pid,
        "status": status,
        "cwd": cwd,
        "prompt": prompt,
        "model": model,
        "created_at": iso_time(created_at),
        "ended_at": iso_time(ended_at),
        "exit_code": exit_code,
        "session_id": session_id,
        "session_file": session_file,
        "tokens": tokens if tokens is not None else stored_tokens,
        "tokens_detail": tokens_detail if tokens_detail is not None else _json_or_none(stored_detail),
        "cpu_percent": round(stats.cpu_percent, 1) if stats else None,
        "rss_bytes": stats.rss_bytes if stats else None,
        "error": error,
        "parent_id": parent_id,
        "retry_of": retry_of,
        "external": False,
        "worktree": worktree,
        "host": "local",  # the box the job runs on; another box's jobs are renamed by who reached it
        "last_activity": iso_time(last_activity),
    }


def row_text(row: tuple) -> str:
    """A finished job's JSON text, as `json.dumps(row_json(row), ensure_ascii=False)` writes it,
    filled in from its JSON_FIELDS as stored: `list --json` writes thousands, and the dict between
    costs as much again. Each value is written by the json module's own string encoder, into one
    f-string (faster than a %-template of 18 values); a value of a type the column should not
    hold (TypeError) is left to json.dumps."""
    (job_id, name, pid, status, cwd, prompt, model, created_at, ended_at, exit_code, session_id, session_file,
     tokens, detail, error, parent_id, retry_of, worktree) = row
    try:
        return (f'{{"id": {_str(job_id)}, "name": {_str(name or title(prompt))}, '
                f'"pid": {"null" if pid is None else _int(pid)}, "status": {_str(status)}, "cwd": {_str(cwd)}, '
                f'"prompt": {_str(prompt)}, "model": {"null" if model is None else _str(model)}, '
                f'"created_at": {_str(iso_time(created_at))}, '
                f'"ended_at": {"null" if ended_at is None else _str(iso_time(ended_at))}, '
                f'"exit_code": {"null" if exit_code is None else _int(exit_code)}, '
                f'"session_id": {"null" if session_id is None else _str(session_id)}, '
                f'"session_file": {"null" if session_file is None else _str(session_file)}, '
                f'"tokens": {"null" if tokens is None else _int(tokens)}, '
                f'"tokens_detail": {"null" if detail is None else json.dumps(json.loads(detail), ensure_ascii=False)}, '
                f'"cpu_percent": null, "rss_bytes": null, "error": {"null" if error is None else _str(error)}, '
                f'"parent_id": {"null" if parent_id is None else _str(parent_id)}, '
                f'"retry_of": {"null" if retry_of is None else _str(retry_of)}, "external": false, '
                f'"worktree": {"null" if worktree is None else _str(worktree)}, "host": "local", '
                f'"last_activity": null}}')
    except TypeError:
        return json.dumps(row_json(row), ensure_ascii=False)


_int = int.__repr__  # TypeError for anything but an int, as _str for anything but a str


_COLUMNS = ", ".join(JSON_FIELDS)
_LIVE = ", ".join("?" * len(JobStatus.LIVE))


def quick_listing(settings, all_history: bool = False, external: bool = True) -> list[dict] | None:
    """What `JobEngine.listing` answers, when it can be told without the engine; else None."""
    listed = _read(settings, all_history, external)
    return None if listed is None else [entry if entry.__class__ is dict else row_json(entry) for entry in listed]


def quick_listing_text(settings, all_history: bool = False, external: bool = True) -> str | None:
    """quick_listing as compact JSON text (`json.dumps(..., ensure_ascii=False)`), finished jobs
    written from their rows (row_text); else None."""
    listed = _read(settings, all_history, external)
    if listed is None:
        return None
    dumps = json.dumps
    return "[" + ", ".join([dumps(entry, ensure_ascii=False) if entry.__class__ is dict else row_text(entry)
                            for entry in listed]) + "]"


def _read(settings, all_history: bool, external: bool) -> list[dict | tuple] | None:
    """The listing: live jobs and sessions started elsewhere as JSON dicts, finished jobs as
    their rows (JSON_FIELDS), newest first; None when the engine is to answer."""
    if settings.notify_command:
        return None  # the engine's look may claim a stall and run the hook
    try:
        db = sqlite3.connect(f"{Path(settings.db_path).absolute().as_uri()}?mode=ro", uri=True, timeout=15)
    except (sqlite3.Error, ValueError):
        return None
    try:
        return _listing(db, settings, all_history, external)
    except sqlite3.Error:
        return None  # an unknown shape, a lock held too long: the engine says what it is
    finally:
        db.close()


def _listing(db: sqlite3.Connection, settings, all_history: bool, external: bool) -> list[dict | tuple] | None:
    version = db.execute("SELECT value FROM schemainfo WHERE key = 'schema_version'").fetchone()
    if version is None or version[0] != str(SCHEMA_VERSION):
        return None
    live = {}
    rows = db.execute(f"SELECT {_COLUMNS}, pid_start_time, codex_home FROM job WHERE status IN ({_LIVE})",
                      JobStatus.LIVE).fetchall()
    if any(row[3] != JobStatus.RUNNING for row in rows):
        return None  # told before any process is read
    if rows:
        from codexdash.procs import ProcessPoller, open_paths
        from codexdash.session_files import sessions_dir

        poller = ProcessPoller()
        poller.begin_cycle()
        prefixes: dict[str | None, str] = {}  # a job's CODEX_HOME -> where its session files are
        for row in rows:
            pid, session_file, start, home = row[2], row[11], row[-2], row[-1]
            if not poller.alive(pid, start):
                return None
            if session_file is None:
                # The engine would look for it among the open files of the job's processes, and
                # record it: if it is there, the engine answers; if not, the answer is the same.
                prefix = prefixes.get(home)
                if prefix is None:
                    prefix = prefixes[home] = str(sessions_dir(Path(home) if home else settings.codex_home)).rstrip("/") + "/"
                if any(p.startswith(prefix) and p.endswith(".jsonl") for p in open_paths(poller.tree_pids(pid))):
                    return None
                tokens = detail = active = None
            else:
                tokens, detail, active = _session_tokens(session_file)
            live[row[0]] = row_json(row[:-2], poller.sample(pid, start), tokens, detail, active)
        poller.close()
    query = f"SELECT {_COLUMNS} FROM job"
    args: tuple = ()
    if not all_history:
        recent = time.time() - RECENT_SECONDS
        query += f" WHERE status IN ({_LIVE}) OR created_at >= ? OR ended_at >= ?"
        args = (*JobStatus.LIVE, recent, recent)
    listed: list[dict | tuple] = db.execute(query + " ORDER BY created_at DESC", args).fetchall()
    if live:
        listed = [live.pop(row[0], row) for row in listed]  # a live job's dict in its row's place
    if live:
        return None  # changed between the two reads: the engine looks again
    if external:
        from codexdash.external import external_sessions

        claimed = {sid for (sid,) in db.execute("SELECT session_id FROM job WHERE session_id IS NOT NULL")}
        sessions = external_sessions(settings.codex_home, claimed, None if all_history else time.time() - RECENT_SECONDS)
        if sessions:
            listed.extend(s.as_json(iso_time) for s in sessions)
            listed.sort(key=lambda r: (r["created_at"] if r.__class__ is dict else iso_time(r[7])) or "", reverse=True)
    return listed


def _session_tokens(path: str) -> tuple[int | None, dict | None, float | None]:
    """Tokens so far, as the engine reads them for a live job (its file's last events), and
    when the file last changed."""
    from codexdash.events import SessionSummary
    from codexdash.tail import open_session

    summary = SessionSummary()
    try:
        changed = os.stat(path).st_mtime
        for event in open_session(path, last=50).events:
            summary.add(event)
    except OSError:
        return None, None, None
    return summary.tokens, summary.token_usage, changed
