"""What the kernel tells about job processes: liveness, CPU, memory, the marker, open files.

A refresh reads `/proc/PID/stat` once per process: that one line gives liveness (its state),
identity (its start time), CPU (user and system time) and memory (resident pages) of one
moment. psutil is used where it is the simple way (open files, environments, other systems)
but not in the refresh, where it read `stat` two or three times and `statm` once per process.
"""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Container
from dataclasses import dataclass
from codexdash.config import MARKER_ENV

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without loading typing for `list`

if TYPE_CHECKING:  # imported where used: a refresh reads /proc itself, and `list` does not load psutil
    import psutil

# Two start times of one process read at different moments can differ by float rounding; two
# different processes differ by at least one clock tick (10 ms).
START_TIME_TOLERANCE = 0.005
# How often the membership of each job's process tree is read again from /proc.
TREE_INTERVAL = 5.0
# Between full passes over /proc only new processes are read (see Parents): a PID that ended
# and was given to another process between two looks is known for what it is by the next.
FULL_PASS_EVERY = 60.0
# Processes beyond the jobs' own (their children: Node's native Codex, tools it runs) whose
# figures a refresh reads; past it, the jobs' trees are sampled in turns (see ProcessPoller).
SAMPLE_BUDGET = 200
# A pidfd not asked about for this many refreshes is closed (its job is no longer looked at).
PIDFD_IDLE_CYCLES = 30
PROC = os.path.isdir("/proc/self")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def same_start_time(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) < START_TIME_TOLERANCE


def is_gone(proc: psutil.Process) -> bool:
    """True when the process has exited, a zombie included (it runs nothing any more)."""
    import psutil

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


def forget_gone(alive) -> None:
    """Drops the kept objects of processes not among `alive` (every PID a pass over /proc
    found): a dashboard open for days looks at each job's processes, and kept them all, up to
    8,192 of ~0.5 KB."""
    for pid in list(_known):
        if pid not in alive:
            _known.pop(pid, None)


def known_process(pid: int) -> psutil.Process | None:
    """The process now holding `pid`, from the kept handles when it is still the same one."""
    import psutil

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
    import psutil

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
    import psutil

    global _this_process
    if _this_process is None or _this_process[0] != os.getpid():
        _this_process = (os.getpid(), psutil.Process().create_time())
    return _this_process


def carries_marker(proc: psutil.Process, marker: str) -> bool:
    import psutil

    try:
        return proc.environ().get(MARKER_ENV) == marker
    except (psutil.Error, OSError):
        return False


def marked_processes(marker: str) -> list[psutil.Process]:
    """Every live process of the current user whose environment carries this job's marker."""
    import psutil

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
    import psutil

    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


@dataclass(frozen=True, slots=True)
class ProcStat:
    """What one read of /proc/PID/stat says of a process, all of one moment."""

    state: str  # R, S, D, Z (zombie), ...
    ppid: int
    start: float  # epoch seconds, as psutil's create_time() gives it
    cpu: float  # user + system seconds
    rss: int  # bytes; the kernel's per-CPU counters as last folded (statm sums them exactly on
    # recent kernels): a few hundred KB off at most on a small machine, which a figure in MB
    # does not show, for a second read per process

    @property
    def gone(self) -> bool:
        return self.state in ("Z", "X", "x")


def boot_time() -> float:
    """The boot time as /proc/stat gives it (as psutil does): read once per refresh, so the
    start times of that refresh agree with what psutil records, even after the clock moved."""
    if PROC:
        try:
            with open("/proc/stat", "rb") as fh:
                for line in fh:
                    if line.startswith(b"btime"):
                        return float(line.split()[1])
        except OSError:
            pass
    import psutil

    return psutil.boot_time()


