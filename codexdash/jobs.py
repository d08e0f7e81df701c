"""The job engine: start Codex jobs, follow their lives, and settle how each one ended.

Every state change goes through `JobEngine.transition`, a compare-and-set on the stored status
that also writes the audit trail, so two dashboards looking at one job never both act on it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from peewee import BooleanField

from codexdash.config import MARKER_ENV, Settings
from codexdash.errors import BadInput, Refused
from codexdash.events import Outcome, SessionSummary
from codexdash.format import title
from codexdash.follow import Follower
from codexdash.listing import JSON_FIELDS, RECENT_SECONDS, iso_time, row_json  # noqa: F401 - also this module's names
from codexdash.procs import (
    ProcessPoller,
    ProcessStats,
    marked_processes,
    open_session_files,
    process_if_same,
    this_process,
    zombie_exit_code,
)
from codexdash.session_files import (
    find_by_id,
    find_by_match,
    find_by_thread_source,
    parse_name,
    read_head,
    sessions_dir,
    thread_source_value,
)
from codexdash.store import Job, JobEvent, JobStatus, Store, now
from codexdash.tail import open_session, session_from

# A `starting` record whose starter is alive is left alone this long (a start takes milliseconds);
# one whose starter died, or an older one, is resolved from what is found.
START_GRACE = 10.0
# Linux caps one argument at 128 KiB; longer prompts go to Codex on stdin (`-` as the prompt).
MAX_PROMPT_ARG = 100_000
# How often a live job without a known session file has its processes' open files searched
# (Codex opens it as it starts: a job still without one a minute later is searched less often,
# up to every DISCOVERY_MAX_INTERVAL), and how many such searches one refresh makes at most:
# hundreds of jobs started together are searched in turns, the newest first.
DISCOVERY_INTERVAL = 2.0
DISCOVERY_MAX_INTERVAL = 30.0
DISCOVERY_BUDGET = 10
# How often the dashboard's job list forgets the finished jobs that have left the recent window.
TRIM_INTERVAL = 60.0
# Codex's own values for --sandbox (clap rejects any other with exit 2).
SANDBOX_MODES = ("read-only", "workspace-write", "danger-full-access")
# Options codexdash sets itself, or that would leave a job without its history.
_REFUSED_EXTRA = {
    "--ephemeral": "--ephemeral writes no session file, and codexdash cannot show or judge a job without its history",
    "--thread-source": "--thread-source is set by codexdash: it ties the session file to the job",
}


@dataclass
class StartRequest:
    prompt: str
    cwd: str
    model: str | None = None
    sandbox: str | None = None
    extra_args: list[str] = field(default_factory=list)
    # A follow-up continues its parent's Codex session (`codex exec resume SESSION_ID`).
    parent: Job | None = None
    retry_of: str | None = None
    name: str | None = None  # default: a title from the prompt
    # Codex's `--worktree`: the session runs in a new Git worktree that Codex makes.
    worktree: bool = False
    host: str = "local"  # the box to start it on (the dashboard's choice; the engine starts here)


def resolve_codex_command(command: tuple[str, ...] | list[str]) -> list[str]:
    """The configured Codex command with its program made absolute, or a BadInput."""
    program = command[0]
    if os.sep in program:
        path = os.path.abspath(os.path.expanduser(program))
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise BadInput(f"Codex command not found or not executable: {program} (set CODEXDASH_CODEX)")
    else:
        import shutil

        found = shutil.which(program)
        if found is None:
            raise BadInput(f"Codex command not found: {program} is not on PATH (set CODEXDASH_CODEX)")
        path = os.path.abspath(found)
    return [path, *command[1:]]


def _check_extra_args(extra: list[str]) -> None:
    """Refuses extra Codex arguments that would leave the job without its history or untied
    from its session file, and checks a sandbox given there as it checks --sandbox."""
    for i, arg in enumerate(extra):
        name = arg.split("=", 1)[0]
        if name in _REFUSED_EXTRA:
            raise BadInput(_REFUSED_EXTRA[name])
        if name in ("-s", "--sandbox"):
            value = arg.split("=", 1)[1] if "=" in arg else (extra[i + 1] if i + 1 < len(extra) else "")
            if value not in SANDBOX_MODES:
                raise BadInput(f"invalid sandbox {value!r}: one of {', '.join(SANDBOX_MODES)}")


def new_job_id() -> str:
    import secrets

    return secrets.token_hex(5)


def new_marker() -> str:
    import secrets

    return "cdx-" + secrets.token_hex(16)


@dataclass
class Activity:
    """What the job's session file says while it is followed for the table."""

    follower: Follower
    summary: SessionSummary


