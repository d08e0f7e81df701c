"""Reading a growing session file: from the end when it opens, then only what was appended.

Codex appends each record as one write() ending in a newline, but a reader can still catch a
line half-written (or a process killed mid-write): a last line without its newline is kept
until it completes. A file that shrinks was truncated and one with a new inode was replaced:
both are read again from the start.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from codexdash.events import Event, Kind, SessionParser

READ_CHUNK = 1 << 20
# A longer line is skipped with a notice rather than held in memory without end.
MAX_LINE_BYTES = 256 << 20

OVERLAP_EVENTS = 8


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
