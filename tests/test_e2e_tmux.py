"""codexdash in a real terminal: tmux runs it, send-keys types, capture-pane reads the screen."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from codexdash.store import Job, JobStatus
from tests.conftest import wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


TMUX_CONF = str(Path(__file__).parent / "tmux.conf")


def new_terminal(socket: str, name: str, command: str, width: int = 120, height: int = 32) -> "Terminal":
    subprocess.run(["tmux", "-f", TMUX_CONF, "-S", socket, "new-session", "-d", "-s", name, "-x", str(width), "-y", str(height),
                    command], check=True, env={**os.environ, "TERM": "xterm-256color"})
    return Terminal(socket, name)


class Terminal:
    def __init__(self, socket: str, name: str) -> None:
        self.base = ["tmux", "-S", socket]
        self.name = name

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", self.name, *keys], check=True)

    def text(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", self.name, "-l", *keys], check=True)

    def screen(self) -> str:
        done = subprocess.run([*self.base, "capture-pane", "-p", "-t", self.name], capture_output=True, text=True)
        if done.returncode != 0 and "no server" in done.stderr + done.stdout:
            raise AssertionError("the tmux server died (not codexdash): " + done.stderr.strip())
        return done.stdout

    def wait_screen(self, needle: str, timeout: float = 20) -> str:
        return wait_for(lambda: needle in (s := self.screen()) and s, timeout=timeout, message=f"{needle!r} on screen:\n{self.screen()}")


@pytest.fixture
def terminal(sandbox, tmp_path):
    socket = str(tmp_path / "tmux.sock")
    env = sandbox.env(TERM="tmux-256color")
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items() if k.startswith(("CODEX", "PATH", "HOME", "VIRTUAL", "XDG_STATE")))
    done = tmp_path / "exited"
    # Both stdout and stderr stay the terminal (Textual draws on one and sizes itself from
    # both); the pane stays open after the exit so its last words can be read.
    command = f"cd {shlex.quote(str(sandbox.root))} && env {exports} {shlex.quote(sys.executable)} -m codexdash; echo $? > {done}; sleep 600"
    term = new_terminal(socket, "dash", command)
    term.done = done
    yield term
    subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True)


def test_start_watch_kill_quit_in_a_real_terminal(sandbox, terminal):
    terminal.wait_screen("n New")
    terminal.keys("n")
    terminal.wait_screen("Start a Codex job")
    terminal.wait_screen("Cancel (esc)")
    terminal.text("please SLEEP 90")
    terminal.wait_screen("please SLEEP 90")  # typed into the prompt before it is sent
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
    terminal.wait_screen("1 job(s) keep running")
    assert psutil.Process(job.pid).is_running()


def test_demo_shows_its_jobs_and_cleans_up(tmp_path):
    import re
    import sqlite3

    socket = str(tmp_path / "tmux.sock")
    done = tmp_path / "exited"
    command = f"{shlex.quote(sys.executable)} -m codexdash demo; echo $? > {done}; sleep 600"
    term = new_terminal(socket, "demo", command, width=240)  # wide enough for CODEX_HOME in the status line
    try:
        screen = term.wait_screen("codexdash demo")
        screen = term.wait_screen("✖ failed")
        assert "● running" in screen and "✔ completed" in screen
        root = re.search(r"CODEX_HOME (\S+)/codex-home", screen).group(1)
        markers = [m for (m,) in sqlite3.connect(f"{root}/jobs.db").execute("select marker from job")]
        from codexdash.demo import DEMO_JOBS

        assert len(markers) == len(DEMO_JOBS) + 1  # and a follow-up of the first
        term.keys("q")
        wait_for(lambda: done.exists(), timeout=30, message="the demo to exit")
        assert not os.path.exists(root)
        term.wait_screen("sandbox removed")
        leftovers = [p for p in psutil.process_iter() if _marker_of(p) in markers]
        assert leftovers == []
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True)


def _marker_of(proc: psutil.Process) -> str | None:
    try:
        return proc.environ().get("CODEXDASH_JOB")
    except (psutil.Error, OSError):
        return None


def dashboards(db_path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.info["cmdline"][-2:] == ["-m", "codexdash"] and proc.environ().get("CODEXDASH_DB") == str(db_path):
                found.append(proc)
        except (psutil.Error, TypeError, IndexError):
            continue
    return found


def test_closed_terminal_leaves_jobs_running_for_the_next_dashboard(sandbox, terminal, tmp_path):
    job = sandbox.start("STREAM 120")
    terminal.wait_screen(job.id)
    (dashboard,) = wait_for(lambda: dashboards(sandbox.db_path), message="the dashboard process")
    subprocess.run([*terminal.base, "kill-server"], check=True)  # the terminal goes away: SIGHUP
    wait_for(lambda: not dashboard.is_running() or dashboard.status() == psutil.STATUS_ZOMBIE, message="the dashboard to end")
    assert psutil.Process(job.pid).is_running()
    assert Job.get_by_id(job.id).status == JobStatus.RUNNING
    socket = str(tmp_path / "again.sock")
    env_exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in sandbox.env().items() if k.startswith(("CODEX", "PATH", "HOME", "XDG_STATE")))
    again = new_terminal(socket, "again", f"env {env_exports} {shlex.quote(sys.executable)} -m codexdash")
    try:
        screen = again.wait_screen(job.id)
        assert "● running" in screen
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True)


def test_keys_typed_in_one_burst_land_in_the_start_dialog_fields(sandbox, terminal):
    terminal.wait_screen("n New")
    # One send-keys call: tmux writes them all at once, as a fast typist over a laggy link would.
    terminal.keys("n", "ECHO say hi", "Tab", "XYZ")
    screen = terminal.wait_screen("XYZ")
    assert "Start a Codex job" in screen and "ECHO say hi" in screen and "ECHO say hiXYZ" not in screen
    terminal.keys("C-s")
    (job,) = wait_for(lambda: list(Job.select()), message="the job recorded")
    assert (job.prompt, job.name) == ("ECHO say hi", "XYZ")
    terminal.wait_screen("✔ completed")
    assert "XYZ" in terminal.screen()


def test_follow_up_and_changes_in_a_real_terminal(sandbox, terminal, tmp_path):
    """A finished job answered with a follow-up from the dashboard, then each job's own changes
    read in the Changes view: the keys an operator presses, the screen they see."""
    from tests.test_changes import make_repo

    repo = make_repo(sandbox.root / "repo", {"a.txt": "a\n", "b.txt": "b\n"})
    parent = sandbox.start("PATCH a.txt from the first turn", cwd=str(repo), name="first")
    terminal.wait_screen("✔ completed")
    terminal.keys("c")
    terminal.wait_screen(f"Follow-up on job {parent.id}")
    terminal.text("PATCH b.txt from the follow-up")
    terminal.wait_screen("PATCH b.txt from the follow-up")
    terminal.keys("C-s")
    follow_up = wait_for(lambda: Job.get_or_none(Job.parent_id == parent.id), message="the follow-up recorded")
    wait_for(lambda: Job.get_by_id(follow_up.id).status == JobStatus.COMPLETED, message="the follow-up to complete")
    screen = terminal.wait_screen(f"job {follow_up.id}")  # the pane rules the follow-up's part
    assert "↳" in screen  # the follow-up's row is marked as one
    assert f"job {parent.id}" in screen  # the parent's part of the shared file, above it
    assert Job.get_by_id(parent.id).status == JobStatus.COMPLETED  # the follow-up did not rewrite it

    terminal.keys("d")  # the selected job is the new follow-up
    screen = terminal.wait_screen(f"Changes of job {follow_up.id}")
    screen = terminal.wait_screen("+from the follow-up")
    assert "b.txt" in screen and "from the first turn" not in screen  # its own turn only
    terminal.keys("s")  # files only
    wait_for(lambda: "+from the follow-up" not in (s := terminal.screen()) and "b.txt" in s,
             message="the files-only view")
    terminal.keys("Escape")
    wait_for(lambda: "Changes of job" not in terminal.screen(), message="the Changes view to close")
    terminal.keys("Down")  # the parent, below its follow-up (newest first)
    terminal.keys("d")
    terminal.wait_screen(f"Changes of job {parent.id}")
    screen = terminal.wait_screen("+from the first turn")
    assert "+from the follow-up" not in screen  # the parent's diff stops where its follow-up began
