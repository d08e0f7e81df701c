"""The session pane's header lines: which job, model and tokens; whether the pane follows the
file (and why not); the job's error in Codex's words. Every text from a job or a file is made
inert here (control characters visible, never markup)."""

from __future__ import annotations

from rich.text import Text

from codexdash.render import sanitize
from codexdash.store import Job
from codexdash.ui.session_log import SessionLog

QUERY_SHOWN = 24  # characters of the search shown in the header


def title_text(job: Job | None, model: str | None, tokens: int | None, host: str = "local") -> Text:
    """`Session a1b2c3d4e5 · gpt-5 · Σ 1,234 tokens · name`: the name last, cut first; a job on
    another box says which (`Session a1b2c3d4e5 on box1 · …`)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("Session", style="bold")
    if job is None:
        return text
    text.append(f" {job.id}", style="bold")
    if host != "local":
        text.append(f" on {sanitize(host)}", style="bold")
    model = model or job.model
    text.append(f" · {sanitize(model)}" if model else " · model -", style="cyan" if model else "dim")
    text.append(f" · Σ {tokens:,} tokens" if tokens is not None else " · Σ - tokens", style="" if tokens is not None else "dim")
    if job.name:
        text.append(f" · {sanitize(job.name)}", style="dim")
    return text


def state_text(shown: bool, follow: bool, log: SessionLog, raw: bool, note: str) -> Text:
    """Whether the pane follows the file: `▼ following`, or paused and how to resume; then the
    search (`“word” 2/5 n/N`), raw mode and any problem reading the file."""
    text = Text(no_wrap=True, overflow="ellipsis")
    if not shown:
        return text
    if not follow:
        text.append("■ follow off (f: follow)", style="yellow")
    elif log.stuck:
        text.append("▼ following", style="green")
    elif log.left_by == "search":
        text.append("‖ paused by search (End: follow)", style="bold yellow")
    else:
        text.append("‖ paused: scrolled up (End: follow)", style="bold yellow")
    search = log.search
    if search.active:
        query = sanitize(search.query)
        if len(query) > QUERY_SHOWN:
            query = query[: QUERY_SHOWN - 1] + "…"
        text.append(f"  “{query}” {search.position()}", style="bold")
        if search.matches:
            text.append(" n/N", style="dim")
    if raw:
        text.append("  raw JSON", style="cyan")
    if note:
        text.append(f"  {sanitize(note)}", style="red")
    return text


def error_text(job: Job | None) -> Text | None:
    """The job's error as Codex wrote it (kept from its stderr), or None."""
    if job is None or not job.error:
        return None
    return Text("✖ " + sanitize(job.error.strip()), style="bold red")
