"""A box: a machine whose jobs codexdash starts, watches, verifies and kills.

The CLI and the dashboard reach every box through one interface, `Box`. Two implementations:
`LocalBox`, the engine in this process, and `SshBox` (remote.py), which runs codexdash on the
other box through the operator's own ssh. PIDs, identity checks and kills mean something only
on the box that owns the process, so a box always does its own verifying and killing; what
crosses the seam is the CLI's JSON (protocol.py), the same shapes from either side:
- a job: `jobs.job_json`, with `host` ("local" for this box, else the name it was reached by);
- `show`: a job with `marker`, `argv`, `detail`, `identity` (the checks as the box ran them)
  and `history`;
- `kill`: `job`, `outcome`, `stopped`, `identity`, `sent`, `swept`, `seconds`, `error`;
- `follow`: rendered lines (`render.Line`) and, when the session is over, one `FollowEnd`;
- `watch`: the jobs as `list` gives them (`Snapshot`), again each time they change, and a
  `Heartbeat` when nothing was said for a while (protocol.WATCH);
- `info`: versions, protocol, and the box's jobs by state.
No textual here: the dashboard is a client of this module like the CLI.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from codexdash import __version__, protocol
from codexdash.config import Settings
from codexdash.errors import BadInput, CodexdashError
from codexdash.local_follow import FollowEnd, LocalFollower
from codexdash.render import Line

LOCAL = "local"


class BoxError(CodexdashError):
    """A box did not answer as it should: its message names the box."""


class Unreachable(BoxError):
    """The box could not be reached (ssh failed to connect, or no answer in time)."""


class ConnectionLost(BoxError):
    """The connection to the box went away in the middle of a command (a follow)."""


class ProtocolMismatch(BoxError):
    """The box's codexdash is too old or too new to be driven by this one."""


class Follower(Protocol):
    def __iter__(self) -> Iterator[Line | FollowEnd]: ...

    def close(self) -> None:
        """Stops the follow from any thread; the iteration ends soon after."""


@dataclass(frozen=True)
class Snapshot:
    """Every job the watch lists, as `list --json` gives them: the first look, then each
    look whose answer differs from the last one sent."""

    jobs: list


@dataclass(frozen=True)
class Heartbeat:
    """Nothing changed: said when the watch has been silent for its heartbeat period, so the
    reader can tell a quiet box from a link that went silent."""


class Watcher(Protocol):
    def __iter__(self) -> Iterator[Snapshot | Heartbeat]: ...

    def nudge(self) -> None:
        """Asks for a look at once (after the operator acted on the box), from any thread."""

    def close(self) -> None:
        """Stops the watch from any thread; the iteration ends soon after."""


@dataclass
class StartSpec:
    prompt: str
    cwd: str | None = None  # None: this box's current directory; on another box, its default (home)
    model: str | None = None
    sandbox: str | None = None
    extra_args: list[str] = field(default_factory=list)
    name: str | None = None  # None: a title from the prompt


class Box(Protocol):
    name: str

    def jobs(self, all_history: bool = False, external: bool = True) -> list[dict]:
        """Running and recent jobs (every job with all_history), newest first, live ones refreshed."""

    def show(self, ref: str) -> dict: ...

    def verify(self, ref: str) -> dict:
        """The identity checks of the job's process, run on the box: {pid, ok, checks, cmdline}."""

    def start(self, spec: StartSpec) -> dict: ...

    def resume(self, ref: str, prompt: str, model: str | None = None, sandbox: str | None = None,
               name: str | None = None) -> dict: ...

    def retry(self, ref: str) -> dict: ...

    def kill(self, ref: str, force: bool = False) -> dict:
        """Verifies and kills on the box; a refusal is an outcome (with the checks), not an error."""

    def follow(self, target: str, raw: bool = False, tail: int | None = None, follow: bool = True) -> Follower: ...

    def info(self) -> dict: ...

    def diff(self, ref: str) -> dict:
        """What the job changed (`codexdash diff --json`), read on the box that ran it."""

    def views(self, all_history: bool = False, external: bool = True) -> list:
        """The jobs as the dashboard's rows (`jobs.JobView`s, each knowing its `host`)."""

    def watch(self, all_history: bool = False, external: bool = True, interval: float = 2.0,
              heartbeat: float = 5.0) -> Watcher:
        """The jobs `jobs()` lists, looked at every `interval` seconds by one process that
        stays: a Snapshot first and whenever they changed, a Heartbeat after `heartbeat`
        seconds without either."""


def not_running_checks(job: dict) -> dict:
    """The identity report of a job that has no process to check any more."""
    detail = f"job {job['id']} is {job['status']}: there is no process to check"
    return {"pid": job.get("pid"), "ok": False, "checks": [{"name": "state", "ok": False, "detail": detail}], "cmdline": []}


