"""Helpers for the dashboard tests: waiting on the app, and a store of fixed jobs."""

from __future__ import annotations

import json
import time

from codexdash.store import Job, JobStatus
from tests.conftest import SAMPLES, Deadline


async def until(pilot, condition, timeout: float = 15.0, message: str = "condition"):
    """Lets the app run until `condition()` holds; fails at the deadline."""
    deadline = Deadline(timeout, message)
    while not (value := condition()):
        died = getattr(pilot.app, "_exception", None)
        if died is not None:
            raise AssertionError(f"the dashboard died waiting for {message}: {died!r}")
        deadline.check()
        await pilot.pause(0.05)
    return value


def log_text(app) -> str:
    return app.pane.log_view.text


def table_text(app) -> str:
    table = app.table
    return "\n".join(" ".join(c.plain for c in table.row_cells(i)) for i in range(table.row_count))


FIXED_JOBS = [
    # id, status, prompt, name, cwd, sample, age (s), duration (s), tokens, exit code
    ("a1b2c3d4e5", JobStatus.COMPLETED, "say hi", "smoke test", "/home/operator/api", "completed-message.jsonl",
     600, 1.2, 15, 0),
    ("b2c3d4e5f6", JobStatus.COMPLETED, "please SLEEP 2", "nightly build", "/home/operator/web", "completed-tool-call.jsonl",
     1200, 2.4, 30, 0),
    ("c3d4e5f6a7", JobStatus.FAILED, "say hi [bold]not markup[/] \x1b[31m", None, "/home/operator/api",
     "failed-connection.jsonl", 1800, 0.3, None, 1),
    ("d4e5f6a7b8", JobStatus.INTERRUPTED, "please SLEEP 20", "flaky test hunt", "/home/operator/work2",
     "interrupted-sigint.jsonl", 2400, 2.7, 15, 1),
    ("e5f6a7b8c9", JobStatus.KILLED, "please SLEEP 20 and then some", "db migration dry run", "/home/operator/infra",
     "terminated-sigterm.jsonl", 3000, 4.0, 15, -15),
]


def add_fixed_jobs(store, now: float | None = None) -> None:
    """Finished jobs with fixed ids, names, durations and session files: stable screens (and
    stable clock times too, given `now`)."""
    now = time.time() if now is None else now
    with store.write():
        for jid, status, prompt, name, cwd, sample, age, duration, tokens, code in FIXED_JOBS:
            created = now - age
            Job.create(
                id=jid, marker=f"cdx-{jid}", status=status, argv=json.dumps(["codex", "exec", "--", prompt]),
                cwd=cwd, prompt=prompt, name=name, model="mock-model", created_at=created,
                pid=40000 + age, pid_start_time=created, started_at=created, ended_at=created + duration,
                exit_code=code, session_file=str(SAMPLES / sample), session_id=sample, tokens=tokens,
            )


def add_many_jobs(store, count: int) -> list[str]:
    """`count` completed jobs, one a minute apart (newest first: job-000), named and in their own
    directories; they share one small session file. Returns their ids, newest first."""
    now = time.time()
    ids = []
    with store.write():
        for i in range(count):
            jid = f"{i:04d}abcdef"
            created = now - 60 * (i + 1)
            Job.create(
                id=jid, marker=f"cdx-{jid}", status=JobStatus.COMPLETED, argv=json.dumps(["codex", "exec", "--", "x"]),
                cwd=f"/home/operator/work{i}", prompt=f"task number {i}", name=f"task {i:03d}", model="mock-model",
                created_at=created, pid=50000 + i, pid_start_time=created, started_at=created, ended_at=created + 5,
                exit_code=0, session_file=str(SAMPLES / "completed-message.jsonl"), session_id=f"s{i}", tokens=10 * i,
            )
            ids.append(jid)
    return ids
