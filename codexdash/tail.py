"""Reading a growing session file: from the end when it opens, then only what was appended.

Codex appends each record as one write() ending in a newline, but a reader can still catch a
line half-written (or a process killed mid-write): a last line without its newline is kept
until it completes. A file that shrinks was truncated: it is read again from the start. One with
a new inode was replaced (Codex's thread store replaces live files atomically): if the new file
begins with what was read of the old one, reading goes on from where it was; if not, it is read
again from the start. What was read is recognised by its first and its last MATCH_BYTES bytes
(the session's id and start, and the last lines with their times): a session file only grows,
so a rewrite that changed anything before the end of what was read changes those too unless it
kept them byte for byte.

Codex 0.171 may rewrite a session file untouched for a week in place as `rollout-...jsonl.zst`
(zstd). Such a file is finished: every reader here accepts it, decompressing it as a stream from
the start (zstd cannot be read from the end), and reads it again only if it is replaced.
"""

from __future__ import annotations

import io
import os
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from codexdash.events import Event, Kind, SessionParser, decode_line
from codexdash.plain import Fields

READ_CHUNK = 1 << 20
# A longer line is skipped with a notice rather than held in memory without end.
MAX_LINE_BYTES = 256 << 20

OVERLAP_EVENTS = 8
# How much of the start of what was read, and of its end, a replaced file must repeat to be
# taken for the same file grown (see the module's docstring).
MATCH_BYTES = 4096


class TailChunk(Fields):
    FIELDS = ("lines", "reset", "problem", "skipped_long_lines")

    def __init__(self, lines: list[bytes] | None = None, reset: bool = False, problem: str | None = None,
                 skipped_long_lines: int = 0) -> None:
        self.lines = [] if lines is None else lines
        self.reset = reset  # the file was truncated or replaced: the reader starts over
        self.problem = problem  # why nothing could be read (deleted, unreadable)
        self.skipped_long_lines = skipped_long_lines


COMPRESSED_SUFFIX = ".zst"


class CompressedUnreadable(OSError):
    """A zstd-compressed session file that cannot be decompressed here (an OSError, so every
    reader that already reports unreadable files reports this one too, in one line)."""

    def __init__(self, path: Path | str, why: str) -> None:
        super().__init__(None, f"it is zstd-compressed and {why}")
        self.filename = str(path)


def is_compressed(path: Path | str) -> bool:
    return str(path).endswith(COMPRESSED_SUFFIX)


def _zstandard(path: Path | str):
    # Imported here: only a compressed file needs it, and Python 3.11 has no zstd of its own.
    try:
        import zstandard
    except ImportError:
        raise CompressedUnreadable(path, "the Python package zstandard is not installed") from None
    return zstandard


@contextmanager
def _decompressing(fd: int, path: Path | str, whole: bool = True):
    """The zstd stream reader over the file open on `fd`, from its start and across all its
    frames. Raises CompressedUnreadable when the library is missing, when the data is damaged
    (as it is read), or, `whole`, when the frames do not end where the file does."""
    zstandard = _zstandard(path)
    # The streaming reader takes a file cut inside a frame for a shorter one, silently: the
    # frames are checked to end where the file does before anything is read.
    if whole and not zstd_frames_complete(fd, os.fstat(fd).st_size):
        raise CompressedUnreadable(path, "cut short or damaged (its zstd frames do not end where the file does)")
    with open(fd, "rb", closefd=False) as fh:
        reader = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True, closefd=False)
        try:
            yield reader
        except zstandard.ZstdError as exc:
            raise CompressedUnreadable(path, f"its data is damaged ({exc})") from None


def decompressed_blocks(fd: int, path: Path | str) -> Iterator[bytes]:
    """The decompressed content of the zstd file open on `fd`, from its start, in blocks of at
    most READ_CHUNK bytes however well it compressed (a streaming reader: bounded memory).

    Raises CompressedUnreadable when the library is missing or the data is cut short or damaged.
    """
    with _decompressing(fd, path) as reader:
        while block := reader.read(READ_CHUNK):
            yield block


