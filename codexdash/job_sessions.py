"""Which session file is a job's: found among its processes' open files while it runs (the file
whose head names the job's thread source), afterwards by that thread source in Codex's index or
files, then followed by session id where Codex moves it (archived, compressed); learnt once and
kept in the record. Also what the file says: the job's own turn (a follow-up never reads its
parent's lines) and where a `--worktree` job ran.

A mixin of `JobEngine` (it uses the engine's settings, store, poller and discovery clock).
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from codexdash.events import SessionSummary
from codexdash.procs import open_session_files, process_if_same
from codexdash.session_files import find_by_id, find_by_match, find_by_thread_source, parse_name, read_head, sessions_dir
from codexdash.store import Job, now
from codexdash.tail import open_session, session_from

# A live job still without its file a while after its start is searched for less often, up to this.
DISCOVERY_MAX_INTERVAL = 30.0


def job_thread_source(job: Job) -> str | None:
    """The `--thread-source` value the job was started with (None for older records)."""
    argv = job.argv_list
    for i, arg in enumerate(argv[:-1]):
        if arg == "--thread-source":
            return argv[i + 1]
        if arg == "--":
            break
    return None


class SessionFiles:
    def codex_home(self, job: Job) -> Path:
        """The CODEX_HOME the job ran with (records from before it was kept: today's)."""
        return Path(job.codex_home) if job.codex_home else self.settings.codex_home

    def _save_session_file(self, job: Job, path: str) -> None:
        name = parse_name(path)
        with self.store.write():
            Job.update(session_file=path, session_id=name.session_id if name else None).where(Job.id == job.id).execute()
        job.session_file = path
        job.session_id = name.session_id if name else None
        self.worktree(job)

    def worktree(self, job: Job) -> str | None:
        """The worktree Codex made for a job started with `--worktree` (a follow-up: its
        parent's), learnt from the session's first line (`session_meta.cwd`) and then kept."""
        from codexdash.changes import wants_worktree

        if job.worktree is not None or job.session_file is None or not wants_worktree(job):
            return job.worktree
        cwd = read_head(job.session_file, need_prompt=False).cwd
        if cwd and os.path.normpath(cwd) != os.path.normpath(job.cwd):
            if not self.store.readonly:  # a read-only store still shows it, learnt afresh each time
                with self.store.write():
                    Job.update(worktree=cwd).where(Job.id == job.id).execute()
            job.worktree = cwd
        return job.worktree

    def _find_session_file_live(self, job: Job, proc: psutil.Process | None = None, every: float = 0.0) -> bool:
        """Looks for the file among the open files of the job's processes, unless it was looked
        for less than `every` seconds ago. Whether it looked."""
        if job.session_file is not None:
            return False
        if every:
            every = min(max(every, (now() - job.created_at) / 10), DISCOVERY_MAX_INTERVAL)
        if every and now() - self._discovery.get(job.id, 0.0) < every:
            return False  # searched a moment ago: listing open files of every process is not free
        self._discovery[job.id] = now()
        proc = proc or process_if_same(job.pid, job.pid_start_time)
        if proc is None:
            return True
        self._search_open_files(job, proc)
        return True

    def _search_open_files(self, job: Job, proc: psutil.Process) -> None:
        source = job_thread_source(job)
        for path in open_session_files(self.poller.tree(proc), str(sessions_dir(self.codex_home(job)))):
            # A file the job's processes hold is its own; its head says so where Codex wrote it.
            if source is None or read_head(path, need_prompt=False).thread_source in (source, None):
                self._save_session_file(job, path)
                return

    def _find_session_file_after(self, job: Job) -> str | None:
        """The file of a job that is not running: by the thread source it carries, else (jobs
        recorded before thread sources) by the one unclaimed file that fits it."""
        home = self.codex_home(job)
        source = job_thread_source(job)
        if source is not None:
            path = find_by_thread_source(home, source, job.created_at)
        else:
            claimed = {j.session_file for j in Job.select(Job.session_file).where(Job.session_file.is_null(False))}
            path = find_by_match(home, job.created_at, job.cwd, job.prompt, claimed)
        if path is not None:
            self._save_session_file(job, str(path))
        return job.session_file

    def session_file(self, job: Job) -> str | None:
        """The job's session file, looking for it if it is not known yet, and following it
        where Codex moved it (archived, compressed)."""
        if job.session_file is not None and not os.path.exists(job.session_file) and job.session_id:
            moved = find_by_id(self.codex_home(job), job.session_id)
            if moved is not None:
                self._save_session_file(job, str(moved))
        if job.session_file is None:
            proc = process_if_same(job.pid, job.pid_start_time)
            if proc is not None:
                self._find_session_file_live(job, proc)
            if job.session_file is None:
                self._find_session_file_after(job)
        return job.session_file

    def read_summary(self, job: Job, last: int = 100) -> SessionSummary | None:
        if job.session_file is None:
            return None
        try:
            if job.turn_offset is not None:
                # A follow-up: its own turn only, never its parent's lines.
                events = session_from(job.session_file, offset=job.turn_offset).read_more().events
            else:
                events = open_session(job.session_file, last=last).events
        except OSError:
            return None
        summary = SessionSummary()
        for event in events:
            summary.add(event)
        return summary
