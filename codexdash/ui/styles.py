"""How the core's style names and job states look in the dashboard (Rich styles)."""

from __future__ import annotations

from codexdash.store import JobStatus

# Named colours, not hex: the terminal's own palette, and plain under NO_COLOR.
LINE_STYLES = {
    "prompt": "bold",
    "agent": "cyan",
    "command": "yellow",
    "output": "",
    "ok": "green",
    "error": "bold red",
    "dim": "dim",
    "notice": "magenta",
    "part": "bold",  # the rule opening another job's part of a shared session file
    "part-current": "bold reverse",  # the rule opening the shown job's own part
}

STATUS_STYLES = {
    JobStatus.STARTING: "yellow",
    JobStatus.RUNNING: "bold green",
    JobStatus.STOPPING: "yellow",
    JobStatus.COMPLETED: "green",
    JobStatus.FAILED: "bold red",
    JobStatus.INTERRUPTED: "magenta",
    JobStatus.KILLED: "red",
    JobStatus.LOST: "bold magenta",
    JobStatus.FAILED_TO_START: "bold red",
}