@contextmanager
def session_stream(path: Path | str, whole: bool = True) -> Iterator[io.BufferedReader]:
    """A session file's content from its start, as a binary file to read or readline: the file
    itself, or a compressed one's decompressed bytes (through the same reader as the tail's).
    `whole=False` reads the start of a compressed file whose end is cut or not written yet
    (its head is sound all the same); errors are CompressedUnreadable, an OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if is_compressed(path):
            with _decompressing(fd, path, whole) as reader:
                yield io.BufferedReader(reader, READ_CHUNK)
        else:
            with open(fd, "rb", closefd=False) as fh:
                yield fh
    finally:
        os.close(fd)


_ZSTD_MAGIC = 0xFD2FB528
_SKIPPABLE_MAGIC = range(0x184D2A50, 0x184D2A60)


def zstd_frames_complete(fd: int, size: int) -> bool:
    """Whether the file is a chain of whole zstd frames (RFC 8878 section 3.1), walked through
    their headers with one small read per block: nothing is decompressed."""
    pos = 0
    while pos < size:
        head = os.pread(fd, 8, pos)
        if len(head) < 8:
            return False
        magic = int.from_bytes(head[:4], "little")
        if magic in _SKIPPABLE_MAGIC:
            pos += 8 + int.from_bytes(head[4:8], "little")
            continue
        if magic != _ZSTD_MAGIC:
            return False
        descriptor = head[4]
        single_segment = descriptor >> 5 & 1
        content_size_bytes = (single_segment, 2, 4, 8)[descriptor >> 6]
        dictionary_id_bytes = (0, 1, 2, 4)[descriptor & 3]
        pos += 5 + (1 - single_segment) + dictionary_id_bytes + content_size_bytes
        while True:
            block = os.pread(fd, 3, pos)
            if len(block) < 3:
                return False
            header = int.from_bytes(block, "little")
            last, block_type, block_size = header & 1, header >> 1 & 3, header >> 3
            if block_type == 3:  # reserved: not zstd
                return False
            pos += 3 + (1 if block_type == 1 else block_size)  # an RLE block stores one byte
            if last:
                break
        pos += 4 if descriptor >> 2 & 1 else 0  # content checksum
    return pos == size


class LineSplitter:
    """Cuts a byte stream into lines. A line longer than MAX_LINE_BYTES is dropped with a count
    rather than held in memory without end; an unfinished last line is kept for the next data."""

    def __init__(self) -> None:
        self._pieces: list[bytes] = []  # the unfinished line, joined once it ends
        self._size = 0
        self._skipping = False

    def feed(self, data: bytes, chunk: TailChunk) -> None:
        start = 0
        while (nl := data.find(b"\n", start)) >= 0:
            if self._skipping:
                self._skipping = False
            elif self._size + nl - start > MAX_LINE_BYTES:
                chunk.skipped_long_lines += 1
            elif self._pieces:
                self._pieces.append(data[start:nl])
                chunk.lines.append(b"".join(self._pieces))
            else:
                chunk.lines.append(data[start:nl])
            self._pieces, self._size = [], 0
            start = nl + 1
        if self._skipping or start == len(data):
            return
        if self._size + len(data) - start > MAX_LINE_BYTES:
            self._pieces, self._size, self._skipping = [], 0, True
            chunk.skipped_long_lines += 1
            return
        self._pieces.append(data[start:])
        self._size += len(data) - start

    def finish(self, chunk: TailChunk) -> None:
        """The stream is complete (a compressed file): its unterminated last line is a line."""
        if self._pieces and not self._skipping:
            chunk.lines.append(b"".join(self._pieces))
        self._pieces, self._size, self._skipping = [], 0, False


def iter_compressed_chunks(fd: int, path: Path | str) -> Iterator[TailChunk]:
    """The lines of a compressed session file, from its start, a block's worth at a time."""
    splitter = LineSplitter()
    for block in decompressed_blocks(fd, path):
        chunk = TailChunk()
        splitter.feed(block, chunk)
        yield chunk
    chunk = TailChunk()
    splitter.finish(chunk)
    yield chunk


def iter_compressed_lines(fd: int, path: Path | str) -> Iterator[bytes]:
    for chunk in iter_compressed_chunks(fd, path):
        yield from chunk.lines


