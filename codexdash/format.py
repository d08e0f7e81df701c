"""Short human forms of durations, sizes and states, shared by the CLI and the dashboard."""

from __future__ import annotations

import time

from codexdash.records import JobStatus

# Each state has a symbol as well as its name, so it reads without colour.
STATUS_SYMBOL = {
    JobStatus.STARTING: "◌",
    JobStatus.RUNNING: "●",
    JobStatus.STOPPING: "◐",
    JobStatus.COMPLETED: "✔",
    JobStatus.FAILED: "✖",
    JobStatus.INTERRUPTED: "■",
    JobStatus.KILLED: "✝",
    JobStatus.LOST: "?",
    JobStatus.FAILED_TO_START: "!",
}


def status_label(status: str) -> str:
    return f"{STATUS_SYMBOL.get(status, ' ')} {status.replace('_', ' ')}"


# Seconds are shown up to here: `1m 40s`, not a `1m` that stands for anything up to 119 s.
SECONDS_SHOWN_UNTIL = 600


def duration(seconds: float | None) -> str:
    """Seconds in the first ten minutes; past them a live row's text changes once a minute,
    not every second, which is most of what an idle dashboard would otherwise redraw."""
    if seconds is None:
        return "-"
    seconds = max(int(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if seconds < SECONDS_SHOWN_UNTIL:
        return f"{minutes}m {seconds % 60:02d}s"
    if minutes < 60:
        return f"{minutes}m"
    hours, m = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h{m:02d}m"
    return f"{hours // 24}d{hours % 24:02d}h"


def local_time(ts: float | None, precise: bool = False) -> str:
    """A time as people read it: the local date and time to the second (to the millisecond
    when `precise`)."""
    if ts is None:
        return "-"
    ms = round(ts * 1000)
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms // 1000 if precise else int(ts)))
    return f"{text}.{ms % 1000:03d}" if precise else text


def size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value:.0f}{unit}" if unit in ("B", "K") else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}G"


def tokens(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 10_000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.2f}M"


def one_line(text: str, width: int) -> str:
    """The start of `text` on one line, cut to `width` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(width - 1, 0)] + "…"


def path_end(path: str, width: int) -> str:
    """The end of a path, where paths of sibling jobs differ (`…/work3/api`), cut to `width`."""
    flat = " ".join(path.split())
    return flat if len(flat) <= width else "…" + flat[len(flat) - max(width - 1, 0) :]


def title(prompt: str, width: int = 40) -> str:
    """A job's default name: its prompt's first non-empty line, cut at a word to `width`."""
    if len(prompt) <= width and prompt.isprintable() and "  " not in prompt and prompt.strip(" ") == prompt:
        return prompt  # one short line, its spaces single: itself (list --json names thousands)
    line = next((ln.strip() for ln in prompt.splitlines() if ln.strip()), "")
    line = " ".join(line.split())
    if len(line) <= width:
        return line
    space = line.rfind(" ", 0, width)  # the last word that fits whole
    cut = line[:space] if space > 0 else line[: width - 1]
    return cut.rstrip(" ,.;:") + "…"