class JobList:
    """The jobs a dashboard shows, kept between refreshes, each with its last view.

    The store is read again only when something committed to it since the last read (SQLite's
    data version): a refresh of an unchanged store reads no row. Then only the live jobs, the
    ones live since the last read, and the ones new since are read, as plain rows (finished
    records never change): a kept job's fields are replaced only when its row changed, and a
    model object is built only for a job not seen before (building 500 of them a second was
    most of the read). A finished job's view is built once and handed out again: a refresh does
    work for its live jobs only, however many records are shown.
    """

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._order: list[Job] = []  # newest first
        self._views: list[JobView] = []  # one per job of `_order`, in its order
        self._position: dict[str, int] = {}
        self.live: list[int] = []  # positions of the live jobs, as last known
        self._watched: set[str] = set()  # jobs live at some time since the last read
        self._all_history: bool | None = None
        self._newest = 0.0
        self._version: int | None = None
        self._trimmed_at = 0.0

    def load(self, engine: JobEngine, all_history: bool) -> list[Job]:
        version = engine.store.data_version()  # asked before reading: a commit meanwhile is read next time
        if all_history != self._all_history:
            rows = job_rows(engine.store, engine._listed(True, all_history).order_by())
            self._jobs, self._order, self._views, self._position = {}, [], [], {}
            self._all_history = all_history
            self._trimmed_at = now()
        elif version is not None and version == self._version:
            rows = None  # nothing was committed since the last read
        else:
            # A little slack for the clocks of other processes writing the same store.
            rows = list(job_rows(engine.store, Job.select().where(
                Job.status.in_(JobStatus.LIVE) | (Job.created_at > self._newest - 5))))
            fetched = {row["id"] for row in rows}
            ended = [job_id for job_id in self._watched if job_id not in fetched]
            if ended:  # live since the last read, finished since: read once more
                rows += job_rows(engine.store, Job.select().where(Job.id.in_(ended)))
        self._version = version
        trimmed = not all_history and now() - self._trimmed_at >= TRIM_INTERVAL and self._trim()
        if rows is None and not trimmed:
            self.live = [i for i in self.live if self._order[i].status in JobStatus.LIVE]
            return self._order
        added = trimmed
        ended_views = []
        live = []
        for data in rows or ():
            kept = self._jobs.get(data["id"])
            if kept is None:
                kept = self._jobs[data["id"]] = job_from_row(data)
                added = True
            else:
                if kept.__data__ != data:
                    kept.__data__.update(data)  # same object: views and the order stay valid
                if kept.status not in JobStatus.LIVE:
                    ended_views.append(kept)  # its view is remade without the figures it had
            if kept.status in JobStatus.LIVE:
                live.append(kept)
            self._newest = max(self._newest, data["created_at"])
        if rows is None:
            live = [self._order[i] for i in self.live if self._order[i].status in JobStatus.LIVE]
        if added:
            views = {v.job.id: v for v in self._views}
            for job in ended_views:
                views.pop(job.id, None)
            self._order = sorted(self._jobs.values(), key=lambda j: j.created_at, reverse=True)
            self._position = {j.id: i for i, j in enumerate(self._order)}
            self._views = [views.get(j.id) or JobView(j) for j in self._order]
        else:
            for job in ended_views:
                self._views[self._position[job.id]] = JobView(job)
        self.live = sorted(self._position[j.id] for j in live)
        if rows is not None:
            self._watched = {j.id for j in live}
        return self._order

    def _trim(self) -> bool:
        """Forgets the finished jobs that have left the recent window, as a fresh look would not
        show them: a dashboard left open for weeks keeps a day's jobs, not every job it saw."""
        self._trimmed_at = now()
        cutoff = self._trimmed_at - RECENT_SECONDS
        gone = []
        for job in reversed(self._order):  # oldest first: those out of the window are at the end
            if job.created_at >= cutoff:
                break
            if job.status not in JobStatus.LIVE and (job.ended_at is None or job.ended_at < cutoff):
                gone.append(job.id)
        for job_id in gone:
            del self._jobs[job_id]
        return bool(gone)

    def views(self) -> list[JobView]:
        """Every job's last view, in order (a new list: the caller may replace live ones)."""
        return list(self._views)

    def keep(self, views: list[JobView]) -> None:
        """The views a refresh made (its live jobs' new ones) are the last views now."""
        self._views = views


def job_rows(store: Store, query) -> Iterator[dict]:
    """The query's jobs as plain dicts of their fields (as a model's `__data__`), straight from
    the cursor: the stored values are numbers and text already; only booleans are converted."""
    cursor = store.db.execute(query)
    columns = Job._meta.columns
    names = [columns[d[0]].name for d in cursor.description]
    booleans = [i for i, d in enumerate(cursor.description) if isinstance(columns[d[0]], BooleanField)]
    for values in cursor:
        if booleans:
            values = list(values)
            for i in booleans:
                if values[i] is not None:
                    values[i] = bool(values[i])
        yield dict(zip(names, values))


def job_from_row(data: dict) -> Job:
    """A job model from a row of `job_rows`, as peewee builds one from a query, holding the
    row's dict itself (thousands of them are kept: one dict each, not three made on the way)."""
    job = Job(__no_default__=1)
    job.__data__ = data
    return job


@dataclass(slots=True)
class JobView:
    job: Job
    stats: ProcessStats | None = None
    tokens: int | None = None
    tokens_detail: dict | None = None
    last_activity: float | None = None
    session_model: str | None = None  # the model the session names (turn_context), while followed
    host: str = "local"  # the box the job runs on ("local": this one)

    @property
    def model(self) -> str | None:
        """The model the job runs: as its session names it, else as it was asked for."""
        return self.session_model or self.job.model

    @property
    def elapsed(self) -> float | None:
        """How long the job has run (live) or ran (finished), when known."""
        if self.stats:
            return self.stats.uptime
        if self.job.started_at and self.job.ended_at:
            return self.job.ended_at - self.job.started_at
        return None

    @property
    def total_tokens(self) -> int | None:
        return self.tokens if self.tokens is not None else self.job.tokens

    def as_json(self) -> dict:
        return job_json(self.job.__data__, self.stats, self.tokens, self.tokens_detail)


