"""Killing a job: verified first, then the whole job, gracefully first, then by force.

One flow for every front end (the CLI asks on the terminal, the dashboard in a dialog):
1. verify: every identity check must pass (identity.verify); else the kill is refused and
   nothing is sent.
2. confirm: the front end asks; a "no" is recorded as a cancelled attempt.
3. claim: the job moves running -> stopping in the store: of several killers, one proceeds.
4. escalate to the job's process group (it leads its own session): SIGINT (Codex records
   `turn_aborted`), SIGTERM, SIGKILL, each after a grace period. The group is signalled only
   while the verified leader has not exited (its pidfd says so), so a reused PID is never hit.
5. sweep: anything still carrying the marker outside the group (Codex's tool commands run in
   sessions of their own) is ended.
6. settle: the job's end is recorded.
Every attempt (refused, cancelled, already claimed, done) is written to the audit trail with its
checks and signals. A kill whose codexdash died before the end is finished by the next look at
the job (`finish_abandoned_kill`, called by the engine's reconcile), recorded as taken over.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

from codexdash.errors import Refused
from codexdash.identity import IdentityReport, verify
from codexdash.jobs import JobEngine
from codexdash.faults import fault_point
from codexdash.procs import carries_marker, is_gone, marked_processes, process_if_same
from codexdash.store import Job, JobStatus

POLL_INTERVAL = 0.02


@dataclass(frozen=True)
class KillStep:
    signal: signal.Signals
    grace: float  # how long to wait for the job to end before the next step


def kill_plan(engine: JobEngine, force: bool) -> list[KillStep]:
    s = engine.settings
    if force:
        return [KillStep(signal.SIGKILL, s.terminate_grace)]
    return [
        KillStep(signal.SIGINT, s.interrupt_grace),
        KillStep(signal.SIGTERM, s.terminate_grace),
        KillStep(signal.SIGKILL, s.terminate_grace),
    ]


def describe_plan(plan: list[KillStep]) -> str:
    parts = []
    for i, step in enumerate(plan):
        last = i == len(plan) - 1
        parts.append(step.signal.name + ("" if last else f", then after {step.grace:g} s"))
    return " ".join(parts) + " to the process group; then anything left carrying the marker"


class KillRefused(Refused):
    """A kill that was not carried out; `report` has the identity checks as they stood."""

    def __init__(self, message: str, report: IdentityReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class KillResult:
    job_id: str
    report: IdentityReport
    sent: list[str] = field(default_factory=list)
    swept: int = 0
    seconds: float = 0.0
    stopped: bool = False
    taken_over_from: int | None = None  # the PID of the codexdash that died mid-kill, if one did

    def summary(self, status: str) -> str:
        """One line for the user: how the job ended and what it took."""
        sent = ", ".join(self.sent) or "nothing left to signal"
        line = f"job {self.job_id}: {status} after {self.seconds:.2f} s ({sent})"
        if self.taken_over_from is not None:
            line += f", finishing the kill of codexdash PID {self.taken_over_from}, which died"
        return line


def _leader_exited(pidfd: int | None, leader: psutil.Process, timeout: float) -> bool:
    """Waits up to `timeout` for the leader to exit; a pidfd wakes us the moment it does."""
    if pidfd is not None:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(max(timeout, 0) * 1000))
    deadline = time.monotonic() + timeout
    while not is_gone(leader):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)
    return True


def _signal_leader_group(report: IdentityReport, leader: psutil.Process, sig: signal.Signals) -> None:
    if report.pidfd is not None and _leader_exited(report.pidfd, leader, 0):
        return
    try:
        if os.getpgid(leader.pid) == leader.pid:
            os.killpg(leader.pid, sig)
        elif report.pidfd is not None:
            signal.pidfd_send_signal(report.pidfd, sig)
        else:
            leader.send_signal(sig)
    except ProcessLookupError:
        pass


def _signal_marked(job: Job, sig: signal.Signals) -> int:
    """Sends `sig` to every live process carrying the marker, each re-checked through a pidfd."""
    count = 0
    for proc in marked_processes(job.marker):
        try:
            fd = os.pidfd_open(proc.pid)
        except OSError:
            continue
        try:
            # Re-checked after the pidfd is held: the signal goes to this process or to none.
            if carries_marker(proc, job.marker) and proc.uids().real == os.getuid():
                signal.pidfd_send_signal(fd, sig)
                count += 1
        except (OSError, psutil.Error):
            pass
        finally:
            os.close(fd)
    return count


def _wait_marked_gone(job: Job, deadline: float) -> bool:
    while marked_processes(job.marker):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL * 2.5)
    return True


# A confirmation that took longer than this is followed by the identity checks again: what the
# user saw may no longer be true (the process may have exec'd into something else).
REVERIFY_AFTER = 1.0
# For a moment after exec() the kernel shows a process with no command line and no environment
# (a job killed as soon as it is started): checks that fail only for that are run again, this long.
EXEC_SETTLE = 0.5


class KillFlow:
    """One kill attempt of one job, step by step; `kill_job` runs it start to end.

    A front end calls `verify()`, shows the report and the plan, then either `cancel()` or
    `carry_out()`; `close()` at the end in any case. Each outcome is recorded once.
    """

    def __init__(self, engine: JobEngine, job: Job, force: bool = False,
                 progress: Callable[[str], None] | None = None) -> None:
        self.engine = engine
        self.job = job
        self.force = force
        self.plan = kill_plan(engine, force)
        self.say = progress or (lambda _msg: None)
        self.report = IdentityReport(job_id=job.id, pid=job.pid)
        self.audit: dict = {"force": force}
        # Set when verify() found the job's kill left unfinished by a codexdash that died, and
        # finished it: nothing is left to confirm.
        self.finished: KillResult | None = None
        self._verified_at = 0.0

    # ---- the steps --------------------------------------------------------------------------

    def verify(self) -> IdentityReport:
        """Brings the job up to date and runs every identity check. A failed check is recorded
        as a refused attempt; nothing is ever sent after one."""
        if kill_abandoned(self.job):
            self.finished = self.take_over()
            if self.finished is not None or self.report.checks:  # finished, or refused (recorded)
                return self.report
        self.engine.reconcile(self.job)
        self._check()
        if not self.report.ok:
            self._record("refused")
        return self.report

    def refusal(self) -> KillRefused:
        """Why a verified-and-failed attempt sends nothing, as one line."""
        job = self.job
        if not job.is_live:
            return KillRefused(f"job {job.id} is not running ({job.status}); nothing was sent", self.report)
        return KillRefused(f"refusing to kill job {job.id}: {self.report.reason()}", self.report)

    def cancel(self) -> None:
        """The user said no: recorded, nothing sent."""
        self._record("cancelled")
        self.close()

    def carry_out(self) -> KillResult:
        """Claims the job and stops it (escalate, sweep, settle). Raises KillRefused, having
        sent nothing, when the job fails its checks again or another codexdash has it."""
        if not self.report.ok:
            raise self.refusal()
        if time.monotonic() - self._verified_at > REVERIFY_AFTER:
            self.engine.reload(self.job)
            self._check()
            if not self.report.ok:
                self._record("refused")
                raise self.refusal()
        if not self.engine.claim_stop(self.job):
            if not self.job.is_live:
                self._record("refused")
                raise self.refusal()
            self._record("already stopping")
            raise KillRefused(f"job {self.job.id} is already being stopped by another codexdash", self.report)
        return self._escalate()

    def take_over(self) -> KillResult | None:
        """Finishes the kill the user confirmed, whose codexdash died before the end.

        This process takes the job over (a compare-and-set: of several looks at once, one does
        it), checks its identity again, and escalates; if the job has ended meanwhile, it only
        settles it. A process that fails its checks is never signalled (the refusal is
        recorded). None when another codexdash has the job, or when a check failed.
        """
        job, engine = self.job, self.engine
        killer = job.actor_pid
        if engine.store.readonly or not engine.claim_stop(job):
            return None
        self.audit["taken_over_from"] = killer
        self._check()
        leader_gone = not self.report.ok and process_if_same(job.pid, job.pid_start_time) is None
        if leader_gone and not marked_processes(job.marker):
            self._record("already ended")
            engine.settle(job, engine.reap(job))
            return KillResult(job_id=job.id, report=self.report, stopped=True, taken_over_from=killer)
        if not self.report.ok and not leader_gone:
            self._record("refused")
            return None
        # Verified, or only processes carrying the marker are left: each is checked again
        # through a pidfd before it is signalled.
        result = self._escalate()
        result.taken_over_from = killer
        return result

    def close(self) -> None:
        self.report.close()

    # ---- inside the steps --------------------------------------------------------------------

    def _check(self) -> None:
        deadline = time.monotonic() + EXEC_SETTLE
        while True:
            self.report.close()
            self.report = verify(self.job)
            alive = any(c.name == "process" and c.ok for c in self.report.checks)
            if self.report.ok or not alive or self.report.cmdline or time.monotonic() >= deadline:
                break
            time.sleep(POLL_INTERVAL)
        self._verified_at = time.monotonic()
        self.audit["checks"] = self.report.as_dict()

    def _record(self, outcome: str, **more) -> None:
        self.audit.update(outcome=outcome, **more)
        self.engine.record_kill_event(self.job, self.audit)

    def _escalate(self) -> KillResult:
        job, report, say = self.job, self.report, self.say
        result = KillResult(job_id=job.id, report=report)
        started = time.monotonic()
        try:
            leader = psutil.Process(job.pid) if report.ok else None
        except psutil.NoSuchProcess:
            leader = None
        for step in self.plan:
            deadline = time.monotonic() + step.grace
            if leader is not None and not _leader_exited(report.pidfd, leader, 0):
                _signal_leader_group(report, leader, step.signal)
                say(f"sent {step.signal.name} to process group {job.pid}")
            else:
                n = _signal_marked(job, step.signal)
                say(f"sent {step.signal.name} to {n} process(es) carrying the marker")
            result.sent.append(step.signal.name)
            fault_point("kill-after-signal")
            if leader is not None:
                _leader_exited(report.pidfd, leader, step.grace)
            self.engine.reap(job)
            if _wait_marked_gone(job, deadline):
                break
        # Whatever still carries the marker (escaped the group, ignored every signal) is ended.
        result.swept = _signal_marked(job, signal.SIGKILL)
        if result.swept:
            say(f"swept {result.swept} process(es) still carrying the marker")
            _wait_marked_gone(job, time.monotonic() + 2.0)
        result.seconds = time.monotonic() - started
        result.stopped = not marked_processes(job.marker)
        self._record("stopped" if result.stopped else "survivors", sent=result.sent, swept=result.swept,
                     seconds=round(result.seconds, 3))
        fault_point("kill-before-settle")
        self.engine.settle(job, self.engine.reap(job))
        return result


def kill_job(
    engine: JobEngine,
    job: Job,
    force: bool = False,
    confirm: Callable[[IdentityReport, list[KillStep]], bool] | None = None,
    progress: Callable[[str], None] | None = None,
) -> KillResult:
    """Verifies, confirms and kills a job. Raises KillRefused, having sent nothing, when a check
    fails or the confirmation is refused."""
    flow = KillFlow(engine, job, force, progress)
    try:
        report = flow.verify()
        if flow.finished is not None:
            return flow.finished
        if not report.ok:
            raise flow.refusal()
        if confirm is not None and not confirm(report, flow.plan):
            flow.cancel()
            raise KillRefused("kill cancelled; nothing was sent", report)
        return flow.carry_out()
    finally:
        flow.close()


# ---- a kill whose codexdash died before the end -----------------------------------------------


def kill_abandoned(job: Job) -> bool:
    """Is the job `stopping` with the codexdash that was stopping it gone?"""
    return job.status == JobStatus.STOPPING and process_if_same(job.actor_pid, job.actor_start_time) is None


def finish_abandoned_kill(engine: JobEngine, job: Job) -> KillResult | None:
    """The next look at a job whose killer died finishes its kill (see `KillFlow.take_over`)."""
    if not kill_abandoned(job):
        return None
    flow = KillFlow(engine, job)
    try:
        return flow.take_over()
    finally:
        flow.close()
