"""Another box, driven through the operator's own OpenSSH client.

`SshBox` runs `<remote_command> --protocol=N <command> --json` on the box and reads its JSON;
the box's codexdash does every identity check and every kill itself, and nothing is ever
signalled from here. No server of ours listens anywhere: a job started on a box lives on there
if this side goes away. Two commands stay running while they are read: `logs --follow`
(`SshFollower`) and `list --watch` (`SshWatch`, the dashboard's view of a box: one process
there for as long as it is shown, instead of one per look); the watch's stdin is kept open
here, so it ends on the box when its ssh client goes.

What ssh is told, and why (everything else comes from the operator's ~/.ssh/config, and the
host is passed as written, so aliases, jump hosts, keys and agents work as in their shell):
- `ControlMaster=auto`, `ControlPersist`, `ControlPath=<private dir>/%C`: one multiplexed
  connection per box, reused by every later command for a while; the socket lives in a
  directory only this user can enter.
- `BatchMode=yes`: never a password or host-key prompt that would hang a command or the screen.
- `-T`: no terminal, so the JSON arrives as written.
- `ConnectTimeout` and `ServerAliveInterval` only where the operator's configuration sets
  none: an unreachable box costs at most the connect timeout, and a box that vanishes
  mid-follow is noticed.
Options in the `ssh` setting come first, and ssh keeps the first value it reads: an operator
can still override any of these there.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from codexdash import __version__, protocol
from codexdash.boxes import (
    BoxError,
    ConnectionLost,
    FollowEnd,
    Heartbeat,
    ProtocolMismatch,
    Snapshot,
    StartSpec,
    Unreachable,
    not_running_checks,
)
from codexdash.config import Settings
from codexdash.errors import BadInput, CodexdashError, Refused
from codexdash.render import Line, sanitize

CONTROL_PERSIST = "10m"  # how long an idle connection to a box is kept for the next command
DEFAULT_CONNECT_TIMEOUT = 10.0  # seconds, when the operator's ssh configuration sets none
SERVER_ALIVE_INTERVAL = 15  # seconds; ssh gives up after 3 unanswered probes
# A command that changes something (start, kill) may take the box's grace periods: it gets
# this long after connecting before it is given up on (the box carries on regardless).
CHANGE_TIMEOUT = 300.0
STYLES = frozenset({"prompt", "agent", "command", "output", "ok", "error", "dim", "notice"})
# A Unix socket path is at most 107 bytes; %C expands to 40 hex characters.
MAX_SOCKET_PATH = 104


def _private_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if not (os.path.isdir(path) and not os.path.islink(path) and st.st_uid == os.getuid() and st.st_mode & 0o077 == 0):
        raise BoxError(f"{path} is not a private directory of this user (mode {st.st_mode & 0o777:o}, owner uid "
                       f"{st.st_uid}): codexdash keeps its ssh control sockets there; remove it or make it 0700")


def control_dir() -> Path:
    """The private directory of the ssh control sockets: $XDG_RUNTIME_DIR/codexdash/ssh, or
    /tmp/codexdash-UID/ssh where there is no runtime directory (or its path is too long for a
    socket)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    bases = [Path(runtime) / "codexdash"] if runtime and os.path.isdir(runtime) else []
    bases.append(Path(tempfile.gettempdir()) / f"codexdash-{os.getuid()}")
    for base in bases:
        path = base / "ssh"
        if len(os.fsencode(path)) + 41 <= MAX_SOCKET_PATH:
            for directory in (base, path):
                _private_dir(directory)
            return path
    raise BoxError(f"the ssh control directory {path} is too long for a socket path: set TMPDIR to a shorter one")


@dataclass(frozen=True)
class _TheirSsh:
    """What the operator's ssh configuration already says for a host (`ssh -G`)."""

    connect_timeout: float | None
    server_alive: bool


