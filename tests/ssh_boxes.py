"""Boxes for the tests: a real sshd per box on 127.0.0.1, each box in a PID namespace of its own.

Each box has its own store, CODEX_HOME and fake Codex, and its PIDs start at 1, so the jobs of
two boxes can have the same PID, as on real machines. A box's namespace is held by a long-lived
init (pid 1 there, reaping orphans) so a job started over ssh outlives the session that
started it; sshd's ForceCommand enters that namespace (`nsenter`) for every command. The
operator's ssh reads a generated client configuration (`ssh -F`), passed the way users pass
theirs: CODEXDASH_SSH="ssh -F <config>".
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from codexdash.fake_codex import install
from tests.conftest import Sandbox, wait_for

SSHD = "/usr/sbin/sshd"

# pid 1 of a box: reaps whatever is orphaned there (jobs whose starter left) and otherwise sleeps.
INIT = """
import os, signal
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
while True:
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
    signal.sigwaitinfo({signal.SIGCHLD})
"""


def why_not() -> str | None:
    """Why the SSH box tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root: an sshd of its own and a PID namespace per box (unshare -p)"
    missing = [p for p in (SSHD, "ssh", "ssh-keygen", "unshare", "nsenter") if shutil.which(p) is None]
    if missing:
        return f"{', '.join(missing)} not installed (Debian: openssh-server, openssh-client, util-linux)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path, comment: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True,
                   stdin=subprocess.DEVNULL, capture_output=True)
    return path.with_suffix(".pub").read_text().strip()