def parse_stat(data: bytes, boot: float) -> ProcStat | None:
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses; split after the last ')'.
    # After it, proc(5)'s fields 3 on: state 3, ppid 4, utime 14, stime 15, starttime 22, rss 24.
    fields = data[data.rfind(b")") + 2 :].split()
    if len(fields) < 22:
        return None
    return ProcStat(
        state=fields[0].decode("ascii", "replace"),
        ppid=int(fields[1]),
        start=boot + int(fields[19]) / CLOCK_TICKS,
        cpu=(int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
        rss=int(fields[21]) * PAGE_SIZE,
    )


def read_stat(pid: int, boot: float) -> ProcStat | None:
    """The process's figures from one read (None: no such process)."""
    if not PROC:
        return _psutil_stat(pid)
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
    except OSError:
        return None
    try:
        data = os.read(fd, 4096)
    except OSError:
        return None
    finally:
        os.close(fd)
    return parse_stat(data, boot)


class StatFiles:
    """The /proc/PID/stat files of the processes read at each refresh, kept open and read again
    with one pread: a read of a kept file is one system call where opening it is three.

    A kept file stays on the process it was opened on: once that process is reaped, reading
    it fails (ESRCH), never giving another process that got the PID since. The PID is then read
    afresh, as `read_stat` would. Files not read in a refresh are closed at its end; at most
    `limit` are kept (past it, processes are read as `read_stat` does)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._fds: dict[int, int] = {}
        self._read: set[int] = set()

    def read(self, pid: int, boot: float) -> ProcStat | None:
        if not PROC:
            return _psutil_stat(pid)
        fd = self._fds.get(pid)
        if fd is None:
            if len(self._fds) >= self.limit:
                return read_stat(pid, boot)
            try:
                fd = self._fds[pid] = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
            except OSError:
                return None
        self._read.add(pid)
        try:
            data = os.pread(fd, 4096, 0)
        except OSError:
            data = b""
        if not data:  # the process it was opened on is gone: whatever has the PID now
            self._close(pid)
            return read_stat(pid, boot)
        return parse_stat(data, boot)

    def close_unread(self, looked_at: Container[int] = ()) -> None:
        """Ends a refresh: the files of processes neither read in it nor `looked_at` otherwise
        (answered from a pass over /proc, or figures kept between turns) are closed."""
        for pid in [pid for pid in self._fds if pid not in self._read and pid not in looked_at]:
            self._close(pid)
        self._read = set()

    def _close(self, pid: int) -> None:
        os.close(self._fds.pop(pid))

    def close(self) -> None:
        for pid in list(self._fds):
            self._close(pid)


def _psutil_stat(pid: int) -> ProcStat | None:
    """Where there is no /proc (macOS): the same figures through psutil."""
    import psutil

    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            status = proc.status()
            times = proc.cpu_times()
            return ProcStat(state="Z" if status == psutil.STATUS_ZOMBIE else "R", ppid=proc.ppid(),
                            start=proc.create_time(), cpu=times.user + times.system, rss=proc.memory_info().rss)
    except psutil.Error:
        return None


def _pids() -> list[int]:
    if PROC:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    import psutil

    return psutil.pids()


class Parents:
    """Which process is whose child, kept between passes over /proc: a pass lists the PIDs and
    reads only those it has not seen, and the children of those gone (the kernel gives them
    another parent); every FULL_PASS_EVERY seconds it reads them all. On a box with hundreds of
    processes, the dashboard's look every few seconds reads the few that started since."""

    def __init__(self) -> None:
        self.ppid: dict[int, int] = {}
        self._full_at: float | None = None

    def look(self, boot: float) -> tuple[dict[int, list[int]], dict[int, ProcStat], bool]:
        """Every process's children; the figures read in this look; whether it read every process."""
        pids = _pids()
        full = self._full_at is None or time.monotonic() - self._full_at >= FULL_PASS_EVERY
        if full:
            self.ppid, todo = {}, pids
            self._full_at = time.monotonic()
        else:
            present = set(pids)
            gone = self.ppid.keys() - present
            orphans = [pid for pid, parent in self.ppid.items() if parent in gone and pid in present]
            for pid in gone:
                del self.ppid[pid]
            todo = [pid for pid in pids if pid not in self.ppid] + orphans
        stats: dict[int, ProcStat] = {}
        for pid in todo:
            st = read_stat(pid, boot)
            if st is None:
                self.ppid.pop(pid, None)
                continue
            stats[pid] = st
            self.ppid[pid] = st.ppid
        kids: dict[int, list[int]] = {}
        for pid, parent in self.ppid.items():
            kids.setdefault(parent, []).append(pid)
        return kids, stats, full


def open_session_files(procs: list[psutil.Process], sessions_dir: str) -> list[str]:
    import psutil

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


def open_paths(pids: list[int]) -> list[str]:
    """What the file descriptors of these processes name (absolute paths only), read from /proc
    (psutil's open_files() where there is none): those this user may read."""
    if not PROC:
        import psutil

        found = []
        for pid in pids:
            try:
                found.extend(f.path for f in psutil.Process(pid).open_files())
            except psutil.Error:
                continue
        return found
    found = []
    for pid in pids:
        fds = f"/proc/{pid}/fd"
        try:
            names = os.listdir(fds)
        except OSError:
            continue
        for fd in names:
            try:
                path = os.readlink(f"{fds}/{fd}")
            except OSError:
                continue
            if path.startswith("/"):
                found.append(path)
    return found


@dataclass(frozen=True)
class ProcessStats:
    cpu_percent: float
    rss_bytes: int
    uptime: float
    processes: int
    read_at: float = 0.0  # when the CPU and memory figures were read (the uptime is always now's)


class ProcessPoller:
    """Liveness, CPU and memory of the jobs' process trees, one refresh cycle at a time.

    Liveness is exact at every refresh and costs next to nothing: a job seen alive is given a
    pidfd (a handle on that very process, never on a later one with its PID), and one poll()
    over all of them tells which exited since. A job without one (the first look, or more jobs
    than file descriptors to spare, or no pidfd on this system) is read from its
    /proc/PID/stat, whose one line gives liveness, start time, CPU and memory together. The
    stat files read at one refresh are kept open for the next (`StatFiles`).

    Figures are read within a budget: each process is read once per cycle at most, and when the
    live jobs' trees count more than `budget` processes, a job's figures are read one refresh in
    `stride` (jobs take turns in the order they were first seen, so each refresh reads about as
    many) and in between it keeps its last ones, its uptime moved on. Its CPU is then measured over `stride` seconds instead of
    one, which is as true; the eye cannot tell a figure two or three seconds old among hundreds
    of rows, and liveness is not spread. Every tree is also read whole at each pass over /proc
    (every TREE_INTERVAL, to learn which processes make up the trees), whose reads serve that
    refresh. The first sample of a process gives its CPU average since it started, so a one-shot
    `list` still has a meaningful figure; later ones give the rate since the previous one.
    """

    def __init__(self, budget: int = SAMPLE_BUDGET) -> None:
        self.budget = budget
        self.stride = 1
        self._last: dict[tuple[int, float], tuple[float, float]] = {}  # (pid, start) -> (cpu s, wall)
        self._touched: set[tuple[int, float]] = set()
        self._kids: dict[int, list[int]] | None = None
        self._kids_at = 0.0
        self._parents = Parents()
        self._boot = 0.0
        self._stats: dict[int, ProcStat | None] = {}  # this cycle's reads
        self._in_cycle = False
        self._cycle_thread: int | None = None  # the thread whose refresh this is
        self._scanned = False  # this cycle made the pass over /proc: every figure is read already
        self._cycle = 0
        # A job's root (pid, start) -> its last figures, the members they were read from, its turn.
        self._kept: dict[tuple[int, float], tuple[ProcessStats, tuple[tuple[int, float], ...], int]] = {}
        self._turns = 0
        self._seen: dict[tuple[int, float], int] = {}  # a live root -> the cycle it was last seen alive
        self._pidfds: dict[int, tuple[int, float, int]] = {}  # pid -> (pidfd, start, cycle last asked)
        self._by_fd: dict[int, int] = {}
        self._poll = select.poll() if hasattr(select, "poll") else None
        self._exited: set[int] = set()
        self.max_pidfds = _spare_fds()
        self._files = StatFiles(self.max_pidfds // 2)

    def begin_cycle(self, fresh: bool = False) -> None:
        """Starts a refresh: which pidfds' processes exited, and (every few seconds, or when
        `fresh`) a look over /proc that learns every job's tree (see Parents). One pass over
        /proc, not psutil's children() for each job, which made that pass at each call."""
        self._cycle += 1
        self._in_cycle = True
        self._cycle_thread = threading.get_ident()
        self._boot = boot_time()
        self._stats = {}
        self._scanned = False
        self._exited = set()
        if self._by_fd:
            self._exited = {self._by_fd[fd] for fd, _ev in self._poll.poll(0) if fd in self._by_fd}
        processes = sum(kept[0].processes for kept in self._kept.values())
        self.stride = max(1, -(-processes // self.budget))
        if fresh or self._kids is None or time.monotonic() - self._kids_at >= TREE_INTERVAL:
            self._kids, stats, self._scanned = self._parents.look(self._boot)
            self._stats.update(stats)
            forget_gone(stats)
            self._kids_at = time.monotonic()

    def stat(self, pid: int) -> ProcStat | None:
        """The process's figures: read once per cycle."""
        if not self._in_cycle:
            return read_stat(pid, boot_time())
        if pid not in self._stats:
            # The kept files are the refresh's own: another thread (a job's session file looked
            # for from a screen's worker) reads as it would outside a refresh.
            own = threading.get_ident() == self._cycle_thread
            self._stats[pid] = self._files.read(pid, self._boot) if own else read_stat(pid, self._boot)
        return self._stats[pid]

    def alive(self, pid: int | None, start_time: float | None) -> bool:
        """Whether the process with this PID is still the one started at `start_time`, and not
        a zombie (what process_if_same tells): from its pidfd when it has one, else from one
        read of its `stat`."""
        if pid is None or start_time is None:
            return False
        held = self._pidfds.get(pid)
        if held is not None and same_start_time(held[1], start_time):
            self._pidfds[pid] = (held[0], held[1], self._cycle)
            return pid not in self._exited
        if held is not None:  # the handle is on the process that had the PID then, not on this one
            return False
        st = self.stat(pid)
        ok = st is not None and not st.gone and same_start_time(st.start, start_time)
        if ok and self._in_cycle:
            key = (pid, st.start)
            if self._seen.get(key, self._cycle) < self._cycle:
                self._hold(pid, st.start)  # alive at two refreshes: worth a handle
            self._seen[key] = self._cycle
        return ok

    def _hold(self, pid: int, start: float) -> None:
        if self._poll is None or len(self._pidfds) >= self.max_pidfds or not hasattr(os, "pidfd_open"):
            return
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return
        # Opened after the read: the PID may name another process by now. Read it again.
        st = read_stat(pid, self._boot)
        if st is None or st.gone or not same_start_time(st.start, start):
            os.close(fd)
            return
        self._pidfds[pid] = (fd, start, self._cycle)
        self._by_fd[fd] = pid
        self._poll.register(fd, select.POLLIN)

    def _close(self, pid: int) -> None:
        fd = self._pidfds.pop(pid)[0]
        self._by_fd.pop(fd, None)
        self._poll.unregister(fd)
        os.close(fd)

    def close(self) -> None:
        for pid in list(self._pidfds):
            self._close(pid)
        self._files.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit anything may be gone already
            pass

    def _descendants(self, pid: int) -> list[tuple[int, ProcStat]]:
        """The processes under `pid` as the last pass over /proc found them, each still the
        child of its parent (a PID reused since that pass is not taken for a member)."""
        if not self._kids:
            return []
        found, todo = [], [(pid, kid) for kid in self._kids.get(pid, ())]
        while todo:
            parent, kid = todo.pop()
            st = self.stat(kid)
            if st is None or st.ppid != parent:
                continue
            found.append((kid, st))
            todo.extend((kid, k) for k in self._kids.get(kid, ()))
        return found

    def tree_pids(self, pid: int) -> list[int]:
        """The process and its descendants, as the last pass over /proc found them."""
        return [pid, *(kid for kid, _st in self._descendants(pid))]

    def tree(self, proc: psutil.Process) -> list[psutil.Process]:
        """The process and its descendants as psutil objects (to list their open files)."""
        if self._kids is None:
            return [proc, *descendants(proc)]
        tree = [proc]
        for pid, _st in self._descendants(proc.pid):
            member = known_process(pid)
            if member is not None:
                tree.append(member)
        return tree

    def sample(self, proc: psutil.Process | int, start_time: float | None = None) -> ProcessStats | None:
        """The figures of the job whose process this is (started at `start_time`, when known):
        its tree read now, or, its turn not come (see the class), its last figures."""
        pid = proc if isinstance(proc, int) else proc.pid
        now = time.time()
        key = (pid, start_time)
        kept = self._kept.get(key) if start_time is not None else None
        if kept is not None and not self._scanned and (self._cycle + kept[2]) % self.stride:
            stats, members, _turn = kept
            self._touched.update(members)
            return ProcessStats(stats.cpu_percent, stats.rss_bytes, now - members[0][1], stats.processes, stats.read_at)
        root = self.stat(pid)
        if root is None or root.gone:
            return None
        members = [(pid, root), *self._descendants(pid)]
        cpu = 0.0
        rss = 0
        keys = []
        for member, st in members:
            mkey = (member, st.start)
            keys.append(mkey)
            last = self._last.get(mkey)
            if last is None:
                cpu += 100.0 * st.cpu / max(now - st.start, 1e-3)
            else:
                cpu += 100.0 * max(st.cpu - last[0], 0.0) / max(now - last[1], 1e-3)
            self._last[mkey] = (st.cpu, now)
            rss += st.rss
        self._touched.update(keys)
        stats = ProcessStats(cpu_percent=cpu, rss_bytes=rss, uptime=now - root.start, processes=len(members), read_at=now)
        if start_time is not None:
            if kept is None:
                self._turns += 1
            self._kept[key] = (stats, tuple(keys), kept[2] if kept is not None else self._turns)
        return stats

    def prune(self) -> None:
        """Ends the cycle; forgets processes not looked at in it, so days of jobs do not pile up."""
        self._last = {k: v for k, v in self._last.items() if k in self._touched}
        self._kept = {k: v for k, v in self._kept.items() if v[1][0] in self._touched}
        self._seen = {k: v for k, v in self._seen.items() if v == self._cycle}
        for pid, (_fd, _start, asked) in list(self._pidfds.items()):
            if pid in self._exited or self._cycle - asked > PIDFD_IDLE_CYCLES:
                self._close(pid)
        self._files.close_unread({pid for pid, _start in self._touched})
        self._touched = set()
        self._stats = {}
        self._in_cycle = False


def _spare_fds() -> int:
    """How many pidfds the poller may hold: a quarter of this process's file descriptors."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return 0
    return 4096 if soft == resource.RLIM_INFINITY else max(0, min(4096, soft // 4))


def zombie_exit_code(pid: int | None, start_time: float | None) -> int | None:
    """The exit status of a process that has exited but is not reaped yet (a zombie, whose
    parent is another process), as Popen.returncode gives it; None when it is not one."""
    import psutil

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
