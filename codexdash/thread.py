"""A thread: the jobs that share one Codex session file (a job and its follow-ups), and where in
the file each job's part begins.

A follow-up's own turn begins at its `turn_offset` (the size of the file when it started); the
job that created the file owns what comes before the first follow-up.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from codexdash.events import SessionParser
from codexdash.format import status_label
from codexdash.store import Job


@dataclass(frozen=True)
class Part:
    offset: int  # where the job's part begins in the file
    job_id: str
    name: str = ""
    status: str | None = None  # None: a job not at hand (a parent older than the jobs listed)

    def label(self) -> str:
        words = [f"job {self.job_id}"]
        if self.name:
            words.append(self.name)
        if self.status:
            words.append(status_label(self.status))
        return " · ".join(words)


def thread_parts(path: str | None, jobs: Iterable[Job]) -> list[Part]:
    """The parts of the session file `path` in file order, read from the jobs that use it; empty
    when no follow-up shares it (one job, one part: nothing to mark)."""
    if path is None:
        return []
    shared = sorted((j for j in jobs if j.session_file == path), key=lambda j: j.created_at)
    follow_ups = [j for j in shared if j.parent_id is not None and j.turn_offset is not None]
    if not follow_ups:
        return []
    root = next((j for j in shared if j.parent_id is None), None)
    if root is not None:
        first = Part(0, root.id, root.name or "", root.status)
    else:  # the thread's first job is not among those listed: named by its follow-up
        first = Part(0, follow_ups[0].parent_id)
    parts = [first, *(Part(j.turn_offset, j.id, j.name or "", j.status) for j in follow_ups)]
    return sorted(parts, key=lambda p: p.offset)  # stable: jobs at one offset stay in start order


def part_at(parts: list[Part], offset: int | None) -> int | None:
    """The index of the part holding the line at `offset` (None when unknown or no parts)."""
    if not parts or offset is None:
        return None
    return max(bisect_right([p.offset for p in parts], offset) - 1, 0)


def line_offsets(lines: list[bytes], start: int) -> list[int]:
    """Where each of these consecutive lines begins, the first at `start`."""
    out = []
    for line in lines:
        out.append(start)
        start += len(line) + 1
    return out


def event_offsets(lines: list[bytes], start: int, count: int) -> list[int]:
    """Where the line of each of the last `count` events read from `lines` begins (the lines
    read again with a parser of their own: a parser reading from the same first line makes
    the same events)."""
    probe = SessionParser()
    offsets = []
    for offset, line in zip(line_offsets(lines, start), lines):
        offsets.extend([offset] * len(probe.feed(line)))
    if len(offsets) < count:  # cannot happen with the same lines; kept to their first line then
        offsets = [start] * (count - len(offsets)) + offsets
    return offsets[len(offsets) - count:] if count else []
