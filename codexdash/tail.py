"""Reading a growing session file: from the end when it opens, then only what was appended.

Codex appends each record as one write() ending in a newline, but a reader can still catch a
line half-written (or a process killed mid-write): a last line without its newline is kept
until it completes. A file that shrinks was truncated and one with a new inode was replaced:
both are read again from the start.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from watchfiles import watch

from codexdash.events import Event, Kind, SessionParser

READ_CHUNK = 1 << 20
# A longer line is skipped with a notice rather than held in memory without end.
MAX_LINE_BYTES = 256 << 20

# watchfiles waits `step` ms for more changes before it yields; its defaults (debounce 1600 ms,
# step 50 ms) delay each new line by tens of milliseconds. One watcher with a 10 ms step costs
# well under 1 % of a core while idle (see BENCHMARKS.md).
WATCH_STEP_MS = 10
WATCH_IDLE_STEP_MS = 100
WATCH_QUIET_AFTER = 5.0  # seconds without a change before the watcher slows down
OVERLAP_EVENTS = 8
WATCH_DEBOUNCE_MS = 50


@dataclass
class TailChunk:
    lines: list[bytes] = field(default_factory=list)
    reset: bool = False  # the file was truncated or replaced: the reader starts over
    problem: str | None = None  # why nothing could be read (deleted, unreadable)
    skipped_long_lines: int = 0


class SessionTail:
    """Reads the complete lines appended to `path` since the last call."""

    def __init__(self, path: Path | str, offset: int = 0, identity: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.offset = offset
        self._identity = identity
        self._partial = b""
        self._skipping_long_line = False

    def read(self) -> TailChunk:
        chunk = TailChunk()
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            chunk.problem = f"{self.path} no longer exists"
            return chunk
        except OSError as exc:
            chunk.problem = f"cannot read {self.path}: {exc.strerror}"
            return chunk
        try:
            st = os.fstat(fd)
            identity = (st.st_dev, st.st_ino)
            if self._identity is not None and identity != self._identity:
                self._restart(chunk)
            elif st.st_size < self.offset:
                self._restart(chunk)
            self._identity = identity
            while True:
                try:
                    data = os.pread(fd, READ_CHUNK, self.offset)
                except OSError as exc:
                    chunk.problem = f"cannot read {self.path}: {exc.strerror}"
                    break
                if not data:
                    break
                self.offset += len(data)
                self._split(data, chunk)
        finally:
            os.close(fd)
        return chunk

    def _restart(self, chunk: TailChunk) -> None:
        chunk.reset = True
        self.offset = 0
        self._partial = b""
        self._skipping_long_line = False

    def _split(self, data: bytes, chunk: TailChunk) -> None:
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                break
            piece = data[start:nl]
            if self._skipping_long_line:
                self._skipping_long_line = False
            else:
                line = self._partial + piece if self._partial else piece
                chunk.lines.append(line)
            self._partial = b""
            start = nl + 1
        rest = data[start:]
        if self._skipping_long_line or not rest:
            return
        if len(self._partial) + len(rest) > MAX_LINE_BYTES:
            self._partial = b""
            self._skipping_long_line = True
            chunk.skipped_long_lines += 1
            return
        self._partial += rest


def last_line_end(fd: int, size: int) -> int:
    """Offset just past the last newline of the file (0 when it has none)."""
    pos = size
    while pos > 0:
        block = min(READ_CHUNK, pos)
        pos -= block
        nl = os.pread(fd, block, pos).rfind(b"\n")
        if nl >= 0:
            return pos + nl + 1
    return 0


def iter_lines_backward(fd: int, end: int) -> Iterator[bytes]:
    """The lines of the file before offset `end`, from the last to the first.

    Reads blocks from the end with pread (no mmap: a file truncated under a mapping would
    bring SIGBUS), so the end of a huge file opens at once.
    """
    pending: list[bytes] = []  # blocks of a line whose start has not been reached yet
    pending_size = 0
    dropping = False  # inside a line too long to keep: its pieces are dropped
    pos = end - 1 if end > 0 else 0  # the final newline ends the last line; skip it
    while pos > 0:
        block_size = min(READ_CHUNK, pos)
        pos -= block_size
        block = os.pread(fd, block_size, pos)
        stop = len(block)
        while (nl := block.rfind(b"\n", 0, stop)) >= 0:
            line = block[nl + 1 : stop]
            if dropping:
                dropping = False
            else:
                if pending:
                    pending.append(line)
                    line = b"".join(reversed(pending))
                    pending, pending_size = [], 0
                yield line
            stop = nl
        if not dropping:
            pending.append(block[:stop])
            pending_size += stop
            if pending_size > MAX_LINE_BYTES:
                pending, pending_size, dropping = [], 0, True
    if pending and not dropping:
        yield b"".join(reversed(pending))


@dataclass
class Appended:
    """What a followed session file gained since the last read, parsed."""

    events: list[Event]
    lines: list[bytes]
    reset: bool = False  # truncated or replaced: these are read from its start
    problem: str | None = None


@dataclass
class OpenedSession:
    events: list[Event]
    lines: list[bytes]  # the raw lines the events were read from, oldest first
    tail: SessionTail
    parser: SessionParser
    truncated: bool  # earlier events exist that were not read

    def read_more(self) -> Appended:
        """The events appended since the last read (every follower of a file goes through here)."""
        chunk = self.tail.read()
        if chunk.reset:
            self.parser = SessionParser()  # what it had merged belongs to the old content
        events = [event for line in chunk.lines for event in self.parser.feed(line)]
        if chunk.skipped_long_lines:
            events.append(Event(Kind.NOTICE, f"{chunk.skipped_long_lines} line(s) over {MAX_LINE_BYTES >> 20} MiB skipped"))
        return Appended(events, chunk.lines, chunk.reset, chunk.problem)


def session_from(path: Path | str, offset: int = 0) -> OpenedSession:
    """A session to follow from `offset` (the start by default), nothing read yet."""
    return OpenedSession(events=[], lines=[], tail=SessionTail(path, offset=offset), parser=SessionParser(), truncated=False)


def open_session(path: Path | str, last: int = 200) -> OpenedSession:
    """The last `last` events of a session file, and a tail positioned after them."""
    path = Path(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        end = last_line_end(fd, st.st_size)
        picked: list[bytes] = []
        counted = 0
        truncated = False
        probe = SessionParser()
        for line in iter_lines_backward(fd, end):
            # A few events more than asked: Codex records some results twice, and the parser
            # keeps the first of a pair only if it sees both.
            if counted >= last + OVERLAP_EVENTS:
                truncated = True
                break
            picked.append(line)
            counted += len(probe.feed(line))
    finally:
        os.close(fd)
    picked.reverse()
    parser = SessionParser()
    events: list[Event] = []
    for line in picked:
        events.extend(parser.feed(line))
    tail = SessionTail(path, offset=end, identity=(st.st_dev, st.st_ino))
    truncated = truncated or len(events) > last
    return OpenedSession(events=events[-last:] if last else [], lines=picked, tail=tail, parser=parser, truncated=truncated)


def watch_files(paths: Iterable[Path], stop_event, timeout_ms: int = 1000) -> Iterator[set[str]]:
    """Yields the changed paths among `paths` (watching their directories, so a replaced or
    re-created file is seen), and an empty set every `timeout_ms` so callers can look around.

    The watcher polls its event queue every `step`: 10 ms while the files are changing, for
    low latency, and 100 ms once they have been quiet a while, so a dashboard left open on an
    idle job costs next to nothing. The first change after a quiet spell switches back.
    """
    wanted = {str(Path(p)) for p in paths}
    dirs = sorted({str(Path(p).parent) for p in paths if Path(p).parent.is_dir()})
    if not dirs:
        return
    step = WATCH_STEP_MS
    while not stop_event.is_set():
        quiet_since = time.monotonic()
        switch = False
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
        if not switch:
            return


def last_raw_lines(path: Path, n: int) -> tuple[list[bytes], int]:
    """The last `n` complete lines of a session file as written, and the offset they end at."""
    fd = os.open(path, os.O_RDONLY)
    try:
        end = last_line_end(fd, os.fstat(fd).st_size)
        lines = []
        for line in iter_lines_backward(fd, end):
            if len(lines) >= n:
                break
            lines.append(line)
    finally:
        os.close(fd)
    return lines[::-1], end
