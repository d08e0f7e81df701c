"""The live jobs table: cells updated in place, cursor kept on the job the user chose."""

from __future__ import annotations

import os
import time

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from codexdash import format as fmt
from codexdash.jobs import JobView
from codexdash.render import sanitize
from codexdash.store import JobStatus
from codexdash.ui.styles import STATUS_STYLES

# A live job whose session file has not grown for this long is shown as stalled.
STALL_SECONDS = 120.0

COLUMNS = [
    ("status", "State"),
    ("id", "Job"),
    ("pid", "PID"),
    ("time", "Time"),
    ("cpu", "CPU"),
    ("mem", "Mem"),
    ("tokens", "Tokens"),
    ("idle", "Idle"),
    ("prompt", "Prompt"),
    ("cwd", "Cwd"),
    ("model", "Model"),
]

SORTS = ["newest", "state", "cpu", "memory", "tokens", "idle"]

_STATUS_ORDER = {s: i for i, s in enumerate([*JobStatus.LIVE, *JobStatus.FINISHED])}


def _sort_key(sort: str, now: float):
    def key(v: JobView):
        s = v.stats
        if sort == "state":
            return (_STATUS_ORDER.get(v.job.status, 99), -v.job.created_at)
        if sort == "cpu":
            return (-(s.cpu_percent if s else -1), -v.job.created_at)
        if sort == "memory":
            return (-(s.rss_bytes if s else -1), -v.job.created_at)
        if sort == "tokens":
            return (-(v.total_tokens or 0), -v.job.created_at)
        if sort == "idle":
            return (-(now - v.last_activity) if v.last_activity and v.job.is_live else 0, -v.job.created_at)
        return (-v.job.created_at,)

    return key


def _short_path(path: str, width: int = 28) -> str:
    home = os.path.expanduser("~")
    if path == home or path.startswith(home + "/"):
        path = "~" + path[len(home) :]
    return path if len(path) <= width else "…" + path[-(width - 1) :]


def row_cells(v: JobView, now: float) -> dict[str, Text]:
    j = v.job
    live = j.is_live
    idle = now - v.last_activity if (live and v.last_activity) else None
    stalled = idle is not None and idle >= STALL_SECONDS
    return {
        "status": Text(fmt.status_label(j.status), style=STATUS_STYLES.get(j.status, "")),
        "id": Text(j.id),
        "pid": Text(str(j.pid or "-"), style="" if live else "dim"),
        "time": Text(fmt.duration(v.elapsed), style="" if live else "dim"),
        "cpu": Text(f"{v.stats.cpu_percent:.0f}%" if v.stats else "-", justify="right"),
        "mem": Text(fmt.size(v.stats.rss_bytes) if v.stats else "-", justify="right"),
        "tokens": Text(fmt.tokens(v.total_tokens), justify="right"),
        "idle": Text(("⚠ " if stalled else "") + fmt.duration(idle) if idle is not None else "-",
                     style="bold yellow" if stalled else "dim"),
        "prompt": Text(sanitize(fmt.one_line(j.prompt, 36))),
        "cwd": Text(sanitize(_short_path(j.cwd))),
        "model": Text(sanitize(j.model or "-")),
    }


def matches(v: JobView, query: str) -> bool:
    q = query.lower()
    j = v.job
    return any(q in (field or "").lower() for field in (j.id, j.status, j.cwd, j.prompt, j.model))


class JobsTable(DataTable):
    BINDINGS = [Binding("enter", "app.focus_pane", "Session", show=False)]

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self._cells: dict[str, tuple] = {}  # job id -> the plain cells shown, to skip unchanged updates
        self._final: set[str] = set()  # finished jobs whose row is drawn: it will not change
        self._order: list[str] = []

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    @property
    def selected_job_id(self) -> str | None:
        if not self._order or self.cursor_row < 0 or self.cursor_row >= len(self._order):
            return None
        return self._order[self.cursor_row]

    def show(self, views: list[JobView], *, query: str = "", show_finished: bool = True, sort: str = "newest") -> None:
        """Shows these jobs, changing only the cells whose text changed."""
        now = time.time()
        selected = self.selected_job_id
        visible = [v for v in views if (show_finished or v.job.is_live) and (not query or matches(v, query))]
        visible.sort(key=_sort_key(sort, now))
        wanted = [v.job.id for v in visible]
        for gone in set(self._cells) - set(wanted):
            self.remove_row(gone)
            del self._cells[gone]
            self._final.discard(gone)
        shown = [jid for jid in self._order if jid in self._cells]  # rows' order on screen
        for v in visible:
            if v.job.id in self._final:
                continue
            cells = row_cells(v, now)
            plain = tuple((c.plain, str(c.style)) for c in cells.values())
            jid = v.job.id
            if jid not in self._cells:
                self.add_row(*cells.values(), key=jid)
                shown.append(jid)
            elif self._cells[jid] != plain:
                for (key, cell), old, new in zip(cells.items(), self._cells[jid], plain):
                    if old != new:
                        # A cell wider than its column widens it (else "✔ completed" would be
                        # cut short in a column sized for "● running").
                        wider = cell.cell_len > self.columns[key].content_width
                        self.update_cell(jid, key, cell, update_width=wider)
            self._cells[jid] = plain
            if not v.job.is_live:
                self._final.add(jid)
        if shown != wanted:
            index = {jid: i for i, jid in enumerate(wanted)}
            self.sort("id", key=lambda cell: index[cell.plain])
        self._order = wanted
        if selected in wanted and wanted.index(selected) != self.cursor_row:
            self.move_cursor(row=wanted.index(selected), scroll=False)
