"""How the core's style names and job states look in the dashboard (Rich styles).

Two looks: colour, and one for NO_COLOR where the state is carried by its symbol and word and
by bold and reverse only (no colour, and no dim on rows that need attention: dimmed grey on
grey is what NO_COLOR terminals made of failed rows before).
"""

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
    JobStatus.KILLED: "bold red",
    JobStatus.LOST: "bold magenta",
    JobStatus.FAILED_TO_START: "bold red",
}

# Under NO_COLOR: the rows that need attention in reverse, live ones bold, the rest plain.
MONO_STATUS_STYLES = {
    JobStatus.STARTING: "bold",
    JobStatus.RUNNING: "bold",
    JobStatus.STOPPING: "bold",
    JobStatus.COMPLETED: "",
    JobStatus.FAILED: "bold reverse",
    JobStatus.INTERRUPTED: "bold",
    JobStatus.KILLED: "bold reverse",
    JobStatus.LOST: "bold reverse",
    JobStatus.FAILED_TO_START: "bold reverse",
}

# Finished states that want the operator's eyes (a stalled live job wants them too).
ATTENTION = (JobStatus.FAILED, JobStatus.KILLED, JobStatus.LOST, JobStatus.FAILED_TO_START)
# The ones counted as failures: live jobs sort first, then these, then the rest.
FAILURES = (JobStatus.FAILED, JobStatus.LOST, JobStatus.FAILED_TO_START)

STALLED_STYLE = "bold yellow"
MONO_STALLED_STYLE = "bold reverse"


def status_style(status: str, mono: bool, stalled: bool = False) -> str:
    if stalled:
        return MONO_STALLED_STYLE if mono else STALLED_STYLE
    return (MONO_STATUS_STYLES if mono else STATUS_STYLES).get(status, "")


def quiet_style(mono: bool) -> str:
    """Secondary text (a finished job's PID): dim in colour, plain under NO_COLOR."""
    return "" if mono else "dim"


def stale_style(mono: bool) -> str:
    """A row whose box did not answer at the last look: greyed (italic under NO_COLOR, where
    there is no grey); its state says "unreachable" in words too."""
    return "italic" if mono else "dim"
