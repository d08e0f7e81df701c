"""The notification hook: a command run once when a job finishes or stalls.

`notify_command` (config) / CODEXDASH_NOTIFY_COMMAND gets one JSON object on stdin: the job's
stable keys (as `list --json` prints them) plus `event`, `finished` or `stalled`.

Exactly once per event, whichever codexdash process notices it:
- `finished`: the process whose compare-and-set moves the job to a finished state (there is
  one: `JobEngine.transition`) runs the hook, after its transaction has committed.
- `stalled`: a live job whose session file has not grown for `stall_after` seconds. The stall
  is claimed in the store: one `stalled` event per job and silence, keyed by when the silence
  began (the file's mtime), checked and written in one IMMEDIATE transaction. A job that stalls,
  writes again and stalls again is a new silence and notifies again; a job that stays silent
  notifies once.

An event is recorded as due (a JobEvent of kind `notify_due`) in the very transaction that wins
it, and is handed to a runner once that commits. The runner claims it before it runs the hook:
one compare-and-set, `notify_due` -> `notify_sent`, so however many runners are launched for it,
one runs the hook. The winner may die between its commit and the launch (a crash, a kill): the
event then stays due, and the next look of a codexdash with a hook (a watcher, a dashboard, a
`list`) launches a runner for each event due longer than REDELIVER_AFTER seconds.

The hook never blocks its caller: it runs under a small runner process of its own
(`python -m codexdash.notify`, in its own session, the payload in an unlinked temporary file),
which waits for it at most `notify_timeout` seconds, kills its process group if it hangs, and
writes how it went (ok, exit status, not found, timed out) into the job's history as a JobEvent
of kind `notify`. No transaction is held while it runs.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from codexdash.config import MARKER_ENV, Settings
from codexdash.faults import fault_point
from codexdash.store import Job, JobEvent, JobStatus, Store, now, open_store

FINISHED = "finished"
STALLED = "stalled"
DUE = "notify_due"  # an event won, its hook not yet run: a JobEvent of this kind
SENT = "notify_sent"  # ... claimed by the runner that runs its hook
REDELIVER_AFTER = 5.0  # seconds a due event is left to the process that won it
DELIVER_WITHIN = 24 * 3600.0  # a due event older than this is news no more: left undelivered
LOOK_EVERY = 5.0  # how often a long-lived engine looks for events left due
RELAUNCH_AFTER = 60.0  # an event this engine launched is launched again only this much later
# What is kept of a failing hook's stderr in the job's history.
STDERR_KEEP = 2000


def record_due(store: Store, job_id: str, event: str) -> int | None:
    """Inside the transaction that wins the event: records it as due; its id for the runner.
    None on a read-only database, whose writes stay in this process (the runner could not
    claim it there): its hook runs unclaimed, as it is launched once."""
    if store.readonly:
        return None
    return JobEvent.create(job=job_id, at=now(), kind=DUE, detail=json.dumps({"event": event})).id


def launch(settings: Settings, store: Store, payload: dict, event: str, due: int | None = None) -> None:
    """Runs the hook for this event, detached; returns at once. Does nothing without a hook.
    `due`: the event's record (record_due), which the runner claims before it runs the hook."""
    if not settings.notify_command:
        return
    spec = {
        "command": list(settings.notify_command),
        "timeout": settings.notify_timeout,
        "db": str(settings.db_path),
        "due": due,
        "payload": {**payload, "event": event},
    }
    try:
        with tempfile.TemporaryFile() as fh:  # unlinked: the runner reads it, nothing stays on disk
            fh.write(json.dumps(spec).encode())
            fh.seek(0)
            runner = subprocess.Popen(
                [sys.executable, "-m", "codexdash.notify"], stdin=fh, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True, cwd="/", env=clean_env(),
            )
    except OSError as exc:
        _record(store, payload["id"], {"event": event, "outcome": "not run", "error": f"cannot start the hook's runner: {exc}"})
        return
    # Reaped here if this process outlives it; otherwise init does.
    threading.Thread(target=runner.wait, name="notify-reaper", daemon=True).start()


def deliver_due(engine, older_than: float = REDELIVER_AFTER) -> float | None:
    """Launches a runner for each event due for longer than `older_than` seconds (its winner
    died before handing it over; not older than DELIVER_WITHIN), with this engine's hook.
    Returns when the next one still young becomes old enough (None: none). An event this
    engine launched is launched again only a minute later: the runner's claim keeps a second
    launch harmless."""
    settings, store = engine.settings, engine.store
    if not settings.notify_command or store.readonly:
        return None
    from codexdash.jobs import job_json  # imported here: the engine imports this module too

    at = now()
    launched = engine.due_launched
    for due_id, when in list(launched.items()):  # holding back nothing now: a day of jobs must not pile up here
        if at - when >= RELAUNCH_AFTER:
            launched.pop(due_id, None)
    later = None
    for due in JobEvent.select().where((JobEvent.kind == DUE) & (JobEvent.at >= at - DELIVER_WITHIN)):
        if at - launched.get(due.id, -math.inf) < RELAUNCH_AFTER:
            continue
        if due.at > at - older_than:
            later = min(later or math.inf, due.at + older_than)
            continue
        job = Job.get_or_none(Job.id == due.job_id)
        if job is None:
            continue
        launched[due.id] = at
        launch(settings, store, job_json(job.__data__), due.detail_data.get("event", FINISHED), due=due.id)
    return later


