"""Following a session file as it grows: woken when the file changes, not by a clock.

Every follower of a session file (`logs --follow`, the dashboard's session pane, the engine's
activity figures) goes through `Follower`, which reads through `OpenedSession.read_more` when the
file may have changed and says what became of it:

- appended: the new events; truncated, or replaced by a new inode (Codex's thread store
  replaces live files atomically): read again from the start (`reset`);
- deleted: said once (`problem`), and the follower waits for the name to come back;
- moved away (Codex archives a finished session to `archived_sessions/`): said, with where it
  went (`moved_to`), after the lines it gained before the move; following ends there.

On Linux the follower waits on inotify: one watch on the file's inode (appends, truncation) and
one on its directory for the name (created, replaced, deleted, moved). It sleeps in poll() until
the kernel or its `Stop` wakes it, so an idle follower makes no system call at all. Elsewhere, or
when inotify cannot be had (the per-user limit of instances or watches reached), it waits through
watchfiles, which looks at its queue every 10 ms while the file moves and every 100 ms once it has
been quiet 5 s; CODEXDASH_FOLLOW=watchfiles forces that path.

Limits: a file moved away before the follower set up its watches is reported as deleted (where a
file went is read from the inode the follower holds, taken with the watches); inotify sees every
write made through this machine's kernel, as Codex's are, but not another machine's writes to a
network filesystem.
"""

from __future__ import annotations

import math
import os
import select
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from codexdash.events import Event
from codexdash.plain import Fields
from codexdash.tail import OpenedSession

FOLLOW_ENV = "CODEXDASH_FOLLOW"  # "watchfiles": never use inotify (a test, or a kernel without it)

# watchfiles waits `step` ms for more changes before it yields; its defaults (debounce 1600 ms,
# step 50 ms) delay each new line by tens of milliseconds.
WATCH_STEP_MS = 10
WATCH_IDLE_STEP_MS = 100
WATCH_QUIET_AFTER = 5.0  # seconds without a change before the watchfiles path slows down
WATCH_DEBOUNCE_MS = 50


class Update(Fields):
    """What the followed file gained, or what became of it, since the last update."""

    FIELDS = ("events", "lines", "reset", "problem", "moved_to", "ended")

    def __init__(self, events: list[Event] | None = None, lines: list[bytes] | None = None, reset: bool = False,
                 problem: str | None = None, moved_to: str | None = None, ended: bool = False) -> None:
        self.events = [] if events is None else events
        self.lines = [] if lines is None else lines
        self.reset = reset  # truncated or replaced: these are read from its start
        self.problem = problem  # deleted or unreadable (said once; the follower keeps waiting)
        self.moved_to = moved_to  # where the file went when it moved away
        self.ended = ended  # the file moved away (or its folder went): nothing more will come

    @property
    def empty(self) -> bool:
        return not (self.events or self.lines or self.reset or self.problem or self.ended)


