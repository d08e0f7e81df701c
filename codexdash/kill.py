"""Killing a job: verified first, then the whole job, gracefully first, then by force.

1. Every identity check must pass (identity.verify); else the kill is refused and nothing is sent.
2. The job moves running -> stopping in the store: of several killers, one proceeds.
3. Escalation to the job's process group (it leads its own session): SIGINT (Codex records
   `turn_aborted`), SIGTERM, SIGKILL, each after a grace period. The group is signalled only
   while the verified leader has not exited (its pidfd says so), so a reused PID is never hit.
4. A sweep ends anything still carrying the marker outside the group (Codex's tool commands
   run in sessions of their own).
Every attempt, refused or done, is written to the audit trail with its checks and signals.
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
from codexdash.jobs import JobEngine, fault_point
from codexdash.procs import carries_marker, is_gone, marked_processes
from codexdash.store import Job

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


def kill_job(
    engine: JobEngine,
    job: Job,
    force: bool = False,
    confirm: Callable[[IdentityReport, list[KillStep]], bool] | None = None,
    progress: Callable[[str], None] | None = None,
) -> KillResult:
    """Verifies and kills a job. Raises Refused, having sent nothing, when a check fails."""
    say = progress or (lambda _msg: None)
    engine.reconcile(job)
    plan = kill_plan(engine, force)
    report = verify(job)
    result = KillResult(job_id=job.id, report=report)
    audit = {"checks": report.as_dict(), "force": force}
    try:
        if not report.ok:
            audit["outcome"] = "refused"
            engine.record_kill_event(job, audit)
            if not job.is_live:
                raise KillRefused(f"job {job.id} is not running ({job.status}); nothing was sent", report)
            raise KillRefused(f"refusing to kill job {job.id}: {report.reason()}", report)
        if confirm is not None and not confirm(report, plan):
            audit["outcome"] = "cancelled"
            engine.record_kill_event(job, audit)
            raise KillRefused("kill cancelled; nothing was sent", report)
        if not engine.claim_stop(job):
            audit["outcome"] = "already stopping"
            engine.record_kill_event(job, audit)
            raise KillRefused(f"job {job.id} is already being stopped by another codexdash", report)
        started = time.monotonic()
        try:
            leader = psutil.Process(job.pid)
        except psutil.NoSuchProcess:
            leader = None
        for step in plan:
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
            engine.reap(job)
            if _wait_marked_gone(job, deadline):
                break
        # Whatever still carries the marker (escaped the group, ignored every signal) is ended.
        result.swept = _signal_marked(job, signal.SIGKILL)
        if result.swept:
            say(f"swept {result.swept} process(es) still carrying the marker")
            _wait_marked_gone(job, time.monotonic() + 2.0)
        result.seconds = time.monotonic() - started
        result.stopped = not marked_processes(job.marker)
        audit.update(outcome="stopped" if result.stopped else "survivors", sent=result.sent, swept=result.swept, seconds=round(result.seconds, 3))
        engine.record_kill_event(job, audit)
        fault_point("kill-before-settle")
        engine.settle(job, engine.reap(job))
        return result
    finally:
        report.close()
