"""The jobs table's columns: one registry that the table, the column chooser, the sort and the
saved layout all read. A column is one line here: its key, header, width, how readily it is
dropped on a narrow terminal, its cell, what that reads of the row, and its sort key.

A cell is drawn from what its column says it reads (plain values), the width, and the row's
mono and greying only: the table keeps drawn cells by these and makes a cell's text again only
when they change (a second's tick makes the Time and Idle cells, nothing else). A test holds
each column's cell to its reads.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Any

from rich.text import Text

from codexdash import format as fmt
from codexdash.jobs import JobView
from codexdash.render import sanitize
from codexdash.store import JobStatus
from codexdash.ui.styles import ATTENTION, FAILURES, quiet_style, stale_style, status_style
from codexdash.views import ExternalView, external_view

__all__ = ["COLUMNS", "BY_KEY", "Column", "ExternalView", "Row", "external_view", "fit"]

# A live job whose session file has not grown for this long is stalled (the default; the
# dashboard reads the setting `stall_after` where there is one).
STALL_SECONDS = 120.0
UNSEEN_MARK = "◆"  # a finished job the operator has not looked at yet
EXTERNAL_MARK = "~"  # a Codex session codexdash did not start: read-only
FOLLOW_UP_MARK = "↳"  # a follow-up on an earlier job's session


def _model(row) -> str | None:
    """The model as the session names it, else as the job asked for it."""
    return getattr(row.view, "model", None) or row.job.model


def host_of(view: JobView) -> str:
    """The box a row's job runs on ("local": this one)."""
    return view.host


def idle_for(view: JobView, now: float) -> float | None:
    """How long a live job's session file has been quiet (None: finished, or not known yet)."""
    return now - view.last_activity if (view.job.is_live and view.last_activity) else None


def is_stalled(view: JobView, idle: float | None, stall_after: float) -> bool:
    return idle is not None and idle >= stall_after and not isinstance(view, ExternalView)


@dataclass(slots=True)
class Row:
    """One job as the table sees it at one moment. Slots, its figures taken when it is made:
    the table keeps a row per finished job shown (10,000 with a large store), and a dict each
    cost ~0.4 KB more."""

    view: JobView
    now: float
    stall_after: float = STALL_SECONDS
    unseen: bool = False
    mono: bool = False
    job_id: str = field(init=False)
    created: float = field(init=False)
    idle: float | None = field(init=False)
    stalled: bool = field(init=False)
    elapsed: float | None = field(init=False)  # read once: a remote row's is counted from the clock

    def __post_init__(self) -> None:
        job = self.view.job
        self.job_id, self.created = job.id, job.created_at
        self.elapsed = self.view.elapsed
        self.idle = idle_for(self.view, self.now)
        self.stalled = is_stalled(self.view, self.idle, self.stall_after)

    @property
    def job(self):
        return self.view.job

    @property
    def external(self) -> bool:
        return isinstance(self.view, ExternalView)

    @property
    def attention(self) -> bool:
        """Drawn to stand out: stalled, or ended badly (a session not ours never is: an
        interactive Codex left open is not a failure)."""
        return not self.external and (self.stalled or self.job.status in ATTENTION)

    @property
    def name(self) -> str:
        j = self.job
        return j.name or fmt.title(j.prompt)

    @property
    def stale(self) -> str | None:
        """Why the job's box did not answer at the last look (None: it did, or it is this box):
        the row shows what the box said last, greyed."""
        return getattr(self.view, "stale", None)

    @property
    def look(self) -> tuple:
        """What any cell of the row may read besides its column's reads: mono, and greyed."""
        return (self.mono, bool(self.stale))

    @property
    def settled(self) -> tuple:
        """What may still change in a finished job's row: drawn again only when this does."""
        return (self.unseen, self.stale)


UNREACHABLE = "? unreachable"


def state_label(row: Row) -> str:
    status = row.job.status
    if row.stale:
        return UNREACHABLE
    if row.stalled:
        return "⚠ stalled"
    if status == JobStatus.FAILED_TO_START:
        return "! not started"
    return fmt.status_label(status)


def state_rank(row: Row) -> tuple:
    """Live jobs first (stalled ones first among them), then failures, then the rest;
    newest first within each."""
    status = row.job.status
    group = 0 if status in JobStatus.LIVE else 1 if status in FAILURES else 2
    return (group, not row.stalled, -row.job.created_at)


