"""Told when a job ends, dashboard or not: the notify hook, run once per event by whichever
codexdash notices it, and the watcher that notices with nothing else open."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from codexdash import notify, watcher
from codexdash.config import STALL_SECONDS, load_settings
from codexdash.errors import BadInput
from codexdash.jobs import JobEngine, job_json
from codexdash.store import Job, JobEvent, JobStatus
from tests.conftest import wait_for

HOOK = textwrap.dedent("""\
    import json, sys
    data = json.loads(sys.stdin.read())
    with open(sys.argv[1], "a") as fh:  # one write of one line per event
        fh.write(json.dumps(data) + "\\n")
""")


@pytest.fixture
def hook(sandbox) -> tuple[str, Path]:
    """The notify command (for CODEXDASH_NOTIFY_COMMAND) and the file it appends events to."""
    script = sandbox.root / "hook.py"
    script.write_text(HOOK)
    out = sandbox.root / "events.jsonl"
    return shlex.join([sys.executable, str(script), str(out)]), out


def events(out: Path, job_id: str | None = None) -> list[dict]:
    if not out.exists():
        return []
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return [r for r in rows if job_id is None or r["id"] == job_id]


def history(job_id: str, kind: str) -> list[dict]:
    return [e.detail_data for e in JobEvent.select().where((JobEvent.job == job_id) & (JobEvent.kind == kind))]


def start(sandbox, prompt: str, **env: str) -> dict:
    done = sandbox.cli("start", "--json", prompt, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def watcher_process(sandbox) -> psutil.Process:
    def found():
        pid = watcher.watcher_pid(sandbox.db_path)
        try:
            proc = psutil.Process(pid) if pid else None
            return proc if proc and "codexdash.watcher" in proc.cmdline() and not gone(proc) else None
        except psutil.Error:
            return None
    return wait_for(found, message="the watcher")


def gone(proc: psutil.Process) -> bool:
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_watcher_exit(sandbox) -> None:
    pid = watcher.watcher_pid(sandbox.db_path)
    try:
        proc = psutil.Process(pid) if pid else None
        if proc is None or "codexdash.watcher" not in " ".join(proc.cmdline()):
            return
    except psutil.Error:  # gone, or exited and not reaped yet
        return
    wait_for(lambda: gone(proc), message="the watcher to exit with nothing live")


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        fields = fh.read().rsplit(b")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15 of proc(5))


def sleeping_in_poll(pid: int) -> bool:
    with open(f"/proc/{pid}/stat", "rb") as fh:
        state = fh.read().rsplit(b")", 1)[1].split()[0]
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        wchan = ""
    return state == b"S" and ("poll" in wchan or wchan in ("", "0"))


# ---- finished: exactly once, no dashboard open --------------------------------------------------


@pytest.mark.parametrize("prompt, status", [("ECHO all done", "completed"), ("FAIL", "failed")])
def test_job_started_from_the_cli_notifies_once_when_it_ends(sandbox, hook, prompt, status):
    command, out = hook
    job = start(sandbox, prompt, CODEXDASH_NOTIFY_COMMAND=command)
    (event,) = wait_for(lambda: events(out, job["id"]), message="the finished event")
    assert event["event"] == "finished" and event["status"] == status
    assert set(event) == set(job_json(Job.get_by_id(job["id"]).__data__)) | {"event"}
    wait_for(lambda: history(job["id"], "notify"), message="the hook's run in the history")
    wait_watcher_exit(sandbox)
    assert sandbox.cli("list", "--json", CODEXDASH_NOTIFY_COMMAND=command).returncode == 0  # one more look
    assert len(events(out, job["id"])) == 1
    (run,) = history(job["id"], "notify")
    assert run["outcome"] == "ok" and run["event"] == "finished"


def test_killed_job_notifies_once(sandbox, hook):
    command, out = hook
    job = start(sandbox, "STREAM 60", CODEXDASH_NOTIFY_COMMAND=command)
    killed = sandbox.cli("kill", job["id"], "--yes", CODEXDASH_NOTIFY_COMMAND=command)
    assert killed.returncode == 0, killed.stdout + killed.stderr
    (event,) = wait_for(lambda: events(out, job["id"]), message="the finished event")
    assert event["status"] == "killed"
    wait_for(lambda: history(job["id"], "notify"), message="the hook's run in the history")
    wait_watcher_exit(sandbox)
    assert len(events(out, job["id"])) == 1


def test_kill_that_dies_before_recording_the_end_is_settled_and_notified_by_the_watcher(sandbox, hook):
    command, out = hook
    job = start(sandbox, "STREAM 120", CODEXDASH_NOTIFY_COMMAND=command)
    crashed = sandbox.cli("kill", job["id"], "--yes", CODEXDASH_FAULT="kill-before-settle")
    assert crashed.returncode == 137
    (event,) = wait_for(lambda: events(out, job["id"]), message="the finished event")
    assert event["status"] == "killed"
    wait_watcher_exit(sandbox)


LOOKER = textwrap.dedent("""\
    import time
    from codexdash.config import load_settings
    from codexdash.jobs import JobEngine
    from codexdash.store import Job, JobStatus, open_store
    settings = load_settings()
    engine = JobEngine(settings, open_store(settings.db_path))
    while True:  # what a dashboard does, as often as it can
        engine.refresh()
        if not Job.select().where(Job.status.in_(JobStatus.LIVE)).exists():
            break
        time.sleep(0.02)