def claim_due(db_path: Path | str, due: int) -> bool:
    """The runner's claim of a due event: True for the one runner that moves it to sent. With
    sqlite3 alone, so the hook is not kept waiting for the store to open. An error leaves the
    event due, for a later look."""
    import sqlite3

    try:
        db = sqlite3.connect(f"{Path(db_path).absolute().as_uri()}?mode=rw", uri=True, timeout=15, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        table = JobEvent._meta.table_name
        return db.execute(f"UPDATE {table} SET kind = ? WHERE id = ? AND kind = ?", (SENT, due, DUE)).rowcount == 1
    except sqlite3.Error:
        return False
    finally:
        db.close()


def clean_env() -> dict[str, str]:
    """The environment for processes codexdash runs in the background: without a job marker
    (codexdash itself may run inside a Codex job, whose kill sweeps every process carrying it)."""
    env = dict(os.environ)
    env.pop(MARKER_ENV, None)
    return env


def _record(store: Store, job_id: str, detail: dict) -> None:
    """Writes a `notify` event into the job's history."""
    try:
        with store.write():
            JobEvent.create(job=job_id, at=now(), kind="notify", detail=json.dumps(detail))
    except Exception:  # noqa: BLE001 - the history is best effort here; nothing may block on it
        pass


# ---- stalls ---------------------------------------------------------------------------------


def silent_since(job: Job, mtime: float | None) -> float:
    """When the job last showed life: its session file's last growth, never before it started."""
    start = job.started_at or job.created_at
    return start if mtime is None else max(mtime, start)


def claim_stall(store: Store, job: Job, since: float, stall_after: float) -> int | bool:
    """Records that the live job has been silent since `since`, and its event as due: for the
    one process that records it first for this silence, the due event's id (True on a
    read-only database, where none is recorded); False when it is recorded already or the
    job ended."""
    with store.write():
        status = Job.select(Job.status).where(Job.id == job.id).scalar()
        if status not in JobStatus.LIVE:
            return False
        last = (JobEvent.select().where((JobEvent.job == job.id) & (JobEvent.kind == STALLED))
                .order_by(JobEvent.id.desc()).first())
        if last is not None and last.detail_data.get("silent_since", 0) >= since:
            return False
        JobEvent.create(job=job.id, at=now(), kind=STALLED,
                        detail=json.dumps({"silent_since": since, "stall_after": stall_after}))
        return record_due(store, job.id, STALLED) or True


def check_stall(engine, job: Job, mtime: float | None, payload: dict) -> float:
    """Notifies a stall of this live job when one is due and not yet claimed (by anyone).

    `mtime`: its session file's, when known. Returns when the job can next become stalled
    (a silent job is looked at again a stall time later, to see it resume)."""
    after = engine.settings.stall_after
    since = silent_since(job, mtime)
    if now() < since + after:
        return since + after
    seen = engine.stalls_seen
    if seen.get(job.id) != since:  # asked the store once per silence, not at every look
        seen[job.id] = since
        claimed = claim_stall(engine.store, job, since, after)
        if claimed is not False:
            fault_point("notify-after-commit")
            due = None if claimed is True else claimed
            if due is not None:
                engine.due_launched[due] = now()
            launch(engine.settings, engine.store, payload, STALLED, due=due)
    return now() + after


# ---- the runner -------------------------------------------------------------------------------


def run_hook(command: list[str], payload: dict, timeout: float) -> dict:
    """Runs the hook with the payload on stdin; how it went, as recorded in the history."""
    detail: dict = {"event": payload.get("event"), "command": command}
    cwd = payload.get("cwd")
    if not (cwd and os.path.isdir(cwd)):
        cwd = str(Path.home())
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as stderr:
        stdin.write(json.dumps(payload, ensure_ascii=False).encode() + b"\n")
        stdin.seek(0)
        try:
            hook = subprocess.Popen(command, stdin=stdin, stdout=subprocess.DEVNULL, stderr=stderr, cwd=cwd,
                                    start_new_session=True, close_fds=True)
        except OSError as exc:
            detail.update(outcome="not found" if isinstance(exc, FileNotFoundError) else "not run",
                          error=exc.strerror or str(exc))
            return detail
        detail["pid"] = hook.pid
        try:
            code = hook.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(hook)
            detail.update(outcome="timed out", error=f"still running after {timeout:g} s: killed")
            return detail
        detail["exit_code"] = code
        if code == 0:
            detail["outcome"] = "ok"
        else:
            detail["outcome"] = "failed"
            stderr.seek(max(stderr.seek(0, os.SEEK_END) - STDERR_KEEP, 0))
            text = stderr.read().decode(errors="replace").strip()
            detail["error"] = text or f"exited with status {code}"
    return detail


def _kill_group(hook: subprocess.Popen) -> None:
    # Its group is signalled before the hook is reaped: the group's ID cannot be reused while
    # the hook is an unreaped child, so no other process can receive this.
    try:
        os.killpg(hook.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    hook.wait()


def main() -> int:
    spec = json.loads(sys.stdin.buffer.read())
    sys.stdin.close()
    if spec.get("due") is not None and not claim_due(spec["db"], spec["due"]):
        return 0  # run by another runner already (or the store unwritable now: a later look)
    started = time.monotonic()
    detail = run_hook(spec["command"], spec["payload"], spec["timeout"])
    detail["seconds"] = round(time.monotonic() - started, 3)
    try:
        store = open_store(Path(spec["db"]))
    except Exception:  # noqa: BLE001 - nowhere left to say it
        return 1
    try:
        _record(store, spec["payload"]["id"], detail)
    finally:
        store.close()
    return 0 if detail.get("outcome") == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
