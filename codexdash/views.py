"""The rows the dashboard shows that are not this box's stored jobs: a Codex session codexdash
did not start (`ExternalView`), and a job of another box read from its JSON (`RemoteView`).

Each is a `JobView` over a `Job` record that is never stored, only shown, so the table, the
pane and the status line read them as they read this box's jobs; `host` says which box.
No textual here.
"""

from __future__ import annotations

import datetime as dt
import time

from codexdash import format as fmt
from codexdash.jobs import JobView
from codexdash.procs import ProcessStats
from codexdash.store import Job


class ExternalView(JobView):
    """A Codex session codexdash did not start, shown as a row like a job's (read-only)."""

    __slots__ = ()


def external_view(s) -> ExternalView:
    """An `ExternalSession` as a row: a Job record that is never stored, only shown."""
    job = Job(id=s.session_id, marker="", status=s.status, argv="[]", cwd=s.cwd or "", prompt=s.prompt,
              model=s.model, created_at=s.created_at, started_at=s.created_at, ended_at=s.ended_at, pid=s.pid,
              session_file=s.session_file, session_id=s.session_id, tokens=s.tokens, error=s.error,
              name=fmt.title(s.prompt) or "(no prompt)")
    return ExternalView(job, tokens=s.tokens, tokens_detail=s.tokens_detail)


class RemoteView(JobView):
    """A job of another box, as that box last told it (`box.jobs()`'s JSON). `stale` is why
    the box did not answer since (None while it answers): the row is then shown greyed."""

    __slots__ = ("seen_at", "stale")

    def __init__(self, job: Job, host: str, seen_at: float, stats: ProcessStats | None = None,
                 tokens: int | None = None, tokens_detail: dict | None = None,
                 last_activity: float | None = None) -> None:
        super().__init__(job, stats=stats, tokens=tokens, tokens_detail=tokens_detail, host=host,
                         last_activity=last_activity)
        self.seen_at = seen_at  # when the box said this (wall time, this box's clock)
        self.stale: str | None = None

    @property
    def elapsed(self) -> float | None:
        j = self.job
        if j.is_live and j.created_at:
            return max(time.time() - j.created_at, 0.0)
        if j.started_at and j.ended_at:
            return j.ended_at - j.started_at
        return None


class RemoteExternalView(RemoteView, ExternalView):
    """A Codex session on another box that its codexdash did not start (read-only)."""

    __slots__ = ()


def _when(text) -> float | None:
    """A time as the JSON writes it (`2026-01-01T00:00:00.000Z`), as seconds; None if not one."""
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _str(value) -> str | None:
    return value if isinstance(value, str) else None


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def remote_view(data: dict, host: str, seen_at: float | None = None) -> RemoteView:
    """A job (or external session) of another box from its JSON, read as untrusted: a field of
    the wrong type is left out, never a crash. Its text is shown through `sanitize` like all."""
    seen_at = time.time() if seen_at is None else seen_at
    created = _when(data.get("created_at")) or 0.0
    ended = _when(data.get("ended_at"))
    prompt = _str(data.get("prompt")) or ""
    external = data.get("external") is True
    tokens = _int(data.get("tokens"))
    job = Job(id=_str(data.get("id")) or "?", marker="", status=_str(data.get("status")) or "lost", argv="[]",
              cwd=_str(data.get("cwd")) or "", prompt=prompt, model=_str(data.get("model")), created_at=created,
              started_at=created, ended_at=ended, pid=_int(data.get("pid")), exit_code=_int(data.get("exit_code")),
              session_file=_str(data.get("session_file")), session_id=_str(data.get("session_id")), tokens=tokens,
              error=_str(data.get("error")), name=_str(data.get("name")) or fmt.title(prompt) or "(no prompt)",
              parent_id=_str(data.get("parent_id")), retry_of=_str(data.get("retry_of")),
              worktree=_str(data.get("worktree")))
    cpu, rss = data.get("cpu_percent"), data.get("rss_bytes")
    stats = None
    if isinstance(cpu, (int, float)) and _int(rss) is not None and job.is_live:
        stats = ProcessStats(cpu_percent=float(cpu), rss_bytes=rss, uptime=max(seen_at - created, 0.0), processes=1,
                             read_at=seen_at)
    detail = data.get("tokens_detail") if isinstance(data.get("tokens_detail"), dict) else None
    cls = RemoteExternalView if external else RemoteView
    # When its session file last changed, by that box's clock (its Idle; older boxes do not say).
    active = _when(data.get("last_activity")) if job.is_live else None
    return cls(job, host, seen_at, stats=stats, tokens=tokens, tokens_detail=detail, last_activity=active)


def remote_views(jobs, host: str, seen_at: float | None = None) -> list[RemoteView]:
    """Another box's `list --json` (or a watch's snapshot) as rows, each job read as untrusted."""
    seen_at = time.time() if seen_at is None else seen_at
    return [remote_view(job, host, seen_at) for job in jobs if isinstance(job, dict)]