def _state(row: Row, width: int) -> Text:
    if row.stale:
        return Text(state_label(row))
    if row.external and not row.job.is_live:
        return Text(state_label(row), style="italic")
    return Text(state_label(row), style=status_style(row.job.status, row.mono, row.stalled))


def _id(row: Row, width: int) -> Text:
    j = row.job
    if row.external:
        return Text(EXTERNAL_MARK + j.id[-(width - 1):], style="italic")
    return Text(j.id)


def _name_reads(row: Row) -> tuple:
    return (row.name, row.unseen, row.external, bool(row.job.parent_id), row.job.status, row.stalled)


def _name(row: Row, width: int) -> Text:
    text = Text()
    if row.unseen:
        text.append(UNSEEN_MARK + " ", style="bold")
    if row.external:
        text.append(EXTERNAL_MARK + " ", style="italic")
    elif row.job.parent_id:
        text.append(FOLLOW_UP_MARK + " ")
    room = max(width - text.cell_len, 1)
    style = "bold" if (row.attention or row.unseen) else ""
    if row.attention and not row.mono:
        style = status_style(row.job.status, False, row.stalled)
    text.append(sanitize(fmt.one_line(row.name, room)), style=style)
    return text


def _quiet(row: Row, text: str, justify: str = "left") -> Text:
    return Text(text, style="" if row.job.is_live else quiet_style(row.mono), justify=justify)


def _started(row: Row, width: int) -> Text:
    created = row.job.created_at
    today = time.strftime("%Y%m%d", time.localtime(row.now)) == time.strftime("%Y%m%d", time.localtime(created))
    return _quiet(row, time.strftime("%H:%M" if today else "%b %d", time.localtime(created)))


def _idle(row: Row, width: int) -> Text:
    if row.idle is None:
        return Text("-", style=quiet_style(row.mono))
    return Text(("⚠ " if row.stalled else "") + _idle_for(row),
                style=status_style("", row.mono, stalled=True) if row.stalled else "")


def _cwd(row: Row, width: int) -> Text:
    cwd = row.job.cwd or "-"
    last = os.path.basename(cwd.rstrip("/")) or cwd
    return Text(sanitize(fmt.one_line(last, width)))


def _host(row: Row, width: int) -> Text:
    return Text(sanitize(fmt.one_line(host_of(row.view), width)))


def _greyed(cell: Callable[[Row, int], Text]) -> Callable[[Row, int], Text]:
    """The cell, greyed when its box did not answer at the last look (the state says so)."""

    def draw(row: Row, width: int) -> Text:
        text = cell(row, width)
        if row.stale:
            text.stylize(stale_style(row.mono))
        return text

    return draw


def _stats(row: Row):
    return row.view.stats


def _live(row: Row) -> bool:
    return row.job.is_live


def _on(row: Row) -> str:
    return host_of(row.view)


def _elapsed(row: Row) -> str:
    return fmt.duration(row.elapsed)


def _idle_for(row: Row) -> str | None:
    return None if row.idle is None else fmt.duration(row.idle)


def _cpu(row: Row) -> str:
    return f"{_stats(row).cpu_percent:.0f}%" if _stats(row) else "-"


def _mem(row: Row) -> str:
    return fmt.size(_stats(row).rss_bytes) if _stats(row) else "-"


def _tokens(row: Row) -> str:
    return fmt.tokens(row.view.total_tokens)


def _day(now: float) -> tuple:
    return time.localtime(now)[:3]


def _unsaid(row: Row) -> object:
    """What a column that does not say what its cell reads reads: equal to nothing, so its cell
    is made each time its row is."""
    return object()


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int  # default width, in cells
    drop: int  # narrow terminals drop the highest first; 0: never dropped
    cell: Callable[[Row, int], Text]
    # What the cell reads of its row, as plain values: rows that read the same draw the same
    # cell at the same width, mono and greying (`Row.look`). Compared at every refresh: cheap.
    reads: Callable[[Row], Hashable] = _unsaid
    sort: Callable[[Row], Any] | None = None
    descending: bool = False  # the first press sorts biggest (or newest) first
    shown: bool = True  # shown unless the operator hides it
    flex: bool = False  # takes the width that is left
    min_width: int = 4


