"""The live jobs table: the chosen columns fitted to the width, a header marking the sort, and a
cursor kept on the job the operator chose (and in view).

Drawn line by line (Line API): only the rows on screen are drawn, each from a strip kept while
its cells show the same texts (row_strips.py), and a refresh repaints only the lines that
changed. The table keeps the jobs' rows (their data) and nothing per row beyond that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from codexdash.jobs import JobView
from codexdash.ui import keys
from codexdash.ui.columns import BY_KEY, CELL_PADDING, DEFAULT_SORT, STALL_SECONDS, Column, Row, fit
from codexdash.ui.row_strips import RowStrips, cell_key, draw_cell, draw_row

SCROLLBAR = 1  # cells kept for the vertical scrollbar (see app.tcss)
HEADER = 1  # lines above the rows


def matches(v: JobView, query: str) -> bool:
    q = query.lower()
    j = v.job
    return any(q in (field or "").lower() for field in (j.id, j.name, j.status, j.cwd, j.prompt, j.model))


def ordered(rows: list[Row], key: str, descending: bool) -> list[Row]:
    """The table's order: by the sort column, newest first among equals."""
    rows.sort(key=lambda r: -r.job.created_at)
    rows.sort(key=BY_KEY[key].sort, reverse=descending)
    return rows