def job_json(data: dict, stats: ProcessStats | None = None, tokens: int | None = None,
             tokens_detail: dict | None = None) -> dict:
    """A job as JSON, with the stable keys scripts rely on, from its stored fields."""
    return row_json(tuple(data.get(f) for f in JSON_FIELDS), stats, tokens, tokens_detail)


def _started_process(pid: int, own_args: int) -> tuple[float | None, str | None]:
    """The new process's start time, and what it actually runs (a shim or a shebang may have
    put another program first), kept in the history beside what was asked for. (None, None)
    when it is gone already: the next look settles it."""
    try:
        proc = psutil.Process(pid)
        start_time = proc.create_time()
        _wait_for_exec(proc)
        running = proc.cmdline()
    except psutil.Error:
        return None, None
    import shlex

    return start_time, "runs " + shlex.join(running[: max(len(running) - own_args, 1)])


def _wait_for_exec(proc: psutil.Process, timeout: float = 2.0) -> None:
    """Waits until the spawned process shows its command line. Popen returns while the kernel
    may still be setting up the new program: for that moment the command line reads empty,
    and an identity check run then would refuse the job."""
    deadline = time.monotonic() + timeout
    while not proc.cmdline() and time.monotonic() < deadline:
        time.sleep(0.001)


MAX_CANDIDATES = 10  # jobs listed when a reference is ambiguous


def _ambiguous(ref: str, matches: list[Job]) -> str:
    """The error for a reference several jobs begin with: the candidates, one a line."""
    from codexdash.format import path_end, status_label
    from codexdash.render import sanitize

    more = "more than " if len(matches) > MAX_CANDIDATES else ""
    lines = [f"job {ref!r} is ambiguous: {more}{min(len(matches), MAX_CANDIDATES)} jobs begin with it; give more of its id:"]
    for job in matches[:MAX_CANDIDATES]:
        name = sanitize(" ".join((job.name or title(job.prompt)).split())[:40])
        lines.append(f"  {job.id}  {status_label(job.status):<17} {name}  ({sanitize(path_end(job.cwd, 30))})")
    return "\n".join(lines)


def job_thread_source(job: Job) -> str | None:
    """The `--thread-source` value the job was started with (None for older records)."""
    argv = job.argv_list
    for i, arg in enumerate(argv[:-1]):
        if arg == "--thread-source":
            return argv[i + 1]
        if arg == "--":
            break
    return None


def _ended_at(summary: SessionSummary | None) -> float:
    """When the session recorded its end, or now when it recorded none (killed, crashed)."""
    if summary and summary.outcome and summary.last_timestamp:
        try:
            return min(dt.datetime.fromisoformat(summary.last_timestamp.replace("Z", "+00:00")).timestamp(), now())
        except ValueError:
            pass
    return now()


