"""Starting a job: the request checked before anything is stored, the record written first, then
Codex spawned detached (its own session, no terminal) and the record completed with its PID and
start time; a follow-up (`codex exec resume`) and a retry are starts too.

A mixin of `JobEngine` (it uses the engine's settings, store, lock, children, `transition`,
`reconcile`, `session_file` and `worktree`).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from codexdash.config import MARKER_ENV
from codexdash.errors import BadInput, Refused
from codexdash.faults import fault_point
from codexdash.format import title
from codexdash.procs import this_process
from codexdash.session_files import thread_source_value
from codexdash.store import Job, JobEvent, JobStatus, now

# Linux caps one argument at 128 KiB; longer prompts go to Codex on stdin (`-` as the prompt).
MAX_PROMPT_ARG = 100_000
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


class Starting:
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
            from codexdash.git_tree import work_tree_root

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
        from codexdash.git_tree import start_snapshot

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