""")


def test_dashboards_and_the_watcher_racing_give_one_event(sandbox, hook):
    command, out = hook
    job = start(sandbox, "STREAM 4", CODEXDASH_NOTIFY_COMMAND=command)
    watcher_process(sandbox)
    lookers = [subprocess.Popen([sys.executable, "-c", LOOKER], env=sandbox.env(CODEXDASH_NOTIFY_COMMAND=command),
                                stdin=subprocess.DEVNULL) for _ in range(2)]
    # and this process looks too, with a hook of its own
    engine = JobEngine(replace(sandbox.settings, notify_command=tuple(shlex.split(command))), sandbox.engine.store)
    wait_for(lambda: not any(v.job.is_live for v in engine.refresh()), timeout=60, message="the job to end")
    for looker in lookers:
        assert looker.wait(timeout=60) == 0
    wait_for(lambda: history(job["id"], "notify"), message="the hook's run in the history")
    wait_watcher_exit(sandbox)
    assert [e["event"] for e in events(out, job["id"])] == ["finished"]
    assert len(history(job["id"], "notify")) == 1


def test_a_dashboards_child_is_settled_by_the_watcher_with_its_exit_status(sandbox, hook):
    """The dashboard spawned it and has not reaped it yet: the watcher reads its status. The
    watcher runs the hook of the process that launched it (none in the config file here)."""
    command, out = hook
    job = sandbox.start("SLEEP 0.5 CRASH")  # this engine never looks again
    watcher.ensure_running(replace(sandbox.settings, notify_command=tuple(shlex.split(command))))
    (event,) = wait_for(lambda: events(out, job.id), message="the finished event")
    assert event["status"] == "failed" and event["exit_code"] == 3
    sandbox.engine.refresh([job])  # the parent reaps it now, and settles nothing twice
    assert job.pid not in [c.pid for c in psutil.Process().children()]
    wait_watcher_exit(sandbox)
    assert len(events(out, job.id)) == 1
    assert [e.to_status for e in JobEvent.select().where((JobEvent.job == job.id) & (JobEvent.kind == "state"))] == [
        "starting", "running", "failed"]


# ---- an event won by a process that dies before launching its hook ---------------------------------


def runners(sandbox) -> list[psutil.Process]:
    """The hook runners (`python -m codexdash.notify`) working for this sandbox's database."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "codexdash.notify" in (proc.info["cmdline"] or []) and \
                    proc.environ().get("CODEXDASH_DB") == str(sandbox.db_path) and not gone(proc):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def kinds(job_id: str) -> list[str]:
    return [e.kind for e in JobEvent.select().where(JobEvent.job == job_id).order_by(JobEvent.id)]


