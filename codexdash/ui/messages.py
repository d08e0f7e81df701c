"""Messages from workers to widgets: small dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from codexdash.events import Event
from codexdash.jobs import JobView
from codexdash.starting import StartRequest
from codexdash.kill import KillFlow
from codexdash.store import Job


@dataclass
class JobsRefreshed(Message):
    views: list[JobView]
    finished: list[JobView] = field(default_factory=list)  # jobs that ended since the last refresh
    error: str | None = None
    externals: list[JobView] | None = None  # Codex sessions not started by codexdash (None: not looked at)


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
    start: int | None = None  # after a reset: where the first line begins in the file, when known
    model: str | None = None  # the model named at the file's start, when the lines read begin later


@dataclass
class StartDone(Message):
    """A start the app ran in a worker: the job, or why not (`bad_input`: nothing was done,
    the request goes back to the dialog)."""

    request: StartRequest
    job: Job | None = None
    error: str | None = None
    bad_input: bool = False


@dataclass
class KillVerified(Message):
    """A kill whose identity checks ran in a worker: to be shown and answered."""

    flow: KillFlow


@dataclass
class RemoteKillVerified(Message):
    """Another box ran the identity checks of its job: to be shown (as it ran them) and answered."""

    host: str
    job: Job
    report: object  # identity.IdentityReport, from the box's answer


@dataclass
class KillDone(Message):
    """A kill attempt is over (carried out, refused, cancelled or failed); `text` is what to tell."""

    job_id: str
    text: str | None = None
    severity: str = "information"
    status: str | None = None  # the job's status after it, when known
