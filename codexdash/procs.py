"""What psutil tells about job processes: liveness, CPU, memory, the marker, open files."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psutil

from codexdash.config import MARKER_ENV

# Two start times of one process read at different moments can differ by float rounding; two
# different processes differ by at least one clock tick (10 ms).
START_TIME_TOLERANCE = 0.005
# How often the membership of each job's process tree is read again from /proc.
TREE_INTERVAL = 5.0


def same_start_time(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) < START_TIME_TOLERANCE


def is_gone(proc: psutil.Process) -> bool:
    """True when the process has exited, a zombie included (it runs nothing any more)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return True
    except psutil.AccessDenied:
        return False


# Process objects by PID: psutil keeps each one's start time, so looking again costs one read.
_known: dict[int, psutil.Process] = {}
_KNOWN_MAX = 8192


def _keep(proc: psutil.Process) -> psutil.Process:
    if len(_known) >= _KNOWN_MAX:
        _known.clear()
    _known[proc.pid] = proc
    return proc


def known_process(pid: int) -> psutil.Process | None:
    """The process now holding `pid`, from the kept handles when it is still the same one."""
    proc = _known.get(pid)
    try:
        if proc is not None and proc.is_running():
            return proc
        return _keep(psutil.Process(pid))
    except psutil.Error:
        _known.pop(pid, None)
        return None


def process_if_same(pid: int | None, start_time: float | None) -> psutil.Process | None:
    """The live process with this PID if it is still the one started at `start_time`."""
    if pid is None:
        return None
    try:
        proc = _known.get(pid)
        fresh = proc is None or not same_start_time(proc.create_time(), start_time)
        if fresh:
            proc = _keep(psutil.Process(pid))  # reads the start time now
        if not same_start_time(proc.create_time(), start_time):
            return None
        # A kept object's start time is from earlier: is_running() reads it again and compares,
        # so a PID reused since then fails. A fresh object has just read it.
        if not fresh and not proc.is_running():
            return None
        return None if proc.status() == psutil.STATUS_ZOMBIE else proc
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        _known.pop(pid, None)
        return None
    except psutil.AccessDenied:
        return None


_this_process: tuple[int, float] | None = None


def this_process() -> tuple[int, float]:
    """(PID, start time) of this codexdash process, as it is recorded as a job's actor."""
    global _this_process
    if _this_process is None or _this_process[0] != os.getpid():
        _this_process = (os.getpid(), psutil.Process().create_time())
    return _this_process


def carries_marker(proc: psutil.Process, marker: str) -> bool:
    try:
        return proc.environ().get(MARKER_ENV) == marker
    except (psutil.Error, OSError):
        return False


def marked_processes(marker: str) -> list[psutil.Process]:
    """Every live process of the current user whose environment carries this job's marker."""
    me = os.getpid()
    uid = os.getuid()
    found = []
    for proc in psutil.process_iter(["uids"]):
        try:
            uids = proc.info["uids"]
            if proc.pid == me or uids is None or uids.real != uid:
                continue
            if carries_marker(proc, marker) and not is_gone(proc):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def descendants(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def children_map() -> dict[int, list[int]]:
    """Every process's children, from one pass over /proc (psutil's children() makes that pass
    for each call: once per job per refresh, it was most of the dashboard's idle cost)."""
    kids: dict[int, list[int]] = {}
    for pid in psutil.pids():
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses; split after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split(b" ", 2)
        if len(fields) >= 2:
            kids.setdefault(int(fields[1]), []).append(pid)
    return kids


def open_session_files(procs: list[psutil.Process], sessions_dir: str) -> list[str]:
    prefix = sessions_dir.rstrip("/") + "/"
    found = []
    for proc in procs:
        try:
            for f in proc.open_files():
                if f.path.startswith(prefix) and f.path.endswith(".jsonl") and f.path not in found:
                    found.append(f.path)
        except psutil.Error:
            continue
    return found


@dataclass(frozen=True)
class ProcessStats:
    cpu_percent: float
    rss_bytes: int
    uptime: float
    processes: int


class ProcessPoller:
    """CPU and memory of a job's process tree, with CPU measured between two polls.

    The first poll of a process gives its average since it started, so a one-shot `list` still
    has a meaningful figure; later polls give the rate since the previous poll.
    """

    def __init__(self) -> None:
        self._last: dict[tuple[int, float], tuple[float, float]] = {}  # (pid, start) -> (cpu s, wall)
        self._touched: set[tuple[int, float]] = set()
        self._kids: dict[int, list[int]] | None = None
        self._kids_at = 0.0

    def begin_cycle(self, fresh: bool = False) -> None:
        """One pass over /proc shared by every job's sample, made again every few seconds:
        which processes make up a job's tree changes rarely; their CPU and memory are read
        at every refresh."""
        if fresh or self._kids is None or time.monotonic() - self._kids_at >= TREE_INTERVAL:
            self._kids = children_map()
            self._kids_at = time.monotonic()

    def tree(self, proc: psutil.Process) -> list[psutil.Process]:
        """The process and its descendants (from this cycle's /proc pass, if one was made)."""
        if self._kids is None:
            return [proc, *descendants(proc)]
        tree, todo = [proc], list(self._kids.get(proc.pid, ()))
        while todo:
            pid = todo.pop()
            todo.extend(self._kids.get(pid, ()))
            member = known_process(pid)
            if member is not None:
                tree.append(member)
        return tree

    def sample(self, proc: psutil.Process) -> ProcessStats | None:
        now = time.time()
        tree = self.tree(proc)
        cpu = 0.0
        rss = 0
        count = 0
        for p in tree:
            try:
                with p.oneshot():
                    start = p.create_time()
                    times = p.cpu_times()
                    mem = p.memory_info().rss
            except psutil.Error:
                continue
            key = (p.pid, start)
            self._touched.add(key)
            total = times.user + times.system
            last = self._last.get(key)
            if last is None:
                elapsed = max(now - start, 1e-3)
                cpu += 100.0 * total / elapsed
            else:
                elapsed = max(now - last[1], 1e-3)
                cpu += 100.0 * max(total - last[0], 0.0) / elapsed
            self._last[key] = (total, now)
            rss += mem
            count += 1
        if count == 0:
            return None
        try:
            uptime = now - proc.create_time()
        except psutil.Error:
            return None
        return ProcessStats(cpu_percent=cpu, rss_bytes=rss, uptime=uptime, processes=count)

    def prune(self) -> None:
        """Forgets processes not sampled since the last prune, so days of jobs do not pile up."""
        self._last = {k: v for k, v in self._last.items() if k in self._touched}
        self._touched = set()


def zombie_exit_code(pid: int | None, start_time: float | None) -> int | None:
    """The exit status of a process that has exited but is not reaped yet (a zombie, whose
    parent is another process), as Popen.returncode gives it; None when it is not one."""
    if pid is None or start_time is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        boot = psutil.boot_time()
    except (OSError, psutil.Error):
        return None
    # After "pid (comm) ": the state is field 3 of proc(5), the start time 22, the exit code 52,
    # all from this one read, so they are of one process.
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) < 50 or fields[0] != b"Z":
        return None
    if not same_start_time(boot + int(fields[19]) / os.sysconf("SC_CLK_TCK"), start_time):
        return None
    return os.waitstatus_to_exitcode(int(fields[49]))
