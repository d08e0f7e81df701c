"""The session pane: the selected job's Codex session, rendered, following it as it grows.

The file is opened from its end (the last events only, so long sessions open at once) in a
worker thread, then followed by the core's follower (woken by the file's changes only, and at once
by the stop when another job is shown); every new line is parsed once. Follow pauses while
the user is scrolled up and resumes when they come back to the bottom.
"""

from __future__ import annotations

from collections import deque

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Input, RichLog, Static
from textual.worker import get_current_worker

from codexdash.events import Event, Kind
from codexdash.follow import Follower, Stop
from codexdash.render import Line, render_event, render_raw, sanitize
from codexdash.tail import open_session
from codexdash.ui.messages import SessionUpdate
from codexdash.ui.styles import LINE_STYLES

INITIAL_EVENTS = 300
MAX_LINES = 5000


class SessionLog(RichLog):
    """The rendered lines; focusable so the keys scroll it."""

    can_focus = True


class SessionPane(Vertical):
    follow: reactive[bool] = reactive(True)
    raw: reactive[bool] = reactive(False)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.job_id: str | None = None
        self.path: str | None = None
        self._events: deque[Event] = deque(maxlen=MAX_LINES)
        self._raw_lines: deque[bytes] = deque(maxlen=MAX_LINES)
        self._stop: Stop | None = None
        self._note = ""
        self._tokens: int | None = None
        self._paused = False  # following, but the user has scrolled up to read

    def compose(self) -> ComposeResult:
        self.title_line = Static("", id="pane-title")
        self.log_view = SessionLog(id="session-log", wrap=True, markup=False, highlight=False, max_lines=MAX_LINES,
                                   auto_scroll=False, min_width=20)
        self.search_box = Input(placeholder="search the session (enter: next, escape: close)", id="pane-search", classes="hidden")
        yield self.title_line
        yield self.log_view
        yield self.search_box

    # ---- what is shown ---------------------------------------------------------------------

    def show_job(self, job_id: str | None, path: str | None, waiting: str = "") -> None:
        """Shows this job's session (nothing new if it is already shown)."""
        if job_id == self.job_id and path == self.path:
            return
        self._stop_following()
        self.job_id, self.path = job_id, path
        self._events.clear()
        self._raw_lines.clear()
        self.log_view.clear()
        self._note = ""
        self._tokens = None
        if job_id is None:
            self._placeholder("no job selected")
        elif path is None:
            self._placeholder(waiting or "waiting for Codex to create the session file…")
        else:
            self._stop = Stop()
            self._follow(job_id, path, self._stop)
        self._update_title()

    def _placeholder(self, text: str) -> None:
        self.log_view.write(Text(text, style="dim italic"))

    def _stop_following(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None

    def on_unmount(self) -> None:
        self._stop_following()

    @work(thread=True, exclusive=True, group="session")
    def _follow(self, job_id: str, path: str, stop: Stop) -> None:
        worker = get_current_worker()
        try:
            opened = open_session(path, last=INITIAL_EVENTS)
        except OSError as exc:
            self.post_message(SessionUpdate(job_id, path, [], [], reset=True, problem=f"cannot open {path}: {exc.strerror}"))
            return
        self.post_message(SessionUpdate(job_id, path, opened.events, opened.lines, reset=True, truncated=opened.truncated))
        for more in Follower(opened, stop=stop):
            if worker.is_cancelled or stop.is_set():
                return
            if not more.empty:
                self.post_message(SessionUpdate(job_id, path, more.events, more.lines, reset=more.reset, problem=more.problem))

    def on_session_update(self, message: SessionUpdate) -> None:
        message.stop()
        if message.job_id != self.job_id or message.path != self.path:
            return  # from a job no longer shown
        log = self.log_view
        if message.reset:
            self._events.clear()
            self._raw_lines.clear()
            log.clear()
            if message.truncated:
                log.write(Text("… earlier events not shown", style="dim"))
        if message.problem:
            self._note = message.problem
            self._update_title()
            if not message.events:
                return
        at_end = log.is_vertical_scroll_end or log.max_scroll_y == 0
        tokens = [e.tokens for e in message.events if e.kind == Kind.TOKENS]
        if tokens:
            self._tokens = tokens[-1]
            self._update_title()
        self._events.extend(message.events)
        self._raw_lines.extend(message.raw_lines)
        self._write(message.events, message.raw_lines)
        if self.follow and (at_end or message.reset):
            log.scroll_end(animate=False, immediate=False)
        paused = self.follow and not (at_end or message.reset)
        if paused != self._paused:
            self._paused = paused
            self._update_title()

    def _write(self, events: list[Event], raw_lines: list[bytes]) -> None:
        log = self.log_view
        lines: list[Line] = [render_raw(r) for r in raw_lines] if self.raw else [
            line for e in events for line in render_event(e)
        ]
        for line in lines:
            log.write(Text(line.text, style=LINE_STYLES.get(line.style, "")), scroll_end=False)

    def _rewrite(self) -> None:
        self.log_view.clear()
        self._write(list(self._events), list(self._raw_lines))
        if self.follow:
            self.log_view.scroll_end(animate=False, immediate=False)

    # ---- toggles and search -------------------------------------------------------------------

    def watch_follow(self, follow: bool) -> None:
        if follow and self.is_mounted:
            self.log_view.scroll_end(animate=False)
        self._paused = False
        self._update_title()

    def watch_raw(self, _raw: bool) -> None:
        if self.is_mounted:
            self._rewrite()
            self._update_title()

    def _update_title(self) -> None:
        if not self.is_mounted:
            return
        if self.job_id is None:
            text = Text("Session", style="bold")
        else:
            text = Text.assemble(("Session ", "bold"), (self.job_id, "bold"))
            if self.follow and self._paused:
                text.append("  follow paused (scrolled up)", style="yellow")
            else:
                text.append("  follow" if self.follow else "  follow off", style="green" if self.follow else "yellow")
            if self._tokens is not None:
                text.append(f"  Σ {self._tokens:,} tokens", style="dim")
            if self.raw:
                text.append("  raw", style="cyan")
            if self._note:
                text.append(f"  {self._note}", style="red")
        self.title_line.update(text)

    def open_search(self) -> None:
        box = self.search_box
        box.remove_class("hidden")
        box.focus()

    def close_search(self) -> None:
        box = self.search_box
        box.add_class("hidden")
        self.log_view.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "pane-search":
            return
        event.stop()
        self.find_next(event.value)

    def find_next(self, query: str) -> int | None:
        """Scrolls to the next line containing `query`; returns its line number."""
        if not query:
            return None
        log = self.log_view
        q = query.lower()
        hits = [i for i, strip in enumerate(log.lines) if q in strip.text.lower()]
        if not hits:
            self.notify(sanitize(f"not found in the session: {query}"), severity="warning", markup=False)
            return None
        current = int(log.scroll_y)
        after = [i for i in hits if i > current]
        target = after[0] if after else hits[0]
        self.follow = False
        log.scroll_to(y=target, animate=False)
        self._note = f"match {hits.index(target) + 1}/{len(hits)}"
        self._update_title()
        return target
