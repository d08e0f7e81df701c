"""The live jobs table: the chosen columns fitted to the width, the sort marked in the header,
and the cursor kept on the job the operator chose (and in view).

A LineTable (line_table.py): only the rows on screen are drawn, each from a strip kept while its
cells read the same (row_strips.py). The table keeps the jobs' rows, in order, and strips
for the rows on screen: nothing else per row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from operator import attrgetter
from time import localtime

from rich.text import Text
from textual.message import Message
from textual.strip import Strip

from codexdash.jobs import JobView
from codexdash.ui import keys
from codexdash.ui.columns import BY_KEY, CELL_PADDING, DEFAULT_SORT, STALL_SECONDS, Column, Row, fit
from codexdash.ui.line_table import LineTable
from codexdash.ui.row_strips import RowStrips, cell_key, draw_cell, draw_row
from codexdash.ui.threads import together

SCROLLBAR = 1  # cells kept for the vertical scrollbar (see app.tcss)


def matches(v: JobView, query: str) -> bool:
    q = query.lower()
    j = v.job
    return any(q in (field or "").lower() for field in (j.id, j.name, j.status, j.cwd, j.prompt, j.model))


def ordered(rows: list[Row], key: str, descending: bool, threads: bool = False) -> list[Row]:
    """The table's order: by the sort column, newest first among equals; with threads, each
    job's follow-ups right under it."""
    rows.sort(key=attrgetter("created"), reverse=True)  # stable, as the sort below
    rows.sort(key=BY_KEY[key].sort, reverse=descending)
    return together(rows) if threads else rows


