"""Faults in codexdash and in jobs, hostile input, a full disk: nothing lost, nothing wrongly killed.

RELIABILITY.md lists each case with the test here that shows it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
from hypothesis import given, settings, strategies as st

from codexdash.events import SessionParser
from codexdash.identity import verify
from codexdash.jobs import JobEngine
from codexdash.procs import marked_processes
from codexdash.session_files import find_by_thread_source, iter_session_files, thread_source_value
from codexdash.store import Job, JobEvent, JobStatus
from tests.conftest import wait_for


def listed(sandbox) -> dict[str, dict]:
    result = sandbox.cli("list", "--all", "--json")
    assert result.returncode == 0, result.stderr
    return {row["id"]: row for row in json.loads(result.stdout)}


# ---- codexdash killed in the middle of a start or a kill --------------------------------------


def test_killed_between_record_and_spawn_leaves_a_record_resolved_as_failed_to_start(sandbox):
    crashed = sandbox.cli("start", "STREAM 30", CODEXDASH_FAULT="after-record")
    assert crashed.returncode == 137
    (job,) = Job.select()
    assert job.status == JobStatus.STARTING and job.pid is None
    assert marked_processes(job.marker) == []
    rows = listed(sandbox)
    assert list(rows) == [job.id]  # no duplicate, nothing forgotten
    assert rows[job.id]["status"] == "failed_to_start"


def test_killed_between_spawn_and_pid_saved_the_job_is_found_by_its_marker(sandbox):
    crashed = sandbox.cli("start", "STREAM 60", CODEXDASH_FAULT="after-spawn")
    assert crashed.returncode == 137
    (job,) = Job.select()
    assert job.status == JobStatus.STARTING and job.pid is None
    (proc,) = wait_for(lambda: marked_processes(job.marker), message="the orphaned job")
    rows = listed(sandbox)
    assert rows[job.id]["status"] == "running" and rows[job.id]["pid"] == proc.pid
    killed = sandbox.cli("kill", job.id, "--yes")
    assert killed.returncode == 0, killed.stdout + killed.stderr
    assert marked_processes(job.marker) == []


def test_job_that_ends_before_its_pid_is_saved_gets_its_outcome(sandbox):
    crashed = sandbox.cli("start", "ECHO quick one", CODEXDASH_FAULT="after-spawn")
    assert crashed.returncode == 137
    (job,) = Job.select()
    wait_for(lambda: not marked_processes(job.marker), message="the quick job to end")
    assert listed(sandbox)[job.id]["status"] == "completed"
    assert Job.get_by_id(job.id).session_file is not None


def test_killed_after_the_first_signal_the_next_kill_takes_over(sandbox):
    # The watcher would finish the kill itself (and the second kill would find it busy).
    (sandbox.root / "config.toml").write_text("watch = false\n")
    started = json.loads(sandbox.cli("start", "--json", "IGNORE_SIGNALS STREAM 120").stdout)
    wait_for(lambda: Job.get_by_id(started["id"]).session_file or sandbox.engine.session_file(Job.get_by_id(started["id"])),
             message="the session file")
    crashed = sandbox.cli("kill", started["id"], "--yes", CODEXDASH_FAULT="kill-after-signal")
    assert crashed.returncode == 137
    job = Job.get_by_id(started["id"])
    assert job.status == JobStatus.STOPPING and psutil.pid_exists(job.pid)
    again = sandbox.cli("kill", job.id, "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert Job.get_by_id(job.id).status == JobStatus.KILLED
    assert marked_processes(job.marker) == []


def kill_events(job_id: str) -> list[dict]:
    events = JobEvent.select().where((JobEvent.job == job_id) & (JobEvent.kind == "kill")).order_by(JobEvent.id)
    return [e.detail_data for e in events]


def test_killed_after_the_first_signal_the_next_look_finishes_the_kill(sandbox):
    # No watcher: it would finish the abandoned kill itself (tested in test_notify.py), racing the looks.
    (sandbox.root / "config.toml").write_text("interrupt_grace = 1\nterminate_grace = 1\nwatch = false\n")
    started = json.loads(sandbox.cli("start", "--json", "IGNORE_SIGNALS STREAM 120").stdout)
    wait_for(lambda: sandbox.engine.session_file(Job.get_by_id(started["id"])), message="the session file")
    crashed = sandbox.cli("kill", started["id"], "--yes", CODEXDASH_FAULT="kill-after-signal")
    assert crashed.returncode == 137
    job = Job.get_by_id(started["id"])
    assert job.status == JobStatus.STOPPING and psutil.pid_exists(job.pid)
    assert kill_events(job.id) == []  # the killer died before it could write anything
    killer = job.actor_pid
    # Two looks at once (a dashboard and a `list`, say): one finishes the kill, the other leaves it.
    with ThreadPoolExecutor(max_workers=2) as pool:
        looks = list(pool.map(lambda _: sandbox.cli("list", "--json"), range(2)))
    for look in looks:
        assert look.returncode == 0, look.stderr
    assert Job.get_by_id(job.id).status == JobStatus.KILLED
    assert marked_processes(job.marker) == []
    events = kill_events(job.id)
    assert [e["outcome"] for e in events] == ["taken over", "stopped"], events
    assert events[-1]["taken_over_from"] == killer and events[-1]["checks"]["ok"]
    assert events[-1]["sent"] == ["SIGINT", "SIGTERM", "SIGKILL"]


def test_killer_gone_and_job_gone_the_next_look_settles_and_says_so(sandbox):
    (sandbox.root / "config.toml").write_text("watch = false\n")  # the next look is the `list` below
    started = json.loads(sandbox.cli("start", "--json", "STREAM 120").stdout)
    crashed = sandbox.cli("kill", started["id"], "--yes", CODEXDASH_FAULT="kill-before-settle")
    assert crashed.returncode == 137
    assert listed(sandbox)[started["id"]]["status"] == "killed"
    events = kill_events(started["id"])
    assert [e["outcome"] for e in events] == ["stopped", "taken over", "already ended"], events
    assert events[-1].get("sent", []) == []


def test_killed_before_recording_the_end_the_next_look_records_it(sandbox):
    (sandbox.root / "config.toml").write_text("watch = false\n")  # the next look is the `list` below
    started = json.loads(sandbox.cli("start", "--json", "STREAM 120").stdout)
    crashed = sandbox.cli("kill", started["id"], "--yes", CODEXDASH_FAULT="kill-before-settle")
    assert crashed.returncode == 137
    assert Job.get_by_id(started["id"]).status == JobStatus.STOPPING
    assert listed(sandbox)[started["id"]]["status"] == "killed"


# ---- many codexdash processes on one database -----------------------------------------------


def test_twenty_concurrent_starts_and_double_kills(sandbox):
    with ThreadPoolExecutor(max_workers=20) as pool:
        starts = list(pool.map(lambda i: sandbox.cli("start", "--json", f"STREAM 120 job {i}"), range(20)))
    for result in starts:
        assert result.returncode == 0, result.stderr
    ids = [json.loads(r.stdout)["id"] for r in starts]
    assert len(set(ids)) == 20 and Job.select().count() == 20
    with ThreadPoolExecutor(max_workers=20) as pool:
        kills = list(pool.map(lambda jid: sandbox.cli("kill", jid, "--yes"), ids + ids))
    for result in kills:
        assert "locked" not in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    for jid in ids:
        job = Job.get_by_id(jid)
        assert job.status == JobStatus.KILLED
        outcomes = [e.detail_data.get("outcome") for e in JobEvent.select().where((JobEvent.job == jid) & (JobEvent.kind == "kill"))]
        assert outcomes.count("stopped") == 1, outcomes  # one kill sent per job
        assert marked_processes(job.marker) == []
    assert sum(1 for r in kills if r.returncode == 0) == 20


# ---- jobs that end strangely ------------------------------------------------------------------


def test_zombie_job_is_settled_and_never_verified(sandbox):
    job = sandbox.start("ECHO short life")
    wait_for(lambda: psutil.Process(job.pid).status() == psutil.STATUS_ZOMBIE, message="a zombie")
    other = JobEngine(sandbox.settings, sandbox.engine.store)  # another dashboard: not its parent
    report = verify(Job.get_by_id(job.id))
    assert [c.name for c in report.failures] == ["process"] and "zombie" in report.failures[0].detail
    other.refresh([job])
    assert job.status == JobStatus.COMPLETED


# ---- hostile and broken files ------------------------------------------------------------------


def test_thousands_of_session_files_and_a_symlink_loop(sandbox):
    job = sandbox.start("ECHO needle")
    wait_for(lambda: sandbox.engine.refresh([job]) and not job.is_live, message="the job to end")
    day = os.path.dirname(job.session_file)
    source = thread_source_value(job.id)
    template = open(job.session_file).read().replace("needle", "haystack").replace(source, "codexdash:other")
    for i in range(3000):
        path = os.path.join(day, os.path.basename(job.session_file).replace(job.session_id[-12:], f"{i:012x}"))
        with open(path, "w") as fh:
            fh.write(template)
    os.symlink(sandbox.codex_home / "sessions", sandbox.codex_home / "sessions" / "loop")
    assert len(iter_session_files(sandbox.codex_home)) == 3001
    found = find_by_thread_source(sandbox.codex_home, source, job.created_at)
    assert str(found) == job.session_file
    loop = sandbox.codex_home / "loop.jsonl"
    os.symlink(loop, loop)
    result = sandbox.cli("logs", str(loop))
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_huge_line_binary_garbage_and_invalid_utf8_in_logs(sandbox, tmp_path):
    path = tmp_path / "rollout-2026-01-01T00-00-00-00000000-0000-7000-8000-000000000000.jsonl"
    huge = json.dumps({"type": "response_item", "payload": {"type": "function_call_output", "call_id": "c",
                                                            "output": "x" * (50 << 20) + "\nEND OF OUTPUT"}})
    with open(path, "wb") as fh:
        fh.write(os.urandom(4096).replace(b"\n", b"") + b"\n")
        fh.write(b'{"type": "event_msg", "payload": {"type": "error", "message": "bad \xff\xfe bytes"}}\n')
        fh.write(huge.encode() + b"\n")
        fh.write(b'{"type": "event_msg", "payload": {"type": "task_complete", "last_agent_message": "ok"}}\n')
        fh.write(b'{"partial": ')
    result = sandbox.cli("logs", str(path))
    assert result.returncode == 0, result.stderr[-500:]
    assert "unreadable line" in result.stdout and "bad �� bytes" in result.stdout
    assert "END OF OUTPUT" in result.stdout and "characters before" in result.stdout
    assert result.stdout.rstrip().endswith("✔ completed: ok")
    tail = sandbox.cli("logs", str(path), "--tail", "2")
    assert tail.returncode == 0 and "END OF OUTPUT" in tail.stdout


@pytest.mark.skipif(os.getuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_session_file(sandbox, tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text("{}\n")
    path.chmod(0)
    result = sandbox.cli("logs", str(path))
    assert result.returncode == 1 and "cannot read" in result.stderr


def test_terminal_escapes_in_a_prompt_are_inert_in_the_cli(sandbox):
    prompt = "ECHO \x1b]0;owned\x07\x1b[2J [bold]x[/] \x9b6n"
    job = sandbox.start(prompt)
    wait_for(lambda: sandbox.engine.refresh([job]) and not job.is_live, message="the job to end")
    for args in (("list",), ("show", job.id), ("logs", job.id)):
        out = sandbox.cli(*args).stdout
        assert "\x1b" not in out and "\x07" not in out and "\x9b" not in out, args
        assert "^[]0;owned^G" in out or args == ("list",)


# ---- the store on a full disk -------------------------------------------------------------------

FULL_DISK_SCRIPT = textwrap.dedent(
    """
    import sys, json
    from pathlib import Path
    from codexdash.errors import StoreError
    from codexdash.store import Job, open_store
    root = Path(sys.argv[1])
    store = open_store(root / "jobs.db")
    def add(i, size):
        with store.write():
            Job.create(id=f"job{i:05d}", marker=f"m{i}", argv="[]", cwd="/", prompt="p" * size, created_at=float(i))
    add(0, 10)
    filler = root / "filler"
    with open(filler, "wb") as fh:   # fill the disk but a little
        try:
            while True:
                fh.write(b"\\0" * 65536)
                fh.flush()
        except OSError:
            pass
    failed = None
    for i in range(1, 200):
        try:
            add(i, 20000)
        except StoreError as exc:
            failed = str(exc)
            break
    kept = [j.id for j in Job.select()]
    filler.unlink()
    add(999, 10)
    print(json.dumps({"failed": failed, "kept": kept, "after": Job.select().count()}))
    """
)


@pytest.mark.skipif(os.getuid() != 0 or shutil.which("unshare") is None, reason="needs root for a tmpfs in a mount namespace")
def test_full_disk_fails_the_write_cleanly_and_recovers(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    script = f"mount -t tmpfs -o size=1m tmpfs {disk} && exec {sys.executable} -c '{FULL_DISK_SCRIPT}' {disk}"
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=60)
    if done.returncode != 0 and "unshare" in done.stderr:
        pytest.skip("mount namespaces are not allowed here: " + done.stderr.strip())
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["failed"] and "full" in report["failed"]
    assert "job00000" in report["kept"]  # nothing written before is lost
    assert report["after"] == len(report["kept"]) + 1  # writes work again once there is room


# ---- fuzzing the reader ---------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["type", "payload", "role", "content", "text", "call_id", "output", "error", "info",
                         "item", "exit_code", "arguments", "name", "id", "cwd", "message", "reason"]) | st.text(max_size=5),
        children, max_size=5),
    max_leaves=20,
)
record_types = st.sampled_from(["session_meta", "turn_context", "response_item", "event_msg", "world_state", "x"])
payload_types = st.sampled_from(["message", "function_call", "function_call_output", "reasoning", "task_complete",
                                 "turn_aborted", "token_count", "item_completed", "exec_command_end", "error"])


@given(rtype=record_types, ptype=payload_types, payload=st.dictionaries(st.text(max_size=12), json_values, max_size=6),
       extra=json_values)
@settings(max_examples=400, deadline=None)
def test_no_record_shape_makes_the_parser_raise(rtype, ptype, payload, extra):
    parser = SessionParser()
    line = json.dumps({"type": rtype, "payload": {**payload, "type": ptype, "item": extra, "info": extra}})
    parser.feed(line)
    parser.feed(json.dumps(extra))