@pytest.mark.parametrize("prompt, event", [("ECHO all done", "finished"), ("SLEEP 60", "stalled")])
def test_an_event_whose_winner_dies_before_launching_the_hook_is_delivered_once_by_the_next_looks(
        sandbox, hook, prompt, event):
    command, out = hook
    (sandbox.root / "config.toml").write_text("stall_after = 1\n")
    job = sandbox.start(prompt)  # this engine never looks: the looks below win the event
    if event == "finished":
        wait_for(lambda: sandbox.engine._children[job.id].poll() is not None, message="the job's process to end")

    def crashed() -> bool:  # a look that wins the event, then dies right after its commit
        done = sandbox.cli("list", CODEXDASH_NOTIFY_COMMAND=command, CODEXDASH_FAULT="notify-after-commit")
        assert done.returncode in (0, 137), done.stderr
        return done.returncode == 137

    wait_for(crashed, timeout=30, interval=0.2, message=f"a look to win the {event} event and die")
    assert kinds(job.id).count(notify.DUE) == 1 and events(out) == [] and runners(sandbox) == []
    if event == "finished":
        assert Job.get_by_id(job.id).status == JobStatus.COMPLETED  # settled: no later look wins it again
    with sandbox.engine.store.write():  # its winner is long gone: the event is overdue
        JobEvent.update(at=JobEvent.at - 60).where(JobEvent.kind == notify.DUE).execute()
    # The next looks, at once: two `list`s and a watcher (with nothing live, it stays for no job).
    lookers = [subprocess.Popen([sys.executable, "-m", "codexdash", "list"], env=sandbox.env(CODEXDASH_NOTIFY_COMMAND=command),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL) for _ in range(2)]
    watcher.ensure_running(replace(sandbox.settings, notify_command=tuple(shlex.split(command))))
    for looker in lookers:
        assert looker.wait(timeout=60) == 0
    (delivered,) = wait_for(lambda: events(out, job.id), message="the event, delivered")
    assert delivered["event"] == event and delivered["id"] == job.id
    wait_for(lambda: history(job.id, "notify"), message="the hook's run in the history")
    wait_for(lambda: not runners(sandbox), message="every runner launched for it to be done")
    assert len(events(out, job.id)) == 1 and len(history(job.id, "notify")) == 1
    assert kinds(job.id).count(notify.SENT) == 1 and notify.DUE not in kinds(job.id)
    assert f"notify ({event}): ok" in sandbox.cli("show", job.id).stdout
    if event == "stalled":  # still live, followed by the watcher: its end is one more event
        assert sandbox.cli("kill", job.id, "--yes", CODEXDASH_NOTIFY_COMMAND=command).returncode == 0
        wait_for(lambda: len(history(job.id, "notify")) == 2, message="the finished event's run")
    wait_watcher_exit(sandbox)
    assert [e["event"] for e in events(out, job.id)] == [event, "finished"][: 2 if event == "stalled" else 1]


def test_an_event_left_due_for_more_than_a_day_is_not_delivered(sandbox, hook):
    command, out = hook
    job = sandbox.start("ECHO quick")
    with sandbox.engine.store.write():
        notify.record_due(sandbox.engine.store, job.id, notify.FINISHED)
        JobEvent.update(at=JobEvent.at - notify.DELIVER_WITHIN - 60).where(JobEvent.kind == notify.DUE).execute()
    engine = JobEngine(replace(sandbox.settings, notify_command=tuple(shlex.split(command))), sandbox.engine.store)
    assert notify.deliver_due(engine) is None and engine.due_launched == {} and runners(sandbox) == []
    assert events(out) == [] and kinds(job.id)[-1] == notify.DUE


