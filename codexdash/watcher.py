"""The watcher: follows the live jobs of one database until they end, with nothing else open.

Each start makes sure one runs (`ensure_running`): it is launched detached (its own session,
no terminal, stdin/stdout/stderr on /dev/null), so it outlives the terminal and the SSH session
that started the job. One per database, held by an flock on `<db>.watch.lock` beside the
database (owner-only; it holds the watcher's PID). The launcher takes the lock and hands the
locked descriptor to the watcher, so there is no moment where a second one could start. It acts
with the launcher's settings (its hook, stall time), passed on its stdin.

It waits in poll(2) on a pidfd per live job and on a FIFO (`<db>.watch.fifo`): no timer, no CPU
while it waits. A pidfd becomes readable when its process exits; the FIFO is written by each
later start ("look again", so a new job is followed at once rather than at the next timeout);
the only deadlines are a job's stall time (when a hook is set) and, for a moment, a job still
starting without a PID. On each wake it looks at the live jobs as any `codexdash list` does:
`JobEngine.reconcile`, whose compare-and-set settles a job once, whoever looks (that look runs
the `finished` hook), so it is never a second supervisor: it kills nothing and owns nothing, and
if it dies nothing is lost (the next look settles, the next start launches it again). It exits
when no live job remains.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import fcntl
import json
import os
import select
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import psutil

from codexdash import notify
from codexdash.config import Settings, load_settings
from codexdash.jobs import JobEngine, job_json
from codexdash.procs import process_if_same
from codexdash.store import Job, JobStatus, now, open_store

# A job not yet followed by a pidfd (being started, no PID yet) is looked at again this soon.
RETRY_SECONDS = 0.5
# Looks that fail in a row (the database unreadable) before the watcher gives up.
MAX_FAILURES = 10


def lock_path(db_path: Path) -> Path:
    return Path(db_path).with_name(Path(db_path).name + ".watch.lock")


def fifo_path(db_path: Path) -> Path:
    return Path(db_path).with_name(Path(db_path).name + ".watch.fifo")


def _open_owned(path: Path, flags: int, fifo: bool = False) -> int:
    """Opens a file of ours, never through a symlink, refusing one that another user put there."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    st = os.fstat(fd)
    if st.st_uid != os.getuid() or stat.S_ISFIFO(st.st_mode) != fifo:
        os.close(fd)
        raise OSError(errno.EPERM, f"{path} is not codexdash's")
    return fd