def codex_version(command: Iterable[str]) -> tuple[bool, list[str] | None, str]:
    """Whether the Codex command answers `--version`: (ok, the command made absolute or None
    when it is not found, what it said or why it could not say it)."""
    from codexdash.starting import resolve_codex_command

    try:
        argv = resolve_codex_command(tuple(command))
    except BadInput as exc:
        return False, None, str(exc)
    try:
        done = subprocess.run([*argv, "--version"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, argv, f"does not answer --version: {exc}"
    said = (done.stdout or done.stderr).strip()
    return done.returncode == 0, argv, said.splitlines()[0] if said else "?"


class LocalBox:
    """This box: the engine in this process."""

    name = LOCAL

    def __init__(self, engine) -> None:
        self.engine = engine

    def jobs(self, all_history: bool = False, external: bool = True) -> list[dict]:
        return self.engine.listing(all_history=all_history, external=external)

    def show(self, ref: str) -> dict:
        from codexdash.jobs import iso_time
        from codexdash.store import JobEvent

        engine = self.engine
        job, session = engine.find_job_or_session(ref)
        if session is not None:  # a Codex session started elsewhere: read-only
            return {**session.as_json(iso_time), "identity": None, "history": []}
        view = engine.refresh([job])[0]
        engine.session_file(job)
        engine.worktree(job)
        data = view.as_json()
        data.update(
            marker=job.marker,
            argv=job.argv_list,
            detail=job.detail,
            identity=self._checks(job) if job.is_live else None,
            history=[{"at": e.at, "kind": e.kind, "from": e.from_status, "to": e.to_status, "detail": e.detail_data}
                     for e in job.events.order_by(JobEvent.at)],
        )
        return data

    @staticmethod
    def _checks(job) -> dict:
        from codexdash.identity import verify

        report = verify(job)
        report.close()
        return report.as_dict()

    def verify(self, ref: str) -> dict:
        from codexdash.jobs import job_json

        job = self.engine.find(ref)
        self.engine.reconcile(job)
        return self._checks(job) if job.is_live else not_running_checks(job_json(job.__data__))

    def start(self, spec: StartSpec) -> dict:
        from codexdash.jobs import job_json
        from codexdash.starting import StartRequest

        request = StartRequest(prompt=spec.prompt, cwd=spec.cwd or os.getcwd(), model=spec.model,
                               sandbox=spec.sandbox, extra_args=list(spec.extra_args), name=spec.name)
        return job_json(self.engine.start(request).__data__)

    def resume(self, ref: str, prompt: str, model: str | None = None, sandbox: str | None = None,
               name: str | None = None) -> dict:
        from codexdash.jobs import job_json

        parent = self.engine.find(ref)
        return job_json(self.engine.resume(parent, prompt, model=model, sandbox=sandbox, name=name).__data__)

    def retry(self, ref: str) -> dict:
        from codexdash.jobs import job_json

        return job_json(self.engine.retry(self.engine.find(ref)).__data__)

    def kill(self, ref: str, force: bool = False) -> dict:
        from codexdash.jobs import job_json
        from codexdash.kill import KillRefused, kill_job

        job = self.engine.find(ref)
        try:
            result = kill_job(self.engine, job, force=force)
        except KillRefused as exc:
            return {"job": job_json(job.__data__), "outcome": "refused", "stopped": False,
                    "identity": exc.report.as_dict(), "sent": [], "swept": 0, "seconds": 0.0, "error": str(exc)}
        return {"job": job_json(job.__data__), "outcome": "stopped" if result.stopped else "survivors",
                "stopped": result.stopped, "identity": result.report.as_dict(), "sent": result.sent,
                "swept": result.swept, "seconds": round(result.seconds, 3),
                "error": None if result.stopped else f"job {job.id}: processes carrying its marker survived the kill"}

    def follow(self, target: str, raw: bool = False, tail: int | None = None, follow: bool = True) -> LocalFollower:
        return LocalFollower(self.engine, target, raw=raw, tail=tail, follow=follow)

    def watch(self, all_history: bool = False, external: bool = True, interval: float = 2.0,
              heartbeat: float = 5.0) -> LocalWatch:
        return LocalWatch(self.engine, all_history=all_history, external=external, interval=interval, heartbeat=heartbeat)

    def diff(self, ref: str) -> dict:
        from codexdash.changes import job_changes

        job = self.engine.find(ref)
        self.engine.reconcile(job)
        return job_changes(self.engine, job).as_json()

    def views(self, all_history: bool = False, external: bool = True) -> list:
        """The fast path of the dashboard: the engine's own views (process figures, tokens,
        last activity from the followed files), and external sessions when asked."""
        from codexdash.views import external_view

        views = self.engine.refresh(all_history=all_history)
        if external:
            views = [*views, *(external_view(s) for s in self.engine.external_sessions(all_history))]
        return views

    def info(self) -> dict:
        import peewee

        from codexdash.store import Job, JobStatus

        ok, _command, codex = codex_version(self.engine.settings.codex_command)
        import socket

        data = {"host": LOCAL, "hostname": socket.gethostname(), "codexdash": __version__,
                "protocol": protocol.PROTOCOL, "oldest_protocol": protocol.OLDEST,
                "codex": codex if ok else None, "codex_error": None if ok else codex, "jobs": None, "db_error": None}
        try:
            self.engine.refresh(list(Job.select().where(Job.status.in_(JobStatus.LIVE))))
            counts = Job.select(Job.status, peewee.fn.COUNT(Job.id).alias("n")).group_by(Job.status).tuples()
            data["jobs"] = {status: n for status, n in counts}
        except (CodexdashError, peewee.PeeweeException) as exc:
            data["db_error"] = str(exc)
        return data


class LocalWatch:
    """This box's jobs, looked at every `interval` seconds in this process: what
    `list --json --watch` writes, here or for another codexdash over ssh.

    A look is the engine's refresh (the store read again only when something committed to it,
    the live jobs' processes and session files looked at), as the dashboard's own; Codex
    sessions codexdash did not start are looked for every EXTERNAL_EVERY looks, and at a
    nudge. A look that fails raises: the watch is over, the error said as `list` says it."""

    EXTERNAL_EVERY = 5

    def __init__(self, engine, all_history: bool, external: bool, interval: float, heartbeat: float) -> None:
        import math

        for flag, value in (("--interval", interval), ("--heartbeat", heartbeat)):
            if not (math.isfinite(value) and 0.05 <= value <= 3600):
                raise BadInput(f"{flag} takes seconds, from 0.05 to 3600")
        self.engine, self.all_history, self.external = engine, all_history, external
        self.interval, self.heartbeat = interval, heartbeat
        self._wake = threading.Event()
        self._stopped = False
        self._nudged = False
        self._made: dict[str, tuple[object, dict]] = {}

    def nudge(self) -> None:
        self._nudged = True
        self._wake.set()

    def close(self) -> None:
        self._stopped = True
        self._wake.set()

    def look(self, externals: list[dict] | None) -> list[dict]:
        # A finished job's view is handed out again by every refresh: its JSON is made once.
        made: dict[str, tuple[object, dict]] = {}
        for v in self.engine.refresh(all_history=self.all_history):
            kept = self._made.get(v.job.id)
            made[v.job.id] = kept if kept is not None and kept[0] is v else (v, v.as_json())
        self._made = made
        jobs = [data for _view, data in made.values()]
        if externals:
            jobs.extend(externals)
            jobs.sort(key=lambda r: r["created_at"] or "", reverse=True)
        return jobs

    def __iter__(self) -> Iterator[Snapshot | Heartbeat]:
        from codexdash.listing import iso_time

        sent: list[dict] | None = None
        externals: list[dict] = []
        looks = 0
        said_at = next_look = time.monotonic()
        while not self._stopped:
            now = time.monotonic()
            if now >= next_look or self._nudged:
                nudged, self._nudged = self._nudged, False
                if self.external and (looks % self.EXTERNAL_EVERY == 0 or nudged):
                    externals = [s.as_json(iso_time) for s in self.engine.external_sessions(self.all_history)]
                looks += 1
                jobs = self.look(externals)
                next_look = time.monotonic() + self.interval
                if jobs != sent:
                    sent, said_at = jobs, time.monotonic()
                    yield Snapshot(jobs)
                    continue
            if time.monotonic() - said_at >= self.heartbeat:
                said_at = time.monotonic()
                yield Heartbeat()
            if not self._stopped:
                self._wake.wait(max(min(next_look, said_at + self.heartbeat) - time.monotonic(), 0.0))
                self._wake.clear()


# ---- every box at once ------------------------------------------------------------------------


def open_box(settings: Settings, name: str | None, engine: Callable[[], object]) -> Box:
    """The box called `name` (None or "local": this one, over the engine `engine()` returns)."""
    if name is None or name == LOCAL:
        return LocalBox(engine())
    from codexdash.config import host_names
    from codexdash.remote import SshBox

    host_names([name], "--host")
    return SshBox(name, settings)


@dataclass
class Answer:
    """What one box answered to a question asked of every box, or why it did not."""

    box: str
    value: object = None
    error: CodexdashError | None = None


def ask_all(boxes: list[Box], question: Callable[[Box], object]) -> list[Answer]:
    """Asks every box at once, each in its own thread: a slow or unreachable box costs its own
    timeout, never the others'. Answers come back in the order of `boxes`."""

    def ask(box: Box) -> Answer:
        try:
            return Answer(box.name, value=question(box))
        except CodexdashError as exc:
            return Answer(box.name, error=exc)

    if len(boxes) == 1:
        return [ask(boxes[0])]
    # The local box runs here: its engine's database connection belongs to this thread.
    local = [i for i, box in enumerate(boxes) if isinstance(box, LocalBox)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(boxes)) as pool:
        futures = {i: pool.submit(ask, box) for i, box in enumerate(boxes) if i not in local}
        answers = {i: ask(boxes[i]) for i in local}
        answers.update({i: f.result() for i, f in futures.items()})
    return [answers[i] for i in range(len(boxes))]