# In display order. Add a column with one line here (saying what its cell reads keeps it drawn
# between refreshes while that stays the same).
COLUMNS: list[Column] = [  # key, header, width, drop, cell, what the cell reads, sort
    Column("state", "State", 13, 1, _state, lambda r: (r.job.status, r.stalled, r.external), state_rank, min_width=9),
    Column("host", "Host", 8, 2, _host, _on, lambda r: (_on(r) != "local", _on(r)), shown=False),
    Column("id", "Job", 10, 3, _id, lambda r: (r.job.id, r.external), lambda r: r.job.id),
    Column("name", "Name", 22, 0, _name, _name_reads, lambda r: r.name.lower(), min_width=10),
    Column("started", "Started", 7, 7, _started, lambda r: (r.created, _live(r), _day(r.now)), lambda r: r.created,
           descending=True),
    Column("time", "Time", 6, 4, lambda r, w: _quiet(r, _elapsed(r)), lambda r: (_elapsed(r), _live(r)),
           lambda r: r.elapsed or -1, descending=True),
    Column("pid", "PID", 7, 10, lambda r, w: _quiet(r, str(r.job.pid or "-")), lambda r: (r.job.pid, _live(r)),
           lambda r: r.job.pid or 0),
    Column("cpu", "CPU", 5, 11, lambda r, w: Text(_cpu(r), justify="right"), _cpu,
           lambda r: _stats(r).cpu_percent if _stats(r) else -1, descending=True),
    Column("mem", "Mem", 6, 12, lambda r, w: Text(_mem(r), justify="right"), _mem,
           lambda r: _stats(r).rss_bytes if _stats(r) else -1, descending=True),
    Column("tokens", "Tokens", 7, 5, lambda r, w: Text(_tokens(r), justify="right"), _tokens,
           lambda r: r.view.total_tokens or 0, descending=True),
    Column("idle", "Idle", 6, 8, _idle, lambda r: (_idle_for(r), r.stalled),
           lambda r: r.idle if r.idle is not None else -1, descending=True),
    Column("cwd", "Cwd", 14, 2, _cwd, lambda r: r.job.cwd,
           lambda r: os.path.basename((r.job.cwd or "").rstrip("/")).lower()),
    Column("model", "Model", 12, 9, lambda r, w: Text(sanitize(fmt.one_line(_model(r) or "-", w))), _model,
           lambda r: _model(r) or ""),
    Column("prompt", "Prompt", 20, 6, lambda r, w: Text(sanitize(fmt.one_line(r.job.prompt, w))),
           lambda r: r.job.prompt, lambda r: r.job.prompt.lower(), flex=True, min_width=12),
]
COLUMNS = [replace(c, cell=_greyed(c.cell)) for c in COLUMNS]
BY_KEY = {c.key: c for c in COLUMNS}
DEFAULT_SORT = ("started", True)  # newest first
CELL_PADDING = 1  # the table's padding on each side of a cell


def fit(shown: list[str], widths: dict[str, int], available: int) -> list[tuple[Column, int]]:
    """The columns to draw in `available` cells and their widths: the operator's choice, less
    the least useful ones while they do not fit (never the name). The flexible column (the
    prompt) gets the width that is left, or goes when that is less than its minimum; with no
    flexible column the name takes what is left."""
    chosen = [BY_KEY[k] for k in shown if k in BY_KEY]
    if not any(c.key == "name" for c in chosen):
        chosen.insert(0, BY_KEY["name"])  # the one column a job is told apart by

    def width_of(c: Column) -> int:  # room for the header and its sort mark, at least
        return max(widths.get(c.key, c.width), c.min_width, len(c.label) + 2)

    def needed(cols: list[Column]) -> int:
        return sum((c.min_width if c.flex else width_of(c)) + 2 * CELL_PADDING for c in cols)

    cols = list(chosen)
    while needed(cols) > available:
        droppable = [c for c in cols if c.drop > 0]
        if not droppable:
            break
        cols.remove(max(droppable, key=lambda c: c.drop))
    fixed = sum(width_of(c) + 2 * CELL_PADDING for c in cols if not c.flex)
    left = available - fixed
    out: list[tuple[Column, int]] = []
    flex = next((c for c in cols if c.flex), None)
    for c in cols:
        if c.flex:
            out.append((c, max(left - 2 * CELL_PADDING, c.min_width)))
        elif flex is None and c.key == "name" and left > 0:
            out.append((c, width_of(c) + left))
        else:
            out.append((c, width_of(c)))
    return out
