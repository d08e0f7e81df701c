"""The refresh at scale: one read of /proc/PID/stat per process, liveness from pidfds, figures
read in turns past a budget, the store read only when something committed, and jobs to JSON
straight from the store's rows."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import threading
import time

import psutil
import pytest
from hypothesis import given, settings, strategies as st

from codexdash import procs
from codexdash.jobs import JobList, iso_time, job_json
from codexdash.procs import ProcessPoller, read_stat, boot_time
from codexdash.store import Job, JobStatus
from tests.conftest import wait_for


@pytest.fixture
def children():
    started: list[subprocess.Popen] = []

    def spawn(*argv: str) -> subprocess.Popen:
        p = subprocess.Popen(argv or ("sleep", "60"), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             start_new_session=True)
        started.append(p)
        return p

    yield spawn
    for p in started:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait()


def test_one_read_of_stat_says_what_psutil_says(children):
    child = children()
    wait_for(lambda: read_stat(child.pid, boot_time()).state == "S", message="the child to sleep")
    for pid in (os.getpid(), child.pid):
        st = read_stat(pid, boot_time())
        proc = psutil.Process(pid)
        assert st.start == pytest.approx(proc.create_time(), abs=procs.START_TIME_TOLERANCE)
        assert st.ppid == proc.ppid()
        assert not st.gone
    st = read_stat(child.pid, boot_time())
    times = psutil.Process(child.pid).cpu_times()
    assert st.cpu == pytest.approx(times.user + times.system, abs=0.02)
    # stat's resident size is the kernel's per-CPU counters as last folded (statm sums them on
    # recent kernels): it may lag by a counter batch per CPU, a few hundred KB here.
    batch = max(32, 2 * os.cpu_count()) * os.cpu_count() * procs.PAGE_SIZE
    assert st.rss == pytest.approx(psutil.Process(child.pid).memory_info().rss, abs=batch)
    assert read_stat(2**22 + 12345, boot_time()) is None


def test_stat_files_kept_open_read_the_process_anew_and_let_go_of_it_when_it_goes(children):
    busy = children("sh", "-c", "while :; do :; done")
    files = procs.StatFiles(limit=8)
    first = files.read(busy.pid, boot_time())
    files.close_unread()
    kept = files._fds[busy.pid]
    wait_for(lambda: read_stat(busy.pid, boot_time()).cpu > first.cpu, message="CPU time to be counted")
    again = files.read(busy.pid, boot_time())
    assert files._fds[busy.pid] == kept and again.cpu > first.cpu  # the same file, read now
    assert again.start == first.start
    busy.kill()
    busy.wait()  # reaped: the kept file is on a process that is no more
    files.close_unread()
    assert files.read(busy.pid, boot_time()) is None and busy.pid not in files._fds
    idle = children()
    files.read(idle.pid, boot_time())
    files.close_unread()
    files.close_unread()  # a refresh that did not read it
    assert idle.pid not in files._fds
    full = procs.StatFiles(limit=0)  # none to spare: read as read_stat does, nothing kept
    assert full.read(idle.pid, boot_time()) == read_stat(idle.pid, boot_time()) and not full._fds


def test_a_job_read_in_turns_keeps_its_stat_files_and_other_threads_leave_them_alone(children, monkeypatch):
    jobs = [children("sh", "-c", "sleep 60 & wait") for _ in range(2)]
    wait_for(lambda: all(psutil.Process(j.pid).children() for j in jobs), message="the trees")
    starts = {j.pid: psutil.Process(j.pid).create_time() for j in jobs}
    poller = ProcessPoller(budget=1)  # 4 processes: each tree read one refresh in 4

    def cycle() -> None:
        poller.begin_cycle()
        for pid, start in starts.items():
            assert poller.sample(pid, start) is not None
        poller.prune()

    for _ in range(6):
        cycle()  # every tree has had its turn, its files opened
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k))
    for _ in range(6):
        cycle()
    assert poller.stride > 1 and not [p for p in opened if str(p).endswith("/stat")]  # kept between turns
    # Another thread, mid-refresh (a job's session file looked for from a screen's worker).
    poller.begin_cycle()
    kept = dict(poller._files._fds)
    other = threading.Thread(target=lambda: poller.stat(os.getpid()))
    other.start()
    other.join()
    assert poller._files._fds == kept
    poller.prune()
    poller.close()
    assert poller._files._fds == {}


def test_liveness_is_exact_at_every_refresh_and_never_taken_for_a_reused_pid(children):
    child = children()
    start = psutil.Process(child.pid).create_time()
    poller = ProcessPoller()
    for _ in range(3):  # seen alive twice: from then on told by its pidfd
        poller.begin_cycle()
        assert poller.alive(child.pid, start)
        assert not poller.alive(child.pid, start - 1.0)  # another process under the same PID
        poller.prune()
    assert child.pid in poller._pidfds
    child.kill()  # not reaped: a zombie, which runs nothing
    wait_for(lambda: read_stat(child.pid, boot_time()).gone, message="the child to exit")
    poller.begin_cycle()
    assert not poller.alive(child.pid, start)
    poller.prune()
    assert child.pid not in poller._pidfds
    child.wait()
    poller.begin_cycle()
    assert not poller.alive(child.pid, start)
    poller.prune()


def test_past_the_budget_every_tree_is_read_in_turns_within_stride_refreshes(children, monkeypatch):
    monkeypatch.setattr(procs, "TREE_INTERVAL", 3600.0)  # no pass over /proc but the first
    jobs = [children("sh", "-c", "sleep 60 & sleep 60 & wait") for _ in range(6)]
    wait_for(lambda: all(len(psutil.Process(j.pid).children()) == 2 for j in jobs), message="the trees")
    starts = {j.pid: psutil.Process(j.pid).create_time() for j in jobs}
    poller = ProcessPoller(budget=4)  # 18 processes: each tree read one refresh in 5

    def cycle() -> dict[int, procs.ProcessStats]:
        poller.begin_cycle()
        out = {pid: poller.sample(pid, start) for pid, start in starts.items() if poller.alive(pid, start)}
        poller.prune()
        return out

    first = cycle()
    assert {s.processes for s in first.values()} == {3}
    first = cycle()  # seen alive twice: their liveness is told by pidfds from now on
    reads = []
    real_parse = procs.parse_stat  # every read of a stat file, kept open or not
    monkeypatch.setattr(procs, "parse_stat", lambda data, boot: reads.append(data) or real_parse(data, boot))
    last_read = {pid: s.read_at for pid, s in first.items()}
    fresh_within: dict[int, int] = {}
    for n in range(1, 2 * 5 + 1):
        reads.clear()
        stats = cycle()
        assert set(stats) == set(starts)  # every live job has figures at every refresh
        assert poller.stride == 5
        # A refresh reads the trees whose turn it is (3 processes each), no other process.
        assert len(reads) <= 3 * 2
        for pid, s in stats.items():
            assert s.processes == 3 and s.uptime > 0
            if s.read_at != last_read[pid]:
                fresh_within.setdefault(pid, n)
                last_read[pid] = s.read_at
    assert set(fresh_within) == set(starts) and max(fresh_within.values()) <= poller.stride


def test_between_full_passes_a_look_reads_only_new_processes_and_the_orphans_of_those_gone(children, monkeypatch):
    reads = []
    real_read = procs.read_stat
    monkeypatch.setattr(procs, "read_stat", lambda pid, boot: reads.append(pid) or real_read(pid, boot))
    parents = procs.Parents()
    kids, _stats, full = parents.look(boot_time())
    assert full and len(reads) >= len(kids)  # the first look reads every process
    # A shell whose child outlives it: the child gets another parent when the shell ends.
    shell = children("sh", "-c", "sleep 60 & sleep 60")
    wait_for(lambda: len(psutil.Process(shell.pid).children()) == 2, message="the shell's children")
    orphan, waited = sorted(psutil.Process(shell.pid).children(), key=lambda p: p.create_time())
    reads.clear()
    kids, stats, full = parents.look(boot_time())
    assert not full and {shell.pid, orphan.pid, waited.pid} <= set(reads) and len(reads) < 20
    assert set(kids[shell.pid]) == {orphan.pid, waited.pid}
    os.kill(shell.pid, signal.SIGKILL)
    shell.wait()
    wait_for(lambda: psutil.Process(orphan.pid).ppid() != shell.pid, message="the orphan to be taken in")
    reads.clear()
    kids, stats, full = parents.look(boot_time())
    assert not full and orphan.pid in reads and shell.pid not in kids
    assert orphan.pid in kids[psutil.Process(orphan.pid).ppid()]
    monkeypatch.setattr(procs, "FULL_PASS_EVERY", 0.0)
    reads.clear()
    assert parents.look(boot_time())[2] and orphan.pid in reads


def test_objects_kept_for_processes_go_with_the_processes(children):
    looked_at = [children() for _ in range(4)]
    kept = [procs.process_if_same(p.pid, read_stat(p.pid, boot_time()).start) for p in looked_at]
    assert all(kept) and all(procs._known[p.pid] is k for p, k in zip(looked_at, kept))
    *gone, staying = looked_at
    for p in gone:
        p.kill()
        p.wait(timeout=10)
    poller = ProcessPoller()
    poller.begin_cycle(fresh=True)  # a pass over /proc
    poller.prune()
    assert not any(p.pid in procs._known for p in gone)
    assert procs._known[staying.pid] is kept[-1]


def test_a_refresh_reads_the_store_only_after_a_commit(sandbox, monkeypatch):
    job = sandbox.start("please SLEEP 30")
    engine = sandbox.engine
    # The refresh that finds the job's session file records it (a commit of its own): done first.
    wait_for(lambda: engine.refresh() and Job.get_by_id(job.id).session_file, message="the session file found")
    views = engine.refresh()
    assert [v.job.id for v in views] == [job.id] and views[0].stats is not None
    reads = []
    import codexdash.jobs as jobs_module

    real_rows = jobs_module.job_rows
    monkeypatch.setattr(jobs_module, "job_rows", lambda store, query: reads.append(query) or real_rows(store, query))
    for _ in range(3):
        views = engine.refresh()
        assert views[0].stats is not None and views[0].job.status == JobStatus.RUNNING
    assert reads == []  # nothing was committed: no row read
    # Another process ends the job: the next refresh reads the store and shows it.
    done = sandbox.cli("kill", "--yes", "--force", job.id)
    assert done.returncode == 0, done.stderr
    views = engine.refresh()
    assert reads and views[0].job.status == JobStatus.KILLED and views[0].stats is None
    second = sandbox.start("please SLEEP 30")
    assert [v.job.id for v in engine.refresh()] == [second.id, job.id]



def test_the_job_list_holds_a_text_repeated_from_job_to_job_once(sandbox):
    from tests.ui_support import add_fixed_jobs

    add_fixed_jobs(sandbox.engine.store)
    jobs = [v.job for v in sandbox.engine.refresh()]
    api = [j for j in jobs if j.cwd == "/home/operator/api"]
    completed = [j for j in jobs if j.status == JobStatus.COMPLETED]
    assert len(api) == 2 and api[0].cwd is api[1].cwd
    assert len(completed) == 2 and completed[0].status is completed[1].status
    assert len({id(j.model) for j in jobs}) == 1 and jobs[0].model == "mock-model"

def test_job_list_hands_out_a_finished_jobs_view_again(sandbox):
    done = sandbox.start("ECHO fine")
    wait_for(lambda: sandbox.engine.refresh([done]) and not done.is_live, message="the job to end")
    listed = JobList()
    listed.load(sandbox.engine, all_history=False)
    first = listed.views()
    Job.update(tokens=3).where(Job.id == "nothing").execute()  # a commit: the store is read again
    listed.load(sandbox.engine, all_history=False)
    assert listed.views()[0] is first[0] and listed.live == []


def test_the_views_a_refresh_handed_out_are_never_changed_afterwards(sandbox):
    """The screen reads the views of the last refresh while the next one runs in another thread:
    a job that ends (recorded by another process, or settled by this one) is a new record."""
    ended_elsewhere = sandbox.start("please SLEEP 60")
    settled_here = sandbox.start("please SLEEP 60")
    engine = sandbox.engine
    shown = {v.job.id: v for v in engine.refresh()}
    assert shown[ended_elsewhere.id].job.status == shown[settled_here.id].job.status == JobStatus.RUNNING
    Job.update(status=JobStatus.COMPLETED, ended_at=time.time()).where(Job.id == ended_elsewhere.id).execute()
    os.kill(settled_here.pid, signal.SIGKILL)
    wait_for(lambda: {v.job.id: v.job.status for v in engine.refresh()}[settled_here.id] != JobStatus.RUNNING,
             message="the killed job settled")
    now_shown = {v.job.id: v.job.status for v in engine.refresh()}
    assert now_shown[ended_elsewhere.id] == JobStatus.COMPLETED
    assert shown[ended_elsewhere.id].job.status == shown[settled_here.id].job.status == JobStatus.RUNNING


def test_list_json_from_rows_is_job_json_of_the_records(sandbox):
    now = time.time()
    with sandbox.engine.store.write():
        for i, extra in enumerate([{}, {"name": "named"}, {"tokens_detail": json.dumps({"input": 3, "total": 9}), "tokens": 9},
                                   {"ended_at": None, "status": JobStatus.FAILED_TO_START, "error": "boom\n\x1b[31m"},
                                   {"parent_id": "p", "retry_of": "r", "worktree": "/w", "session_id": "s", "session_file": "/f"}]):
            fields = dict(id=f"job{i}", marker=f"m{i}", status=JobStatus.COMPLETED, argv="[]", cwd="/tmp",
                          prompt=f"\n  line one of {i}\nline two", created_at=now - i - 0.0004996, started_at=now - i,
                          ended_at=now - i + 1.9999996, exit_code=0)
            fields.update(extra)
            Job.create(**fields)
    expected = [job_json(j.__data__) for j in Job.select().order_by(Job.created_at.desc())]
    assert sandbox.engine.listing(external=False) == expected


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.floats(min_value=0, max_value=4e9, allow_nan=False),
                 st.integers(min_value=0, max_value=4_000_000_000).map(lambda s: s + 0.9995),
                 st.integers(min_value=0, max_value=4_000_000_000).map(lambda s: s + 0.0005)))
def test_iso_time_is_isoformat_in_milliseconds(ts):
    expected = dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert iso_time(ts) == expected


def test_the_dashboards_list_forgets_finished_jobs_that_left_the_recent_window(sandbox, monkeypatch):
    import codexdash.jobs as jobs_module

    now = time.time()
    with sandbox.engine.store.write():
        for i, (created, ended) in enumerate([(now - 10, now - 5), (now - 3000, now - 2900), (now - 3000, now - 100)]):
            Job.create(id=f"j{i}", marker=f"m{i}", status=JobStatus.COMPLETED, argv="[]", cwd="/tmp", prompt="p",
                       created_at=created, started_at=created, ended_at=ended, exit_code=0)
    assert [v.job.id for v in sandbox.engine.refresh()] == ["j0", "j1", "j2"]
    monkeypatch.setattr(jobs_module, "RECENT_SECONDS", 1000)  # j1 ended 2,900 s ago: out of the window
    assert [v.job.id for v in sandbox.engine.refresh()] == ["j0", "j1", "j2"]  # looked at once a minute
    monkeypatch.setattr(jobs_module, "TRIM_INTERVAL", 0.0)
    assert [v.job.id for v in sandbox.engine.refresh()] == ["j0", "j2"]
    assert [v.job.id for v in sandbox.engine.refresh(all_history=True)] == ["j0", "j1", "j2"]
