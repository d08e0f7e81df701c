"""What the session pane holds of a session file: its last events, and the lines they were read
from (for raw mode), each with where its line begins in the file; the parts of the jobs that
share the file; the model and tokens the session names. Rendered to lines on demand, a rule
opening each job's part, so a change of mode, of width or of a job's state redraws from here.
"""

from __future__ import annotations

from collections import deque

from rich.text import Text

from codexdash.events import Event, Kind
from codexdash.render import Line, render_event, render_part, render_record
from codexdash.tail import OpenedSession, is_compressed
from codexdash.thread import Part, event_offsets, line_offsets, part_at
from codexdash.ui.styles import LINE_STYLES

MAX_EVENTS = 5000


def first_offset(opened: OpenedSession, path: str) -> int | None:
    """Where the first line read from the end of a session file begins (None: not known)."""
    if is_compressed(path):  # read from its start, decompressed
        return None if opened.truncated else 0
    return opened.tail.offset - sum(len(line) + 1 for line in opened.lines)


class SessionItems:
    def __init__(self, max_events: int = MAX_EVENTS) -> None:
        self.max_events = max_events
        self.events: deque[tuple[int | None, Event]] = deque(maxlen=max_events)
        self.records: deque[tuple[int | None, bytes]] = deque(maxlen=max_events)
        self.parts: list[Part] = []
        self.tokens: int | None = None
        self.model: str | None = None
        self.reset(truncated=False, start=None)  # nothing read yet

    def reset(self, truncated: bool, start: int | None) -> None:
        """Forgets the events: the file is read again from `start` (None: not known)."""
        self.events.clear()
        self.records.clear()
        self._received = 0  # events received since (more than kept: the earliest are not shown)
        self._truncated = truncated
        self._next = start  # where the next line read begins
        self._last_part: int | None = None  # the part of the last line rendered
        self._new: tuple[list, list] = ([], [])  # what the last `add` brought: records, events

    def add(self, lines: list[bytes], events: list[Event]) -> None:
        """Keeps lines just read and the events read from them, each with its line's offset."""
        start = self._next
        if start is None:
            offsets, event_at = [None] * len(lines), [None] * len(events)
        else:
            offsets = line_offsets(lines, start)
            self._next = start + sum(len(line) + 1 for line in lines)
            # Only where a job's part begins inside these lines does each event need its own line.
            inside = any(start < p.offset < self._next for p in self.parts)
            event_at = event_offsets(lines, start, len(events)) if inside else [start] * len(events)
        self._received += len(events)
        self.events.extend(zip(event_at, events))
        self.records.extend(zip(offsets, lines))
        for event in events:
            if event.kind == Kind.TOKENS and event.tokens is not None:
                self.tokens = event.tokens
            elif event.kind == Kind.MODEL and event.text:
                self.model = event.text
        self._new = (list(zip(offsets, lines)), list(zip(event_at, events)))

    def render(self, raw: bool, shown_job: str | None) -> list[Text]:
        """Every line, from the first event kept."""
        self._last_part = None
        texts = []
        if self._truncated or self._received > self.max_events:
            texts.append(Text("… earlier events not shown", style="dim"))
        texts.extend(self.render_more(list(self.records if raw else self.events), raw, shown_job))
        return texts

    def render_new(self, raw: bool, shown_job: str | None) -> list[Text]:
        """The lines of what the last `add` brought."""
        records, events = self._new
        return self.render_more(records if raw else events, raw, shown_job)

    def render_more(self, items: list[tuple[int | None, object]], raw: bool, shown_job: str | None) -> list[Text]:
        out: list[Text] = []
        for offset, item in items:
            part = part_at(self.parts, offset)
            if part is not None and part != self._last_part:
                out.append(self._heading(part, shown_job))
            lines = render_record(item) if raw else render_event(item)
            out.extend(styled(line) for line in lines)
        # A part with nothing in the file yet (a follow-up just started) is marked at the end.
        for k in range(0 if self._last_part is None else self._last_part + 1, len(self.parts)):
            if self._next is not None and self.parts[k].offset >= self._next:
                out.append(self._heading(k, shown_job))
        return out

    def _heading(self, part: int, shown_job: str | None) -> Text:
        self._last_part = part
        p = self.parts[part]
        return styled(render_part(p.label(), current=p.job_id == shown_job))


def styled(line: Line) -> Text:
    return Text(line.text, style=LINE_STYLES.get(line.style, ""))