def test_a_due_event_is_claimed_by_one_runner(sandbox):
    job = sandbox.start("ECHO quick")
    with sandbox.engine.store.write():
        due = notify.record_due(sandbox.engine.store, job.id, notify.FINISHED)
    assert kinds(job.id)[-1] == notify.DUE
    assert notify.claim_due(sandbox.db_path, due)
    assert not notify.claim_due(sandbox.db_path, due)  # a second runner for it runs nothing
    assert kinds(job.id)[-1] == notify.SENT


def test_a_hook_launched_by_its_winner_is_not_launched_again_by_later_looks(sandbox, hook):
    command, out = hook
    job = sandbox.start("ECHO all done")
    engine = JobEngine(replace(sandbox.settings, notify_command=tuple(shlex.split(command))), sandbox.engine.store)
    wait_for(lambda: not engine.refresh([job])[0].job.is_live, message="the job to end, here")
    wait_for(lambda: history(job.id, "notify"), message="the hook's run in the history")
    with sandbox.engine.store.write():
        JobEvent.update(at=JobEvent.at - 60).where(JobEvent.job == job.id).execute()  # old, every record of it
    assert sandbox.cli("list", CODEXDASH_NOTIFY_COMMAND=command).returncode == 0
    wait_for(lambda: not runners(sandbox), message="no runner left")
    assert len(events(out, job.id)) == 1 and kinds(job.id).count(notify.SENT) == 1



def test_an_engine_forgets_the_events_it_launched_once_they_hold_back_nothing(sandbox, hook, monkeypatch):
    command, _out = hook
    engine = JobEngine(replace(sandbox.settings, notify_command=tuple(shlex.split(command))), sandbox.engine.store)
    jobs = [sandbox.start(f"ECHO done {i}") for i in range(3)]
    wait_for(lambda: not any(v.job.is_live for v in engine.refresh(jobs)), message="the jobs to end, here")
    assert len(engine.due_launched) == 3  # each end's event, launched by this engine
    wait_for(lambda: all(history(j.id, "notify") for j in jobs), message="the hooks' runs in the history")
    later = time.time() + notify.RELAUNCH_AFTER + 1
    monkeypatch.setattr(notify, "now", lambda: later)
    assert notify.deliver_due(engine) is None
    assert engine.due_launched == {}  # a dashboard open for days keeps none per job ended

# ---- a hook that fails or hangs -----------------------------------------------------------------


@pytest.mark.parametrize("command, outcome, error", [
    ("sh -c 'echo the hook broke >&2; exit 7'", "failed", "the hook broke"),
    ("/nonexistent/notify-hook", "not found", "No such file or directory"),
])
def test_failing_hook_is_logged_and_the_job_settled(sandbox, command, outcome, error):
    job = start(sandbox, "ECHO fine", CODEXDASH_NOTIFY_COMMAND=command)
    (run,) = wait_for(lambda: history(job["id"], "notify"), message="the hook's run in the history")
    assert run["outcome"] == outcome and error in run["error"]
    assert Job.get_by_id(job["id"]).status == JobStatus.COMPLETED
    shown = sandbox.cli("show", job["id"])
    assert f"notify (finished): {outcome}" in shown.stdout


def test_hanging_hook_blocks_nothing(sandbox):
    """While the first job's hook hangs, a second job is still followed and notified."""
    pidfile, out = sandbox.root / "hook.pid", sandbox.root / "events.jsonl"
    script = f"if [ ! -e {pidfile} ]; then echo $$ > {pidfile}; exec sleep 600; fi; cat >> {out}; echo >> {out}"
    (sandbox.root / "config.toml").write_text(f"notify_command = ['sh', '-c', {json.dumps(script)}]\nnotify_timeout = 600\n")
    first = start(sandbox, "ECHO one")
    hook_pid = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), message="the hanging hook"))
    try:
        assert Job.get_by_id(first["id"]).status == JobStatus.COMPLETED  # settled before its hook ran
        second = start(sandbox, "ECHO two")
        (event,) = wait_for(lambda: events(out, second["id"]), message="the second job's event")
        assert event["status"] == "completed"
        assert psutil.pid_exists(hook_pid) and history(first["id"], "notify") == []  # still hanging
    finally:
        os.kill(hook_pid, 9)
    (run,) = wait_for(lambda: history(first["id"], "notify"), message="the killed hook in the history")
    assert run["outcome"] == "failed" and run["exit_code"] == -9


