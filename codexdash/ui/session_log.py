"""The session's lines, kept as text and wrapped to the width they are drawn at (Line API).

Lines are kept whole (Rich `Text`), so a wider or narrower pane wraps them again; only the rows
on screen are wrapped and styled, from a cache. The view sticks to the bottom (following) until
the user scrolls up, and sticks again when the user reaches the bottom (End, G, scrolling).
Search matches are highlighted as rows are drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from codexdash.ui.line_wrap import WrappedLines
from codexdash.ui.session_search import Match, Search

MAX_LINES = 20_000
# Reverse, bold and underline stay under NO_COLOR; the current match is also yellow where colours are.
MATCH_STYLE = "reverse"
CURRENT_MATCH_STYLE = "bold underline reverse yellow"


class SessionLog(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    SessionLog {
        overflow-y: scroll;
        overflow-x: hidden;
    }
    """
    # Scrolling keys move at once (no animation): the bottom is reached when the key is pressed,
    # whatever arrives meanwhile.
    BINDINGS = [
        Binding("home,g", "scroll_home", "Top", show=False),
        Binding("end,G", "scroll_end", "Bottom: follow", show=False),
        Binding("n", "next_match", "Next match"),
        Binding("N", "previous_match", "Previous match", show=False),
    ]

    @dataclass
    class Changed(Message):
        """The view reached the bottom (following again) or left it, or a search moved on."""

        log: SessionLog

    def __init__(self, max_lines: int = MAX_LINES, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_lines = max_lines
        self.follow = True  # scroll along as lines arrive, while stuck to the bottom
        self.stuck = True
        self.left_by = ""  # why the view left the bottom: "scroll" or "search"
        self.search = Search()
        self._lines = WrappedLines()
        self._cache: LRUCache[tuple, list[Strip]] = LRUCache(1024)
        self._moving = False  # scrolled by the code, not the user

    # ---- content -------------------------------------------------------------------------

    @property
    def line_count(self) -> int:
        return len(self._lines)

    @property
    def text(self) -> str:
        """Every line kept, unwrapped (for tests and copying)."""
        return "\n".join(t.plain for t in self._lines.texts)

    def set_lines(self, texts: list[Text]) -> None:
        """Replaces every line (the reading position kept as near as it can be)."""
        self._lines.clear()
        self._cache.clear()
        self.search.set(self.search.query, [])
        self.append(texts)
        self.refresh()

    def append(self, texts: list[Text]) -> None:
        if not texts:
            return
        lines = self._lines
        base = lines.first_id + len(lines)
        lines.append(texts)
        self.search.extend((base + i, t.plain) for i, t in enumerate(texts))
        if len(lines) > self.max_lines + self.max_lines // 10:  # dropped in batches: rarely
            rows = lines.drop_front(len(lines) - self.max_lines)
            self.search.drop_before(lines.first_id)
            if not self.stuck:
                self._scroll(self.scroll_y - rows)  # the same lines stay in view
        self._update_size()
        if self.follow and self.stuck:
            self._scroll(self.max_scroll_y)
        self.refresh()

    def _update_size(self) -> None:
        self.virtual_size = Size(self._lines.width, self._lines.rows)

    def on_resize(self, _event) -> None:
        lines = self._lines
        top = lines.line_at(self.scroll_offset.y)
        if lines.set_width(self.scrollable_content_region.width):
            self._cache.clear()
            self._update_size()
            if not self.stuck and top is not None:
                self._scroll(lines.starts[top])  # the line read at the top stays at the top
        if self.stuck:  # wider, narrower, shorter (a header line more): the last line stays in view
            self._scroll(self.max_scroll_y)

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        row = self.scroll_offset.y + y
        i = self._lines.line_at(row)
        if i is None:
            return Strip.blank(width, self.rich_style)
        strips = self._strips(i)
        row -= self._lines.starts[i]
        strip = strips[row] if row < len(strips) else Strip.blank(width)
        return strip.crop_extend(0, width, self.rich_style).apply_style(self.rich_style)

    def _strips(self, i: int) -> list[Strip]:
        lines = self._lines
        line_id = lines.first_id + i
        matches = self.search.in_line(line_id) if self.search.active else []
        current = self.search.matches[self.search.current] if self.search.current is not None else None
        key = (line_id, lines.width, tuple(matches), current if current in matches else None)
        strips = self._cache.get(key)
        if strips is None:
            text = lines.texts[i]
            if matches:
                text = text.copy()
                for m in matches:
                    text.stylize(CURRENT_MATCH_STYLE if m == current else MATCH_STYLE, m.start, m.end)
            console = self.app.console
            # A Text renders its spans' styles only: its own style goes under them here.
            strips = [Strip(list(piece.render(console)), piece.cell_len).apply_style(console.get_style(piece.style))
                      for piece in lines.pieces(i, text)]
            self._cache[key] = strips
        return strips

    # ---- following and moving ------------------------------------------------------------

    def _scroll(self, y: float) -> None:
        self._moving = True
        try:
            self.scroll_to(y=y, animate=False, immediate=True)
        finally:
            self._moving = False

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if not self._moving:
            self._set_stuck(new >= self.max_scroll_y, "scroll")

    def _set_stuck(self, stuck: bool, why: str = "") -> None:
        if stuck != self.stuck:
            self.stuck = stuck
            self.left_by = "" if stuck else why
            self.post_message(self.Changed(self))

    def stick(self) -> None:
        """Back to the bottom, following."""
        self._scroll(self.max_scroll_y)
        self._set_stuck(True)

    def action_scroll_end(self) -> None:
        self.stick()

    def action_scroll_home(self) -> None:
        self.scroll_home(animate=False)

    def action_page_up(self) -> None:
        self.scroll_page_up(animate=False)

    def action_page_down(self) -> None:
        self.scroll_page_down(animate=False)

    def action_scroll_up(self) -> None:
        self.scroll_up(animate=False)

    def action_scroll_down(self) -> None:
        self.scroll_down(animate=False)

    # ---- search ----------------------------------------------------------------------------

    def find(self, query: str) -> None:
        """Highlights every match of `query` ("" clears)."""
        first = self._lines.first_id
        self.search.set(query, ((first + i, t.plain) for i, t in enumerate(self._lines.texts)))
        self.refresh()
        self.refresh_bindings()
        self.post_message(self.Changed(self))

    def step(self, forward: bool = True) -> Match | None:
        """Moves to the next (previous) match, leaving the bottom: reading a match is not
        interrupted by what arrives."""
        lines = self._lines
        top = lines.line_at(self.scroll_offset.y) or 0
        match = self.search.step(forward, lines.first_id + top)
        if match is not None:
            row = lines.row_of(match.line - lines.first_id, match.start)
            height = self.scrollable_content_region.height
            if not (self.scroll_y <= row < self.scroll_y + height):
                self._scroll(max(row - height // 3, 0))
            self.stuck, self.left_by = False, "search"
        self.refresh()
        self.post_message(self.Changed(self))
        return match

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("next_match", "previous_match"):
            return self.search.active  # no search: n is the app's (new job)
        return True

    def action_next_match(self) -> None:
        self.step(True)

    def action_previous_match(self) -> None:
        self.step(False)