class JobsTable(ScrollView, can_focus=True):
    BINDINGS = keys.bindings("table")
    COMPONENT_CLASSES = {"jobs-table--header", "jobs-table--cursor", "jobs-table--hover"}
    DEFAULT_CSS = """
    JobsTable {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        &:focus {
            background-tint: $foreground 5%;
            & > .jobs-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .jobs-table--header { background-tint: $foreground 5%; }
        }
        & > .jobs-table--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .jobs-table--header { background: ansi_bright_blue; color: ansi_default; }
        & > .jobs-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .jobs-table--hover { background: $block-hover-background; }
    }
    """

    @dataclass
    class RowHighlighted(Message):
        """The cursor is on another job (or the rows were laid out anew)."""

        table: JobsTable
        job_id: str | None

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
        self.fitted: list[tuple[Column, int]] = []
        self.cursor_row = 0
        self.show_cursor = True
        self.strips = RowStrips()
        self._views: list[JobView] = []
        self._query = ""
        self._rows: list[Row] = []
        self._order: list[str] = []  # job ids, in the rows' order
        self._index: dict[str, int] = {}
        self._right: set[str] = set()  # columns whose cells are right-aligned: their labels too
        self._drawn: dict[int, tuple] = {}  # screen line -> what was drawn there
        self._hover: int | None = None
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

    def header_cells(self) -> list[Text]:
        cells = []
        for col, _width in self.fitted:
            label = Text(col.label, style="underline" if col.key == self.pointer else "",
                         justify="right" if col.key in self._right else "left")
            key, descending = self.sort_spec
            if col.key == key:
                label.append(" ▼" if descending else " ▲", style="bold")
            cells.append(label)
        return cells

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
        self.refresh(Region(0, 0, self.size.width, HEADER))

    def action_column_left(self) -> None:
        self._move_pointer(-1)

    def action_column_right(self) -> None:
        self._move_pointer(1)

    def _move_pointer(self, step: int) -> None:
        shown = self.shown_keys
        if shown:
            i = shown.index(self.pointer) if self.pointer in shown else 0
            self.pointer = shown[(i + step) % len(shown)]
            self.refresh(Region(0, 0, self.size.width, HEADER))

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
        rows = [Row(v, now, self.stall_after, v.job.id in self.unseen, self.mono)
                for v in views if not query or matches(v, query)]
        return ordered(rows, *self.sort_spec)

    def row_cells(self, i: int) -> list[Text]:
        row = self._rows[i]
        cells = [col.cell(row, width) for col, width in self.fitted]
        for (col, _w), cell in zip(self.fitted, cells):
            if cell.justify == "right" and col.key not in self._right:
                self._right.add(col.key)
                self.refresh(Region(0, 0, self.size.width, HEADER))
        return cells

    def show(self, views: list[JobView], *, query: str = "", keep: str | None = None) -> None:
        """Shows these jobs; only the lines whose text changed are drawn again."""
        self._views, self._query = views, query
        if not self.fitted:
            return
        selected = keep or self.selected_job_id
        rows = self.rows_for(views, query)
        self._rows, self._order = rows, [r.job.id for r in rows]
        self._index = {jid: i for i, jid in enumerate(self._order)}
        if self._select_next in self._index:
            selected, self._select_next = self._select_next, None
        self.virtual_size = Size(self._row_width(), len(rows) + HEADER)
        if selected in self._index:
            self.move_cursor(row=self._index[selected], scroll=self._index[selected] != self.cursor_row)
        else:
            self.move_cursor(row=min(self.cursor_row, len(rows) - 1), scroll=False)
        top = self.scroll_offset.y
        self.strips.keep_only(set(self._order[top:top + self._body_height()]))
        self._refresh_changed()

    def _row_width(self) -> int:
        return sum(w + 2 * CELL_PADDING for _c, w in self.fitted)

    def _body_height(self) -> int:
        return max(self.scrollable_content_region.height - HEADER, 0)

    # ---- cursor --------------------------------------------------------------------------------

    def move_cursor(self, *, row: int, scroll: bool = True) -> None:
        row = max(min(row, len(self._order) - 1), 0)
        if row != self.cursor_row:
            self.cursor_row = row
            self._refresh_changed()
        if scroll:
            self.keep_cursor_in_view()
        self._tell()

    def _tell(self, force: bool = False) -> None:
        jid = self.selected_job_id
        if jid is not None and (force or jid != self._told):  # no rows: nothing to tell
            self._told = jid
            self.post_message(self.RowHighlighted(self, jid))

    def keep_cursor_in_view(self) -> None:
        top, height = self.scroll_offset.y, self._body_height()
        if height <= 0 or not self._order:
            return
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + height:
            self.scroll_to(y=self.cursor_row - height + 1, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        self.move_cursor(row=self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(row=self.cursor_row + 1)

    def action_scroll_top(self) -> None:
        self.move_cursor(row=0)

    def action_scroll_bottom(self) -> None:
        self.move_cursor(row=len(self._order) - 1)

    def action_page_up(self) -> None:
        self._page(-1)

    def action_page_down(self) -> None:
        self._page(1)

    def _page(self, step: int) -> None:
        page = max(self._body_height() - 1, 1)
        self.scroll_to(y=self.scroll_offset.y + step * page, animate=False, immediate=True)
        self.move_cursor(row=self.cursor_row + step * page)

    # ---- mouse -----------------------------------------------------------------------------

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y < HEADER:
            x = 0
            for col, width in self.fitted:
                x += width + 2 * CELL_PADDING
                if offset.x < x:
                    self.post_message(self.HeaderSelected(self, col.key))
                    break
        elif (i := self.scroll_offset.y + offset.y - HEADER) < len(self._order):
            self.move_cursor(row=i)
            event.stop()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        offset = event.get_content_offset(self)
        hover = None if offset is None or offset.y < HEADER else self.scroll_offset.y + offset.y - HEADER
        if hover != self._hover:
            self._hover = hover
            self._refresh_changed()

    def on_leave(self, _event: events.Leave) -> None:
        self._hover = None
        self._refresh_changed()

    # ---- drawing ---------------------------------------------------------------------------

    def _line(self, y: int) -> tuple:
        """What screen line `y` shows: the row's strip and whether it has the cursor or the mouse."""
        i = self.scroll_offset.y + y - HEADER
        if i >= len(self._rows):
            return ()
        row = self._rows[i]
        strip = self.strips.strip(row.job.id, row, lambda: self.row_cells(i), [w for _c, w in self.fitted],
                                  self.app.console)
        return (strip, i == self.cursor_row and self.show_cursor, i == self._hover)

    def _refresh_changed(self) -> None:
        """Repaints the lines whose strip, cursor or hover changed since they were drawn."""
        if not self.is_mounted:
            return
        width = self.size.width
        for y in range(HEADER, HEADER + self._body_height()):
            drawn, now = self._drawn.get(y), self._line(y)
            if drawn is None or len(drawn) != len(now) or any(a is not b for a, b in zip(drawn, now)):
                self.refresh(Region(0, y, width, 1))

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        if y < HEADER:
            return self._styled(self._header_strip(), width, base + self.get_component_rich_style("jobs-table--header"))
        line = self._line(y)
        self._drawn[y] = line
        if not line:
            return Strip.blank(width, base)
        strip, cursor, hover = line
        if cursor:
            look = self.get_component_rich_style("jobs-table--cursor")
            post = Style.from_color(look.color, look.bgcolor)  # the cursor's colours win over the cells'
            return self._styled(strip, width, base + look, post)
        if hover:
            return self._styled(strip, width, base + self.get_component_rich_style("jobs-table--hover"))
        return self._styled(strip, width, base)

    def _header_strip(self) -> Strip:
        texts = self.header_cells()
        key = tuple(cell_key(t, w) for t, (_c, w) in zip(texts, self.fitted))
        if self._header is None or self._header[0] != key:
            cells = [draw_cell(t, w, self.app.console) for t, (_c, w) in zip(texts, self.fitted)]
            self._header = (key, draw_row(cells, self._row_width()))
        return self._header[1]

    @staticmethod
    def _styled(strip: Strip, width: int, style: Style, post: Style | None = None) -> Strip:
        segments = Segment.apply_style(strip, style, post)
        return Strip(segments, strip.cell_length).extend_cell_length(width, style + post if post else style).crop(0, width)