class JobsTable(LineTable):
    BINDINGS = keys.bindings("table")

    @dataclass
    class RowHighlighted(Message):
        """The cursor is on another job (or the rows were laid out anew)."""

        table: JobsTable
        job_id: str

        @property
        def control(self) -> JobsTable:
            return self.table

    @dataclass
    class HeaderSelected(Message):
        """A column's header was clicked."""

        table: JobsTable
        column_key: str

        @property
        def control(self) -> JobsTable:
            return self.table

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.columns_chosen: list[str] = [c for c in BY_KEY if BY_KEY[c].shown]
        self.widths: dict[str, int] = {}
        self.sort_spec: tuple[str, bool] = DEFAULT_SORT  # column key, descending
        self.pointer = DEFAULT_SORT[0]  # the column under the header cursor: what `s` sorts by
        self.unseen: set[str] = set()
        self.stall_after = STALL_SECONDS
        self.mono = False
        self.threads = False  # a job's follow-ups right under it
        self.fitted: list[tuple[Column, int]] = []
        self.strips = RowStrips()
        self._views: list[JobView] = []
        self._query = ""
        self._rows: list[Row] = []
        # Finished jobs' rows by id of their views, as last shown, with what may still change in them.
        self._finished_rows: dict[int, tuple[Row, tuple]] = {}
        self._made_for: tuple = ()
        self._order: list[str] = []  # job ids, in the rows' order
        self._right: set[str] = set()  # columns whose cells are right-aligned: their labels too
        self._header: tuple[tuple, Strip] | None = None  # the header's cells and strip
        self._told: str | None = None  # the job last told as highlighted
        self._select_next: str | None = None  # a job to select once it is shown (one just started)

    # ---- columns ----------------------------------------------------------------------------

    @property
    def shown_keys(self) -> list[str]:
        return [c.key for c, _w in self.fitted]

    def set_columns(self, chosen: list[str], widths: dict[str, int]) -> None:
        self.columns_chosen, self.widths = list(chosen), dict(widths)
        self.relayout(force=True)

    def relayout(self, force: bool = False) -> None:
        """Fits the chosen columns to the table's width; laid out again only when that changes."""
        if not self.is_mounted or self.size.width <= 0:
            return
        layout = fit(self.columns_chosen, self.widths, self.size.width - SCROLLBAR)
        if force or [(c.key, w) for c, w in layout] != [(c.key, w) for c, w in self.fitted]:
            self.fitted = layout
            if self.pointer not in self.shown_keys:
                self.pointer = self.sort_spec[0] if self.sort_spec[0] in self.shown_keys else "name"
            self.strips.clear()
            self.show(self._views, query=self._query, keep=self.selected_job_id)
            self.refresh()
            self._tell(force=True)  # the rows are new: whoever follows the selection is told again

    def column_widths(self) -> list[int]:
        return [w + 2 * CELL_PADDING for _c, w in self.fitted]

    def header_cells(self) -> list[Text]:
        key, descending = self.sort_spec
        cells = []
        for col, _width in self.fitted:
            label = Text(col.label, style="underline" if col.key == self.pointer else "",
                         justify="right" if col.key in self._right else "left")
            if col.key == key:
                label.append(" ▼" if descending else " ▲", style="bold")
            cells.append(label)
        return cells

    def header_strip(self) -> Strip:
        texts = self.header_cells()
        key = tuple(cell_key(t, w) for t, (_c, w) in zip(texts, self.fitted))
        if self._header is None or self._header[0] != key:
            cells = [draw_cell(t, w, self.app.console) for t, (_c, w) in zip(texts, self.fitted)]
            self._header = (key, draw_row(cells, sum(self.column_widths())))
        return self._header[1]

    def header_clicked(self, column: int) -> None:
        self.post_message(self.HeaderSelected(self, self.fitted[column][0].key))

    def on_resize(self, _event) -> None:
        self.relayout()
        self.call_after_refresh(self.keep_cursor_in_view)

    # ---- sort ----------------------------------------------------------------------------------

    def sort_by(self, key: str) -> None:
        """Sorts by this column; the column already sorted by is reversed."""
        col = BY_KEY[key]
        if col.sort is None:
            return
        current, descending = self.sort_spec
        self.sort_spec = (key, not descending) if current == key else (key, col.descending)
        self.pointer = key
        self.show(self._views, query=self._query)
        self.refresh_header()

    def action_column_left(self) -> None:
        self._move_pointer(-1)

    def action_column_right(self) -> None:
        self._move_pointer(1)

    def _move_pointer(self, step: int) -> None:
        shown = self.shown_keys
        if shown:
            i = shown.index(self.pointer) if self.pointer in shown else 0
            self.pointer = shown[(i + step) % len(shown)]
            self.refresh_header()

    # ---- rows ----------------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self._order)

    def select_soon(self, job_id: str) -> None:
        self._select_next = job_id

    @property
    def selected_job_id(self) -> str | None:
        return self._order[self.cursor_row] if 0 <= self.cursor_row < len(self._order) else None

    def rows_for(self, views: list[JobView], query: str = "") -> list[Row]:
        """The rows shown for these jobs, filtered and in the table's order."""
        now = time.time()
        context = (self.stall_after, self.mono, localtime(now).tm_yday)  # what all rows depend on
        before = self._finished_rows if context == self._made_for else {}
        self._made_for, self._finished_rows = context, {}
        return ordered([self._row(v, now, before) for v in views if not query or matches(v, query)], *self.sort_spec,
                       threads=self.threads)

    def _row(self, view: JobView, now: float, before: dict[int, Row]) -> Row:
        """The job's row: a finished job's is the one shown before while its view is the same
        object (the engine makes a new view when a job changes), so its cells are not made again."""
        row, settled = before.get(id(view), (None, None))
        if row is None or row.view is not view or settled != (row.job_id in self.unseen, row.stale):
            row = Row(view, now, self.stall_after, view.job.id in self.unseen, self.mono)
            if view.job.is_live:
                return row
        self._finished_rows[id(view)] = (row, row.settled)  # the unseen mark, and a box's greying, may change
        return row

    def show(self, views: list[JobView], *, query: str = "", keep: str | None = None) -> None:
        """Shows these jobs; only the lines whose text changed are drawn again."""
        self._views, self._query = views, query
        if not self.fitted:
            return
        selected = keep or self.selected_job_id
        self._rows = self.rows_for(views, query)
        self._order = [r.job_id for r in self._rows]
        index = {jid: i for i, jid in enumerate(self._order)}
        if self._select_next in index:
            selected, self._select_next = self._select_next, None
        self.set_size(sum(self.column_widths()))
        if selected in index:
            self.move_cursor(row=index[selected], scroll=index[selected] != self.cursor_row)
        else:
            self.move_cursor(row=min(self.cursor_row, self.row_count - 1), scroll=False)
        self.strips.keep_only({self._order[i] for i in self.rows_on_screen()})
        self.refresh_changed()

    def row_cells(self, i: int) -> list[Text]:
        """Row i's cells' texts, made anew: what the row shows, to be read as text (the strips
        are drawn from the cells one by one, `_cell_text`)."""
        row = self._rows[i]
        return [self._cell_text(col, row, width) for col, width in self.fitted]

    def _cell_text(self, col: Column, row: Row, width: int) -> Text:
        text = col.cell(row, width)
        if text.justify == "right" and col.key not in self._right:  # its header is aligned with it
            self._right.add(col.key)
            self.refresh_header()
        return text

    def restyle(self, base, width: int) -> None:
        self.strips.restyle(base, width)

    def row_strip(self, i: int) -> Strip:
        return self.strips.strip(self._rows[i], self.fitted, self._cell_text, self.app.console)

    def row_plain(self, i: int) -> Strip:
        self.row_strip(i)
        return self.strips.plain(self._rows[i].job_id, self._cell_text, self.app.console)

    def cursor_moved(self) -> None:
        self._tell()

    def _tell(self, force: bool = False) -> None:
        jid = self.selected_job_id
        if jid is not None and (force or jid != self._told):  # no rows: nothing to tell
            self._told = jid
            self.post_message(self.RowHighlighted(self, jid))
