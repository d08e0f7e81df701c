"""The live jobs table: the chosen columns fitted to the width, cells updated in place, the
sort marked in the header, and the cursor kept on the job the operator chose (and in view)."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import DataTable

from codexdash.jobs import JobView
from codexdash.ui import keys
from codexdash.ui.columns import BY_KEY, DEFAULT_SORT, STALL_SECONDS, Column, Row, fit
from codexdash.ui.threads import together

SCROLLBAR = 1  # cells kept for the vertical scrollbar (see app.tcss)


def matches(v: JobView, query: str) -> bool:
    q = query.lower()
    j = v.job
    return any(q in (field or "").lower() for field in (j.id, j.name, j.status, j.cwd, j.prompt, j.model))


class JobsTable(DataTable):
    BINDINGS = keys.bindings("table")

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.columns_chosen: list[str] = [c for c in BY_KEY if BY_KEY[c].shown]
        self.widths: dict[str, int] = {}
        self.sort_spec: tuple[str, bool] = DEFAULT_SORT  # column key, descending
        self.pointer = DEFAULT_SORT[0]  # the column under the header cursor: what `s` sorts by
        self.unseen: set[str] = set()
        self.stall_after = STALL_SECONDS
        self.mono = False
        self.threads = False  # a job's follow-ups right under it
        self.fitted: list[tuple[Column, int]] = []
        self._views: list[JobView] = []
        self._query = ""
        self._cells: dict[str, tuple] = {}  # job id -> the plain cells shown, to skip unchanged updates
        self._final: dict[str, bool] = {}  # finished jobs drawn (and their unseen mark): they will not change
        self._order: list[str] = []
        self._select_next: str | None = None  # a job to select once it is shown (one just started)

    # ---- columns ----------------------------------------------------------------------------

    @property
    def shown_keys(self) -> list[str]:
        return [c.key for c, _w in self.fitted]

    def set_columns(self, chosen: list[str], widths: dict[str, int]) -> None:
        self.columns_chosen, self.widths = list(chosen), dict(widths)
        self.relayout(force=True)

    def relayout(self, force: bool = False) -> None:
        """Fits the chosen columns to the table's width; rebuilt only when that changes."""
        if not self.is_mounted or self.size.width <= 0:
            return
        layout = fit(self.columns_chosen, self.widths, self.size.width - SCROLLBAR)
        if force or [(c.key, w) for c, w in layout] != [(c.key, w) for c, w in self.fitted]:
            self.fitted = layout
            if self.pointer not in self.shown_keys:
                self.pointer = self.sort_spec[0] if self.sort_spec[0] in self.shown_keys else "name"
            self._rebuild()

    def _label(self, col: Column) -> Text:
        label = Text(col.label, style="underline" if col.key == self.pointer else "")
        key, descending = self.sort_spec
        if col.key == key:
            label.append(" ▼" if descending else " ▲", style="bold")
        return label

    def _rebuild(self) -> None:
        selected = self.selected_job_id
        self.clear(columns=True)
        self._cells.clear()
        self._final.clear()
        self._order = []
        for col, width in self.fitted:
            self.add_column(self._label(col), width=width, key=col.key)
        self.show(self._views, query=self._query, keep=selected)
        if self.row_count:  # the rows are new: whoever follows the selection is told again
            row_key = self.coordinate_to_cell_key((self.cursor_row, 0)).row_key
            self.post_message(self.RowHighlighted(self, self.cursor_row, row_key))

    def _relabel(self) -> None:
        for col, _width in self.fitted:
            self.columns[col.key].label = self._label(col)  # type: ignore[index]
        self._reorder(self._order)  # redraws the header with the rows

    def on_resize(self, _event) -> None:
        self.relayout()
        self.call_after_refresh(self.keep_cursor_in_view)

    def keep_cursor_in_view(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.cursor_row, scroll=True)

    # ---- sort ----------------------------------------------------------------------------------

    def sort_by(self, key: str) -> None:
        """Sorts by this column; the column already sorted by is reversed."""
        col = BY_KEY[key]
        if col.sort is None:
            return
        current, descending = self.sort_spec
        self.sort_spec = (key, not descending) if current == key else (key, col.descending)
        self.pointer = key
        self._relabel()
        self.show(self._views, query=self._query)

    def action_column_left(self) -> None:
        self._move_pointer(-1)

    def action_column_right(self) -> None:
        self._move_pointer(1)

    def _move_pointer(self, step: int) -> None:
        shown = self.shown_keys
        if not shown:
            return
        i = shown.index(self.pointer) if self.pointer in shown else 0
        self.pointer = shown[(i + step) % len(shown)]
        self._relabel()

    # ---- rows ----------------------------------------------------------------------------------

    def select_soon(self, job_id: str) -> None:
        self._select_next = job_id

    @property
    def selected_job_id(self) -> str | None:
        if not self._order or self.cursor_row < 0 or self.cursor_row >= len(self._order):
            return None
        return self._order[self.cursor_row]

    def rows_for(self, views: list[JobView], query: str = "") -> list[Row]:
        """The rows shown for these jobs, filtered and in the table's order."""
        now = time.time()
        rows = [Row(v, now, self.stall_after, v.job.id in self.unseen, self.mono)
                for v in views if not query or matches(v, query)]
        key, descending = self.sort_spec
        rows.sort(key=lambda r: -r.job.created_at)  # equal keys: newest first
        rows.sort(key=BY_KEY[key].sort, reverse=descending)
        return together(rows) if self.threads else rows

    def show(self, views: list[JobView], *, query: str = "", keep: str | None = None) -> None:
        """Shows these jobs, changing only the cells whose text changed."""
        self._views, self._query = views, query
        if not self.fitted:
            return
        selected = keep or self.selected_job_id
        rows = self.rows_for(views, query)
        wanted = [r.job.id for r in rows]
        if self._select_next in wanted:
            selected, self._select_next = self._select_next, None
        for gone in set(self._cells) - set(wanted):
            self.remove_row(gone)
            del self._cells[gone]
            self._final.pop(gone, None)
        shown = [jid for jid in self._order if jid in self._cells]  # rows' order on screen
        for row in rows:
            jid = row.job.id
            if self._final.get(jid) == row.settled:
                continue
            cells = [col.cell(row, width) for col, width in self.fitted]
            plain = tuple((c.plain, str(c.style), tuple(str(s.style) for s in c.spans)) for c in cells)
            if jid not in self._cells:
                self.add_row(*cells, key=jid)
                shown.append(jid)
            elif self._cells[jid] != plain:
                for (col, _w), cell, old, new in zip(self.fitted, cells, self._cells[jid], plain):
                    if old != new:
                        self.update_cell(jid, col.key, cell)
            self._cells[jid] = plain
            if not row.job.is_live:
                self._final[jid] = row.settled
        if shown != wanted:
            self._reorder(wanted)
        self._order = wanted
        if selected in wanted and wanted.index(selected) != self.cursor_row:
            self.move_cursor(row=wanted.index(selected), scroll=True)

    def _reorder(self, wanted: list[str]) -> None:
        """Puts the rows in this order (the rows' keys, in the order they were added, are
        matched with their places: DataTable sorts by values, not keys)."""
        index = {jid: i for i, jid in enumerate(wanted)}
        places = iter([index.get(key.value, len(index)) for key in self.rows])
        self.sort(key=lambda _cells: next(places))
