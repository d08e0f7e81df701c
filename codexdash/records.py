"""What a job record is, without the ORM: its states, the schema version of the store, and the
mark of a look. store.py builds its models on these; `list` reads the store with these alone,
so a cold `codexdash list` does not load peewee (see listing.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

SCHEMA_VERSION = 3


class JobStatus:
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    KILLED = "killed"
    LOST = "lost"
    FAILED_TO_START = "failed_to_start"

    LIVE = (STARTING, RUNNING, STOPPING)
    FINISHED = (COMPLETED, FAILED, INTERRUPTED, KILLED, LOST, FAILED_TO_START)


_look = threading.local()


@contextmanager
def looking() -> Iterator[None]:
    """Marks what this thread runs inside as a look (list, show, logs): on a read-only database,
    what a look writes (an outcome it settled, a session file it found) is kept in the
    in-memory copy of this process, never on disk. Outside a look such a write is refused."""
    before = getattr(_look, "on", False)
    _look.on = True
    try:
        yield
    finally:
        _look.on = before


def is_looking() -> bool:
    return getattr(_look, "on", False)
