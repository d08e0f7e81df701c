"""codexdash in a real terminal: tmux runs it, send-keys types, capture-pane reads the screen."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import psutil
import pytest

from codexdash.store import Job, JobStatus
from tests.conftest import wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Terminal:
    def __init__(self, socket: str, name: str) -> None:
        self.base = ["tmux", "-S", socket]
        self.name = name

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", self.name, *keys], check=True)

    def text(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", self.name, "-l", *keys], check=True)

    def screen(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p", "-t", self.name], capture_output=True, text=True).stdout

    def wait_screen(self, needle: str, timeout: float = 20) -> str:
        return wait_for(lambda: needle in (s := self.screen()) and s, timeout=timeout, message=f"{needle!r} on screen:\n{self.screen()}")


@pytest.fixture
def terminal(sandbox, tmp_path):
    socket = str(tmp_path / "tmux.sock")
    env = sandbox.env(TERM="tmux-256color")
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k.startswith(("CODEX", "PATH", "HOME", "VIRTUAL")))
    done = tmp_path / "exited"
    # Textual draws on stderr: it must stay the terminal. stdout's last words go to a file.
    command = f"cd {shlex.quote(str(sandbox.root))} && env {exports} {shlex.quote(sys.executable)} -m codexdash > {tmp_path}/out.txt; echo $? > {done}"
    subprocess.run(["tmux", "-S", socket, "new-session", "-d", "-s", "dash", "-x", "120", "-y", "32", command], check=True,
                   env={**os.environ, "TERM": "xterm-256color"})
    term = Terminal(socket, "dash")
    term.done = done
    term.out = tmp_path / "out.txt"
    yield term
    subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True)


def test_start_watch_kill_quit_in_a_real_terminal(sandbox, terminal):
    terminal.wait_screen("n New")
    terminal.keys("n")
    terminal.wait_screen("Start a Codex job")
    terminal.text("please SLEEP 90")
    terminal.keys("C-s")
    terminal.wait_screen("● running")
    (job,) = Job.select()
    terminal.wait_screen("$ sleep 90")  # the session pane follows the job's file
    terminal.keys("k")
    screen = terminal.wait_screen(f"Kill job {job.id}?")
    assert "✔ marker" in screen and "✔ start time" in screen
    terminal.keys("y")
    terminal.wait_screen("✝ killed")
    assert Job.get_by_id(job.id).status == JobStatus.KILLED
    assert not psutil.pid_exists(job.pid) or psutil.Process(job.pid).status() == psutil.STATUS_ZOMBIE
    terminal.keys("q")
    wait_for(lambda: terminal.done.exists(), message="codexdash to exit")
    assert terminal.done.read_text().strip() == "0"


def test_quitting_leaves_jobs_running_and_says_so(sandbox, terminal):
    job = sandbox.start("STREAM 60")
    terminal.wait_screen(job.id)
    terminal.keys("q")
    wait_for(lambda: terminal.done.exists(), message="codexdash to exit")
    assert "1 job(s) keep running" in terminal.out.read_text()
    assert psutil.Process(job.pid).is_running()


def test_demo_shows_its_jobs_and_cleans_up(tmp_path):
    import re
    import sqlite3

    socket = str(tmp_path / "tmux.sock")
    done = tmp_path / "exited"
    command = f"{shlex.quote(sys.executable)} -m codexdash demo > {tmp_path}/out.txt; echo $? > {done}"
    subprocess.run(["tmux", "-S", socket, "new-session", "-d", "-s", "demo", "-x", "150", "-y", "32", command], check=True,
                   env={**os.environ, "TERM": "xterm-256color"})
    term = Terminal(socket, "demo")
    try:
        screen = term.wait_screen("codexdash demo")
        screen = term.wait_screen("✖ failed")
        assert "● running" in screen and "✔ completed" in screen
        root = re.search(r"CODEX_HOME (\S+)/codex-home", screen).group(1)
        markers = [m for (m,) in sqlite3.connect(f"{root}/jobs.db").execute("select marker from job")]
        assert len(markers) == 6
        term.keys("q")
        wait_for(lambda: done.exists(), timeout=30, message="the demo to exit")
        assert not os.path.exists(root)
        assert "sandbox removed" in (tmp_path / "out.txt").read_text()
        leftovers = [p for p in psutil.process_iter() if _marker_of(p) in markers]
        assert leftovers == []
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True)


def _marker_of(proc: psutil.Process) -> str | None:
    try:
        return proc.environ().get("CODEXDASH_JOB")
    except (psutil.Error, OSError):
        return None
