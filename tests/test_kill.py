"""Safe kill: every identity check, each refusal, and the escalation over the whole job."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from codexdash.errors import Refused
from codexdash.identity import Check, IdentityReport, marker_argument, verify
from codexdash.kill import kill_job
from codexdash.procs import marked_processes
from codexdash.store import Job, JobEvent, JobStatus
from tests.conftest import wait_for


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_events(job_id: str) -> list[dict]:
    return [e.detail_data for e in JobEvent.select().where((JobEvent.job == job_id) & (JobEvent.kind == "kill"))]


def tool_pids(job) -> list[int]:
    """The job's tool commands: processes carrying the marker in sessions of their own."""
    return [p.pid for p in marked_processes(job.marker) if os.getsid(p.pid) != job.pid]


def test_kill_stops_the_whole_job_gracefully(sandbox):
    job = sandbox.start("please SLEEP 60")
    wait_for(lambda: tool_pids(job), message="the tool command to start")
    result = kill_job(sandbox.engine, job)
    assert result.stopped and result.sent == ["SIGINT"]
    assert marked_processes(job.marker) == []
    stored = Job.get_by_id(job.id)
    assert stored.status == JobStatus.KILLED and stored.killed_by_us
    assert stored.exit_code == 1  # the fake, like Codex, exits 1 on SIGINT after recording it
    (event,) = kill_events(job.id)
    assert event["outcome"] == "stopped" and event["checks"]["ok"]
    assert [c["name"] for c in event["checks"]["checks"]] == ["process", "start time", "marker", "command", "user"]
    assert "turn_aborted" in open(sandbox.engine.session_file(stored)).read()


def test_escalation_ends_a_job_that_ignores_sigint_and_sigterm(sandbox):
    job = sandbox.start("IGNORE_SIGNALS STREAM 120")
    wait_for(lambda: sandbox.engine.session_file(job), message="session file")
    result = kill_job(sandbox.engine, job)
    assert result.sent == ["SIGINT", "SIGTERM", "SIGKILL"]
    assert not alive(job.pid)
    assert Job.get_by_id(job.id).status == JobStatus.KILLED


def test_force_skips_the_graceful_steps(sandbox):
    job = sandbox.start("STREAM 120")
    result = kill_job(sandbox.engine, job, force=True)
    assert result.sent == ["SIGKILL"] and result.stopped


def test_children_that_escape_the_group_are_swept(sandbox):
    job = sandbox.start("ESCAPE 120 then SLEEP 120")
    escaped = wait_for(lambda: [p for p in marked_processes(job.marker) if p.cmdline()[:2] == ["sleep", "120"]
                                and os.getsid(p.pid) != job.pid and len(tool_pids(job)) >= 2], message="escaped child")
    result = kill_job(sandbox.engine, job)
    assert result.stopped
    assert marked_processes(job.marker) == []
    assert all(not alive(p.pid) for p in escaped)


def test_process_that_execd_into_something_else_is_refused(sandbox):
    job = sandbox.start("EXEC now")
    wait_for(lambda: psutil.Process(job.pid).name() == "sleep", message="the exec")
    with pytest.raises(Refused, match="marker"):
        kill_job(sandbox.engine, job)
    assert alive(job.pid)
    (event,) = kill_events(job.id)
    assert event["outcome"] == "refused"
    failed = {c["name"] for c in event["checks"]["checks"] if not c["ok"]}
    assert failed == {"marker", "command"}


def test_other_start_time_is_refused_and_nothing_is_sent(sandbox):
    job = sandbox.start("STREAM 60")
    with sandbox.engine.store.write():
        Job.update(pid_start_time=job.pid_start_time - 5).where(Job.id == job.id).execute()
    stale = Job.get_by_id(job.id)
    report = verify(stale)
    assert [c.name for c in report.failures] == ["start time"]
    with pytest.raises(Refused):
        kill_job(sandbox.engine, stale)
    assert alive(job.pid)
    assert psutil.Process(job.pid).status() != psutil.STATUS_STOPPED


def test_finished_job_is_not_signalled(sandbox):
    job = sandbox.start("ECHO done")
    wait_for(lambda: not sandbox.engine.refresh([job])[0].job.is_live, message="the end")
    with pytest.raises(Refused, match="not running"):
        kill_job(sandbox.engine, job)