def _resolve(ssh: tuple[str, ...], host: str) -> _TheirSsh:
    try:
        done = subprocess.run([*ssh, "-G", "--", host], stdin=subprocess.DEVNULL, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return _TheirSsh(None, False)  # the real command will say what is wrong
    values = {}
    for line in done.stdout.decode(errors="replace").splitlines():
        key, _, value = line.partition(" ")
        values[key.lower()] = value.strip()
    try:
        timeout = float(values.get("connecttimeout", "none"))
    except ValueError:
        timeout = None
    alive = values.get("serveraliveinterval", "0") not in ("0", "")
    return _TheirSsh(timeout if timeout and timeout > 0 else None, alive)


class SshBox:
    """A box reached by ssh: every question is one codexdash command run there."""

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self.settings = settings
        self._theirs: _TheirSsh | None = None
        self._lock = threading.Lock()

    # ---- running codexdash there ------------------------------------------------------------

    @property
    def connect_timeout(self) -> float:
        theirs = self._their_ssh()
        return theirs.connect_timeout or DEFAULT_CONNECT_TIMEOUT

    def _their_ssh(self) -> _TheirSsh:
        with self._lock:
            if self._theirs is None:
                self._theirs = _resolve(self.settings.ssh_command, self.name)
            return self._theirs

    def ssh_argv(self, remote: str) -> list[str]:
        """The ssh command line that runs the shell text `remote` on this box."""
        theirs = self._their_ssh()
        argv = [*self.settings.ssh_command, "-T",
                "-o", "BatchMode=yes",
                "-o", "ControlMaster=auto",
                "-o", f"ControlPersist={CONTROL_PERSIST}",
                "-o", f"ControlPath={control_dir()}/%C"]
        if theirs.connect_timeout is None:
            argv += ["-o", f"ConnectTimeout={DEFAULT_CONNECT_TIMEOUT:g}"]
        if not theirs.server_alive:
            argv += ["-o", f"ServerAliveInterval={SERVER_ALIVE_INTERVAL}"]
        return [*argv, "--", self.name, remote]

    def command_line(self, args: list[str], needs: int = protocol.BASE) -> str:
        """The shell text run on the box: the remote command as configured (so `~/bin/codexdash`
        or `env X=1 codexdash` work), then the protocol the command needs and the arguments,
        each quoted."""
        words = [f"--protocol={needs}", *args]
        return f"{self.settings.remote_command} {' '.join(shlex.quote(w) for w in words)}"

    def run(self, args: list[str], input: str | None = None, changes: bool = False) -> tuple[int, str, str]:
        """Runs codexdash there: (exit status, stdout, stderr); `failure` reads a failed one.
        Raises Unreachable when no answer comes in time."""
        return self._ssh(self.command_line(args), input, self.connect_timeout + (CHANGE_TIMEOUT if changes else self.connect_timeout))

    def _ssh(self, remote: str, input: str | None, timeout: float) -> tuple[int, str, str]:
        try:
            done = subprocess.run(self.ssh_argv(remote), input=input.encode() if input is not None else None,
                                  stdin=subprocess.DEVNULL if input is None else None, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Unreachable(f"{self.name}: no answer within {timeout:g} s") from None
        except OSError as exc:
            raise BoxError(f"cannot run {self.settings.ssh_command[0]}: {exc.strerror} (set ssh / CODEXDASH_SSH)") from None
        return done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")

    def failure(self, code: int, stderr: str) -> CodexdashError:
        """The error a failed command on the box stands for, naming the box."""
        said = _last_line(stderr).removeprefix("codexdash: ")
        if code == 255:
            return Unreachable(f"{self.name}: unreachable: {said or 'the connection closed'}")
        if code in (126, 127):
            return BoxError(f"{self.name}: cannot run {self.settings.remote_command!r} there ({said}): install codexdash "
                            "there or set remote_command / CODEXDASH_REMOTE to its path on that box")
        if code == 2 and said.startswith(protocol.MISMATCH):
            return ProtocolMismatch(f"{self.name}: {said}")
        if code == 2 and "--protocol" in said:
            return ProtocolMismatch(f"{self.name}: its codexdash is too old to be driven from here (it does not know "
                                    f"--protocol): install codexdash {__version__} or later there")
        if code == 2:
            return BadInput(f"{self.name}: {said}")
        if code == 1:
            return Refused(f"{self.name}: {said}")
        return BoxError(f"{self.name}: codexdash there ended with status {code}" + (f": {said}" if said else ""))

    def ask(self, args: list[str], input: str | None = None, changes: bool = False):
        """Runs a `--json` command there and returns what it printed, parsed."""
        code, out, err = self.run(args, input=input, changes=changes)
        if code != 0:
            raise self.failure(code, err)
        return self._parse(out)

    def _parse(self, out: str):
        try:
            return json.loads(out)
        except ValueError:
            raise BoxError(f"{self.name}: codexdash there did not answer in JSON: {sanitize(out.strip()[:200])!r}") from None

    def _here(self, job: dict) -> dict:
        job["host"] = self.name
        return job

    # ---- the Box interface --------------------------------------------------------------------

    def jobs(self, all_history: bool = False, external: bool = True) -> list[dict]:
        flags = [*(["--all"] if all_history else []), *([] if external else ["--no-external"])]
        return [self._here(job) for job in self.ask(["list", "--json", *flags])]

    def show(self, ref: str) -> dict:
        return self._here(self.ask(["show", ref, "--json"]))

    def verify(self, ref: str) -> dict:
        data = self.show(ref)
        return data["identity"] if data.get("identity") else not_running_checks(data)

    def start(self, spec: StartSpec) -> dict:
        args = ["start", "-", "--json"]
        for flag, value in (("--cwd", spec.cwd), ("--model", spec.model), ("--sandbox", spec.sandbox), ("--name", spec.name)):
            if value is not None:
                args += [flag, value]
        if spec.extra_args:
            args += ["--", *spec.extra_args]
        return self._here(self.ask(args, input=spec.prompt, changes=True))

    def resume(self, ref: str, prompt: str, model: str | None = None, sandbox: str | None = None,
               name: str | None = None) -> dict:
        args = ["resume", ref, "-", "--json"]
        for flag, value in (("--model", model), ("--sandbox", sandbox), ("--name", name)):
            if value is not None:
                args += [flag, value]
        return self._here(self.ask(args, input=prompt, changes=True))

    def retry(self, ref: str) -> dict:
        return self._here(self.ask(["retry", ref, "--json"], changes=True))

    def kill(self, ref: str, force: bool = False) -> dict:
        code, out, err = self.run(["kill", ref, "--yes", "--json", *(["--force"] if force else [])], changes=True)
        if code not in (0, 1) or not out.strip():
            raise self.failure(code, err)
        result = self._parse(out)
        self._here(result["job"])
        return result

    def follow(self, target: str, raw: bool = False, tail: int | None = None, follow: bool = True) -> SshFollower:
        args = ["logs", target, "--json"]
        if raw:
            args.append("--raw")
        if tail is not None:
            args += ["--tail", str(tail)]
        if follow:
            args.append("--follow")
        return SshFollower(self, args, target)

    def info(self) -> dict:
        return self._here(self.ask(["version", "--json"]))

    def diff(self, ref: str) -> dict:
        data = self.ask(["diff", ref, "--json"])
        if not isinstance(data, dict):
            raise BoxError(f"{self.name}: codexdash there answered diff with something else than its changes")
        return data

    def views(self, all_history: bool = False, external: bool = True) -> list:
        """The box's jobs as rows: one `list --json` there, each job read as untrusted."""
        from codexdash.views import remote_views

        jobs = self.jobs(all_history=all_history, external=external)
        if not isinstance(jobs, list):
            raise BoxError(f"{self.name}: codexdash there answered list with something else than jobs")
        return remote_views(jobs, self.name)

    def watch(self, all_history: bool = False, external: bool = True, interval: float = 2.0,
              heartbeat: float = 5.0) -> SshWatch:
        """`list --json --watch` running on the box, over its shared connection (protocol.WATCH:
        an older box refuses it as a ProtocolMismatch, and can still be asked with `jobs`)."""
        args = ["list", "--json", "--watch", "--interval", f"{interval:g}", "--heartbeat", f"{heartbeat:g}",
                *(["--all"] if all_history else []), *([] if external else ["--no-external"])]
        return SshWatch(self, args, silence=self.connect_timeout + max(heartbeat, self.connect_timeout))

    def ping(self) -> float:
        """Seconds for one round trip on the box's connection (opening it first if need be)."""
        started = time.monotonic()
        code, _out, err = self._ssh("exit 0", None, 2 * self.connect_timeout)
        if code != 0:
            raise self.failure(code, err)
        return time.monotonic() - started


class _SshStream:
    """A codexdash command running on the box whose JSON lines are read as they come, over the
    box's shared connection. Subclasses say what a line is (`_item`), which item is the last,
    and how an end without it reads. What another box sends is never trusted to be inert.

    With `STDIN_OPEN`, the box's process reads its stdin, kept open here: when the ssh client
    goes (closed here, killed, or this process gone), the box sees its input end. With a
    `silence`, nothing for that many seconds is a box that does not answer: Unreachable."""

    MAX_LINE = 64 * 1024 * 1024
    STDIN_OPEN = False
    NEEDS = protocol.BASE  # the protocol the command needs on the box

    def __init__(self, box: SshBox, args: list[str], silence: float | None = None) -> None:
        self.box, self.args, self.silence = box, args, silence
        self._proc: subprocess.Popen | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            proc = self._proc
            if proc is not None and proc.poll() is None:
                self._close_stdin(proc)  # the box's command sees its input end
                proc.kill()

    @staticmethod
    def _close_stdin(proc: subprocess.Popen) -> None:
        try:
            if proc.stdin is not None:
                proc.stdin.close()
        except OSError:
            pass

    def __iter__(self) -> Iterator:
        import select

        box = self.box
        silent = False
        with tempfile.TemporaryFile() as errors:
            with self._lock:
                self._proc = proc = subprocess.Popen(
                    box.ssh_argv(box.command_line(self.args, needs=self.NEEDS)),
                    stdin=subprocess.PIPE if self.STDIN_OPEN else subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
            received = False
            try:
                if self._closed.is_set():
                    proc.kill()
                fd = proc.stdout.fileno()
                poller = select.poll()
                poller.register(fd, select.POLLIN)
                pending = b""
                while True:
                    if not poller.poll(None if self.silence is None else self.silence * 1000):
                        silent = not self._closed.is_set()
                        break
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        lines, pending = ([pending] if pending else []), b""  # a last line without its newline
                    elif b"\n" not in chunk:
                        pending += chunk
                        if len(pending) > self.MAX_LINE:
                            raise BoxError(f"{box.name}: codexdash there sent a line longer than {self.MAX_LINE} bytes")
                        continue
                    else:
                        *lines, pending = (pending + chunk).split(b"\n")
                    for raw in lines:
                        item = self._item(raw)
                        if item is not None:
                            received = True
                            yield item
                            if self._last(item):
                                return
                    if not chunk:
                        break
                code = proc.wait() if not silent else None
            finally:
                with self._lock:
                    if proc.poll() is None:
                        self._close_stdin(proc)
                        proc.kill()
                proc.wait()
                proc.stdout.close()
                self._close_stdin(proc)
            if self._closed.is_set():
                return
            if silent:
                raise Unreachable(f"{box.name}: no answer for {self.silence:g} s")
            errors.seek(0)
            stderr = errors.read().decode(errors="replace")
        if code == 255 and received:
            raise self._lost(_last_line(stderr) or "the box stopped answering")
        if code == 0:
            raise ConnectionLost(f"{box.name}: {self._ended()}")
        raise box.failure(code, stderr)

    def _item(self, raw: bytes):
        raise NotImplementedError

    def _last(self, item) -> bool:
        return False

    def _lost(self, why: str) -> CodexdashError:
        raise NotImplementedError

    def _ended(self) -> str:
        raise NotImplementedError


def _json_object(raw: bytes) -> dict | None:
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class SshFollower(_SshStream):
    """`logs --json` running on the box, read as it comes: rendered lines, then a FollowEnd."""

    def __init__(self, box: SshBox, args: list[str], target: str) -> None:
        super().__init__(box, args)
        self.target = target

    def _item(self, raw: bytes) -> Line | FollowEnd | None:
        data = _json_object(raw)
        if data is None:
            return None
        if "end" in data:
            end = data["end"] if isinstance(data["end"], dict) else {}
            return FollowEnd(end.get("status"))
        style = data.get("style") if data.get("style") in STYLES else "output"
        return Line(style, sanitize(str(data.get("text", ""))))

    def _last(self, item) -> bool:
        return isinstance(item, FollowEnd)

    def _lost(self, why: str) -> CodexdashError:
        return ConnectionLost(f"{self.box.name}: the connection was lost while following {self.target}: {why}")

    def _ended(self) -> str:
        return f"the follow of {self.target} ended without its end"


class SshWatch(_SshStream):
    """`list --json --watch` running on the box, read as it comes: a Snapshot of the jobs (each
    renamed by the box it was reached as), then one whenever they change, and Heartbeats.

    Its stdin is kept open (the box's watch ends with it); `silence` seconds without a line, not
    even a heartbeat, is a box that does not answer. A nudge is a line on that stdin: the box
    looks at once."""

    STDIN_OPEN = True
    NEEDS = protocol.WATCH

    def nudge(self) -> None:
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None or self._closed.is_set():
                return
            try:
                proc.stdin.write(b"\n")
                proc.stdin.flush()
            except (OSError, ValueError):
                pass  # gone: the reader says why

    def _item(self, raw: bytes) -> Snapshot | Heartbeat | None:
        data = _json_object(raw)
        if data is None:
            return None
        if isinstance(data.get("jobs"), list):
            return Snapshot([self.box._here(job) for job in data["jobs"] if isinstance(job, dict)])
        if "heartbeat" in data:
            return Heartbeat()
        return None

    def _lost(self, why: str) -> CodexdashError:
        # The box is no longer reached: said as a look that cannot connect says it.
        return Unreachable(f"{self.box.name}: unreachable: the connection was lost while watching its jobs: {why}")

    def _ended(self) -> str:
        return "the watch of its jobs ended"


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return sanitize(lines[-1].strip())[:300] if lines else ""