def test_hook_past_its_timeout_is_killed_and_logged(sandbox):
    pidfile = sandbox.root / "hook.pid"
    script = f"echo $$ > {pidfile}; exec sleep 600"
    (sandbox.root / "config.toml").write_text(f"notify_command = ['sh', '-c', {json.dumps(script)}]\nnotify_timeout = 1\n")
    job = start(sandbox, "ECHO one")
    (run,) = wait_for(lambda: history(job["id"], "notify"), message="the timed-out hook in the history")
    assert run["outcome"] == "timed out" and "killed" in run["error"]
    hook_pid = int(pidfile.read_text())
    assert not psutil.pid_exists(hook_pid) or gone(psutil.Process(hook_pid))
    assert Job.get_by_id(job["id"]).status == JobStatus.COMPLETED


# ---- stalls ---------------------------------------------------------------------------------------


def test_stalled_job_notifies_once_then_finished_once(sandbox, hook):
    command, out = hook
    (sandbox.root / "config.toml").write_text("stall_after = 1\n")
    job = start(sandbox, "SLEEP 60", CODEXDASH_NOTIFY_COMMAND=command)  # one tool call, then silence
    (stalled,) = wait_for(lambda: events(out, job["id"]), message="the stalled event")
    assert stalled["event"] == "stalled" and stalled["status"] == "running"
    for _ in range(2):  # more looks of the same silence: no second event
        assert sandbox.cli("list", CODEXDASH_NOTIFY_COMMAND=command).returncode == 0
    assert len(history(job["id"], "stalled")) == 1
    assert sandbox.cli("kill", job["id"], "--yes", CODEXDASH_NOTIFY_COMMAND=command).returncode == 0
    wait_for(lambda: len(events(out, job["id"])) == 2, message="the finished event")
    wait_for(lambda: len(history(job["id"], "notify")) == 2, message="both runs in the history")
    wait_watcher_exit(sandbox)
    assert [e["event"] for e in events(out, job["id"])] == ["stalled", "finished"]


def test_a_stall_is_claimed_once_per_silence(sandbox):
    job = sandbox.start("SLEEP 60")
    store = sandbox.engine.store
    assert notify.claim_stall(store, job, 1000.0, 1)
    assert not notify.claim_stall(store, job, 1000.0, 1)  # the same silence, seen by another look
    assert not notify.claim_stall(store, job, 999.0, 1)  # an older view of the file
    assert notify.claim_stall(store, job, 1005.0, 1)  # it wrote again, then went silent again
    assert len(history(job.id, "stalled")) == 2


def test_no_stall_claimed_for_an_ended_job(sandbox):
    job = sandbox.start("ECHO quick")
    wait_for(lambda: not sandbox.engine.refresh([job])[0].job.is_live, message="the job to end")
    assert not notify.claim_stall(sandbox.engine.store, job, time.time(), 1)


# ---- the watcher ----------------------------------------------------------------------------------


