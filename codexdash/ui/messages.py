"""Messages from workers to widgets: small dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from codexdash.events import Event
from codexdash.jobs import JobView


@dataclass
class JobsRefreshed(Message):
    views: list[JobView]
    finished: list[JobView] = field(default_factory=list)  # jobs that ended since the last refresh
    error: str | None = None


@dataclass
class SessionUpdate(Message):
    """New lines of the followed session file (all of them after a reset)."""

    job_id: str
    path: str
    events: list[Event]
    raw_lines: list[bytes]
    reset: bool = False
    truncated: bool = False
    problem: str | None = None
