"""Which jobs want the operator: the ones that ended (unseen until looked at) and the ones
that stalled. Plain bookkeeping over the refreshed views; the app tells and draws.

A job counts as ended when a refresh sees it finished after having seen it live, or, at the
first refresh, when it ended after the last dashboard closed (nobody was looking then).
Jobs this dashboard killed are not news: the kill said so.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from codexdash.jobs import JobView
from codexdash.store import JobStatus
from codexdash.ui.columns import idle_for, is_stalled
from codexdash.ui.styles import FAILURES

ENDED, STALLED = "ended", "stalled"


class Attention:
    def __init__(self, unseen: Iterable[str], closed_at: float | None, stall_after: float) -> None:
        self.unseen = set(unseen)  # finished jobs not looked at yet (shared with the table)
        self.closed_at = closed_at
        self.stall_after = stall_after
        # Live job id -> its status at the last refresh: an end is told when a job seen live is
        # seen finished. A finished job's is dropped, as it never lives again: a dashboard open
        # for days keeps none per job ended.
        self.status: dict[str, str] = {}
        self.stalled: set[str] = set()
        self._first = True

    def update(self, views: list[JobView], killing: set[str], first: bool | None = None) -> list[tuple[str, JobView]]:
        """Takes a refresh in; returns what is news: (ENDED or STALLED, view). `first`: whether
        this is the first look at these jobs (another box's first answer); by default, whether
        this is the first refresh of this box's."""
        news: list[tuple[str, JobView]] = []
        now = time.time()
        ours = first is None
        first = self._first if ours else first
        for v in views:
            jid, status = v.job.id, v.job.status
            before = self.status.get(jid)
            if before in JobStatus.LIVE and status in JobStatus.FINISHED and jid not in killing:
                self.unseen.add(jid)
                news.append((ENDED, v))
            elif first and status in JobStatus.FINISHED and self._ended_while_away(v):
                self.unseen.add(jid)
            self._note(jid, status)
            if is_stalled(v, idle_for(v, now), self.stall_after):
                if jid not in self.stalled and not first:  # already stalled when we opened: no alarm
                    news.append((STALLED, v))
                self.stalled.add(jid)
            else:
                self.stalled.discard(jid)
        if ours:
            self._first = False
        return news

    def _ended_while_away(self, v: JobView) -> bool:
        return self.closed_at is not None and (v.job.ended_at or 0) > self.closed_at

    def settled_by_kill(self, job_id: str, status: str) -> None:
        """A kill from this dashboard ended the job: its end is told by the kill, once."""
        self._note(job_id, status)  # seen ended here: the next refresh tells nothing

    def _note(self, job_id: str, status: str) -> None:
        if status in JobStatus.LIVE:
            self.status[job_id] = status
        else:
            self.status.pop(job_id, None)

    def seen(self, job_id: str | None) -> bool:
        """The operator looked at this job; True when that took a mark away."""
        if job_id in self.unseen:
            self.unseen.discard(job_id)
            return True
        return False

    def counts(self, views: list[JobView]) -> dict[str, int]:
        unseen = [v for v in views if v.job.id in self.unseen and v.job.status in JobStatus.FINISHED]
        failed = sum(1 for v in unseen if v.job.status in FAILURES)
        return {"failed": failed, "stalled": len(self.stalled), "unseen": len(unseen) - failed}
