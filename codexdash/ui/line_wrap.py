"""Where a long line breaks into rows: greedy word wrap, words longer than a row folded, rows
after the first indented under the line's text (a hanging indent). Counting rows this way is
cheap, so every line of a long session can be measured again when the pane's width changes.
"""

from __future__ import annotations

import re
from bisect import bisect_right

from rich.cells import cell_len, get_character_cell_size
from rich.text import Text

_WORD = re.compile(r"\s*\S+\s*|\s+")
_HANG = re.compile(r"\s*(?:[^\w\s]{1,2}\s+)?")


def hanging_indent(plain: str, width: int) -> int:
    """Where a wrapped line's further rows begin: after its leading spaces and a short marker
    (`• `, `$ `, `↳ `, `── `), if that leaves room to read."""
    indent = _HANG.match(plain).end()
    return indent if indent <= width // 3 else 0


def wrap_offsets(plain: str, width: int, indent: int = 0) -> list[int]:
    """The offsets in `plain` where its rows after the first begin (empty: one row). The first
    row is `width` cells wide, the others `width - indent`; spaces at a row's end may overhang."""
    if width <= 0:
        return []
    measure = len if plain.isascii() else cell_len
    if measure(plain) <= width:
        return []
    breaks: list[int] = []
    room, used = width, 0
    for m in _WORD.finditer(plain):
        word = m.group()
        body = word.rstrip()
        start = m.start()
        size = measure(body)
        if used and used + size > room and size <= width - indent:  # on the next row, whole
            breaks.append(start)
            room, used = width - indent, 0
        while measure(body) > room - used:  # longer than a row: folded, from where the row is
            cut = _fit(body, room - used)
            if cut == 0 and used == 0:
                cut = 1  # a character wider than a row: alone on its row
            if cut == len(body):
                break
            start += cut
            body, word = body[cut:], word[cut:]
            breaks.append(start)
            room, used = width - indent, 0
        used += measure(word)
    return breaks


def _fit(text: str, cells: int) -> int:
    """How many characters of `text` fit in `cells`."""
    if text.isascii():
        return max(min(cells, len(text)), 0)
    used = 0
    for i, ch in enumerate(text):
        used += get_character_cell_size(ch)
        if used > cells:
            return i
    return len(text)


class WrappedLines:
    """Whole lines of text and the rows they take at one width: which line a row shows and
    where each line's rows begin. Lines have ids that only grow, so the oldest can be dropped."""

    def __init__(self) -> None:
        self.texts: list[Text] = []
        self._cells: list[int] = []  # each line's width in cells, unwrapped
        self.starts: list[int] = []  # each line's first row at `width`
        self.rows = 0
        self.width = 0  # 0: not known yet (one row a line)
        self.first_id = 0  # the id of texts[0]

    def __len__(self) -> int:
        return len(self.texts)

    def clear(self) -> None:
        self.first_id += len(self.texts)
        self.texts, self._cells, self.starts, self.rows = [], [], [], 0

    def append(self, texts: list[Text]) -> None:
        for text in texts:
            self.texts.append(text)
            self._cells.append(cell_len(text.plain))
            self.starts.append(self.rows)
            self.rows += self._height(len(self.texts) - 1)

    def drop_front(self, count: int) -> int:
        """Drops the oldest `count` lines; returns the rows they took."""
        rows = self.starts[count] if count < len(self.texts) else self.rows
        del self.texts[:count], self._cells[:count], self.starts[:count]
        self.starts = [s - rows for s in self.starts]
        self.rows -= rows
        self.first_id += count
        return rows

    def set_width(self, width: int) -> bool:
        """Wraps every line again for `width`; False when it is the width already."""
        if width == self.width:
            return False
        self.width, self.rows = width, 0
        for i in range(len(self.texts)):
            self.starts[i] = self.rows
            self.rows += self._height(i)
        return True

    def _height(self, i: int) -> int:
        if self.width <= 0 or self._cells[i] <= self.width:
            return 1
        return len(self.breaks(i)[0]) + 1

    def breaks(self, i: int) -> tuple[list[int], int]:
        """Where line i breaks into rows, and the indent of the rows after its first."""
        plain = self.texts[i].plain
        indent = hanging_indent(plain, self.width)
        return wrap_offsets(plain, self.width, indent), indent

    def line_at(self, row: int) -> int | None:
        """The index of the line drawn at this row."""
        if not self.texts or row < 0 or row >= self.rows:
            return None
        return bisect_right(self.starts, row) - 1

    def row_of(self, i: int, offset: int) -> int:
        """The row showing character `offset` of line i."""
        if self.width <= 0 or self._cells[i] <= self.width:
            return self.starts[i]
        return self.starts[i] + bisect_right(self.breaks(i)[0], offset)

    def pieces(self, i: int, text: Text) -> list[Text]:
        """Line i's rows, from `text` (the line, or a copy restyled: highlighted matches)."""
        if self.width <= 0 or self._cells[i] <= self.width:
            return [text]
        breaks, indent = self.breaks(i)
        pieces = list(text.divide(breaks))
        return [pieces[0], *(Text(" " * indent) + piece for piece in pieces[1:])]