def test_cancelled_confirmation_sends_nothing(sandbox):
    job = sandbox.start("STREAM 60")
    with pytest.raises(Refused, match="cancelled"):
        kill_job(sandbox.engine, job, confirm=lambda report, plan: False)
    assert alive(job.pid)
    assert Job.get_by_id(job.id).status == JobStatus.RUNNING


def test_a_second_killer_is_refused_while_the_first_proceeds(sandbox):
    job = sandbox.start("STREAM 60")
    other_codexdash = subprocess.Popen(["sleep", "60"])  # stands for a live codexdash mid-kill
    try:
        other_view = Job.get_by_id(job.id)
        assert sandbox.engine.transition(other_view, JobStatus.STOPPING, expect=(JobStatus.RUNNING,), killed_by_us=True,
                                         actor_pid=other_codexdash.pid,
                                         actor_start_time=psutil.Process(other_codexdash.pid).create_time())
        with pytest.raises(Refused, match="already being stopped"):
            kill_job(sandbox.engine, job)
        assert alive(job.pid)
        other_codexdash.kill()
        other_codexdash.wait()
        # Its codexdash is gone: the kill is taken over and finished.
        result = kill_job(sandbox.engine, Job.get_by_id(job.id))
        assert result.stopped and Job.get_by_id(job.id).status == JobStatus.KILLED
        assert "taken over" in [e.get("outcome") for e in kill_events(job.id)]
    finally:
        other_codexdash.kill()
        other_codexdash.wait()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to run a process as another user")
def test_process_of_another_user_is_refused(sandbox):
    marker = "cdx-" + "0" * 32
    argv = ["/bin/sh", "-c", "sleep 60; :", "exec", "-c", marker_argument(marker), "--", "x"]
    proc = subprocess.Popen(argv, user="nobody", env={"CODEXDASH_JOB": marker}, start_new_session=True, cwd="/")
    try:
        wait_for(lambda: psutil.Process(proc.pid).cmdline() == argv, message="the impostor to start")
        with sandbox.engine.store.write():
            Job.create(id="0ther0user", marker=marker, status=JobStatus.RUNNING, argv=json.dumps(argv), cwd="/", prompt="x",
                       created_at=time.time() - 1, pid=proc.pid, pid_start_time=psutil.Process(proc.pid).create_time())
        job = Job.get_by_id("0ther0user")
        report = verify(job)
        assert [c.name for c in report.failures] == ["user"]
        with pytest.raises(Refused, match="user"):
            kill_job(sandbox.engine, job)
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