@dataclass
class SshdBox:
    name: str
    root: Path
    port: int
    host_key: str
    db: Path
    codex_home: Path
    unshare: subprocess.Popen | None = None
    init_pid: int | None = None
    sshd: subprocess.Popen | None = None

    def start_namespace(self) -> None:
        self.unshare = subprocess.Popen(["unshare", "-pf", "--mount-proc", sys.executable, "-c", INIT],
                                        stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        parent = psutil.Process(self.unshare.pid)

        def init():
            if self.unshare.poll() is not None:
                pytest.skip(f"unshare -pf --mount-proc failed here (exit {self.unshare.returncode}): no PID namespaces")
            kids = parent.children()
            return kids[0].pid if kids else None
        self.init_pid = wait_for(init, message=f"the init of {self.name}'s PID namespace")

    def write_sshd(self, authorized_keys: Path, venv_bin: Path, codex: Path) -> Path:
        home = self.root / "home"
        home.mkdir(parents=True, exist_ok=True)
        self.codex_home.mkdir(parents=True, exist_ok=True)
        enter = self.root / "enter"
        # Every command of this box runs in its namespace, with its own store and Codex home.
        enter.write_text(
            "#!/bin/sh\n"
            f"exec nsenter -t {self.init_pid} -p -m --wd={home} -- env -i PATH={venv_bin}:/usr/local/bin:/usr/bin:/bin "
            f"HOME={home} LANG=C.UTF-8 CODEXDASH_DB={self.db} CODEX_HOME={self.codex_home} CODEXDASH_CODEX={codex} "
            f"CODEXDASH_CONFIG={self.root / 'config.toml'} /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n"
        )
        enter.chmod(0o755)
        config = self.root / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress 127.0.0.1:{self.port}",
            f"HostKey {self.root / 'host_key'}",
            f"AuthorizedKeysFile {authorized_keys}",
            "PidFile none",
            "StrictModes no",
            "UsePAM no",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "AllowTcpForwarding no",
            "X11Forwarding no",
            "PrintMotd no",
            "MaxSessions 50",
            # The login shell runs the ForceCommand: as a nested shell it reads no rc files.
            "SetEnv SHLVL=1",
            f"ForceCommand {enter}",
            "LogLevel ERROR",
            "",
        ]))
        return config

    def start_sshd(self, config: Path) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        log = open(self.root / "sshd.log", "ab")
        self.sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, start_new_session=True)
        log.close()

        def listening():
            if self.sshd.poll() is not None:
                raise AssertionError(f"sshd of {self.name} exited: {(self.root / 'sshd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(listening, message=f"sshd of {self.name} listening")

    def stop_sshd(self) -> None:
        """The box's sshd and every session it serves go away at once, as when a box dies."""
        if self.sshd is None:
            return
        try:
            tree = [psutil.Process(self.sshd.pid), *psutil.Process(self.sshd.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for proc in tree:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        self.sshd.wait(timeout=30)

    def kill(self) -> None:
        """The box dies: its sshd, its sessions and everything in its PID namespace."""
        self.stop_sshd()
        if self.init_pid is not None:
            try:
                os.kill(self.init_pid, signal.SIGKILL)  # the kernel ends the whole namespace with it
            except ProcessLookupError:
                pass
        if self.unshare is not None:
            self.unshare.wait(timeout=30)

    def commands(self, *words: str) -> dict[int, list[str]]:
        """The processes of this box (by their PID outside it) whose command line has every
        one of `words`: their command lines."""
        box_ns = os.readlink(f"/proc/{self.init_pid}/ns/pid")
        found = {}
        for proc in psutil.process_iter():
            try:
                if os.readlink(f"/proc/{proc.pid}/ns/pid") != box_ns:
                    continue
                cmdline = proc.cmdline()
            except (OSError, psutil.Error):
                continue
            if all(word in cmdline for word in words):
                found[proc.pid] = cmdline
        return found

    def process(self, pid_in_box: int) -> psutil.Process | None:
        """The process this box calls `pid_in_box`, seen from outside its namespace, or None."""
        box_ns = os.readlink(f"/proc/{self.init_pid}/ns/pid")
        for proc in psutil.process_iter():
            try:
                if os.readlink(f"/proc/{proc.pid}/ns/pid") != box_ns:
                    continue
                status = Path(f"/proc/{proc.pid}/status").read_text()
            except OSError:
                continue
            nspids = next((line.split()[1:] for line in status.splitlines() if line.startswith("NSpid:")), [])
            if nspids and int(nspids[-1]) == pid_in_box:
                return proc
        return None


@dataclass
class Fleet:
    """The operator's machine (the sandbox) and the boxes it reaches by ssh."""

    sandbox: Sandbox
    root: Path
    ssh_config: Path
    runtime_dir: Path
    boxes: dict[str, SshdBox] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "CODEXDASH_SSH": f"ssh -F {self.ssh_config}",
            "CODEXDASH_HOSTS": ",".join(self.boxes),
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
        }
        env.update(extra)
        return env

    def cli(self, *args: str, input: str | None = None, timeout: float = 120, **env: str):
        return self.sandbox.cli(*args, input=input, timeout=timeout, **self.env(**env))

    def popen(self, *args: str, **env: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "codexdash", *args], env=self.sandbox.env(**self.env(**env)),
                                cwd=self.sandbox.root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def masters(self) -> list[psutil.Process]:
        """ssh's shared connections this test opened (their control sockets are in our dir)."""
        mine = str(self.runtime_dir)
        found = []
        for proc in psutil.process_iter(["name", "cmdline"]):
            try:
                if proc.info["name"] == "ssh" and any(mine in part for part in proc.info["cmdline"] or []):
                    found.append(proc)
            except psutil.Error:
                continue
        return found


def make_fleet(sandbox: Sandbox, names: list[str], extra_hosts: dict[str, str] | None = None) -> Fleet:
    """Starts a box per name; `extra_hosts` adds client-config entries (name -> lines)."""
    reason = why_not()
    if reason:
        pytest.skip(reason)
    root = sandbox.root / "fleet"
    root.mkdir()
    # Control sockets need a short path (a Unix socket path is at most 107 bytes).
    runtime = Path(tempfile.mkdtemp(prefix="cdxrun-", dir="/tmp"))
    keys = root / "keys"
    keys.mkdir(mode=0o700)
    authorized = keys / "authorized_keys"
    authorized.write_text(keygen(keys / "id_ed25519", "operator") + "\n")
    codex = install(root / "bin")
    venv_bin = Path(sys.executable).parent
    fleet = Fleet(sandbox, root, root / "ssh_config", runtime)
    known, client = [], []
    for name in names:
        box_root = root / name
        box_root.mkdir()
        box = SshdBox(name, box_root, free_port(), keygen(box_root / "host_key", name),
                      db=box_root / "data" / "jobs.db", codex_home=box_root / "codex-home")
        fleet.boxes[name] = box
        box.start_namespace()
        box.start_sshd(box.write_sshd(authorized, venv_bin, codex))
        known.append(f"[127.0.0.1]:{box.port} {box.host_key}")
        client += [f"Host {name}", "  HostName 127.0.0.1", f"  Port {box.port}"]
    for name, lines in (extra_hosts or {}).items():
        client += [f"Host {name}", *(f"  {line}" for line in lines)]
    (root / "known_hosts").write_text("\n".join(known) + "\n")
    client += [
        "Host *",
        "  User root",
        f"  IdentityFile {keys / 'id_ed25519'}",
        "  IdentitiesOnly yes",
        "  IdentityAgent none",
        f"  UserKnownHostsFile {root / 'known_hosts'}",
        "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes",
        "  LogLevel ERROR",
    ]
    fleet.ssh_config.write_text("\n".join(client) + "\n")
    return fleet


def tear_down(fleet: Fleet) -> None:
    for box in fleet.boxes.values():
        box.kill()
    for proc in fleet.masters():
        try:
            proc.kill()
        except psutil.Error:
            pass
    shutil.rmtree(fleet.runtime_dir, ignore_errors=True)
