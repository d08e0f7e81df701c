"""Proving that a PID is still a job's process before anything is sent to it.

A job's process is identified by (PID, start time, marker). Each check is reported on its own,
so the user sees why a kill is refused. A pidfd is opened *before* the checks: signals sent
through it reach the process that was checked, or nothing, even if the PID is reused meanwhile.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import psutil

from codexdash.config import MARKER_ENV
from codexdash.format import local_time
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


# Programs that run a script named after them (a shebang line, or a version manager's shim
# that re-execs one): `node /x/codex exec ...` runs the job's `/x/codex exec ...`.
INTERPRETERS = frozenset({"node", "python", "pypy", "bun", "deno", "sh", "bash", "dash", "zsh", "ruby", "perl"})


def program_name(token: str) -> str:
    """A program's name without directory, script extension or version: the same program
    reached through pyenv, asdf, mise, volta or nvm has the same name (python3.11 -> python,
    node20 -> node, codex.js -> codex, codex-x86_64-unknown-linux-musl -> codex)."""
    name = os.path.basename(token)
    name = re.sub(r"\.(js|mjs|cjs|py|exe)$", "", name)
    if name.startswith("codex-"):
        return "codex"
    name = re.sub(r"[\d._-]+$", "", name)
    return {"nodejs": "node", "python": "python"}.get(name, name)


def _same_program(running: str, configured: str) -> bool:
    if running == configured or program_name(running) == program_name(configured):
        return True
    try:
        return os.path.realpath(running) == os.path.realpath(configured)
    except (OSError, ValueError):
        return False


def runs_job_command(cmdline: list[str], argv: list[str]) -> tuple[bool, str]:
    """Is `cmdline` the command the job was started with?

    The job's own arguments (from `exec` on: they hold its marker and thread source) must end
    the command line token for token. Before them, the configured command may have taken one
    of the forms a real install gives it, and no other:
    - as started;
    - its program replaced by the same program elsewhere (a version manager's shim re-execs
      the real interpreter: `~/.pyenv/shims/python3` becomes `.../3.11.7/bin/python3`);
    - an interpreter in front of its script (a shebang: `/x/codex` runs as `node /x/codex`);
    - the native `codex` binary in place of the Node wrapper (Node >= 22.15 exec()s it).
    """
    if not cmdline:
        return False, "the process has no command line"
    refused = (False, f"it runs {' '.join(cmdline)[:200]!r}, not the job's command")
    cut = argv.index("exec") if "exec" in argv else 1
    launcher, args = argv[:cut], argv[cut:]
    if len(cmdline) <= len(args) or cmdline[len(cmdline) - len(args) :] != args:
        return refused
    head = cmdline[: len(cmdline) - len(args)]
    if head == launcher:
        return True, "the command line is the one started"
    scripts = launcher[1:]
    if len(head) >= len(launcher) and head[len(head) - len(scripts) :] == scripts:
        program = head[len(head) - len(launcher)]
        front = head[: len(head) - len(launcher)]
        if _same_program(program, launcher[0]):
            if not front:
                return True, f"{program} in place of {launcher[0]} (the same program, reached through a shim or link)"
            if program_name(front[0]) in INTERPRETERS and len(front) <= 3 and all(f.startswith("-") for f in front[1:]):
                return True, f"{' '.join(front)} running {program}"
    if len(head) == 1 and program_name(head[0]) == "codex" and program_name(launcher[-1]) == "codex":
        return True, f"native {os.path.basename(head[0])} exec'd in place by the wrapper"
    return refused


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (OSError, AttributeError):
        return None


def _other_start(started: float, recorded: float | None) -> str:
    """Why a start time is not the recorded one, in local times (to the millisecond when they
    fall in the same second)."""
    if recorded is None:
        return f"started at {local_time(started)}; no start time was recorded"
    precise = local_time(started) == local_time(recorded)
    return (f"started at {local_time(started, precise)}, not at {local_time(recorded, precise)} as recorded: "
            "the PID was reused")


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
            checks.append(Check("start time", True, f"started at {local_time(started)}, as recorded"))
        else:
            checks.append(Check("start time", False, _other_start(started, job.pid_start_time)))
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
