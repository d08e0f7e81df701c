"""The real Codex CLI from the npm registry, offline against a local mock model server.

Run through codexdash's core and CLI with CODEXDASH_CODEX pointing at the real program: every
test runs against each release in tests/real_codex_support.py (0.169.0 and 0.171.0), in both
shapes the program takes (the Node wrapper, which spawns the native binary as its child on
Node < 22.15, and the native binary itself, which newer Node exec()s in place).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from codexdash.identity import verify
from codexdash.kill import kill_job
from codexdash.procs import marked_processes
from codexdash.store import Job, JobStatus
from tests.conftest import wait_for
from tests.mock_model_server import MockModelServer
from tests.real_codex_support import SHAPES, mock_server, real_codex  # noqa: F401 (fixtures)

pytestmark = pytest.mark.real_codex


@pytest.fixture(params=SHAPES)
def codex_box(request, sandbox, real_codex, mock_server, monkeypatch):  # noqa: F811
    """A sandbox whose Codex command is the real CLI, configured for the mock server."""
    (sandbox.codex_home / "config.toml").write_text(mock_server.config_toml())
    monkeypatch.setenv("MOCK_API_KEY", "offline")
    program = str(real_codex.program(request.param))
    monkeypatch.setenv("CODEXDASH_CODEX", program)
    sandbox.codex = Path(program)
    sandbox.engine.settings = sandbox.settings.with_overrides(codex_command=(program,))
    sandbox.server = mock_server
    sandbox.release = real_codex.version
    sandbox.shape = request.param
    sandbox.native = real_codex.native
    return sandbox


def running_tool(job, *cmd: str) -> list[psutil.Process]:
    """The job's processes running `cmd` (Codex's tool commands carry the marker too)."""
    found = []
    for proc in marked_processes(job.marker):
        try:
            if proc.cmdline()[: len(cmd)] == list(cmd):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def finished(box, job):
    def check():
        box.engine.refresh([job])
        return not job.is_live
    wait_for(check, timeout=60, message=f"job {job.id} to finish")
    return Job.get_by_id(job.id)


def test_short_job_completes_and_logs_render_it(codex_box):
    job = codex_box.start("please SLEEP 1")
    done = finished(codex_box, job)
    assert done.status == JobStatus.COMPLETED, done.detail
    assert done.exit_code == 0
    assert done.session_file and done.session_id in done.session_file
    meta = json.loads(Path(done.session_file).read_text().split("\n", 1)[0])
    assert meta["payload"]["cli_version"] == codex_box.release  # the release under test ran
    logs = codex_box.cli("logs", done.id)
    assert logs.returncode == 0, logs.stderr
    assert "› please SLEEP 1" in logs.stdout
    assert "$ sleep 1" in logs.stdout and "exit 0" in logs.stdout
    assert "• hi from mock" in logs.stdout and "✔ completed" in logs.stdout


def test_long_job_runs_is_followed_and_killed_with_its_whole_tree(codex_box):
    job = codex_box.start("please SLEEP 120")
    # The tool command: `sleep 120`, run by Codex in a session of its own.
    tool = wait_for(lambda: running_tool(job, "sleep", "120"), timeout=60, message="Codex to run the tool command")
    assert os.getsid(tool[0].pid) != job.pid
    top = psutil.Process(job.pid)
    if codex_box.shape == "wrapper":  # Node 20: the wrapper spawns the native binary as its child
        assert top.name() == "node"
        assert [p for p in top.children() if Path(p.exe()) == codex_box.native.resolve()]
    else:
        assert Path(top.exe()) == codex_box.native.resolve()
    # Tokens while the first tool command runs: only token_usage_record is written by then.
    wait_for(lambda: codex_box.engine.refresh([job])[0].total_tokens == 15, timeout=30, message="live tokens")
    view = codex_box.engine.refresh([job])[0]
    assert view.job.status == JobStatus.RUNNING
    assert view.stats is not None and view.stats.rss_bytes > 10_000_000 and view.stats.processes >= 1
    assert codex_box.engine.session_file(job) is not None
    follow = subprocess.Popen([os.sys.executable, "-m", "codexdash", "logs", job.id, "--follow"], env=codex_box.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        report = verify(job)
        report.close()
        assert report.ok, report.reason()
        listed = json.loads(codex_box.cli("list", "--json").stdout)
        assert listed[0]["status"] == "running" and listed[0]["rss_bytes"] > 0
        result = kill_job(codex_box.engine, job)
        assert result.stopped
        assert marked_processes(job.marker) == []
        assert all(not p.is_running() or p.status() == psutil.STATUS_ZOMBIE for p in tool)
        assert Job.get_by_id(job.id).status == JobStatus.KILLED
        out, _ = follow.communicate(timeout=30)  # follow ends with the job
        assert "› please SLEEP 120" in out and "$ sleep 120" in out
    finally:
        follow.kill()  # never left behind, whatever failed
        follow.wait()


def test_unreachable_model_server_gives_failed(codex_box):
    config = codex_box.codex_home / "config.toml"
    with MockModelServer() as gone:
        port = gone.port
    config.write_text(codex_box.server.config_toml().replace(f":{codex_box.server.port}/", f":{port}/"))
    done = finished(codex_box, codex_box.start("say hi"))
    assert done.status == JobStatus.FAILED
    assert "onnect" in (done.detail or "")


def test_sigint_gives_interrupted(codex_box):
    job = codex_box.start("please SLEEP 120")
    wait_for(lambda: running_tool(job, "sleep", "120"), timeout=60, message="the tool command")
    os.killpg(job.pid, signal.SIGINT)  # as a user pressing ctrl+c would
    done = finished(codex_box, job)
    assert done.status == JobStatus.INTERRUPTED
    logs = codex_box.cli("logs", done.id)
    assert "$ sleep 120" in logs.stdout and "↳ aborted" in logs.stdout and "↳ finished" not in logs.stdout


def test_a_command_handed_back_still_running_is_shown_so(codex_box):
    # yield_time_ms 300: Codex hands `sleep 5` back to the model while it runs; the model ends
    # the turn at once.
    done = finished(codex_box, codex_box.start("please SLEEP 5 YIELD 300"))
    assert done.status == JobStatus.COMPLETED, done.detail
    logs = codex_box.cli("logs", done.id)
    assert "$ sleep 5" in logs.stdout and "↳ still running" in logs.stdout and "✔ completed" in logs.stdout
