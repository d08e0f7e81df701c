"""The dashboard over two boxes in a real terminal: tmux runs it, send-keys types, capture-pane
reads the screen; each box is a real sshd in its own PID namespace (tests/ssh_boxes.py)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys

import pytest

from tests.conftest import wait_for
from tests.ssh_boxes import make_fleet, tear_down, why_not
from tests.test_e2e_tmux import new_terminal

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.skipif(why_not() is not None, reason=f"SSH boxes: {why_not()}"),
]


@pytest.fixture
def fleet(sandbox):
    fleet = make_fleet(sandbox, ["box1", "box2"])
    yield fleet
    tear_down(fleet)


def start(fleet, host: str, prompt: str) -> dict:
    done = fleet.cli("--host", host, "start", "--json", prompt)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_dashboard_over_two_boxes_in_a_real_terminal(sandbox, fleet, tmp_path):
    streaming = start(fleet, "box1", "STREAM 60")
    sleeping = start(fleet, "box2", "SLEEP 60")  # the newest: the first row (sorted by start)
    env = sandbox.env(TERM="tmux-256color", **fleet.env())
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                       if k.startswith(("CODEX", "PATH", "HOME", "VIRTUAL", "XDG_STATE", "XDG_RUNTIME")))
    done = tmp_path / "exited"
    command = (f"cd {shlex.quote(str(sandbox.root))} && env {exports} {shlex.quote(sys.executable)} -m codexdash; "
               f"echo $? > {done}; sleep 600")
    socket = str(tmp_path / "tmux.sock")
    term = new_terminal(socket, "boxes", command, width=160, height=40)
    try:
        screen = term.wait_screen(streaming["id"], timeout=30)
        screen = term.wait_screen(sleeping["id"])
        assert "Host" in screen and "box1" in screen and "box2" in screen
        term.wait_screen("box1 1 box2 1")  # jobs per box in the status line
        # The cursor stays on the job it is on as other boxes' rows come in: to the first row.
        term.keys("Home")
        term.wait_screen(f"Session {sleeping['id']} on box2")
        term.keys("k")
        screen = term.wait_screen(f"Kill job {sleeping['id']} on box2?")
        assert "✔ marker" in screen and "as box2 ran them" in screen
        term.keys("y")
        term.wait_screen("✝ killed", timeout=30)
        shown = json.loads(fleet.cli("--host", "box2", "show", sleeping["id"], "--json").stdout)
        assert shown["status"] == "killed"
        term.keys("Down")  # box1's job: the pane follows its session on box1
        term.wait_screen("step 3 of 60", timeout=30)
        fleet.boxes["box1"].stop_sshd()
        term.wait_screen("box1 ✖", timeout=30)
        assert "? unreachable" in term.screen()
        term.keys("q")
        wait_for(lambda: done.exists(), timeout=30, message="codexdash to exit")
        assert done.read_text().strip() == "0"
    finally:
        subprocess.run(["tmux", "-S", socket, "kill-server"], capture_output=True)
