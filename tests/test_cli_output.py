"""What the command line tells a person: help that shows the forms, `show` with the command
and the model, ambiguous ids answered with the candidates, colour only on a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time

from codexdash.cli import SANDBOX_VALUES, build_parser
from codexdash.starting import SANDBOX_MODES
from codexdash.store import Job


def add_jobs(*ids: str) -> None:
    now = time.time()
    for n, jid in enumerate(ids):
        Job.create(id=jid, marker=f"m-{jid}", status="completed" if n else "failed", argv=json.dumps(["codex", "exec", "--", "x"]),
                   cwd=f"/home/operator/work{n}", prompt=f"prompt {n}", name=f"job number {n}", created_at=now - n,
                   ended_at=now - n, exit_code=0)


def on_a_terminal(sandbox, *args: str, **env: str) -> str:
    """Runs codexdash with its stdout on a terminal (a pty); returns what it wrote there."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "codexdash", *args], stdout=slave, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=sandbox.env(**env), cwd=sandbox.root)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=60) == 0, proc.stderr.read()
    return out.decode()


def test_start_help_lists_the_sandbox_values_and_the_extra_form(sandbox):
    assert SANDBOX_VALUES == SANDBOX_MODES  # the help's list is the engine's
    out = sandbox.cli("start", "--help").stdout
    assert "read-only, workspace-write, danger-full-access" in out
    assert "PROMPT [-- EXTRA ...]" in out and "Arguments after `--` go to `codex exec`" in out


def test_every_json_option_says_what_it_prints():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        for action in command._actions:
            if "--json" in action.option_strings:
                assert action.help, f"{name} --json has no help"


def test_plain_show_has_the_command_line_and_the_model(sandbox):
    job = json.loads(sandbox.cli("start", "--json", "--model", "m-7", "ECHO hi", "--", "-c", "x=1").stdout)
    out = sandbox.cli("show", job["id"]).stdout
    assert "model: m-7" in out
    command = next(line for line in out.splitlines() if line.strip().startswith("command:"))
    assert "exec" in command and "--model m-7" in command and "-c x=1" in command and command.endswith("-- 'ECHO hi'")
    default = json.loads(sandbox.cli("start", "--json", "ECHO hi").stdout)
    assert "model: (Codex's default)" in sandbox.cli("show", default["id"]).stdout


def test_an_ambiguous_id_lists_the_candidates(sandbox):
    add_jobs("0aaaaaaaaa", "0bbbbbbbbb", "1ccccccccc")
    for command in (("kill", "0", "--yes"), ("show", "0"), ("logs", "0"), ("retry", "0")):
        result = sandbox.cli(*command)
        assert result.returncode == 2, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert lines[0] == "codexdash: job '0' is ambiguous: 2 jobs begin with it; give more of its id:", lines
        assert lines[1].startswith("  0aaaaaaaaa  ✖ failed") and "job number 0" in lines[1] and "work0" in lines[1]
        assert lines[2].startswith("  0bbbbbbbbb  ✔ completed") and len(lines) == 3
    assert sandbox.cli("show", "1").returncode == 0  # one job begins with it


def test_colour_on_a_terminal_none_when_piped_or_under_no_color(sandbox):
    add_jobs("0aaaaaaaaa", "0bbbbbbbbb")
    coloured = on_a_terminal(sandbox, "list", "--no-external")
    assert "\x1b[1;31m✖ failed" in coloured and "\x1b[32m✔ completed" in coloured
    assert "\x1b[1;31m✖ failed" in on_a_terminal(sandbox, "show", "0a")
    for plain in (on_a_terminal(sandbox, "list", NO_COLOR="1"), on_a_terminal(sandbox, "show", "0a", NO_COLOR="1"),
                  sandbox.cli("list").stdout, sandbox.cli("show", "0a").stdout):
        assert "\x1b" not in plain and "✖ failed" in plain
