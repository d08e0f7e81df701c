"""The session pane: the selected job's Codex session, rendered, following it as it grows.

The file is opened from its end (the last events only, so long sessions open at once) in a
worker thread, then followed by the core's follower (woken by the file's changes only, and at once
by the stop when another job is shown); every new line is parsed once. What was read is
kept (`SessionItems`) and drawn by `SessionLog`, which wraps it to the pane's width. Where
follow-ups share the file, each job's part opens with a rule naming the job and how it ended.
Follow pauses while the user is scrolled up or reading a search match, and resumes when they
come back to the bottom. A job on another box is followed through its box (remote_session.py).
"""

from __future__ import annotations

import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from codexdash.follow import Follower, Stop
from codexdash.jobs import JobView
from codexdash.render import sanitize
from codexdash.session_files import read_head
from codexdash.store import Job
from codexdash.tail import open_session
from codexdash.thread import thread_parts
from codexdash.ui.messages import SessionUpdate
from codexdash.ui.pane_header import error_text, state_text, title_text
from codexdash.ui.remote_session import RemoteSession
from codexdash.ui.session_items import SessionItems, first_offset
from codexdash.ui.session_log import SessionLog

__all__ = ["SessionLog", "SessionPane"]

INITIAL_EVENTS = 1000
# Said when the followed file was truncated, or replaced by one that does not begin as it did.
REREAD_NOTE = "the session file was replaced or truncated: shown again from its start"