def watcher_pid(db_path: Path) -> int | None:
    """The PID the watcher of this database wrote into its lock file (it may have exited)."""
    try:
        return int(lock_path(db_path).read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


def running_watcher(db_path: Path) -> int | None:
    """The PID of this database's watcher if it is running."""
    pid = watcher_pid(db_path)
    try:
        return pid if pid and "codexdash.watcher" in psutil.Process(pid).cmdline() else None
    except psutil.Error:
        return None


def ensure_running(settings: Settings) -> None:
    """Makes sure a watcher follows this database's live jobs: the running one is told to look
    again, or one is launched. Never raises: without a watcher, the next look still settles."""
    try:
        fd = _open_owned(lock_path(settings.db_path), os.O_RDWR | os.O_CREAT)
    except OSError:
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            poke(settings.db_path)  # one runs: look again, there is a new job
            return
        argv = [sys.executable, "-m", "codexdash.watcher", "--db", str(settings.db_path), "--lock-fd", str(fd),
                "--settings-on-stdin"]
        # It acts with this process's settings (the hook above all), whatever the config file
        # says by then; on stdin, not on its command line, where every user could read them.
        with tempfile.TemporaryFile() as spec:
            spec.write(json.dumps(settings_as_json(settings)).encode())
            spec.seek(0)
            child = subprocess.Popen(argv, pass_fds=(fd,), stdin=spec, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True, cwd="/", env=notify.clean_env())
        # Reaped here if this process outlives it (a dashboard); otherwise init does.
        threading.Thread(target=child.wait, name="watcher-reaper", daemon=True).start()
    except OSError:
        pass
    finally:
        os.close(fd)  # the watcher holds the lock through its own copy of the descriptor


def settings_as_json(settings: Settings) -> dict:
    return {k: str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(settings).items()}


def settings_from_json(data: dict) -> Settings:
    kinds = {f.name: f.type for f in dataclasses.fields(Settings)}
    values = {}
    for key, value in data.items():
        if key not in kinds:
            continue
        if key in ("codex_home", "db_path"):
            value = Path(value)
        elif isinstance(value, list):
            value = tuple(value)
        values[key] = value
    return Settings(**values)


def poke(db_path: Path) -> None:
    """Tells the running watcher to look again (nothing if none reads the FIFO)."""
    try:
        fd = _open_owned(fifo_path(db_path), os.O_WRONLY | os.O_NONBLOCK, fifo=True)
    except OSError:
        return  # no watcher reads it (ENXIO) or none ever ran: its first look comes later
    try:
        os.write(fd, b"\n")
    except OSError:
        pass  # full: looks are pending already
    finally:
        os.close(fd)


class Watcher:
    def __init__(self, settings: Settings, lock_fd: int, engine: JobEngine | None = None) -> None:
        self.settings = settings
        self.lock_fd = lock_fd
        self.engine = engine or JobEngine(settings, open_store(settings.db_path))
        self.pidfds: dict[str, tuple[int, int, float | None]] = {}  # job id -> (pidfd, pid, start time)
        self.next_stall: dict[str, float] = {}
        self.next_due: float | None = None  # when an event left due by another process is to be handed over

    def run(self) -> int:
        self._write_pid()
        fifo = fifo_path(self.settings.db_path)
        try:
            os.mkfifo(fifo, 0o600)
        except FileExistsError:
            pass
        reader = _open_owned(fifo, os.O_RDONLY | os.O_NONBLOCK, fifo=True)
        # A writer of our own, so that the FIFO never reads as hung up between pokes.
        keeper = _open_owned(fifo, os.O_WRONLY | os.O_NONBLOCK, fifo=True)
        failures = 0
        try:
            while True:
                try:
                    live = self._look()
                    if not live and self.next_due is None:
                        if self._keep_lock():
                            continue  # a job was started meanwhile: look again
                        return 0
                    timeout = self._follow(live)
                    if self.next_due is not None:  # stays for it, even with nothing live
                        wait = max(self.next_due - now(), 0.0)
                        timeout = wait if timeout is None else min(timeout, wait)
                    failures = 0
                except Exception:  # noqa: BLE001 - the store unreadable for a moment; look again
                    failures += 1
                    if failures >= MAX_FAILURES:
                        return 1
                    timeout = 2.0
                self._wait(reader, timeout)
        finally:
            for fd, _pid, _start in self.pidfds.values():
                os.close(fd)
            os.close(reader)
            os.close(keeper)

    def _write_pid(self) -> None:
        os.ftruncate(self.lock_fd, 0)
        os.pwrite(self.lock_fd, f"{os.getpid()}\n".encode(), 0)

    def _look(self) -> list[Job]:
        """Every live job reconciled, as any look does (settling, and notifying, the ended), and
        the hook's events left due by a process that died before launching them handed over."""
        jobs = list(Job.select().where(Job.status.in_(JobStatus.LIVE)))
        for job in jobs:
            self.engine.reconcile(job)
        self.next_due = notify.deliver_due(self.engine)
        return [job for job in jobs if job.is_live]

    def _keep_lock(self) -> bool:
        """Nothing is live: the lock is let go, then the store asked once more, so that a job
        started meanwhile is either seen here or finds the lock free and launches a watcher."""
        fcntl.flock(self.lock_fd, fcntl.LOCK_UN)
        if not Job.select().where(Job.status.in_(JobStatus.LIVE)).exists():
            return False
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # another watcher has it now
        self._write_pid()
        return True

    def _follow(self, live: list[Job]) -> float | None:
        """A pidfd for each live job; returns how long to sleep (None: until something happens)."""
        timeout: float | None = None
        ids = {job.id for job in live}
        for job_id in [j for j in self.pidfds if j not in ids]:
            os.close(self.pidfds.pop(job_id)[0])
            self.next_stall.pop(job_id, None)
        for job in live:
            held = self.pidfds.get(job.id)
            if held is not None and held[1:] != (job.pid, job.pid_start_time):
                os.close(self.pidfds.pop(job.id)[0])  # Codex runs on under another PID
                held = None
            if held is None and job.pid is not None:
                fd = self._pidfd(job)
                if fd is not None:
                    self.pidfds[job.id] = (fd, job.pid, job.pid_start_time)
            if job.id not in self.pidfds:
                timeout = RETRY_SECONDS
        if self.settings.notify_command:
            for job in live:
                due = self.next_stall.get(job.id)
                if due is None or now() >= due:
                    due = self.next_stall[job.id] = self._check_stall(job)
                wait = max(due - now(), 0.0)
                timeout = wait if timeout is None else min(timeout, wait)
        return timeout

    @staticmethod
    def _pidfd(job: Job) -> int | None:
        try:
            fd = os.pidfd_open(job.pid)
        except OSError:
            return None  # gone already (the next look settles it) or no pidfds here
        # Opened, then checked: if the PID was reused before the open, this is not the job.
        if process_if_same(job.pid, job.pid_start_time) is None:
            os.close(fd)
            return None
        return fd

    def _check_stall(self, job: Job) -> float:
        """Notifies the job's stall if it is due; returns when to check it next."""
        due = notify.silent_since(job, _mtime(job.session_file)) + self.settings.stall_after
        if now() < due:
            return due  # not due on what is known: its files are not searched
        path = self.engine.session_file(job)  # found now if it was not known, followed if moved
        return notify.check_stall(self.engine, job, _mtime(path), job_json(job.__data__))

    def _wait(self, reader: int, timeout: float | None) -> None:
        poller = select.poll()
        poller.register(reader, select.POLLIN)
        by_fd = {}
        for job_id, (fd, _pid, _start) in self.pidfds.items():
            poller.register(fd, select.POLLIN)
            by_fd[fd] = job_id
        for fd, _events in poller.poll(None if timeout is None else max(int(timeout * 1000) + 1, 1)):
            if fd == reader:
                _drain(reader)
            elif fd in by_fd:  # the job's process exited: the next look settles it
                os.close(self.pidfds.pop(by_fd[fd])[0])


def _mtime(path: str | None) -> float | None:
    try:
        return os.stat(path).st_mtime if path else None
    except OSError:
        return None


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m codexdash.watcher", description="Follow live codexdash jobs until they end.")
    p.add_argument("--db")
    p.add_argument("--lock-fd", type=int, help="the lock, taken by the launcher")
    p.add_argument("--settings-on-stdin", action="store_true", help="the launcher's settings, as JSON")
    args = p.parse_args(argv)
    if args.settings_on_stdin:
        settings = settings_from_json(json.loads(sys.stdin.buffer.read()))
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
    else:
        settings = load_settings()
    if args.db:
        settings = settings.with_overrides(db_path=Path(args.db))
    if args.lock_fd is not None:
        lock_fd = args.lock_fd
    else:
        lock_fd = _open_owned(lock_path(settings.db_path), os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # one watches already
    return Watcher(settings, lock_fd).run()


if __name__ == "__main__":
    sys.exit(main())
