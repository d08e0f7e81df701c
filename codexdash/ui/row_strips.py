"""The jobs table's rows drawn as strips (Line API), cached by what their cells read.

A row's strip is kept under its job id with what each of its cells reads (`Column.reads`, and
the row's look): a row that reads the same gives the same strip back. A row that reads
otherwise is drawn again from its cells, and only the cells whose reads changed are made
again: the others are its kept ones, or come from a small cache of drawn cells. A second's tick
makes the Time (and Idle) cell of a live row, nothing else. The table keeps strips for the rows
on screen only: a job scrolled away or gone costs nothing here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.strip import Strip

from codexdash.ui.columns import CELL_PADDING, Column, Row
from codexdash.ui.line_table import CellStrip

PAD = Segment(" " * CELL_PADDING)
CELLS_KEPT = 2048  # drawn cells kept (a screenful of rows is a few hundred)


def cell_key(text: Text, width: int) -> tuple:
    """What a cell shows: its text, styles and alignment, at its width."""
    return (width, text.plain, str(text.style), text.justify,
            tuple((s.start, s.end, str(s.style)) for s in text.spans) if text.spans else ())


def draw_cell(text: Text, width: int, console: Console) -> list[Segment]:
    """The cell's segments, exactly `width` cells: cropped, or padded with unstyled spaces on
    the side its alignment leaves (a reversed state stays as wide as its word)."""
    if text.cell_len > width:
        text = text.copy()
        text.truncate(width, overflow="crop")
    style = console.get_style(text.style) if text.style else None  # spans only are rendered by Text
    segments = list(Segment.apply_style(text.render(console), style)) if style else list(text.render(console))
    room = width - text.cell_len
    if room > 0:
        if text.justify == "right":
            segments.insert(0, Segment(" " * room))
        elif text.justify == "center":
            segments.insert(0, Segment(" " * (room // 2)))
            segments.append(Segment(" " * (room - room // 2)))
        else:
            segments.append(Segment(" " * room))
    return segments


COLUMN_META = [Style.from_meta({"column": i}) for i in range(64)]


def column_meta(i: int) -> Style:
    return COLUMN_META[i] if i < len(COLUMN_META) else Style.from_meta({"column": i})


def draw_row(cells: Iterable[list[Segment]], width: int) -> Strip:
    """The cells side by side, padded; each cell's segments carry its column's index (meta), so
    no two cells merge into one run of text when the screen is exported."""
    segments: list[Segment] = []
    for i, cell in enumerate(cells):
        segments.extend(Segment.apply_style([PAD, *cell, PAD], post_style=column_meta(i)))
    return Strip(segments, width)


class _Kept:
    """A row on screen: the row last asked for, what its cells read, its strip in the table's
    style (its cells' padded, styled segments are the strip's tokens), the unstyled one."""

    __slots__ = ("row", "reads", "strip", "plain")

    def __init__(self, row: Row, reads: tuple, strip: CellStrip) -> None:
        self.row, self.reads, self.strip, self.plain = row, reads, strip, None


class RowStrips:
    """Strips of rows by job id, kept while what their cells read stays the same.

    A row's strip is drawn in the table's own style (`restyle`) and as wide as the table: most
    lines are put on screen as they are. The cursor's and the mouse's lines are styled from the
    row's unstyled strip, made for them only (`plain`)."""

    def __init__(self) -> None:
        self._rows: dict[str, _Kept] = {}
        # (column, width, look, reads) -> the cell's segments, unstyled
        self._cells: LRUCache[tuple, list[Segment]] = LRUCache(CELLS_KEPT)
        # (column's index, its cell's key) -> padded, in the table's style and with the index (meta)
        self._styled: LRUCache[tuple, list[Segment]] = LRUCache(CELLS_KEPT)
        self._base: Style | None = None
        self._width = 0
        self._columns: list[tuple[Column, int]] | None = None  # the layout the spans are for
        self._spans: tuple = ()
        self._drawn = 0  # the cells' width, their padding included
        self.rows_drawn = 0  # strips made (cache misses): what the tests count
        self.cells_drawn = 0

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, job_id: str) -> bool:
        return job_id in self._rows

    def clear(self) -> None:
        self._rows.clear()
        self._cells.clear()
        self._styled.clear()

    def restyle(self, base: Style, width: int) -> None:
        """The table's style and width: strips drawn for another are drawn again."""
        if base != self._base or width != self._width:
            self._base, self._width = base, width
            self._rows.clear()
            self._styled.clear()

    def keep_only(self, job_ids: set[str]) -> None:
        for gone in [jid for jid in self._rows if jid not in job_ids]:
            del self._rows[gone]

    def _lay_out(self, columns: list[tuple[Column, int]]) -> None:
        """Where each cell's text lies in the strip, for these columns and widths."""
        spans, x = [], 0
        for _col, width in columns:
            spans.append((x + CELL_PADDING, x + CELL_PADDING + width))
            x += width + 2 * CELL_PADDING
        self._columns, self._spans, self._drawn = columns, tuple(spans), x
        self._rows.clear()

    def strip(self, row: Row, columns: list[tuple[Column, int]], text: Callable[[Column, Row, int], Text],
              console: Console) -> CellStrip:
        """The row's strip in the table's style: the kept one while `row` is the same object or
        its cells read the same; else made again from the kept cells whose reads did not change
        and drawn cells cached by what they read, `text(column, row, width)` asked for the rest."""
        if columns is not self._columns:
            self._lay_out(columns)  # forgets every kept row
        kept = self._rows.get(row.job_id)
        if kept is not None and kept.row is row:
            return kept.strip
        reads = (row.look, *[col.reads(row) for col, _w in columns])
        if kept is not None and kept.reads == reads:
            kept.row = row
            return kept.strip
        look, same_look = reads[0], kept is not None and kept.reads[0] == reads[0]
        base = self._base or Style()
        cells = []
        for i, (col, width) in enumerate(columns):
            if same_look and kept.reads[i + 1] == reads[i + 1]:
                cells.append(kept.strip.cells[i])
                continue
            key = (col.key, width, look, reads[i + 1])
            styled = self._styled.get((i, key))
            if styled is None:
                raw = self._cell(key, col, row, width, text, console)
                styled = self._styled[i, key] = list(Segment.apply_style([PAD, *raw, PAD], base, column_meta(i)))
            cells.append(styled)
        segments = [segment for cell in cells for segment in cell]
        if self._drawn < self._width:
            segments.append(Segment(" " * (self._width - self._drawn), base))
        strip = CellStrip(segments, max(self._drawn, self._width), self._spans, tuple(cells))
        self._rows[row.job_id] = _Kept(row, reads, strip)
        self.rows_drawn += 1
        return strip

    def plain(self, job_id: str, text: Callable[[Column, Row, int], Text], console: Console) -> Strip | None:
        """The row's strip with no style of the table's (for the cursor's and the mouse's line)."""
        kept = self._rows.get(job_id)
        if kept is None or self._columns is None:
            return None
        if kept.plain is None:
            look = kept.reads[0]
            kept.plain = draw_row([self._cell((col.key, width, look, reads), col, kept.row, width, text, console)
                                   for (col, width), reads in zip(self._columns, kept.reads[1:])], self._drawn)
        return kept.plain

    def _cell(self, key: tuple, col: Column, row: Row, width: int, text: Callable[[Column, Row, int], Text],
              console: Console) -> list[Segment]:
        segments = self._cells.get(key)
        if segments is None:
            segments = self._cells[key] = draw_cell(text(col, row, width), width, console)
            self.cells_drawn += 1
        return segments