class Stop:
    """Tells a follower to stop, waking it at once: `set`/`is_set` as threading.Event, plus a
    descriptor a waiting follower polls beside its file events."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._pipe: tuple[int, int] | None = None

    def set(self) -> None:
        with self._lock:
            self._event.set()
            if self._pipe is not None:
                self._wake()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._event.wait(timeout)

    def fileno(self) -> int:
        with self._lock:
            if self._pipe is None:
                self._pipe = os.pipe()
                os.set_blocking(self._pipe[1], False)
                if self._event.is_set():
                    self._wake()
            return self._pipe[0]

    def _wake(self) -> None:
        try:
            os.write(self._pipe[1], b"x")
        except BlockingIOError:
            pass  # full of wake-ups already

    def close(self) -> None:
        with self._lock:
            pipe, self._pipe = self._pipe, None
        for fd in pipe or ():
            os.close(fd)

    def __del__(self) -> None:
        self.close()


class Follower:
    """Follows one session file from where `session` stands.

    Iterate it (in a thread) to block until the file changes: each change gives one `Update`;
    with a `timeout` (seconds), an empty update also comes after that long without one, for a
    caller that has something else to look at now and then. Iteration ends when `stop` is set or
    the file moved away. `poll()` is the form for a caller woken by its own clock.
    """

    def __init__(self, session: OpenedSession, stop: Stop | None = None, timeout: float | None = None,
                 kernel_events: bool | None = None) -> None:
        self.session = session
        self.path = Path(session.tail.path)
        self.stop = stop or Stop()
        self.timeout = timeout
        if kernel_events is None:
            kernel_events = os.environ.get(FOLLOW_ENV, "") != "watchfiles"
        self.kernel_events = kernel_events and sys.platform.startswith("linux")
        self.mode: str | None = None  # "inotify" or "watchfiles", once waiting
        self.fallback_reason: str | None = None  # why inotify was not used, when it was wanted
        self.wakeups = 0  # returns from the wait: an idle follower keeps this still
        self.mtime: float | None = None  # the file's, as last seen by poll()
        self._problem: str | None = None
        self._seen: tuple[int, int, int] | None = None

    # ---- reading ---------------------------------------------------------------------------

    def read(self) -> Update:
        """What the file gained since the last read (a problem is given once, when it starts)."""
        more = self.session.read_more()
        problem = more.problem if more.problem != self._problem else None
        self._problem = more.problem
        return Update(more.events, more.lines, more.reset, problem)

    def poll(self) -> Update | None:
        """What the file gained, or None when it has not changed since the last call.

        One `stat`, and a read only when the file changed: for a caller woken by its own clock
        (the engine's refresh), so it takes no kernel watch and no descriptor.
        """
        try:
            st = os.stat(self.path)
        except OSError:
            seen = None
        else:
            seen = (st.st_ino, st.st_size, st.st_mtime_ns)
            self.mtime = st.st_mtime
        if seen == self._seen and seen is not None:
            return None
        self._seen = seen
        update = self.read()
        return None if update.empty else update

    # ---- waiting ---------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Update]:
        if not self.path.parent.is_dir():
            yield Update(problem=f"{self.path.parent} no longer exists", ended=True)
            return
        if self.kernel_events:
            try:
                watch = _KernelWatch(self.path)
            except (ImportError, OSError, AttributeError) as exc:
                # Not Linux after all, or the per-user inotify limits are reached.
                self.fallback_reason = f"inotify unavailable: {exc}"
            else:
                self.mode = "inotify"
                try:
                    yield from self._follow_kernel(watch)
                    return
                except OSError as exc:  # a watch could not be renewed (a limit reached meanwhile)
                    self.fallback_reason = f"inotify failed: {exc}"
                finally:
                    watch.close()
        self.mode = "watchfiles"
        yield from self._follow_watchfiles()

    def _follow_kernel(self, watch: _KernelWatch) -> Iterator[Update]:
        poller = select.poll()
        poller.register(watch.fileno(), select.POLLIN)
        poller.register(self.stop.fileno(), select.POLLIN)
        # Whatever was written between the caller's last read and the watches being set up.
        update = self.read()
        last = time.monotonic()
        while True:
            if not update.empty:
                yield update
                last = time.monotonic()
            if update.ended or self.stop.is_set():
                return
            wait_ms = None
            if self.timeout is not None:
                wait_ms = max(math.ceil((last + self.timeout - time.monotonic()) * 1000), 0)
            ready = poller.poll(wait_ms)
            self.wakeups += 1
            if self.stop.is_set():
                return
            update = self._after(watch, watch.changes()) if ready else Update()
            if update.empty and self.timeout is not None and time.monotonic() - last >= self.timeout:
                yield update  # the caller's timeout: nothing happened
                last = time.monotonic()

    def _after(self, watch: _KernelWatch, changes: _Changes) -> Update:
        if changes.folder_gone:  # moved (the file with it) or removed (the file first)
            if watch.where_now() is None:
                return Update(problem=f"{self.path.parent} no longer exists", ended=True)
            return self._moved(watch)
        if changes.name:
            now_at = _identity(self.path)
            if now_at is None and changes.moved_away:
                return self._moved(watch)
            if now_at is not None and now_at != watch.file_identity:
                watch.watch_file()  # a new file under the name: follow it (read from its start)
            elif now_at is None:
                watch.forget_file()  # deleted: the directory's watch sees it come back
            return self.read()
        if changes.content:
            return self.read()
        return Update()

    def _moved(self, watch: _KernelWatch) -> Update:
        """The file left its name: what it gained before, and where it went."""
        dest = watch.where_now()
        update = Update()
        if dest is not None:
            self.session.tail.path = Path(dest)  # the same inode: its last lines are read there
            update = self.read()
        update.moved_to = dest
        update.problem = f"the session file moved to {dest}" if dest else "the session file moved away"
        update.ended = True
        return update

    def _follow_watchfiles(self) -> Iterator[Update]:
        update = self.read()
        last_yield = time.monotonic()
        if not update.empty:
            yield update
        for changed in watch_files([self.path], self.stop, timeout_ms=1000):
            self.wakeups += 1
            if self.stop.is_set():
                return
            update = self.read()  # on its second's timeout too: a change a watcher missed is read then
            if update.empty and (self.timeout is None or time.monotonic() - last_yield < self.timeout):
                continue
            last_yield = time.monotonic()
            yield update


class _Changes(Fields):
    FIELDS = ("content", "name", "moved_away", "folder_gone")

    def __init__(self) -> None:
        self.content = False  # the followed inode was written or truncated
        self.name = False  # the name was created, replaced, deleted or moved
        self.moved_away = False  # ... and the last of these was the file moving elsewhere
        self.folder_gone = False


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class _KernelWatch:
    """The inotify watches of one followed file: its inode and its directory's entries."""

    def __init__(self, path: Path) -> None:
        from inotify_simple import INotify, flags

        self.path, self.name = path, path.name
        self.file_fd: int | None = None  # O_PATH: holds the inode, to tell where it moved
        self.file_wd: int | None = None
        self.file_identity: tuple[int, int] | None = None
        self._flags = flags
        self._inotify = INotify(nonblocking=True)
        try:
            dir_mask = (flags.CREATE | flags.MOVED_TO | flags.MOVED_FROM | flags.DELETE | flags.DELETE_SELF
                        | flags.MOVE_SELF | flags.ONLYDIR)
            self.dir_wd = self._inotify.add_watch(path.parent, dir_mask)
            self.watch_file()
        except BaseException:
            self.close()
            raise

    def fileno(self) -> int:
        return self._inotify.fileno()

    def watch_file(self) -> None:
        """Watches the inode now under the name (none when there is no file)."""
        self.forget_file()
        try:
            fd = os.open(self.path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return
        st = os.fstat(fd)
        mask = self._flags.MODIFY | self._flags.MOVE_SELF
        try:
            # Through the descriptor, so the watch is on the inode opened even if the name was
            # replaced in between (the directory's watch reports that replacement).
            self.file_wd = self._inotify.add_watch(f"/proc/self/fd/{fd}", mask)
        except OSError:
            self.file_wd = self._inotify.add_watch(self.path, mask)
        self.file_fd, self.file_identity = fd, (st.st_dev, st.st_ino)

    def forget_file(self) -> None:
        if self.file_wd is not None:
            try:
                self._inotify.rm_watch(self.file_wd)
            except OSError:
                pass  # already gone with its inode
            self.file_wd = None
        if self.file_fd is not None:
            os.close(self.file_fd)
            self.file_fd = None
        self.file_identity = None

    def where_now(self) -> str | None:
        """Where the followed inode is now, if it still has a name."""
        if self.file_fd is None:
            return None
        try:
            target = os.readlink(f"/proc/self/fd/{self.file_fd}")
        except OSError:
            return None
        return None if target.endswith(" (deleted)") else target

    def changes(self) -> _Changes:
        f = self._flags
        seen = _Changes()
        for event in self._inotify.read(timeout=0):
            if event.mask & f.Q_OVERFLOW:  # events were lost: look at everything
                seen.content = seen.name = True
            elif event.wd == self.dir_wd:
                if event.mask & (f.DELETE_SELF | f.MOVE_SELF | f.IGNORED):
                    seen.folder_gone = True
                elif event.name == self.name:
                    seen.name = True
                    seen.moved_away = bool(event.mask & f.MOVED_FROM)
            elif event.wd == self.file_wd:
                if event.mask & f.MODIFY:
                    seen.content = True
                if event.mask & f.MOVE_SELF:
                    seen.name = True  # the directory's MOVED_FROM says whether it left the name
                if event.mask & f.IGNORED:
                    self.file_wd = None
        return seen

    def close(self) -> None:
        self.forget_file()
        self._inotify.close()


def watch_files(paths, stop_event, timeout_ms: int = 1000) -> Iterator[set[str]]:
    """The portable path: yields the changed paths among `paths` (watching their directories,
    so a replaced or re-created file is seen), and an empty set every `timeout_ms`.

    watchfiles looks at its event queue every `step`: 10 ms while the files are changing, and
    100 ms once they have been quiet a while, so an idle follower costs little; the first
    change after a quiet spell switches back (and so waits up to ~150 ms).
    """
    from watchfiles import watch

    wanted = {str(Path(p)) for p in paths}
    dirs = sorted({str(Path(p).parent) for p in paths if Path(p).parent.is_dir()})
    if not dirs:
        return
    step = WATCH_STEP_MS
    force_polling = None  # watchfiles' own choice; polling when it cannot get kernel events either
    while not stop_event.is_set():
        quiet_since = time.monotonic()
        switch = False
        try:
            for changes in watch(
                *dirs,
                watch_filter=lambda _change, changed: changed in wanted,
                debounce=WATCH_DEBOUNCE_MS,
                step=step,
                stop_event=stop_event,
                rust_timeout=timeout_ms,
                yield_on_timeout=True,
                recursive=False,
                raise_interrupt=False,
                ignore_permission_denied=True,
                force_polling=force_polling,
            ):
                changed = {path for _change, path in changes}
                yield changed
                if changed:
                    quiet_since = time.monotonic()
                    switch = step != WATCH_STEP_MS
                else:
                    switch = step == WATCH_STEP_MS and time.monotonic() - quiet_since >= WATCH_QUIET_AFTER
                if switch:
                    step = WATCH_IDLE_STEP_MS if step == WATCH_STEP_MS else WATCH_STEP_MS
                    break
        except (OSError, RuntimeError):
            if force_polling:
                raise
            force_polling, switch = True, True  # no watcher could be made: poll the files instead
            continue
        if not switch:
            return
