"""The jobs table's rows drawn as strips (Line API), cached by what they show.

A row's strip is kept under its job id with the texts of its cells: the same texts give the
same strip back, a changed cell draws that row again (its other cells come from a small cache
of drawn cells, so a second's tick draws one cell). The table keeps strips for the rows on
screen only: a job scrolled away or gone costs nothing here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.strip import Strip

from codexdash.ui.columns import CELL_PADDING

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


class RowStrips:
    """Strips of rows by job id, kept while their cells' texts stay the same.

    A row's strip is drawn in the table's own style (`restyle`) and as wide as the table: most
    lines are put on screen as they are. The cursor's and the mouse's lines are styled from the
    row's unstyled strip, made for them only (`plain`)."""

    def __init__(self) -> None:
        # job id -> (row, cells' keys, strip in the table's style, unstyled strip or None)
        self._rows: dict[str, list] = {}
        self._cells: LRUCache[tuple, list[Segment]] = LRUCache(CELLS_KEPT)  # cell key -> segments
        self._styled: LRUCache[tuple, list[Segment]] = LRUCache(CELLS_KEPT)  # (cell key, column) -> padded, styled
        self._base: Style | None = None
        self._width = 0
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

    def strip(self, job_id: str, row, cells: Callable[[], list[Text]], widths: list[int],
              console: Console) -> Strip:
        """The row's strip in the table's style: the kept one while `row` is the same object,
        shows the same values (`row.shown`) or its cells the same texts; `cells()` is asked
        only when what the row shows changed."""
        kept = self._rows.get(job_id)
        if kept is not None and (kept[0] is row or kept[0].shown == row.shown):
            kept[0] = row
            return kept[2]
        texts = cells()
        keys = tuple(cell_key(t, w) for t, w in zip(texts, widths))
        if kept is not None and kept[1] == keys:
            kept[0] = row
            return kept[2]
        base = self._base or Style()
        segments: list[Segment] = []
        for i, (text, width, key) in enumerate(zip(texts, widths, keys)):
            styled = self._styled.get((key, i))
            if styled is None:
                raw = self._cell(key, text, width, console)
                styled = self._styled[key, i] = list(Segment.apply_style([PAD, *raw, PAD], base, column_meta(i)))
            segments.extend(styled)
        drawn = sum(widths) + 2 * CELL_PADDING * len(widths)
        if drawn < self._width:
            segments.append(Segment(" " * (self._width - drawn), base))
        strip = Strip(segments, max(drawn, self._width))
        self._rows[job_id] = [row, keys, strip, None, texts, widths]
        self.rows_drawn += 1
        return strip

    def plain(self, job_id: str, console: Console) -> Strip | None:
        """The row's strip with no style of the table's (for the cursor's and the mouse's line)."""
        kept = self._rows.get(job_id)
        if kept is None:
            return None
        if kept[3] is None:
            _row, keys, _strip, _plain, texts, widths = kept
            kept[3] = draw_row([self._cell(k, t, w, console) for k, t, w in zip(keys, texts, widths)],
                               sum(widths) + 2 * CELL_PADDING * len(widths))
        return kept[3]

    def _cell(self, key: tuple, text: Text, width: int, console: Console) -> list[Segment]:
        segments = self._cells.get(key)
        if segments is None:
            segments = self._cells[key] = draw_cell(text, width, console)
            self.cells_drawn += 1
        return segments