PID_REUSE_SCRIPT = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    from pathlib import Path
    import psutil
    from codexdash.config import Settings
    from codexdash.errors import Refused
    from codexdash.identity import verify
    from codexdash.jobs import JobEngine
    from codexdash.starting import StartRequest
    from codexdash.kill import kill_job
    from codexdash.store import Job, open_store

    home, db, codex = (Path(a) for a in sys.argv[1:4])
    engine = JobEngine(Settings(codex_home=home, db_path=db, codex_command=(str(codex),)), open_store(db))
    job = engine.start(StartRequest(prompt="STREAM 60", cwd="/"))
    started = time.monotonic()
    pid, argv = job.pid, job.argv_list
    # Start times have a resolution of one clock tick (10 ms): let a few pass, so the impostor
    # is another process by its start time, as any real PID reuse is.
    while time.monotonic() - started < 0.1:
        time.sleep(0.01)
    os.killpg(pid, signal.SIGKILL)
    engine._children.pop(job.id).wait()
    # The next process of this PID namespace gets the job's PID: same command line, same marker.
    with open("/proc/sys/kernel/ns_last_pid", "w") as fh:
        fh.write(str(pid - 1))
    env = dict(os.environ, CODEXDASH_JOB=job.marker)
    impostor = subprocess.Popen(argv, env=env, start_new_session=True, stdin=subprocess.DEVNULL)
    assert impostor.pid == pid, (impostor.pid, pid)
    deadline = time.monotonic() + 10
    while psutil.Process(pid).cmdline()[-len(argv):] != argv:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    report = verify(Job.get_by_id(job.id))
    print("FAILED", [c.name for c in report.failures])
    try:
        kill_job(engine, Job.get_by_id(job.id))
        print("KILLED")
    except Refused as exc:
        print("REFUSED", exc)
    print("IMPOSTOR ALIVE", impostor.poll() is None)
    impostor.kill()
    """
)


@pytest.mark.skipif(os.getuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare for a PID namespace")
def test_reused_pid_with_same_command_and_marker_is_never_signalled(sandbox):
    done = subprocess.run(
        ["unshare", "-pf", "--mount-proc", sys.executable, "-c", PID_REUSE_SCRIPT,
         str(sandbox.codex_home), str(sandbox.root / "ns.db"), str(sandbox.codex)],
        capture_output=True, text=True, timeout=60,
    )
    if done.returncode != 0 and "unshare" in done.stderr and "Operation not permitted" in done.stderr:
        pytest.skip("PID namespaces are not allowed here: " + done.stderr.strip())
    assert done.returncode == 0, done.stderr
    assert "FAILED ['start time']" in done.stdout
    assert "REFUSED" in done.stdout and "KILLED" not in done.stdout
    assert "IMPOSTOR ALIVE True" in done.stdout


def test_a_confirmation_that_outlived_the_checks_is_checked_again(sandbox, monkeypatch):
    import codexdash.kill

    monkeypatch.setattr(codexdash.kill, "REVERIFY_AFTER", 0.0)  # every confirmation counts as slow
    job = sandbox.start("STREAM 60")
    # Right after exec() the kernel may not show the new command line yet.
    wait_for(lambda: marker_argument(job.marker) in psutil.Process(job.pid).cmdline(), message="the command line")

    def confirm_while_the_record_changes(report, plan):
        assert report.ok
        with sandbox.engine.store.write():  # what was verified is no longer what is recorded
            Job.update(pid_start_time=job.pid_start_time - 5).where(Job.id == job.id).execute()
        return True

    with pytest.raises(Refused, match="start time"):
        kill_job(sandbox.engine, job, confirm=confirm_while_the_record_changes)
    assert alive(job.pid) and Job.get_by_id(job.id).status == JobStatus.RUNNING
    assert [e["outcome"] for e in kill_events(job.id)] == ["refused"]


def test_a_process_seen_in_the_middle_of_its_exec_is_checked_again(sandbox, monkeypatch):
    import codexdash.kill

    job = sandbox.start("STREAM 60")
    wait_for(lambda: marker_argument(job.marker) in psutil.Process(job.pid).cmdline(), message="the command line")
    real, calls = codexdash.kill.verify, []

    def in_exec_at_first(j):  # what the kernel shows for a moment after exec(): no command line
        calls.append(j.id)
        if len(calls) == 1:
            return IdentityReport(j.id, j.pid, [Check("process", True, "alive"), Check("marker", False, "missing")])
        return real(j)

    monkeypatch.setattr(codexdash.kill, "verify", in_exec_at_first)
    result = kill_job(sandbox.engine, job, force=True)
    assert result.stopped and len(calls) == 2
    assert [e["outcome"] for e in kill_events(job.id)] == ["stopped"]


def test_a_kill_left_unfinished_is_not_finished_on_a_process_that_fails_its_checks(sandbox):
    job = sandbox.start("EXEC now")
    wait_for(lambda: psutil.Process(job.pid).name() == "sleep", message="the exec")
    dead = subprocess.Popen(["true"])  # stands for a codexdash that died mid-kill
    dead_start = psutil.Process(dead.pid).create_time()
    dead.wait()
    assert sandbox.engine.transition(job, JobStatus.STOPPING, expect=(JobStatus.RUNNING,), killed_by_us=True,
                                     actor_pid=dead.pid, actor_start_time=dead_start)
    for _look in range(2):
        sandbox.engine.refresh([job])
    assert alive(job.pid) and psutil.Process(job.pid).status() != psutil.STATUS_STOPPED
    assert Job.get_by_id(job.id).status == JobStatus.STOPPING
    events = kill_events(job.id)
    assert [e["outcome"] for e in events] == ["taken over", "refused"]  # once: this process holds it now
    assert "marker" in {c["name"] for c in events[-1]["checks"]["checks"] if not c["ok"]}