class SessionTail:
    """Reads the complete lines appended to `path` since the last call."""

    def __init__(self, path: Path | str, offset: int = 0, identity: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        self.offset = offset
        self._identity = identity
        self._lines = LineSplitter()
        # The first and the last MATCH_BYTES bytes before `offset`: what a file replacing this
        # one must begin with to be read on from `offset` (remember()).
        self._head = b""
        self._end = b""

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
            if is_compressed(self.path):
                self._read_compressed(fd, st, chunk)
                return chunk
            if self._identity is not None and identity != self._identity:
                if not self._begins_as_read(fd, st):
                    self._restart(chunk)  # another file: read from its start
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
                self._end = data[-MATCH_BYTES:] if len(data) >= MATCH_BYTES else (self._end + data)[-MATCH_BYTES:]
                self._lines.feed(data, chunk)
            self.remember(fd)
        finally:
            os.close(fd)
        return chunk

    def remember(self, fd: int) -> None:
        """Takes what is still missing of the first and the last bytes before `offset` from the
        file open on `fd`: two small reads, once, at the first read (opening the end of a file
        reads nothing more for it; a file replaced before that first read is read again)."""
        want = min(MATCH_BYTES, self.offset)
        try:
            if len(self._head) < want:
                self._head = os.pread(fd, want, 0)
            if len(self._end) < want:
                self._end = os.pread(fd, want, self.offset - want)
        except OSError:
            self._head = self._end = b""  # not known: a replacement is read from its start

    def _begins_as_read(self, fd: int, st: os.stat_result) -> bool:
        """Whether the file now under the name (open on `fd`) begins with what was read."""
        want = min(MATCH_BYTES, self.offset)
        if st.st_size < self.offset or len(self._head) < want or len(self._end) < want:
            return False
        try:
            return os.pread(fd, want, 0) == self._head and os.pread(fd, want, self.offset - want) == self._end
        except OSError:
            return False

    def _restart(self, chunk: TailChunk) -> None:
        chunk.reset = True
        self.offset = 0
        self._lines = LineSplitter()
        self._head = self._end = b""

    def _read_compressed(self, fd: int, st: os.stat_result, chunk: TailChunk) -> None:
        """A compressed file is read whole, once; again only if it is replaced or rewritten.
        `offset` is then the compressed size that was read."""
        identity = (st.st_dev, st.st_ino)
        if self._identity in (None, identity) and self.offset == st.st_size:
            return  # read already: a compressed file does not grow
        if self._identity is not None or self.offset:
            self._restart(chunk)
        self._identity, self.offset = identity, st.st_size
        try:
            for part in iter_compressed_chunks(fd, self.path):
                chunk.lines.extend(part.lines)
                chunk.skipped_long_lines += part.skipped_long_lines
        except OSError as exc:  # CompressedUnreadable too
            chunk.problem = f"cannot read {self.path}: {exc.strerror}"


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


class Appended(Fields):
    """What a followed session file gained since the last read, parsed."""

    FIELDS = ("events", "lines", "reset", "problem")

    def __init__(self, events: list[Event], lines: list[bytes], reset: bool = False, problem: str | None = None) -> None:
        self.events = events
        self.lines = lines
        self.reset = reset  # truncated or replaced: these are read from its start
        self.problem = problem


class OpenedSession(Fields):
    FIELDS = ("events", "lines", "tail", "parser", "truncated")

    def __init__(self, events: list[Event], lines: list[bytes], tail: SessionTail, parser: SessionParser,
                 truncated: bool) -> None:
        self.events = events
        self.lines = lines  # the raw lines the events were read from, oldest first
        self.tail = tail
        self.parser = parser
        self.truncated = truncated  # earlier events exist that were not read

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
        # A few events more than asked: Codex records some results twice, and the parser keeps
        # the first of a pair only if it sees both.
        wanted = last + OVERLAP_EVENTS
        probe = SessionParser()
        if is_compressed(path):
            end = st.st_size
            tail = SessionTail(path, offset=end, identity=(st.st_dev, st.st_ino))
            picked, truncated = _last_lines_forward(iter_compressed_lines(fd, path), wanted, probe)
            picked = [(line, decode_line(line)) for line in picked]
        else:
            end = last_line_end(fd, st.st_size)
            tail = SessionTail(path, offset=end, identity=(st.st_dev, st.st_ino))
            picked = []
            counted = 0
            truncated = False
            for line in iter_lines_backward(fd, end):
                if counted >= wanted:
                    truncated = True
                    break
                record = decode_line(line)  # decoded once: the events are then read forward from it
                picked.append((line, record))
                counted += len(probe.feed_decoded(record))
            picked.reverse()
    finally:
        os.close(fd)
    parser = SessionParser()
    events: list[Event] = []
    for line, record in picked:
        events.extend(parser.feed_decoded(record))
    picked = [line for line, _record in picked]
    truncated = truncated or len(events) > last
    return OpenedSession(events=events[-last:] if last else [], lines=picked, tail=tail, parser=parser, truncated=truncated)


def _last_lines_forward(lines: Iterable[bytes], wanted: int, probe: SessionParser) -> tuple[list[bytes], bool]:
    """The shortest run of last lines holding `wanted` events (all of them if fewer), read from
    the start: memory holds that run only. Also whether earlier lines were dropped."""
    kept: deque[tuple[bytes, int]] = deque()
    counted = 0
    dropped = False
    for line in lines:
        n = len(probe.feed(line))
        kept.append((line, n))
        counted += n
        while counted - kept[0][1] >= wanted:
            counted -= kept.popleft()[1]
            dropped = True
    return [line for line, _n in kept], dropped


def open_session_raw(path: Path | str, last: int) -> OpenedSession:
    """The last `last` lines of a session file as written (no events), and a tail after them."""
    path = Path(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if is_compressed(path):
            end = st.st_size
            tail = SessionTail(path, offset=end, identity=(st.st_dev, st.st_ino))
            kept: deque[bytes] = deque(maxlen=last)
            seen = 0
            for line in iter_compressed_lines(fd, path):
                kept.append(line)
                seen += 1
            lines, truncated = list(kept), seen > last
        else:
            end = last_line_end(fd, st.st_size)
            tail = SessionTail(path, offset=end, identity=(st.st_dev, st.st_ino))
            lines, truncated = [], False
            for line in iter_lines_backward(fd, end):
                if len(lines) >= last:
                    truncated = True
                    break
                lines.append(line)
            lines.reverse()
    finally:
        os.close(fd)
    return OpenedSession(events=[], lines=lines, tail=tail, parser=SessionParser(), truncated=truncated)

