"""A table drawn line by line (Line API): a header line, rows under it, a row cursor kept in
view, the scrolling keys and clicks on rows and on the header.

What the lines show comes from the subclass (`row_strip(i)` in the table's style and width,
`row_plain(i)` unstyled for the cursor's and the mouse's line, `header_strip()`), asked for the
lines on screen only; `refresh_changed()` repaints only the lines whose strip, cursor or hover
changed since they were drawn, and of a changed strip only the cells that differ: a `CellStrip`
says which cells it is made of, so those are known without comparing the strips' segments.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

HEADER = 1  # lines above the rows


class CellStrip(Strip):
    """A row's strip made of cells side by side: `spans` where each cell's text is ([start,
    end), its padding left out) and `cells` a token each, the same object while that cell is
    drawn the same. Two cell strips with the same spans differ in the cells whose tokens differ
    only (what lies between the cells is the same in all)."""

    __slots__ = ("spans", "cells")

    def __init__(self, segments: list[Segment], cell_length: int, spans: tuple, cells: tuple) -> None:
        super().__init__(segments, cell_length)
        self.spans, self.cells = spans, cells


class LineTable(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {"line-table--header", "line-table--cursor", "line-table--hover"}
    # DataTable's look: the same theme variables.
    DEFAULT_CSS = """
    LineTable {
        background: $surface;
        color: $foreground;
        overflow-x: hidden;
        overflow-y: auto;
        &:focus {
            background-tint: $foreground 5%;
            & > .line-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .line-table--header { background-tint: $foreground 5%; }
        }
        & > .line-table--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .line-table--header { background: ansi_bright_blue; color: ansi_default; }
        & > .line-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .line-table--hover { background: $block-hover-background; }
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cursor_row = 0
        self._hover: int | None = None  # the row under the mouse
        self._drawn: dict[int, tuple] = {}  # screen line -> what was drawn there
        self._paint: tuple | None = None  # the table's own style, width and first row, during a paint

    # ---- what the subclass gives -----------------------------------------------------------

    @property
    def row_count(self) -> int:
        raise NotImplementedError

    def row_strip(self, i: int) -> Strip:
        """Row i in the style and width given to `restyle`."""
        raise NotImplementedError

    def row_plain(self, i: int) -> Strip:
        """Row i with no style of the table's (the cursor's or the mouse's look goes under it)."""
        raise NotImplementedError

    def restyle(self, base: Style, width: int) -> None:
        """The table's own style and its width, before rows are asked for."""

    def header_strip(self) -> Strip:
        raise NotImplementedError

    def column_widths(self) -> list[int]:
        """Each column's width on screen, its padding included (for clicks on the header)."""
        raise NotImplementedError

    def cursor_moved(self) -> None:
        """The cursor is on another row."""

    def header_clicked(self, column: int) -> None:
        """The header of this column was clicked."""

    # ---- geometry -----------------------------------------------------------------------------

    def set_size(self, width: int) -> None:
        self.virtual_size = Size(width, self.row_count + HEADER)

    def body_height(self) -> int:
        """How many rows the screen shows."""
        return max(self.scrollable_content_region.height - HEADER, 0)

    def rows_on_screen(self) -> range:
        top = self.scroll_offset.y
        return range(top, min(top + self.body_height(), self.row_count))

    def refresh_header(self) -> None:
        self.refresh(Region(0, 0, self.size.width, HEADER))

    # ---- the cursor -------------------------------------------------------------------------

    def move_cursor(self, *, row: int, scroll: bool = True) -> None:
        row = max(min(row, self.row_count - 1), 0)
        moved = row != self.cursor_row
        self.cursor_row = row
        if scroll:
            self.keep_cursor_in_view()
        if moved:
            self.refresh_changed()
        self.cursor_moved()

    def keep_cursor_in_view(self) -> None:
        top, height = self.scroll_offset.y, self.body_height()
        if height <= 0 or not self.row_count:
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
        self.move_cursor(row=self.row_count - 1)

    def action_page_up(self) -> None:
        self._page(-1)

    def action_page_down(self) -> None:
        self._page(1)

    def _page(self, step: int) -> None:
        page = max(self.body_height() - 1, 1)
        self.scroll_to(y=self.scroll_offset.y + step * page, animate=False, immediate=True)
        self.move_cursor(row=self.cursor_row + step * page)

    # ---- the mouse ---------------------------------------------------------------------------

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y < HEADER:
            right = 0
            for column, width in enumerate(self.column_widths()):
                right += width
                if offset.x < right:
                    self.header_clicked(column)
                    break
        elif (i := self.scroll_offset.y + offset.y - HEADER) < self.row_count:
            self.move_cursor(row=i)
        event.stop()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        offset = event.get_content_offset(self)
        self._set_hover(None if offset is None or offset.y < HEADER else self.scroll_offset.y + offset.y - HEADER)

    def on_leave(self, _event: events.Leave) -> None:
        self._set_hover(None)

    def _set_hover(self, row: int | None) -> None:
        if row != self._hover:
            self._hover = row
            self.refresh_changed()

    # ---- drawing ------------------------------------------------------------------------------

    def _line(self, y: int, top: int | None = None) -> tuple:
        """What screen line `y` shows (the first row on screen being `top`): the row's strip, and
        whether it has the cursor or the mouse."""
        i = (self.scroll_offset.y if top is None else top) + y - HEADER
        if i >= self.row_count:
            return ()
        return (self.row_strip(i), i == self.cursor_row, i == self._hover)

    def refresh_changed(self) -> None:
        """Repaints the lines whose strip, cursor or hover changed since they were drawn."""
        if not self.is_mounted:
            return
        width = self.size.width
        self.restyle(self.rich_style, self.scrollable_content_region.width)
        top = self.scroll_offset.y
        regions: list[Region] = []
        for y in range(HEADER, HEADER + self.body_height()):
            drawn, now = self._drawn.get(y), self._line(y, top)
            if drawn is None or len(drawn) != len(now) or drawn[1:] != now[1:]:
                regions.append(Region(0, y, width, 1))
            elif now and drawn[0] is not now[0]:
                # The same row, cursor and hover, another strip: only the cells that differ are
                # composited and sent to the terminal (a second's tick is one cell of the line).
                spans = changed_spans(drawn[0], now[0], width)
                if not spans:
                    self._drawn[y] = now  # it shows what was drawn: nothing to repaint
                regions.extend(Region(start, y, end - start, 1) for start, end in spans)
        if regions:
            self.refresh(*regions)

    def render_lines(self, crop: Region) -> list[Strip]:
        # Once a paint, not once a line (the style walks up the DOM).
        self._paint = (self.rich_style, self.scrollable_content_region.width, self.scroll_offset.y)
        self.restyle(*self._paint[:2])
        try:
            return super().render_lines(crop)
        finally:
            self._paint = None

    def render_line(self, y: int) -> Strip:
        base, width, top = self._paint or (self.rich_style, self.scrollable_content_region.width, self.scroll_offset.y)
        if y < HEADER:
            return self._styled(self.header_strip(), width, base + self.get_component_rich_style("line-table--header"))
        line = self._drawn[y] = self._line(y, top)
        if not line:
            return Strip.blank(width, base)
        strip, cursor, hover = line
        i = top + y - HEADER
        if cursor:
            look = self.get_component_rich_style("line-table--cursor")
            post = Style.from_color(look.color, look.bgcolor)  # the cursor's colours win over the cells'
            return self._styled(self.row_plain(i), width, base + look, post)
        if hover:
            return self._styled(self.row_plain(i), width, base + self.get_component_rich_style("line-table--hover"))
        # Most lines: the row's strip as it is kept, drawn in the table's style and width.
        return strip if strip.cell_length == width else strip.extend_cell_length(width, base).crop(0, width)

    @staticmethod
    def _styled(strip: Strip, width: int, style: Style, post: Style | None = None) -> Strip:
        """The strip over `style` (under `post`), as wide as the table."""
        segments = Segment.apply_style(strip, style, post)
        fill = style + post if post else style
        return Strip(segments, strip.cell_length).extend_cell_length(width, fill).crop(0, width)


def changed_spans(old: Strip, new: Strip, width: int) -> list[tuple[int, int]]:
    """The cells [start, end) where two strips differ (none: they show the same): of two cell
    strips of one layout, the cells whose tokens differ; of any others, the whole line."""
    if isinstance(old, CellStrip) and isinstance(new, CellStrip) and old.spans == new.spans \
            and old.cell_length == new.cell_length:
        return [span for span, a, b in zip(new.spans, old.cells, new.cells) if a is not b]
    return [(0, width)]
