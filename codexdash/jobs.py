"""The job engine: start Codex jobs, follow their lives, and settle how each one ended.

Every state change goes through `JobEngine.transition`, a compare-and-set on the stored status
that also writes the audit trail, so two dashboards looking at one job never both act on it.
Starting a job is in starting.py, finding its session file in job_sessions.py (mixins of the
engine); here: finding jobs, looking at them (refresh, reconcile) and settling how each ended.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import psutil
from peewee import BooleanField

from codexdash.config import Settings
from codexdash.errors import BadInput, Refused
from codexdash.events import Outcome, SessionSummary
from codexdash.faults import fault_point
from codexdash.format import title
from codexdash.follow import Follower
from codexdash.listing import JSON_FIELDS, RECENT_SECONDS, iso_time, row_json  # noqa: F401 - also this module's names
from codexdash.procs import (
    ProcessPoller,
    ProcessStats,
    marked_processes,
    process_if_same,
    this_process,
    zombie_exit_code,
)
from codexdash.job_sessions import SessionFiles
from codexdash.session_files import read_head
from codexdash.starting import Starting
from codexdash.store import Job, JobEvent, JobStatus, Store, now
from codexdash.tail import open_session

# A `starting` record whose starter is alive is left alone this long (a start takes milliseconds);
# one whose starter died, or an older one, is resolved from what is found.
START_GRACE = 10.0
# How often a live job without a known session file has its processes' open files searched
# (Codex opens it as it starts: a job still without one a minute later is searched less often,
# up to every job_sessions.DISCOVERY_MAX_INTERVAL), and how many such searches one refresh makes at most:
# hundreds of jobs started together are searched in turns, the newest first.
DISCOVERY_INTERVAL = 2.0
DISCOVERY_BUDGET = 10
# How often the dashboard's job list forgets the finished jobs that have left the recent window.
TRIM_INTERVAL = 60.0
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
                    kept = self._renew(kept, data)
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

    def _renew(self, job: Job, data: dict) -> Job:
        """The job's record as now stored, in a new object in the old one's place. The views a
        refresh handed to the screen are never changed afterwards (they are read in another
        thread): a job that ended shows as ended in the table and the status line together."""
        new = self._jobs[job.id] = job_from_row(data)
        at = self._position.get(job.id)
        if at is not None and self._order[at] is job:
            self._order[at] = new
            self._views[at] = JobView(new)
        return new

    def detach(self, i: int) -> Job:
        """The job at position i of the last load, copied in its place, before it is changed."""
        job = self._order[i]
        return self._renew(job, dict(job.__data__))

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


# Columns whose texts repeat from job to job (a state, the folders, the model): each text is
# held once (interned: it goes with the last job holding it) however many jobs a dashboard
# keeps, 0.2-0.3 KB a job less.
SHARED_TEXTS = frozenset({"status", "cwd", "codex_home", "model", "sandbox", "extra_args", "worktree"})


def job_rows(store: Store, query) -> Iterator[dict]:
    """The query's jobs as plain dicts of their fields (as a model's `__data__`), straight from
    the cursor: the stored values are numbers and text already; only booleans are converted."""
    cursor = store.db.execute(query)
    columns = Job._meta.columns
    names = [columns[d[0]].name for d in cursor.description]
    booleans = [i for i, d in enumerate(cursor.description) if isinstance(columns[d[0]], BooleanField)]
    shared = [i for i, name in enumerate(names) if name in SHARED_TEXTS]
    for values in cursor:
        values = list(values)
        for i in booleans:
            if values[i] is not None:
                values[i] = bool(values[i])
        for i in shared:
            if type(values[i]) is str:
                values[i] = sys.intern(values[i])
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
        return job_json(self.job.__data__, self.stats, self.tokens, self.tokens_detail,
                        self.last_activity if self.job.is_live else None)


def job_json(data: dict, stats: ProcessStats | None = None, tokens: int | None = None,
             tokens_detail: dict | None = None, last_activity: float | None = None) -> dict:
    """A job as JSON, with the stable keys scripts rely on, from its stored fields."""
    return row_json(tuple(data.get(f) for f in JSON_FIELDS), stats, tokens, tokens_detail, last_activity)


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


def _ended_at(summary: SessionSummary | None) -> float:
    """When the session recorded its end, or now when it recorded none (killed, crashed)."""
    if summary and summary.outcome and summary.last_timestamp:
        try:
            return min(dt.datetime.fromisoformat(summary.last_timestamp.replace("Z", "+00:00")).timestamp(), now())
        except ValueError:
            pass
    return now()


class JobEngine(Starting, SessionFiles):
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.poller = ProcessPoller()
        self._children: dict[str, subprocess.Popen] = {}  # jobs this process spawned: reaped here
        self._activity: dict[str, Activity] = {}
        self._job_list = JobList()
        self._session_reads = None  # what sessions started elsewhere said, kept between looks
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
        from codexdash.external import SessionReads, external_sessions

        if self._session_reads is None:
            self._session_reads = SessionReads()
        since = None if all_history else now() - RECENT_SECONDS
        return external_sessions(self.settings.codex_home, self.claimed_sessions(), since, self._session_reads)

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
                if every_job:  # settled on a copy: the views shown keep the record they were made with
                    job = listed.detach(i)
                    view = views[i] = JobView(job)
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