class JobEngine:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.poller = ProcessPoller()
        self._children: dict[str, subprocess.Popen] = {}  # jobs this process spawned: reaped here
        self._activity: dict[str, Activity] = {}
        self._job_list = JobList()
        # The dashboard polls in one thread while a kill runs in another: the in-memory state
        # (children, activity, poller, job list) is changed under this lock only.
        self.lock = threading.RLock()
        self._discovery: dict[str, float] = {}  # job id -> when its open files were last searched
        self.stalls_seen: dict[str, float] = {}  # job id -> start of the silence last claimed or seen
        self.due_launched: dict[int, float] = {}  # a hook's event left due -> when this engine launched it
        self._due_looked = 0.0

    # ---- the store ----------------------------------------------------------------------

    def transition(self, job: Job, to: str, expect: tuple[str, ...] | None = None, **fields) -> bool:
        """Moves the job to `to` if its stored status is still one of `expect` (default: as read).

        Returns False, changing nothing, when another process changed it first.
        """
        expect = expect or (job.status,)
        ends = to in JobStatus.FINISHED and all(s in JobStatus.LIVE for s in expect)
        due = None
        with self.store.write():
            updated = (
                Job.update(status=to, **fields).where((Job.id == job.id) & (Job.status.in_(expect))).execute()
            )
            if not updated:
                self.reload(job)
                return False
            JobEvent.create(
                job=job.id,
                at=now(),
                kind="state",
                from_status=job.status,
                to_status=to,
                detail=json.dumps({k: v for k, v in fields.items() if k in ("detail", "exit_code", "pid")}) or None,
            )
            if ends and self.settings.notify_command:
                from codexdash import notify

                due = notify.record_due(self.store, job.id, notify.FINISHED)  # won with the job's end
        old = job.status
        job.status = to
        for k, v in fields.items():
            setattr(job, k, v)
        if old != to and to in JobStatus.FINISHED:
            self._activity.pop(job.id, None)
        if ends and self.settings.notify_command:
            # This compare-and-set ended the job: the one place its `finished` hook is launched
            # (or, if this process dies first, a later look: the event is recorded as due).
            from codexdash import notify

            fault_point("notify-after-commit")
            if due is not None:
                self.due_launched[due] = now()
            notify.launch(self.settings, self.store, job_json(job.__data__), notify.FINISHED, due=due)
        return True

    def claim_stop(self, job: Job) -> bool:
        """Makes this process the one stopping the job: running -> stopping, or taking over a
        `stopping` job whose codexdash died mid-kill. False when another live codexdash has it."""
        me_pid, me_start = this_process()
        if self.transition(job, JobStatus.STOPPING, expect=(JobStatus.RUNNING,), killed_by_us=True,
                           actor_pid=me_pid, actor_start_time=me_start):
            return True
        if job.status != JobStatus.STOPPING or process_if_same(job.actor_pid, job.actor_start_time) is not None:
            return False
        with self.store.write():
            taken = Job.update(actor_pid=me_pid, actor_start_time=me_start).where(
                (Job.id == job.id) & (Job.status == JobStatus.STOPPING) & (Job.actor_pid == job.actor_pid)
            ).execute()
            if taken:
                JobEvent.create(job=job.id, at=now(), kind="kill", detail=json.dumps(
                    {"outcome": "taken over", "from_actor": job.actor_pid}))
        if taken:
            job.actor_pid, job.actor_start_time = me_pid, me_start
        return bool(taken)

    @staticmethod
    def reload(job: Job) -> None:
        """Brings a job object up to date with the store (another process may have changed it)."""
        fresh = Job.get_or_none(Job.id == job.id)
        if fresh is not None:
            job.__data__.update(fresh.__data__)

    def record_kill_event(self, job: Job, detail: dict) -> None:
        with self.store.write():
            JobEvent.create(job=job.id, at=now(), kind="kill", detail=json.dumps(detail))

    def find(self, ref: str) -> Job:
        ref = ref.strip()
        if not ref:
            raise BadInput("no job given")
        exact = Job.get_or_none(Job.id == ref)
        if exact is not None:
            return exact
        matches = list(Job.select().where(Job.id.startswith(ref)).order_by(Job.created_at.desc()).limit(MAX_CANDIDATES + 1))
        if not matches:
            raise BadInput(f"no job {ref!r}")
        if len(matches) > 1:
            raise BadInput(_ambiguous(ref, matches))
        return matches[0]

    def _listed(self, include_finished: bool, all_history: bool):
        query = Job.select().order_by(Job.created_at.desc())
        if not all_history:
            recent = now() - RECENT_SECONDS
            cond = Job.status.in_(JobStatus.LIVE)
            if include_finished:
                cond = cond | (Job.created_at >= recent) | (Job.ended_at >= recent)
            query = query.where(cond)
        return query

    def jobs(self, include_finished: bool = True, all_history: bool = False) -> list[Job]:
        return list(self._listed(include_finished, all_history))

    def listing(self, all_history: bool = False, external: bool = True) -> list[dict]:
        """Every listed job as JSON, newest first, live ones reconciled and measured, and
        (unless `external` is False) the Codex sessions codexdash did not start. Finished
        records go from the store's rows to JSON directly: building models for thousands of
        them was most of `list --json`."""
        live_jobs = [job_from_row(row) for row in job_rows(self.store, Job.select().where(Job.status.in_(JobStatus.LIVE)))]
        live = {v.job.id: v for v in self.refresh(live_jobs)}
        query = self._listed(True, all_history).select(*(getattr(Job, f) for f in JSON_FIELDS))
        rows = []
        for row in self.store.db.execute(query):
            view = live.pop(row[0], None)
            rows.append(view.as_json() if view is not None else row_json(row))
        if live:  # ended and left the recent window between the two reads: still listed
            rows.extend(v.as_json() for v in live.values())
        if external:
            sessions = self.external_sessions(all_history)
            if sessions:
                rows.extend(s.as_json(iso_time) for s in sessions)
        if live or external and sessions:
            rows.sort(key=lambda r: r["created_at"] or "", reverse=True)
        return rows

    def forget(self, job: Job) -> None:
        """Removes a finished job's record, its history and its copy of Codex's stderr. Codex's
        own session file is Codex's: it stays."""
        self.reconcile(job)
        if job.is_live:
            raise Refused(f"job {job.id} is {job.status}: kill it or let it end before forgetting it")
        with self.store.write():
            JobEvent.delete().where(JobEvent.job == job.id).execute()
            Job.delete().where((Job.id == job.id) & (Job.status.in_(JobStatus.FINISHED))).execute()
        from codexdash import codex_stderr

        codex_stderr.remove(self.settings.db_path, job.id)

    # ---- sessions codexdash did not start -----------------------------------------------------

    def claimed_sessions(self) -> set[str]:
        return {sid for (sid,) in Job.select(Job.session_id).where(Job.session_id.is_null(False)).tuples()}

    def external_sessions(self, all_history: bool = False) -> list:
        from codexdash.external import external_sessions

        since = None if all_history else now() - RECENT_SECONDS
        return external_sessions(self.settings.codex_home, self.claimed_sessions(), since)

    def find_job_or_session(self, ref: str):
        """(job, None) for a job of codexdash's; (None, session) for a Codex session it did not
        start, named by the start or end of its id (tables show `~` and its end)."""
        try:
            return self.find(ref), None
        except BadInput:
            session = self.find_external(ref.lstrip("~"))
            if session is None:
                raise
            return None, session

    def find_external(self, ref: str):
        from codexdash.external import find_external

        return find_external(self.settings.codex_home, ref, self.claimed_sessions())

    # ---- start --------------------------------------------------------------------------

    def build_argv(self, command: list[str], job_id: str, marker: str, request: StartRequest, prompt_arg: str) -> list[str]:
        argv = [*command, "exec", "--skip-git-repo-check"]
        if request.parent is None:  # a follow-up's session already names its first job
            argv += ["--thread-source", thread_source_value(job_id)]
        from codexdash.identity import marker_argument

        argv += ["-c", marker_argument(marker)]
        if request.model:
            argv += ["--model", request.model]
        if request.sandbox:
            argv += ["--sandbox", request.sandbox]
        if request.worktree:
            argv.append("--worktree")
        argv += request.extra_args
        if request.parent is not None:
            argv += ["resume", request.parent.session_id]
        # `--` so that a prompt starting with "-" is never read as an option.
        return [*argv, "--", prompt_arg]

    def resume(self, parent: Job, prompt: str, model: str | None = None, sandbox: str | None = None,
               name: str | None = None) -> Job:
        """A follow-up: a new job that continues `parent`'s Codex session with `prompt`, in the
        parent's cwd with its options unless changed. One turn at a time per session."""
        self.reconcile(parent)
        if parent.is_live:
            raise Refused(f"job {parent.id} is still {parent.status}: one turn at a time; send the follow-up when it ends")
        path = self.session_file(parent)
        if path is None or parent.session_id is None:
            raise Refused(f"job {parent.id} has no Codex session to continue ({parent.status}, no session file)")
        busy = Job.get_or_none((Job.session_id == parent.session_id) & (Job.status.in_(JobStatus.LIVE)))
        if busy is not None:
            raise Refused(f"session {parent.session_id} is in use by job {busy.id}: one turn at a time")
        # Codex resumes a session where it is run: a worktree job's follow-up runs in that worktree.
        worktree = self.worktree(parent)
        if worktree is not None and not os.path.isdir(worktree):
            raise Refused(f"job {parent.id}'s worktree {worktree} no longer exists: its session cannot continue there")
        return self.start(StartRequest(
            prompt=prompt, cwd=worktree or parent.cwd, model=parent.model if model is None else model,
            sandbox=parent.sandbox if sandbox is None else sandbox, extra_args=parent.extra_args_list, parent=parent, name=name,
        ))

    def retry(self, job: Job) -> Job:
        """The job again: same prompt, cwd, model, sandbox and extra arguments (a follow-up is
        retried as the same follow-up of the same parent)."""
        parent = Job.get_or_none(Job.id == job.parent_id) if job.parent_id else None
        if parent is not None:
            retried = self.resume(parent, job.prompt, model=job.model, sandbox=job.sandbox)
        else:
            from codexdash.changes import wants_worktree

            retried = self.start(StartRequest(prompt=job.prompt, cwd=job.cwd, model=job.model, sandbox=job.sandbox,
                                              extra_args=job.extra_args_list, retry_of=job.id,
                                              worktree=wants_worktree(job)))
            return retried
        with self.store.write():
            Job.update(retry_of=job.id).where(Job.id == retried.id).execute()
        retried.retry_of = job.id
        return retried

    def validate(self, request: StartRequest) -> list[str]:
        def shown(text: str) -> str:  # undecodable bytes from argv as \xNN, other lone surrogates as \uNNNN
            try:
                return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:
                return text.encode("utf-8", "backslashreplace").decode()

        # Bytes that are not UTF-8 reach Python as lone surrogates: the store, JSON and Codex
        # (which takes its arguments as UTF-8) cannot take them. Refused here, before anything
        # is stored.
        texts = [("the prompt", request.prompt, False), ("the working directory", request.cwd, True),
                 ("--model", request.model, True), ("--sandbox", request.sandbox, True)]
        texts += [("an argument for Codex", arg, True) for arg in request.extra_args]
        for what, text, show in texts:
            if text is not None and not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise BadInput(f"{what} {shown(text) + ' ' if show else ''}is not valid UTF-8") from None
        if not request.prompt.strip():
            raise BadInput("the prompt is empty")
        if "\x00" in request.prompt or any("\x00" in a for a in request.extra_args):
            raise BadInput("the prompt or an argument contains a NUL character")
        if request.name is not None and (len(request.name) > 200 or any(c in request.name for c in "\n\r\x00")):
            raise BadInput("the name must be one line of at most 200 characters")
        if request.model is not None and not request.model.strip():
            raise BadInput("the model is empty: give a model name or leave --model out")
        if request.sandbox is not None and request.sandbox not in SANDBOX_MODES:
            raise BadInput(f"invalid sandbox {request.sandbox!r}: one of {', '.join(SANDBOX_MODES)}")
        if "--worktree" in request.extra_args:  # one way to ask for it, whichever was used
            request.extra_args = [a for a in request.extra_args if a != "--worktree"]
            request.worktree = True
        _check_extra_args(request.extra_args)
        cwd = Path(request.cwd).expanduser()
        try:
            is_dir = cwd.is_dir()
        except PermissionError:  # a directory above it that this user may not search
            raise BadInput(f"working directory {request.cwd} cannot be reached: no search (x) permission on a directory above it") from None
        if not is_dir:
            raise BadInput(f"working directory {request.cwd} does not exist or is not a directory")
        # Codex starts in it: a directory this user may not enter would fail in the child, after
        # the record is written, as if Codex had failed.
        if not os.access(cwd, os.X_OK, effective_ids=os.access in os.supports_effective_ids):
            raise BadInput(f"working directory {request.cwd} cannot be entered: no search (x) permission for this user")
        request.cwd = str(cwd.resolve())
        if request.worktree:
            if request.parent is not None:
                raise BadInput("--worktree starts a new session: a follow-up runs in its parent's worktree")
            from codexdash.changes import work_tree_root

            if work_tree_root(request.cwd) is None:
                raise BadInput(f"--worktree needs a Git work tree: {request.cwd} is not in one")
        return resolve_codex_command(self.settings.codex_command)

    def start(self, request: StartRequest) -> Job:
        """Starts a detached Codex job. The record is written first, so a crash loses nothing."""
        command = self.validate(request)
        if not self.settings.codex_home.is_dir():
            raise BadInput(f"CODEX_HOME {self.settings.codex_home} does not exist (Codex needs it)")
        marker = new_marker()
        job_id = new_job_id()
        long_prompt = len(request.prompt.encode()) > MAX_PROMPT_ARG
        argv = self.build_argv(command, job_id, marker, request, "-" if long_prompt else request.prompt)
        actor_pid, actor_start = this_process()
        parent = request.parent
        # What the diff of the job is taken against. A new worktree starts clean from HEAD.
        from codexdash import codex_stderr
        from codexdash.changes import start_snapshot

        git_base = start_snapshot(request.cwd, include_changes=not request.worktree)
        worktree = None
        if parent is not None and parent.worktree and os.path.realpath(parent.worktree) == request.cwd:
            worktree = parent.worktree
        turn_offset = None
        if parent is not None:
            try:  # the follow-up's own turn begins where the file ends now
                turn_offset = os.path.getsize(parent.session_file)
            except OSError:
                turn_offset = None
        with self.store.write():
            job = Job.create(
                id=job_id,
                name=request.name.strip() if request.name and request.name.strip() else title(request.prompt),
                codex_home=os.path.abspath(self.settings.codex_home),
                extra_args=json.dumps(request.extra_args),
                parent_id=parent.id if parent else None,
                session_file=parent.session_file if parent else None,
                session_id=parent.session_id if parent else None,
                turn_offset=turn_offset,
                retry_of=request.retry_of,
                worktree=worktree,
                git_base=git_base,
                marker=marker,
                status=JobStatus.STARTING,
                argv=json.dumps(argv),
                cwd=request.cwd,
                prompt=request.prompt,
                model=request.model,
                sandbox=request.sandbox,
                created_at=now(),
                actor_pid=actor_pid,
                actor_start_time=actor_start,
            )
            JobEvent.create(job=job.id, at=job.created_at, kind="state", to_status=JobStatus.STARTING)
        fault_point("after-record")
        env = dict(os.environ)
        env[MARKER_ENV] = marker
        env["CODEX_HOME"] = job.codex_home
        stdin = self._prompt_stdin(request.prompt) if long_prompt else subprocess.DEVNULL
        stderr = None
        try:
            stderr = codex_stderr.open_for_job(self.settings.db_path, job.id)
            popen = subprocess.Popen(
                argv,
                cwd=request.cwd,
                env=env,
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                start_new_session=True,  # its own session and group: outlives us, killed as a group
                close_fds=True,
            )
        except OSError as exc:
            why = exc.strerror or str(exc)
            self.transition(job, JobStatus.FAILED_TO_START, ended_at=now(), detail=f"could not run {argv[0]}: {why}")
            raise Refused(f"could not start Codex ({argv[0]}): {why}") from None
        finally:
            if stdin is not subprocess.DEVNULL:
                stdin.close()
            if stderr is not None:
                os.close(stderr)
        with self.lock:
            self._children[job.id] = popen
        fault_point("after-spawn")
        start_time, runs = _started_process(popen.pid, len(argv) - argv.index("exec"))
        self.transition(
            job, JobStatus.RUNNING, expect=(JobStatus.STARTING,), pid=popen.pid, pid_start_time=start_time,
            started_at=now(), detail=runs,
        )
        if self.settings.watch:
            from codexdash import watcher

            watcher.ensure_running(self.settings)
        return job

    @staticmethod
    def _prompt_stdin(prompt: str):
        # An unlinked temporary file: Codex reads the prompt from it, nothing is left on disk.
        import tempfile

        fh = tempfile.TemporaryFile()
        fh.write(prompt.encode())
        fh.seek(0)
        return fh

    # ---- looking at jobs ------------------------------------------------------------------

    def refresh(self, jobs: list[Job] | None = None, all_history: bool = False) -> list[JobView]:
        """Reconciles every live job with the truth and returns the jobs with live figures."""
        with self.lock:
            return self._refresh(jobs, all_history)

    def _refresh(self, jobs: list[Job] | None, all_history: bool) -> list[JobView]:
        live = JobStatus.LIVE
        every_job = jobs is None
        if every_job:
            listed = self._job_list
            jobs = listed.load(self, all_history)
            views = listed.views()
            positions = listed.live
        else:
            views = [JobView(job) for job in jobs]
            positions = [i for i, job in enumerate(jobs) if job.status in live]
        if positions:
            # A job just started has its tree read afresh when its open files are to be searched
            # again: its session file is found there.
            at = now()
            young = any(jobs[i].session_file is None and at - jobs[i].created_at < 15
                        and at - self._discovery.get(jobs[i].id, 0.0) >= DISCOVERY_INTERVAL for i in positions)
            self.poller.begin_cycle(fresh=young)
        searches = DISCOVERY_BUDGET
        for i in positions:
            job = jobs[i]
            view = views[i] = JobView(job)
            if job.status not in live:
                continue  # it ended in this process since the store was last read
            if self._still_running(job):
                pid = job.pid
            else:
                proc = self.reconcile(job)
                pid = proc.pid if proc is not None else None
            if pid is not None:
                view.stats = self.poller.sample(pid, job.pid_start_time if pid == job.pid else None)
                if job.session_file is None and searches > 0 and self._find_session_file_live(job, every=DISCOVERY_INTERVAL):
                    searches -= 1
            if job.status in live:
                self._follow_activity(job, view)
                if self.settings.notify_command and view.last_activity is not None:
                    from codexdash import notify

                    notify.check_stall(self, job, view.last_activity, view.as_json())
        self.poller.prune()
        if every_job:
            listed.keep(views)
            self._forget_ended({jobs[i].id for i in positions if jobs[i].status in live})
        if self.settings.notify_command:
            from codexdash import notify

            if now() - self._due_looked >= notify.LOOK_EVERY:
                self._due_looked = now()
                notify.deliver_due(self)  # events whose winner died before launching their hook
        return views

    def _forget_ended(self, live: set[str]) -> None:
        """Drops what was kept for following jobs that are no longer live, however they ended
        (another codexdash may have settled them): a dashboard open for days keeps nothing
        per finished job but its record."""
        for kept in (self._activity, self._discovery, self.stalls_seen):
            for job_id in [k for k in kept if k not in live]:
                del kept[job_id]

    def _still_running(self, job: Job) -> bool:
        """A running job's process is the one recorded and has not exited (nor been reaped here):
        nothing to reconcile. Told by the poller from the job's pidfd or one read of its `stat`."""
        if job.status not in (JobStatus.RUNNING, JobStatus.STARTING) or not self.poller.alive(job.pid, job.pid_start_time):
            return False
        child = self._children.get(job.id)
        return child is None or child.poll() is None

    def reap(self, job: Job, wait: float = 0.0) -> int | None:
        """The exit status of a job this process spawned, once it has exited (reaping it, so
        no zombie is left). Negative: ended by that signal. None: running, or not our child."""
        child = self._children.get(job.id)
        if child is None:
            return None
        if wait:
            try:
                return child.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                return None
        return child.poll()

    def reconcile(self, job: Job) -> psutil.Process | None:
        """Settles a live job whose process is gone, or a `starting` record left by a crash.
        Returns the job's live process, if it has one."""
        with self.lock:
            return self._reconcile(job)

    def _reconcile(self, job: Job) -> psutil.Process | None:
        if job.status == JobStatus.STARTING and job.pid is None:
            self._resolve_stale_start(job)
            return process_if_same(job.pid, job.pid_start_time)
        if job.status == JobStatus.STOPPING and process_if_same(job.actor_pid, job.actor_start_time) is None:
            # The codexdash stopping it died mid-kill: the kill the user confirmed is finished
            # here, recorded as taken over. Imported here: kill builds on this module.
            from codexdash.kill import finish_abandoned_kill

            finish_abandoned_kill(self, job)
            if job.status not in JobStatus.LIVE:
                return None
        proc = process_if_same(job.pid, job.pid_start_time)
        exit_code = self.reap(job)
        if proc is not None and exit_code is None:
            return proc
        if exit_code is None:
            # Gone (or a zombie) but not reaped yet by the poll above: it is ours, collect it.
            exit_code = self.reap(job, wait=1.0)
        if exit_code is None:
            # Another process's child (a dashboard's) not reaped yet: its status is readable.
            exit_code = zombie_exit_code(job.pid, job.pid_start_time)
        # The recorded process is gone. Node 20's wrapper can die and leave the native Codex
        # running: a process with the marker on its command line is the job's, still alive.
        heir = self._heir(job)
        if heir is not None:
            self.transition(
                job, job.status, pid=heir.pid, pid_start_time=heir.create_time(),
                detail=f"the recorded process exited; Codex runs on as PID {heir.pid}",
            )
            return heir
        self.settle(job, exit_code)
        return None

    def _heir(self, job: Job) -> psutil.Process | None:
        """A live process that is the job's Codex although the recorded PID is not.

        It must carry the marker in its environment and on its command line, be no older than
        the job, and (when a PID was recorded) sit in the job's process group under another
        PID: a process that merely reuses the recorded PID is never taken for the job.
        """
        from codexdash.identity import marker_argument

        token = marker_argument(job.marker)
        for proc in marked_processes(job.marker):
            try:
                if token not in proc.cmdline() or proc.create_time() < job.created_at - 1:
                    continue
                if job.pid is not None and (proc.pid == job.pid or os.getpgid(proc.pid) != job.pid):
                    continue
                return proc
            except (psutil.Error, OSError):
                continue
        return None

    def _resolve_stale_start(self, job: Job) -> None:
        starter_alive = process_if_same(job.actor_pid, job.actor_start_time) is not None
        if starter_alive and now() - job.created_at < START_GRACE:
            return  # its codexdash is starting it this very moment
        heir = self._heir(job)
        if heir is not None:
            self.transition(
                job, JobStatus.RUNNING, pid=heir.pid, pid_start_time=heir.create_time(), started_at=heir.create_time(),
                detail="found by its marker after codexdash stopped during the start",
            )
            return
        path = self._find_session_file_after(job)
        if path is not None:
            self.settle(job, None)
        else:
            self.transition(
                job, JobStatus.FAILED_TO_START, ended_at=now(),
                detail="codexdash stopped during the start; no process or session file carries the job",
            )

    def settle(self, job: Job, exit_code: int | None) -> None:
        """The job's process is gone: records how it ended, read from its session file.

        Decided on the stored record as it is now (another codexdash may be killing the job),
        and written only if that record has not changed meanwhile."""
        with self.lock:
            self._settle(job, exit_code)

    def _settle(self, job: Job, exit_code: int | None) -> None:
        if job.session_file is not None:
            self.worktree(job)
        for _attempt in range(3):
            self.reload(job)
            if job.status not in JobStatus.LIVE:
                break
            status, fields = self._outcome(job, exit_code)
            if self.transition(job, status, expect=(job.status,), **fields):
                break
        self._children.pop(job.id, None)

    def _outcome(self, job: Job, exit_code: int | None) -> tuple[str, dict]:
        self.session_file(job)
        summary = self.read_summary(job)
        from codexdash import codex_stderr

        stderr_file = codex_stderr.stderr_path(self.settings.db_path, job.id)
        codex_stderr.trim(stderr_file)
        error = codex_stderr.last_error(stderr_file)
        if summary and summary.outcome == Outcome.FAILED:
            error = error or summary.outcome_text
        if job.killed_by_us:
            status = JobStatus.KILLED
        elif summary and summary.outcome == Outcome.COMPLETED:
            status = JobStatus.COMPLETED
        elif summary and summary.outcome == Outcome.FAILED:
            status = JobStatus.FAILED
        elif summary and summary.outcome == Outcome.INTERRUPTED:
            status = JobStatus.INTERRUPTED
        elif exit_code is not None:
            status = JobStatus.COMPLETED if exit_code == 0 else JobStatus.FAILED
        elif error is not None:
            status = JobStatus.FAILED  # it said why on stderr before it ended
        else:
            status = JobStatus.LOST
        if status not in (JobStatus.FAILED, JobStatus.LOST):
            error = None
        detail = summary.outcome_text if summary and summary.outcome else None
        if status == JobStatus.FAILED and not detail:
            detail = error or f"Codex exited with status {exit_code}"
        if status == JobStatus.LOST:
            detail = "the process is gone and its session file records no outcome (killed or crashed)"
            if not self.codex_home(job).is_dir():
                detail = f"the process is gone and its CODEX_HOME {self.codex_home(job)} no longer exists"
        fields = {"ended_at": _ended_at(summary), "detail": detail, "error": error}
        if exit_code is not None:
            fields["exit_code"] = exit_code
        if summary and summary.tokens is not None:
            fields["tokens"] = summary.tokens
        if summary and summary.token_usage:
            fields["tokens_detail"] = json.dumps(summary.token_usage)
        return status, fields

    # ---- session files --------------------------------------------------------------------

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

    def _follow_activity(self, job: Job, view: JobView) -> None:
        """Tokens and last activity of a live job, reading only what its file appended."""
        if job.session_file is None:
            return
        activity = self._activity.get(job.id)
        try:
            if activity is None:
                opened = open_session(job.session_file, last=50)
                activity = Activity(follower=Follower(opened), summary=SessionSummary())
                for event in opened.events:
                    activity.summary.add(event)
                if activity.summary.model is None and opened.truncated:  # named at the start only
                    activity.summary.model = read_head(job.session_file).model
                self._activity[job.id] = activity
        except OSError:
            return
        # The refresh is the clock: one stat a second for a quiet job, a read when it changed.
        more = activity.follower.poll()
        if more is not None and more.reset:
            activity.summary = SessionSummary()
        for event in more.events if more is not None else ():
            activity.summary.add(event)
        view.tokens = activity.summary.tokens
        view.tokens_detail = activity.summary.token_usage
        view.session_model = activity.summary.model
        view.last_activity = activity.follower.mtime


_FAULT_ENV = "CODEXDASH_FAULT"


def fault_point(name: str) -> None:
    """Dies here, as SIGKILL would, when CODEXDASH_FAULT names this point.

    Lets the tests prove that a codexdash killed between two steps of a start leaves records
    the next run can settle; it does nothing otherwise.
    """
    if os.environ.get(_FAULT_ENV) == name:
        os._exit(137)

