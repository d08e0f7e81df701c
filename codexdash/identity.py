"""Proving that a PID is still a job's process before anything is sent to it.

A job's process is identified by (PID, start time, marker). Each check is reported on its own,
so the user sees why a kill is refused. A pidfd is opened *before* the checks: signals sent
through it reach the process that was checked, or nothing, even if the PID is reused meanwhile.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import psutil

from codexdash.config import MARKER_ENV
from codexdash.procs import is_gone, same_start_time
from codexdash.store import Job


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class IdentityReport:
    job_id: str
    pid: int | None
    checks: list[Check] = field(default_factory=list)
    cmdline: list[str] = field(default_factory=list)
    pidfd: int | None = None

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def reason(self) -> str:
        return "; ".join(f"{c.name}: {c.detail}" for c in self.failures) or "no checks ran"

    def close(self) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    def as_dict(self) -> dict:
        return {
            "pid": self.pid,
            "ok": self.ok,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "cmdline": self.cmdline,
        }


def marker_argument(marker: str) -> str:
    """The `-c` override that carries the marker on Codex's command line (accepted silently)."""
    return f'shell_environment_policy.set.{MARKER_ENV}="{marker}"'


def runs_job_command(cmdline: list[str], argv: list[str]) -> tuple[bool, str]:
    """Is `cmdline` the command the job was started with, token for token?

    Allowed differences, both measured with the real Codex CLI: an interpreter in front of a
    script (a shebang turns `/x/codex exec ...` into `node /x/codex exec ...`), and the Node
    wrapper exec()ing its native `codex` binary in place (same arguments, another argv[0]).
    """
    if cmdline == argv:
        return True, "the command line is the one started"
    # What follows the Codex command itself: `exec` and the job's own arguments.
    args = argv[argv.index("exec") :] if "exec" in argv else argv[1:]
    if len(cmdline) > len(argv) and cmdline[-len(argv) :] == argv and len(cmdline) - len(argv) <= 2:
        return True, f"{' '.join(cmdline[: len(cmdline) - len(argv)])} running {argv[0]}"
    if cmdline[-len(args) :] == args and len(cmdline) > len(args):
        program = os.path.basename(cmdline[-len(args) - 1])
        if program == "codex" or program.startswith("codex-"):
            return True, f"native {program} exec'd in place by the wrapper"
    if not cmdline:
        return False, "the process has no command line"
    return False, f"it runs {' '.join(cmdline)[:200]!r}, not the job's command"


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None


def verify(job: Job) -> IdentityReport:
    """Runs every identity check on the job's recorded PID. Close the report when done."""
    report = IdentityReport(job_id=job.id, pid=job.pid)
    checks = report.checks
    if job.pid is None:
        checks.append(Check("process", False, "no PID was recorded for this job"))
        return report
    report.pidfd = _open_pidfd(job.pid)
    try:
        proc = psutil.Process(job.pid)
        if is_gone(proc):
            checks.append(Check("process", False, f"PID {job.pid} has exited (zombie)"))
            return report
        checks.append(Check("process", True, f"PID {job.pid} is alive ({proc.status()})"))
        started = proc.create_time()
        if same_start_time(started, job.pid_start_time):
            checks.append(Check("start time", True, f"started at {started:.2f}, as recorded"))
        else:
            checks.append(
                Check("start time", False, f"started at {started:.2f}, not {job.pid_start_time}: the PID was reused")
            )
        try:
            env_marker = proc.environ().get(MARKER_ENV)
        except psutil.AccessDenied:
            env_marker = None
        cmdline = proc.cmdline()
        report.cmdline = cmdline
        in_env = env_marker == job.marker
        in_argv = marker_argument(job.marker) in cmdline
        if in_env and in_argv:
            checks.append(Check("marker", True, f"{MARKER_ENV} in its environment and command line"))
        else:
            missing = [w for w, ok in (("environment", in_env), ("command line", in_argv)) if not ok]
            checks.append(Check("marker", False, f"the job's marker is missing from its {' and '.join(missing)}"))
        ok, detail = runs_job_command(cmdline, job.argv_list)
        checks.append(Check("command", ok, detail))
        uid = proc.uids().real
        if uid == os.getuid():
            checks.append(Check("user", True, f"owned by uid {uid}, as codexdash"))
        else:
            checks.append(Check("user", False, f"owned by uid {uid}, not by uid {os.getuid()}"))
    except psutil.NoSuchProcess:
        checks.append(Check("process", False, f"no process with PID {job.pid}"))
    except psutil.AccessDenied as exc:
        checks.append(Check("access", False, f"not allowed to inspect PID {job.pid}: {exc}"))
    if not report.ok:
        report.close()
    return report
