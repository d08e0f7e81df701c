"""Searching the session pane: every match of a query in the lines shown, and the current one.

Lines are named by ids that only grow, so matches stay valid while old lines are dropped from
the front. The query is plain text, matched without regard to case.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from typing import NamedTuple

MAX_MATCHES = 100_000  # a one-letter query in a long session: counted no further


class Match(NamedTuple):
    line: int  # the line's id
    start: int
    end: int


class Search:
    def __init__(self) -> None:
        self.query = ""
        self._pattern: re.Pattern | None = None
        self.matches: list[Match] = []
        self.current: int | None = None  # index in `matches` of the match stepped to

    @property
    def active(self) -> bool:
        return self._pattern is not None

    def set(self, query: str, lines: Iterable[tuple[int, str]]) -> None:
        """Searches these (id, text) lines for `query` ("" ends the search)."""
        self.query = query
        self._pattern = re.compile(re.escape(query), re.IGNORECASE) if query else None
        self.matches = []
        self.current = None
        self.extend(lines)

    def extend(self, lines: Iterable[tuple[int, str]]) -> None:
        """Adds the matches in lines appended after those already searched."""
        if self._pattern is None:
            return
        for line_id, text in lines:
            for m in self._pattern.finditer(text):
                if len(self.matches) >= MAX_MATCHES:
                    return
                self.matches.append(Match(line_id, m.start(), m.end()))

    def drop_before(self, line_id: int) -> None:
        """Forgets the matches in lines dropped from the front."""
        cut = bisect_left(self.matches, (line_id,))
        if cut:
            del self.matches[:cut]
            if self.current is not None:
                self.current = self.current - cut if self.current >= cut else None

    def in_line(self, line_id: int) -> list[Match]:
        i = bisect_left(self.matches, (line_id,))
        out = []
        while i < len(self.matches) and self.matches[i].line == line_id:
            out.append(self.matches[i])
            i += 1
        return out

    def step(self, forward: bool, from_line: int) -> Match | None:
        """The next (or previous) match, after the current one or else from line `from_line`
        on (back from it); past the last it starts over from the first."""
        n = len(self.matches)
        if not n:
            self.current = None
            return None
        if self.current is not None:
            self.current = (self.current + (1 if forward else -1)) % n
        elif forward:
            self.current = bisect_left(self.matches, (from_line,)) % n
        else:
            self.current = (bisect_left(self.matches, (from_line + 1,)) - 1) % n
        return self.matches[self.current]

    def position(self) -> str:
        """`2/5` (at the second of five), `5` (none stepped to yet), `no match`."""
        n = len(self.matches)
        count = f"{n}+" if n >= MAX_MATCHES else str(n)
        if not n:
            return "no match"
        return f"{self.current + 1}/{count}" if self.current is not None else f"{count} matches"
