"""Threads together: a job and its follow-ups (`codexdash resume`) shown as one block of rows.

The block takes the place its best-placed job has in the table's sort, and lists its jobs in
the order they spoke in the session: the first job, then each follow-up. A follow-up whose
earlier job is not shown (filtered out, or older than the recent window) heads its own block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

R = TypeVar("R")  # a table row: anything with `.job` (id, parent_id, created_at)


def thread_root(job_id: str, parents: dict[str, str | None]) -> str:
    """The first job of the thread `job_id` belongs to, among the jobs in `parents`."""
    seen = {job_id}
    while (parent := parents.get(job_id)) in parents and parent not in seen:  # a loop is cut, never followed
        seen.add(parent)
        job_id = parent
    return job_id


def together(rows: Sequence[R]) -> list[R]:
    """`rows` (in the table's order) with each thread's jobs next to each other."""
    parents = {r.job.id: r.job.parent_id for r in rows}
    if not any(p in parents for p in parents.values()):
        return list(rows)  # no follow-up next to its parent: nothing to move
    blocks: dict[str, list[R]] = {}  # by the root's id, in the order their first row comes
    for r in rows:
        blocks.setdefault(thread_root(r.job.id, parents), []).append(r)
    out: list[R] = []
    for block in blocks.values():
        out.extend(sorted(block, key=lambda r: r.job.created_at))
    return out