class SessionPane(RemoteSession, Vertical):
    follow: reactive[bool] = reactive(True)
    raw: reactive[bool] = reactive(False)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.job_id: str | None = None
        self.path: str | None = None
        self.job: Job | None = None
        self.items = SessionItems()
        self._engine_tokens: int | None = None  # the engine's figure, until the file gives one
        self._note = ""
        self._box_note = ""  # the job's box does not answer: why, and since when
        self._header_shown: tuple | None = None  # the header lines as last updated
        self._stop: Stop | None = None
        self.boxes: dict = {}  # the boxes by name: a job on another box is followed through its box
        self.host = "local"
        self._remote_init()

    def compose(self) -> ComposeResult:
        self.title_line = Static("", id="pane-title")
        self.state_line = Static("", id="pane-state")
        self.error_line = Static("", id="pane-error", classes="hidden")
        self.log_view = SessionLog(id="session-log")
        self.search_box = Input(placeholder="search the session (enter: next, escape: close, n/N: step)",
                                id="pane-search", classes="hidden")
        yield self.title_line
        yield self.state_line
        yield self.error_line
        yield self.log_view
        yield self.search_box

    # ---- what is shown ---------------------------------------------------------------------

    def show(self, view: JobView | None, views: list[JobView]) -> None:
        """Shows this job's session (opened again only if another job or file is shown), its
        figures, and the parts of the jobs sharing its file."""
        job = view.job if view is not None else None
        host = view.host if view is not None else "local"
        path = job.session_file if job is not None else None
        if host != "local" and job is not None:
            path = f"{host}:{job.id}"  # followed through its box, whatever its file there
            lost = self.retry_at is not None and time.monotonic() >= self.retry_at
            if lost and not getattr(view, "stale", None):  # the box answers again: follow again
                self.path = None
        if (job.id if job is not None else None) != self.job_id or path != self.path:
            # Opened again only when it shows another thing: opening resets the search, and the
            # footer is composed again each time (an empty dashboard did it every second).
            self._open(job, path, host)
        self.job = job
        self._engine_tokens = view.total_tokens if view is not None else None
        stale = getattr(view, "stale", None)
        self._box_note = (f"{host} ✖ {stale} · last seen {time.strftime('%H:%M:%S', time.localtime(view.seen_at))}"
                          if stale else "")
        parts = thread_parts(path, (v.job for v in views)) if host == "local" else []
        if parts != self.items.parts:
            self.items.parts = parts
            self._render_all()
        self._update_header()

    def _open(self, job: Job | None, path: str | None, host: str = "local") -> None:
        self._stop_following()
        self.job_id, self.path, self.job, self.host = (job.id if job else None), path, job, host
        self.items = SessionItems()
        self._note = ""
        self.log_view.find("")
        self.log_view.stick()
        if host != "local" and job is not None and path is not None:
            self._open_remote(self.boxes[host], job.id, path)
        elif job is not None and path is not None:
            self._stop = Stop()
            self._follow(job.id, path, self._stop)
        self._render_all()

    def _stop_following(self) -> None:
        self._close_remote()
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
        model = read_head(path).model if opened.truncated else None
        self.post_message(SessionUpdate(job_id, path, opened.events, opened.lines, reset=True, truncated=opened.truncated,
                                        start=first_offset(opened, path), model=model))
        for more in Follower(opened, stop=stop):
            if worker.is_cancelled or stop.is_set():
                return
            if not more.empty:
                problem = more.problem or (REREAD_NOTE if more.reset else None)  # a different file: said
                self.post_message(SessionUpdate(job_id, path, more.events, more.lines, reset=more.reset, problem=problem))

    def on_session_update(self, message: SessionUpdate) -> None:
        message.stop()
        if message.job_id != self.job_id or message.path != self.path:
            return  # from a job no longer shown
        items = self.items
        if message.reset:  # opened, or truncated or replaced since: read from its start
            start = message.start if message.start is not None or message.truncated else 0
            items.reset(message.truncated, start)
        if message.problem:
            self._note = message.problem
        items.model = message.model or items.model
        items.add(message.raw_lines, message.events)
        if message.reset:
            self._render_all()
        else:
            self.log_view.append(items.render_new(self.raw, self.job_id))
        self._update_header()

    def _render_all(self) -> None:
        if not self.is_mounted:
            return
        if self.job is None or self.path is None:
            self.log_view.set_lines([Text(self._placeholder(), style="dim italic")])
        elif self.host != "local":
            self.log_view.set_lines(self._remote_texts)
        else:
            self.log_view.set_lines(self.items.render(self.raw, self.job_id))

    def _placeholder(self) -> str:
        if self.job is None:
            return "no job selected"
        if self.job.is_live:
            return "waiting for Codex to create the session file…"
        return "no session file was found for this job"

    # ---- header ------------------------------------------------------------------------------

    def _update_header(self) -> None:
        if not self.is_mounted:
            return
        tokens = self.items.tokens if self.items.tokens is not None else self._engine_tokens
        error = error_text(self.job)
        note = " · ".join(n for n in (self._box_note, self._note) if n)
        shown = (title_text(self.job, self.items.model, tokens, self.host),
                 state_text(self.job is not None, self.follow, self.log_view, self.raw, note), error or "")
        if shown == self._header_shown:
            return  # each update lays the screen out again: not once a refresh for the same words
        self._header_shown = shown
        self.title_line.update(shown[0])
        self.state_line.update(shown[1])
        self.error_line.set_class(error is None, "hidden")
        self.error_line.update(shown[2])

    def on_session_log_changed(self, message: SessionLog.Changed) -> None:
        message.stop()
        self._update_header()

    # ---- toggles and search -------------------------------------------------------------------

    def watch_follow(self, follow: bool) -> None:
        if not self.is_mounted:
            return
        self.log_view.follow = follow
        if follow:
            self.log_view.stick()
        self._update_header()

    def watch_raw(self, _raw: bool) -> None:
        if self.is_mounted and self.host != "local" and self.job is not None and self.path is not None:
            self._open(self.job, self.path, self.host)  # the box sends the lines in the other form
            self._update_header()
        elif self.is_mounted:
            self._render_all()
            self._update_header()

    def open_search(self) -> None:
        box = self.search_box
        box.remove_class("hidden")
        box.focus()

    def close_search(self) -> None:
        self.search_box.add_class("hidden")
        self.log_view.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "pane-search":
            event.stop()
            self.log_view.find(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "pane-search":
            return
        event.stop()
        self.find_next(event.value)

    def find_next(self, query: str, forward: bool = True) -> int | None:
        """Moves to the next match of `query` (highlighting every one); returns its line id."""
        log = self.log_view
        if query != log.search.query:
            log.find(query)
        if not query:
            return None
        match = log.step(forward)
        if match is None:
            self.notify(sanitize(f"not found in the session: {query}"), severity="warning", markup=False)
            return None
        return match.line
