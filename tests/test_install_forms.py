"""The kill works however Codex is installed: version managers' shims, interpreters in front of
scripts, the npm wrapper and the native binary change the first words of the command line,
never the job's own arguments; anything else running those arguments is refused."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys

import pytest

import codexdash.fake_codex
from codexdash.identity import runs_job_command, verify
from codexdash.kill import kill_job
from codexdash.store import Job, JobStatus
from tests.conftest import wait_for

ARGS = ["exec", "--skip-git-repo-check", "--thread-source", "codexdash:j1", "-c", "marker", "--", "the prompt"]


@pytest.mark.parametrize("configured,running", [
    # pyenv / asdf / mise shims re-exec the real interpreter: argv[0] changes
    (["/root/.pyenv/shims/python3", "/srv/agent.py"], ["/root/.pyenv/versions/3.11.7/bin/python3", "/srv/agent.py"]),
    (["python3", "/srv/agent.py"], ["/usr/bin/python3.11", "/srv/agent.py"]),
    # a shebang puts the interpreter in front of the script
    (["/usr/lib/node_modules/@openai/codex/bin/codex.js"], ["node", "/usr/lib/node_modules/@openai/codex/bin/codex.js"]),
    (["/x/bin/codex"], ["/usr/bin/node", "--no-warnings", "/x/bin/codex"]),
    # volta / asdf: a `codex` shim ends up as node running the package's codex.js
    (["/root/.asdf/shims/codex"], ["/usr/bin/node", "/root/.asdf/installs/nodejs/20/lib/node_modules/@openai/codex/bin/codex.js"]),
    # `node script.js` configured as is
    (["node", "/srv/codex.js"], ["node", "/srv/codex.js"]),
    (["node", "/srv/codex.js"], ["/home/op/.nvm/versions/node/v22.11.0/bin/node", "/srv/codex.js"]),
    # Node >= 22.15: the wrapper exec()s the native binary in place
    (["/x/bin/codex"], ["/x/lib/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"]),
])
def test_every_legitimate_form_is_accepted(configured, running):
    ok, detail = runs_job_command([*running, *ARGS], [*configured, *ARGS])
    assert ok, detail


@pytest.mark.parametrize("configured,running", [
    (["python3", "/srv/agent.py"], ["python3", "/srv/other.py"]),  # another script
    (["python3", "/srv/agent.py"], ["/bin/sleep", "/srv/agent.py"]),  # another program
    (["/x/bin/codex"], ["node", "/tmp/evil.js"]),
    (["/x/bin/codex"], ["/bin/sh", "-c", "x", "/x/bin/codex"]),  # more than an interpreter in front
    (["/x/bin/codex"], ["sleep"]),
    (["/x/bin/codex"], []),
])
def test_anything_else_is_refused(configured, running):
    ok, _ = runs_job_command([*running, *ARGS], [*configured, *ARGS])
    assert not ok


def test_the_jobs_own_arguments_must_end_the_command_line():
    configured = ["/x/bin/codex"]
    assert not runs_job_command(["/x/bin/codex", *ARGS[:-1], "another prompt"], [*configured, *ARGS])[0]
    assert not runs_job_command(["/x/bin/codex", *ARGS, "more"], [*configured, *ARGS])[0]


def _kill_through(sandbox, command: tuple[str, ...]):
    engine = sandbox.engine
    engine.settings = dataclasses.replace(engine.settings, codex_command=command)
    job = sandbox.start("please SLEEP 60")
    wait_for(lambda: engine.session_file(job), message="the session file")
    report = verify(job)
    report.close()
    assert report.ok, report.reason()
    result = kill_job(engine, job)
    assert result.stopped
    assert Job.get_by_id(job.id).status == JobStatus.KILLED
    return report


def test_kill_through_an_interpreter_shim_that_re_execs(sandbox, tmp_path):
    shims = tmp_path / "shims"
    shims.mkdir()
    shim = shims / "python3"  # as pyenv's: a shell script that execs the real interpreter
    shim.write_text(f'#!/bin/sh\nexec "{os.path.realpath(sys.executable)}" "$@"\n')
    shim.chmod(0o755)
    report = _kill_through(sandbox, (str(shim), codexdash.fake_codex.__file__))
    assert report.cmdline[0] == os.path.realpath(sys.executable)
    assert report.cmdline[1] == codexdash.fake_codex.__file__


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_kill_through_a_node_script_wrapper(sandbox, tmp_path):
    """A Node wrapper that spawns the real program as its child, as the npm package does on
    Node 20, run through its shebang."""
    wrapper = tmp_path / "bin" / "codex.js"
    wrapper.parent.mkdir(exist_ok=True)
    wrapper.write_text(
        "#!/usr/bin/env node\n"
        "const { spawn } = require('child_process');\n"
        f"const child = spawn({sys.executable!r}, [{codexdash.fake_codex.__file__!r}, ...process.argv.slice(2)],"
        " { stdio: 'inherit' });\n"
        "for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));\n"
        "child.on('exit', (code, signal) => process.exit(code === null ? 1 : code));\n"
    )
    wrapper.chmod(0o755)
    report = _kill_through(sandbox, (str(wrapper),))
    assert os.path.basename(report.cmdline[0]) == "node"


def test_what_the_process_actually_runs_is_kept_in_its_history(sandbox, tmp_path):
    from codexdash.store import JobEvent

    shim = tmp_path / "python3"
    shim.write_text(f'#!/bin/sh\nexec "{os.path.realpath(sys.executable)}" "$@"\n')
    shim.chmod(0o755)
    sandbox.engine.settings = dataclasses.replace(sandbox.engine.settings, codex_command=(str(shim), codexdash.fake_codex.__file__))
    job = sandbox.start("please SLEEP 30")
    running = JobEvent.get((JobEvent.job == job.id) & (JobEvent.to_status == "running"))
    # Caught either after the shim re-exec'd the interpreter or, in the instant before, the shim
    # itself run by its shell: both are what the process ran at the time, never what was asked.
    assert running.detail_data["detail"] in (f"runs {os.path.realpath(sys.executable)} {codexdash.fake_codex.__file__}",
                                             f"runs /bin/sh {shim} {codexdash.fake_codex.__file__}")