def test_watcher_waits_without_cpu_follows_new_jobs_and_exits_when_nothing_is_live(sandbox, hook):
    command, out = hook
    first = start(sandbox, "SLEEP 60", CODEXDASH_NOTIFY_COMMAND=command)
    proc = watcher_process(sandbox)
    wait_for(lambda: sleeping_in_poll(proc.pid), message="the watcher to wait")
    before = cpu_ticks(proc.pid)
    time.sleep(2.0)  # a quiet window: nothing happens, the watcher must not run
    assert cpu_ticks(proc.pid) - before <= 2
    # A job started now is followed by the same watcher, at once (not when the first ends).
    second = start(sandbox, "ECHO two", CODEXDASH_NOTIFY_COMMAND=command)
    wait_for(lambda: events(out, second["id"]), message="the second job's event")
    assert Job.get_by_id(first["id"]).status == JobStatus.RUNNING
    assert watcher.watcher_pid(sandbox.db_path) == proc.pid and not gone(proc)
    assert sandbox.cli("kill", first["id"], "--yes").returncode == 0
    wait_for(lambda: gone(proc), message="the watcher to exit with nothing live")
    wait_for(lambda: events(out, first["id"]), message="the first job's event")


def test_watcher_is_detached_and_one_per_database(sandbox):
    start(sandbox, "SLEEP 60")
    proc = watcher_process(sandbox)
    assert os.getsid(proc.pid) == proc.pid  # its own session: no terminal, survives it going away
    for fd in (0, 1, 2):
        assert os.readlink(f"/proc/{proc.pid}/fd/{fd}") == "/dev/null"
    assert oct(os.stat(watcher.lock_path(sandbox.db_path)).st_mode & 0o777) == "0o600"
    assert oct(os.stat(watcher.fifo_path(sandbox.db_path)).st_mode & 0o777) == "0o600"
    # A second watcher for the same database finds the lock taken and leaves at once.
    second = subprocess.run([sys.executable, "-m", "codexdash.watcher", "--db", str(sandbox.db_path)],
                            env=sandbox.env(), capture_output=True, timeout=60)
    assert second.returncode == 0 and watcher.watcher_pid(sandbox.db_path) == proc.pid


def test_watcher_leaving_lets_go_of_the_lock_then_stays_for_a_job_started_meanwhile(sandbox):
    import fcntl

    fd = os.open(watcher.lock_path(sandbox.db_path), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        w = watcher.Watcher(sandbox.settings, fd, engine=sandbox.engine)
        assert not w._keep_lock()  # nothing live: it leaves, the lock free for the next start
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        job = sandbox.start("STREAM 60")  # started as it was leaving: it stays, holding the lock
        assert w._keep_lock()
        other = os.open(watcher.lock_path(sandbox.db_path), os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a watcher launched meanwhile has it
        assert not w._keep_lock()  # this one leaves
        os.close(other)
        assert job.is_live
    finally:
        os.close(fd)


def test_no_watcher_when_turned_off(sandbox):
    (sandbox.root / "config.toml").write_text("watch = false\n")
    start(sandbox, "ECHO hi")
    assert watcher.watcher_pid(sandbox.db_path) is None


# ---- settings -------------------------------------------------------------------------------------


def test_notify_settings_from_file_and_environment(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("notify_command = 'notify-send \"codex job\"'\nnotify_timeout = 5\nstall_after = 30\n")
    s = load_settings(env={}, config_path=config)
    assert s.notify_command == ("notify-send", "codex job") and s.notify_timeout == 5 and s.stall_after == 30
    s = load_settings(env={"CODEXDASH_NOTIFY_COMMAND": "my-hook --loud"}, config_path=config)
    assert s.notify_command == ("my-hook", "--loud")  # the environment overrides the file
    s = load_settings(env={}, config_path=tmp_path / "none.toml")
    assert s.notify_command is None and s.stall_after == STALL_SECONDS and s.watch is True
    with pytest.raises(BadInput, match="CODEXDASH_NOTIFY_COMMAND"):
        load_settings(env={"CODEXDASH_NOTIFY_COMMAND": "unbalanced 'quote"}, config_path=config)
    config.write_text("stall_after = 0\n")
    with pytest.raises(BadInput, match="stall_after"):
        load_settings(env={}, config_path=config)
